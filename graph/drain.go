package graph

// Detach empties the container rt and returns what it held, for Release
// after the guarding lock is dropped (the kernel's order when a map value
// goes away: take the lock, detach, unlock, drop every node). The lock
// must be held.
func (h *Heap) Detach(rt Root) (d Detached, err error) {
	defer catch(&err)
	p := h.ptr(rt.Off, 16, rt.Kind.String())
	w := (*[2]uint64)(p)
	d = Detached{Root: rt, words: *w}
	*w = [2]uint64{}
	return d, nil
}

// Detached is a container's contents, no longer reachable from its root.
type Detached struct {
	Root  Root
	words [2]uint64
}

// Release drops every node of a detached container: each node is unlinked
// and its object loses the container's reference (freed when that was the
// last; nested containers drained in turn). A corrupt link stops the walk
// with ErrCorrupt; the nodes not reached then leak.
func (h *Heap) Release(d Detached) (err error) {
	defer catch(&err)
	nodes := h.collect(d.Root, d.words)
	for _, n := range nodes {
		h.unlinkNode(d.Root, n)
	}
	for _, n := range nodes {
		h.drop(n-uint64(d.Root.NodeOff), d.Root.elemSize())
	}
	return nil
}

// drainRoot detaches and releases a container no one else can reach.
func (h *Heap) drainRoot(tb *Table, f Field, off uint64) {
	rt := Root{Off: off, Kind: f.Kind, Table: tb, Elem: f.Elem, NodeOff: f.NodeOff}
	d, err := h.Detach(rt)
	if err == nil {
		err = h.Release(d)
	}
	if err != nil {
		panic(corruption{err})
	}
}

// unlinkNode clears a node taken from a detached container.
func (h *Heap) unlinkNode(rt Root, n uint64) {
	if rt.Kind == KindRBRoot {
		x := (*rbNode)(h.ptr(n, 32, "bpf_rb_node"))
		x.Left, x.Right, x.Parent = 0, 0, 0
		x.Owner.Store(0)
		return
	}
	x := h.lnode(n)
	x.Next, x.Prev = 0, 0
	x.Owner.Store(0)
}

// collect lists a container's nodes in order, from its root words, each
// checked to be a node of the container (its owner word) before it is
// followed, and the object it is in validated.
func (h *Heap) collect(rt Root, words [2]uint64) []uint64 {
	var out []uint64
	h.walk(rt, words, func(n uint64) bool {
		out = append(out, n)
		return true
	})
	return out
}

// walk visits a container's nodes in order until yield returns false.
func (h *Heap) walk(rt Root, words [2]uint64, yield func(node uint64) bool) {
	// A node seen twice means the links loop (a scribbled link).
	seen := map[uint64]struct{}{}
	check := func(n uint64, owner uint64) {
		if _, dup := seen[n]; dup {
			corrupt("%s %#x: node %#x reached twice", rt.Kind, rt.Off, n)
		}
		seen[n] = struct{}{}
		if owner != rt.Off {
			corrupt("%s node %#x belongs to %#x, not %#x", rt.Kind, n, owner, rt.Off)
		}
		h.objectOf(rt, n)
	}
	if rt.Kind == KindListHead {
		var prev uint64
		for n := words[0]; n != 0; {
			x := h.lnode(n)
			check(n, x.Owner.Load())
			if x.Prev != prev {
				corrupt("bpf_list_node %#x: prev %#x, want %#x", n, x.Prev, prev)
			}
			next := x.Next
			if !yield(n) {
				return
			}
			prev, n = n, next
		}
		if prev != words[1] {
			corrupt("bpf_list_head %#x: last %#x, the walk ended at %#x", rt.Off, words[1], prev)
		}
		return
	}
	t := &tree{h: h, root: &rbRoot{Root: words[0], Leftmost: words[1]}}
	if words[0] == 0 {
		return
	}
	if t.parent(words[0]) != 0 {
		corrupt("bpf_rb_root %#x: root node %#x has a parent", rt.Off, words[0])
	}
	for n := t.min(words[0]); n != 0; {
		check(n, t.n(n).Owner.Load())
		next := t.next(n)
		if !yield(n) {
			return
		}
		n = next
	}
}

// Walk visits the nodes of container rt in order (a tree's smallest
// first, a list's front first), passing each node's object, until yield
// returns false. The container's lock must be held, and yield must not
// change the container.
func (h *Heap) Walk(rt Root, yield func(o Object) bool) (err error) {
	defer catch(&err)
	w := (*[2]uint64)(h.ptr(rt.Off, 16, rt.Kind.String()))
	h.walk(rt, *w, func(n uint64) bool {
		return yield(h.objectOf(rt, n))
	})
	return nil
}
