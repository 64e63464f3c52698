package maps

import "fmt"

// Key-less maps (QUEUE, STACK, BLOOM_FILTER) take no key: the element
// commands are called with a nil key, as bpf(2) is called with key NULL.
// These wrappers name what the commands mean for them.

// Push adds value to a queue, stack or bloom filter: Update(nil, value,
// flags). On a full queue or stack, flags UpdateExist drops the oldest
// element to make room; UpdateAny fails with ErrFull. A bloom filter takes
// only UpdateAny.
func (m *Map) Push(value []byte, flags uint64) error { return m.Update(nil, value, flags) }

// Pop removes the next element of a queue (its oldest) or stack (its
// newest) and copies it into value: LookupAndDelete(nil, value, 0). An
// empty map is ErrKeyNotExist.
func (m *Map) Pop(value []byte) error { return m.LookupAndDelete(nil, value, 0) }

// Peek copies the element Pop would take into value without removing it:
// Lookup(nil, value, 0). For a bloom filter value is an input instead:
// Peek returns nil if value may have been pushed and ErrKeyNotExist if it
// certainly was not.
func (m *Map) Peek(value []byte) error { return m.Lookup(nil, value, 0) }

// Contents returns a copy of every element of a queue or stack, in the
// order Pop would return them, without removing any (one consistent
// snapshot, taken under the map's lock). Other map types are ErrInvalid.
func (m *Map) Contents() ([][]byte, error) {
	q, ok := m.ops.(queueOps)
	if err := m.readable(); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%w: only queues and stacks have contents to list (%s)", ErrInvalid, m.typ)
		}
		return nil, m.errorf("contents", err)
	}
	return q.contents(m), nil
}

// batchCmd names a batch command in the support matrix.
type batchCmd uint8

const (
	batchLookup batchCmd = iota
	batchLookupAndDelete
	batchUpdate
	batchDelete
)

// batchSupporter is implemented by types whose batch commands are not the
// default of batch.go (hash maps: all four, other types: the generic lookup
// and update batches): key-less types have none, an LPM trie also has the
// generic delete batch.
type batchSupporter interface {
	hasBatch(cmd batchCmd) bool
}

// lookupBatchCmd is the command lookupBatch runs.
func lookupBatchCmd(del bool) batchCmd {
	if del {
		return batchLookupAndDelete
	}
	return batchLookup
}

// hasBatch says whether m's type implements batchSupporter and has cmd.
func (m *Map) hasBatch(cmd batchCmd) bool {
	bs, ok := m.ops.(batchSupporter)
	return ok && bs.hasBatch(cmd)
}

// batchAllowed runs bpf_map_do_batch's checks for the types implementing
// batchSupporter, in its order: the handle's read and write permission as
// the command needs them (EPERM), then ENOTSUPP for a command the type
// lacks. For other types it returns nil and batch.go decides.
func (m *Map) batchAllowed(cmd batchCmd) error {
	bs, ok := m.ops.(batchSupporter)
	if !ok {
		return nil
	}
	read := cmd == batchLookup || cmd == batchLookupAndDelete
	write := cmd != batchLookup
	switch {
	case read && !m.canRead:
		return fmt.Errorf("%w: handle is write-only", ErrPermission)
	case write:
		if err := m.writable(); err != nil {
			return err
		}
	}
	if !bs.hasBatch(cmd) {
		return fmt.Errorf("%w: %s has no such batch command", ErrNotSupported, m.typ)
	}
	return nil
}

// ProgPush is bpf_map_push_elem from a program (value is value_size
// bytes): push onto a queue or stack, add to a bloom filter. Programs may
// write a frozen map, so only BPF_F_RDONLY_PROG refuses it (the verifier
// would have refused the program).
func (m *Map) ProgPush(value []byte, flags uint64) error {
	if len(value) != int(m.valueSize) {
		return fmt.Errorf("%w: value of the wrong size", ErrInvalid)
	}
	if m.flags&FlagRdOnlyProg != 0 {
		return fmt.Errorf("%w: map is read-only to programs", ErrPermission)
	}
	switch o := m.ops.(type) {
	case queueOps:
		return o.update(m, nil, value, flags)
	case bloomOps:
		return o.update(m, nil, value, flags)
	}
	return fmt.Errorf("%w: bpf_map_push_elem on a %s", ErrInvalid, m.typ)
}

// ProgPop is bpf_map_pop_elem from a program: the next element of a queue
// or stack into value (a bloom filter: EOPNOTSUPP, as in the kernel).
func (m *Map) ProgPop(value []byte) error {
	if len(value) != int(m.valueSize) {
		return fmt.Errorf("%w: value of the wrong size", ErrInvalid)
	}
	switch o := m.ops.(type) {
	case queueOps:
		return o.get(m, value, true)
	case bloomOps:
		return fmt.Errorf("%w: a bloom filter cannot be popped", ErrOpNotSupported)
	}
	return fmt.Errorf("%w: bpf_map_pop_elem on a %s", ErrInvalid, m.typ)
}

// ProgPeek is bpf_map_peek_elem from a program: the element a pop would
// take, or for a bloom filter a membership test of value.
func (m *Map) ProgPeek(value []byte) error {
	if len(value) != int(m.valueSize) {
		return fmt.Errorf("%w: value of the wrong size", ErrInvalid)
	}
	switch o := m.ops.(type) {
	case queueOps:
		return o.get(m, value, false)
	case bloomOps:
		return o.lookupCopy(m, nil, value, 0)
	}
	return fmt.Errorf("%w: bpf_map_peek_elem on a %s", ErrInvalid, m.typ)
}
