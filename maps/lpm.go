package maps

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/userbpf/userbpf/lock"
)

// lpmOps implements LPM_TRIE (kernel/bpf/lpm_trie.c): a longest-prefix-
// match trie. A key is struct bpf_lpm_trie_key_u8 { u32 prefixlen; u8
// data[key_size-4]; }, data in network bit order (bit 0 is the top bit of
// data[0]). Lookup returns the value of the longest stored prefix that
// matches the key's first prefixlen bits; update and delete address one
// exact (prefixlen, data) prefix.
//
// The trie is the kernel's, node for node: a binary trie whose nodes hold
// a prefix, its value and two children (the next bit 0 or 1); nodes added
// only to join two subtrees are intermediate (flag IM, no value) and do not
// count against max_entries. get_next_key walks it in the kernel's post-
// order, so iteration order is the kernel's exactly.
//
// Trie header, one region block (Data):
//
//	0   Lock u32   lock.SpinLock word: writers (update, delete) hold it
//	4   (pad)
//	8   Root u64   offset of the root node, 0 when empty
//
// The number of value nodes is the descriptor's Count. Nodes are region
// blocks, allocated on demand (BPF_F_NO_PREALLOC is mandatory, as in the
// kernel), ElemSize bytes each:
//
//	0   Child0 u64     offset of the child whose next bit is 0, or 0
//	8   Child1 u64     the same for bit 1
//	16  PrefixLen u32
//	20  Flags u32      lpmIM: intermediate node, no value
//	24  Data [round_up(key_size-4, 8)]  key data as given (bits past
//	                   PrefixLen are kept, and get_next_key returns them)
//	…   Value [value_size]
//
// Readers (lookup, get_next_key, programs) walk without the lock inside an
// RCU read-side section. Writers change the trie as the kernel does with
// rcu_assign_pointer: a node is filled completely, then published with one
// 8-byte store into a child slot (or Root); a replaced value node is a new
// node, so a reader copies either the old value or the new one, never a
// mix; unlinked nodes are freed after a grace period.
//
// Crash safety: since every change is one store, a writer killed at any
// point leaves a well-formed trie in which its command either happened or
// did not. What it can leave behind: nodes it allocated or unlinked but
// had not yet published or retired (leaked blocks), and Count off by one
// (it is changed next to the store, not with it). The locker that
// recovers the lock from a dead holder therefore recounts the value nodes.
type lpmOps struct{}

// lpmHeader is the head of a trie's block (see lpmOps).
type lpmHeader struct {
	Lock lock.SpinLock
	_    uint32
	Root atomic.Uint64
}

// lpmNode is the head of a trie node (see lpmOps).
type lpmNode struct {
	Child     [2]atomic.Uint64
	PrefixLen uint32
	Flags     atomic.Uint32
}

const (
	lpmHeaderSize = 16
	lpmNodeHeader = 24
	lpmIM         = 1 // LPM_TREE_NODE_FLAG_IM

	lpmDataSizeMin = 1
	lpmDataSizeMax = 256
	// lpmValueSizeMax is LPM_VAL_SIZE_MAX: KMALLOC_MAX_SIZE -
	// LPM_DATA_SIZE_MAX - sizeof(struct lpm_trie_node) on x86-64.
	lpmValueSizeMax = kmallocMaxSize - lpmDataSizeMax - 24
)

// lpmCreateFlags is LPM_CREATE_FLAG_MASK.
const lpmCreateFlags = FlagNoPrealloc | FlagNumaNode | flagAccessMask

func (l lpmOps) allocCheck(s *Spec, ncpu int) error {
	if s.MaxEntries == 0 || s.Flags&FlagNoPrealloc == 0 || s.Flags&^lpmCreateFlags != 0 || !accessOK(s.Flags) ||
		s.KeySize < 4+lpmDataSizeMin || s.KeySize > 4+lpmDataSizeMax || s.ValueSize == 0 || s.ValueSize > lpmValueSizeMax {
		return fmt.Errorf("%w: lpm_trie needs BPF_F_NO_PREALLOC, key 5..260 (4-byte prefixlen + 1..256 data bytes), value 1..%d and entries > 0 (got key %d value %d entries %d flags %#x)",
			ErrInvalid, lpmValueSizeMax, s.KeySize, s.ValueSize, s.MaxEntries, s.Flags)
	}
	return nil
}

func (l lpmOps) dataSize(m *Map) uint32  { return m.keySize - 4 }
func (l lpmOps) maxPrefix(m *Map) uint32 { return 8 * l.dataSize(m) }

func (l lpmOps) nodeSize(m *Map) uint32 {
	return lpmNodeHeader + roundUp8(l.dataSize(m)) + m.valueSize
}

func (l lpmOps) alloc(m *Map) error {
	off, err := m.region.Alloc(lpmHeaderSize)
	if err != nil {
		return fmt.Errorf("%w: trie header: %v", ErrNoMemory, err)
	}
	m.d.Data = off
	m.d.ElemSize = l.nodeSize(m)
	return nil
}

// free gives back every node and the header (the map is unpublished: no
// reader can reach it).
func (l lpmOps) free(m *Map) {
	var walk func(off uint64, depth uint32)
	walk = func(off uint64, depth uint32) {
		if off == 0 || depth > l.maxPrefix(m)+1 {
			return
		}
		n := l.node(m, off)
		walk(n.Child[0].Load(), depth+1)
		walk(n.Child[1].Load(), depth+1)
		m.region.Free(off)
	}
	walk(l.header(m).Root.Load(), 0)
	m.region.Free(m.d.Data)
}

func (l lpmOps) validate(m *Map) error {
	d := m.d
	if d.KeySize < 4+lpmDataSizeMin || d.KeySize > 4+lpmDataSizeMax || d.ValueSize == 0 || d.ElemSize != l.nodeSize(m) {
		return fmt.Errorf("bad lpm_trie geometry")
	}
	_, err := m.region.Bytes(d.Data, lpmHeaderSize)
	return err
}

func (l lpmOps) header(m *Map) *lpmHeader { return (*lpmHeader)(m.region.Pointer(m.d.Data)) }

func (l lpmOps) node(m *Map, off uint64) *lpmNode { return (*lpmNode)(m.region.Pointer(off)) }

func (l lpmOps) data(m *Map, off uint64) []byte {
	return storage(m.region.Pointer(off+lpmNodeHeader), l.dataSize(m))
}

func (l lpmOps) value(m *Map, off uint64) unsafe.Pointer {
	return m.region.Pointer(off + lpmNodeHeader + uint64(roundUp8(l.dataSize(m))))
}

// extractBit is bit i of data, bit 0 being the top bit of data[0].
func extractBit(data []byte, i uint32) int { return int(data[i/8]>>(7-i%8)) & 1 }

// match is longest_prefix_match: how many leading bits of the node's
// prefix and of the key (prefix keyLen) agree, at most min of the two.
func (l lpmOps) match(m *Map, off uint64, n *lpmNode, key []byte, keyLen uint32) uint32 {
	limit := min(n.PrefixLen, keyLen)
	nd := l.data(m, off)
	pl := uint32(0)
	for i := range nd {
		pl += uint32(8 - bits.Len8(nd[i]^key[i]))
		if pl >= limit {
			return limit
		}
		if nd[i] != key[i] {
			break
		}
	}
	return pl
}

// splitKey reads prefixlen and data from a key.
func splitKey(key []byte) (uint32, []byte) { return binary.NativeEndian.Uint32(key), key[4:] }

// lookupElem is trie_lookup_elem: the longest matching value node.
func (l lpmOps) lookupElem(m *Map, key []byte) unsafe.Pointer {
	kl, kd := splitKey(key)
	maxPL := l.maxPrefix(m)
	if kl > maxPL {
		return nil
	}
	var found uint64
	off := l.header(m).Root.Load()
	for depth := uint32(0); off != 0 && depth <= maxPL; depth++ {
		n := l.node(m, off)
		ml := l.match(m, off, n, kd, kl)
		if ml == maxPL {
			found = off
			break
		}
		if ml < n.PrefixLen {
			break
		}
		if n.Flags.Load()&lpmIM == 0 {
			found = off
		}
		off = n.Child[extractBit(kd, n.PrefixLen)].Load()
	}
	if found == 0 {
		return nil
	}
	return l.value(m, found)
}

// lock takes the trie's lock; if its holder died, Count is recounted.
func (l lpmOps) lock(m *Map) *lpmHeader {
	h := l.header(m)
	if h.Lock.Lock(m.holder) {
		m.d.Count.Store(int64(l.countValues(m, h.Root.Load(), 0)))
	}
	return h
}

// countValues counts the value nodes under off.
func (l lpmOps) countValues(m *Map, off uint64, depth uint32) uint64 {
	if off == 0 || depth > l.maxPrefix(m) {
		return 0
	}
	n := l.node(m, off)
	c := l.countValues(m, n.Child[0].Load(), depth+1) + l.countValues(m, n.Child[1].Load(), depth+1)
	if n.Flags.Load()&lpmIM == 0 {
		c++
	}
	return c
}

// newNode allocates a node for prefix (kl, kd) holding value (nil: an
// intermediate node).
func (l lpmOps) newNode(m *Map, kl uint32, kd, value []byte) (uint64, error) {
	off, err := m.region.Alloc(uint64(m.d.ElemSize))
	if err != nil {
		return 0, fmt.Errorf("%w: trie node: %v", ErrNoMemory, err)
	}
	n := l.node(m, off)
	n.PrefixLen = kl
	copy(l.data(m, off), kd)
	if value == nil {
		n.Flags.Store(lpmIM)
	} else {
		copy(storage(l.value(m, off), m.valueSize), value)
	}
	return off, nil
}

// addElem is trie_check_add_elem: room for one more value node.
func (l lpmOps) addElem(m *Map, flags uint64) error {
	if flags == UpdateExist {
		return ErrKeyNotExist
	}
	if m.d.Count.Load() >= int64(m.maxEntries) {
		return fmt.Errorf("%w: lpm_trie holds max_entries (%d) prefixes", ErrNoSpace, m.maxEntries)
	}
	m.d.Count.Add(1)
	return nil
}

// retire frees an unlinked node after a grace period.
func (l lpmOps) retire(m *Map, off uint64) {
	if off != 0 {
		m.rcu.Retire(off)
	}
}

// update is trie_update_elem.
func (l lpmOps) update(m *Map, key, value []byte, flags uint64) error {
	if flags > UpdateExist {
		return fmt.Errorf("%w: update flags %#x", ErrInvalid, flags)
	}
	kl, kd := splitKey(key)
	if kl > l.maxPrefix(m) {
		return fmt.Errorf("%w: prefixlen %d is above %d", ErrInvalid, kl, l.maxPrefix(m))
	}
	nu, err := l.newNode(m, kl, kd, value)
	if err != nil {
		return err
	}
	var old uint64
	err = l.insert(m, nu, kl, kd, flags, &old)
	if err != nil {
		m.region.Free(nu) // never published
	}
	l.retire(m, old)
	return err
}

// insert links node nu (prefix kl, kd) under the lock; a node it replaces
// is returned in old, to be retired after the lock is dropped.
func (l lpmOps) insert(m *Map, nu uint64, kl uint32, kd []byte, flags uint64, old *uint64) error {
	h := l.lock(m)
	defer h.Lock.Unlock()
	slot := &h.Root
	var off uint64
	var ml uint32
	for depth := uint32(0); depth <= l.maxPrefix(m); depth++ {
		if off = slot.Load(); off == 0 {
			break
		}
		n := l.node(m, off)
		ml = l.match(m, off, n, kd, kl)
		if n.PrefixLen != ml || n.PrefixLen == kl {
			break
		}
		slot = &n.Child[extractBit(kd, n.PrefixLen)]
	}
	if off == 0 { // an empty slot: the new node goes there
		if err := l.addElem(m, flags); err != nil {
			return err
		}
		slot.Store(nu)
		return nil
	}
	n, nn := l.node(m, off), l.node(m, nu)
	if n.PrefixLen == ml { // the same prefix: replace the node
		if n.Flags.Load()&lpmIM == 0 {
			if flags == UpdateNoExist {
				return ErrKeyExist
			}
		} else if err := l.addElem(m, flags); err != nil {
			return err
		}
		nn.Child[0].Store(n.Child[0].Load())
		nn.Child[1].Store(n.Child[1].Load())
		slot.Store(nu)
		*old = off
		return nil
	}
	if err := l.addElem(m, flags); err != nil {
		return err
	}
	if ml == kl { // the new prefix contains the node's: insert it above
		nn.Child[extractBit(l.data(m, off), ml)].Store(off)
		slot.Store(nu)
		return nil
	}
	// They differ at bit ml: join them under an intermediate node.
	im, err := l.newNode(m, ml, l.data(m, off), nil)
	if err != nil {
		m.d.Count.Add(-1)
		return err
	}
	in := l.node(m, im)
	b := extractBit(kd, ml)
	in.Child[b].Store(nu)
	in.Child[1-b].Store(off)
	slot.Store(im)
	return nil
}

// delete is trie_delete_elem: an exact prefix only.
func (l lpmOps) delete(m *Map, key []byte) error {
	kl, kd := splitKey(key)
	if kl > l.maxPrefix(m) {
		return fmt.Errorf("%w: prefixlen %d is above %d", ErrInvalid, kl, l.maxPrefix(m))
	}
	var dead [2]uint64
	err := l.remove(m, kl, kd, &dead)
	l.retire(m, dead[0])
	l.retire(m, dead[1])
	return err
}

// remove unlinks prefix (kl, kd) under the lock; the nodes it unlinked are
// returned in dead.
func (l lpmOps) remove(m *Map, kl uint32, kd []byte, dead *[2]uint64) error {
	h := l.lock(m)
	defer h.Lock.Unlock()
	trim := &h.Root
	trim2 := trim
	var parent, off uint64
	var ml uint32
	for depth := uint32(0); depth <= l.maxPrefix(m); depth++ {
		if off = trim.Load(); off == 0 {
			break
		}
		n := l.node(m, off)
		ml = l.match(m, off, n, kd, kl)
		if n.PrefixLen != ml || n.PrefixLen == kl {
			break
		}
		parent, trim2 = off, trim
		trim = &n.Child[extractBit(kd, n.PrefixLen)]
	}
	if off == 0 {
		return ErrKeyNotExist
	}
	n := l.node(m, off)
	if n.PrefixLen != kl || n.PrefixLen != ml || n.Flags.Load()&lpmIM != 0 {
		return ErrKeyNotExist
	}
	m.d.Count.Add(-1)
	c0, c1 := n.Child[0].Load(), n.Child[1].Load()
	if c0 != 0 && c1 != 0 { // two children: it becomes intermediate
		n.Flags.Store(lpmIM)
		return nil
	}
	if parent != 0 && c0 == 0 && c1 == 0 {
		if p := l.node(m, parent); p.Flags.Load()&lpmIM != 0 {
			// The intermediate parent goes too; the sibling takes its place.
			sib := p.Child[0].Load()
			if sib == off {
				sib = p.Child[1].Load()
			}
			trim2.Store(sib)
			dead[0], dead[1] = off, parent
			return nil
		}
	}
	trim.Store(c0 | c1) // at most one is set
	dead[0] = off
	return nil
}

// nextKey is trie_get_next_key: post-order, more specific prefixes before
// the prefixes containing them, the 0 side before the 1 side. A missing key
// (or none, or a prefixlen past the maximum) gives the first.
//
// Going back up from the key's node, the kernel decides whether it came
// from a left child by comparing the parent's child[0] with the node it
// walked through; if a writer replaced that node meanwhile (an update of
// its value), the comparison fails and the whole right sibling subtree is
// skipped. Here the side is the bit the search took, which is the same
// answer whenever nothing changes, and the right one when something does:
// a walk never skips a prefix that stays in the trie.
func (l lpmOps) nextKey(m *Map, key, next []byte) error {
	root := l.header(m).Root.Load()
	if root == 0 {
		return ErrKeyNotExist
	}
	maxPL := l.maxPrefix(m)
	start := root
	if key != nil {
		if kl, kd := splitKey(key); kl <= maxPL {
			var stack []uint64
			var side []int // side[i]: which child of stack[i-1] stack[i] is
			var ml uint32
			off, b := root, 0
			for depth := uint32(0); off != 0 && depth <= maxPL; depth++ {
				stack, side = append(stack, off), append(side, b)
				n := l.node(m, off)
				ml = l.match(m, off, n, kd, kl)
				if n.PrefixLen != ml || n.PrefixLen == kl {
					break
				}
				b = extractBit(kd, n.PrefixLen)
				off = n.Child[b].Load()
			}
			if off != 0 && l.node(m, off).PrefixLen == ml && l.node(m, off).Flags.Load()&lpmIM == 0 {
				// Found: the next node in post-order.
				found, nextOff := false, uint64(0)
				for i := len(stack) - 1; i > 0; i-- {
					p := l.node(m, stack[i-1])
					if side[i] == 0 { // the kernel compares p.Child[0] with stack[i] (see below)
						if r := p.Child[1].Load(); r != 0 {
							start, found = r, true
							break
						}
					}
					if p.Flags.Load()&lpmIM == 0 {
						nextOff = stack[i-1]
						break
					}
				}
				switch {
				case nextOff != 0:
					l.copyKey(m, nextOff, next)
					return nil
				case !found:
					return ErrKeyNotExist
				}
			}
		}
	}
	// The leftmost value node under start (intermediate nodes always have
	// two children, so there is one).
	var leftmost uint64
	off := start
	for depth := uint32(0); off != 0 && depth <= maxPL+1; depth++ {
		n := l.node(m, off)
		if n.Flags.Load()&lpmIM != 0 {
			off = n.Child[0].Load()
			continue
		}
		leftmost = off
		if off = n.Child[0].Load(); off == 0 {
			off = n.Child[1].Load()
		}
	}
	if leftmost == 0 {
		return ErrKeyNotExist // only a trie being changed under us
	}
	l.copyKey(m, leftmost, next)
	return nil
}

func (l lpmOps) copyKey(m *Map, off uint64, next []byte) {
	binary.NativeEndian.PutUint32(next, l.node(m, off).PrefixLen)
	copy(next[4:], l.data(m, off))
}

// LPM tries have the generic lookup, update and delete batches.
func (l lpmOps) hasBatch(cmd batchCmd) bool { return cmd != batchLookupAndDelete }
