package maps

// Deterministic crash windows. A child process stops a hash update at an
// exact instruction of its critical section (it runs the first half of the
// writer's steps, holding the bucket lock) and is killed there; the parent
// then touches the same bucket, which recovers the lock and repairs the
// bucket. The random kills of crash_test.go hit these windows only by luck.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/rcu"
	"github.com/userbpf/userbpf/shm"
)

// halfUpdate: path name window — stop a writer of key 1 in window and wait
// to be killed. Each window is the state a writer leaves if it dies at that
// point of hashOps.update / delete:
//
//	lock     the bucket lock taken, nothing changed yet
//	replace  the new element of key 1 linked at the bucket head, the old
//	         one not yet unlinked (two copies of the key in the bucket)
//	unlink   delete: key 1 unlinked, the count not yet decremented
//	reserve  insert of key 1 (absent): the count incremented, nothing linked
//	popped   an element taken off the free list, the bucket not yet locked
var _ = proctest.Register("internal-half-update", func(args []string) error {
	r, err := shm.Open(args[0])
	if err != nil {
		return err
	}
	m, err := Open(r, rcu.New(r), args[1], 0)
	if err != nil {
		return err
	}
	h := m.ops.(*hashOps)
	if args[2] == "popped" {
		// getElem took an element off the free list; nothing else yet.
		if _, err := h.getElem(m); err != nil {
			return err
		}
		proctest.Ready("stopped")
		io.Copy(io.Discard, os.Stdin)
		return nil
	}
	key, value := make([]byte, 8), make([]byte, 16)
	binary.NativeEndian.PutUint64(key, 1)
	binary.NativeEndian.PutUint64(value, 0xbad)
	hash := keyHash(key, m.d.Seed)
	b := h.bucket(m, hash)
	var nu uint64
	if args[2] == "replace" || args[2] == "reserve" {
		if nu, err = h.getElem(m); err != nil {
			return err
		}
	}
	h.lockBucket(m, b)
	switch args[2] {
	case "replace":
		h.fill(m, nu, key, value)
		h.linkHead(m, b, nu)
	case "unlink":
		off, l := h.find(m, b, key)
		h.unlinkAt(m, l, off)
	case "reserve":
		if !h.reserve(m) {
			return errors.New("full")
		}
	}
	proctest.Ready("stopped")
	io.Copy(io.Discard, os.Stdin)
	return nil
})

// TestCrashWindows kills a writer in each window and checks what the next
// writer of the bucket sees: the lock recovered exactly once, key 1 (and
// key 2, which shares nothing with the crash) present once each, the
// element count equal to the keys present — or, in the windows that
// leave the count one too high (unlink, reserve), one above.
func TestCrashWindows(t *testing.T) {
	for _, tc := range []struct {
		window string
		drift  int64 // Count() - keys present afterwards
	}{
		{"lock", 0},
		{"replace", 0},
		{"unlink", 1},
		{"reserve", 1},
	} {
		t.Run(tc.window, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "region")
			r, err := shm.Create(path, shm.Options{CPUs: 2, SizeLimit: 64 << 20})
			if err != nil {
				t.Fatal(err)
			}
			d := rcu.New(r)
			defer r.Close()
			defer d.Close()
			m, err := Create(r, d, Spec{Name: "h", Type: Hash, KeySize: 8, ValueSize: 16, MaxEntries: 8})
			if err != nil {
				t.Fatal(err)
			}
			k1, k2, v := make([]byte, 8), make([]byte, 8), make([]byte, 16)
			binary.NativeEndian.PutUint64(k1, 1)
			binary.NativeEndian.PutUint64(k2, 2)
			for _, k := range [][]byte{k1, k2} {
				if err := m.Update(k, v, UpdateAny); err != nil {
					t.Fatal(err)
				}
			}
			if tc.window == "reserve" {
				if err := m.Delete(k1); err != nil {
					t.Fatal(err)
				}
			}

			cmd := proctest.Command("internal-half-update", path, "h", tc.window)
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			c := proctest.StartCmd(t, "internal-half-update", cmd)
			c.Expect(t, "stopped")
			c.Kill(t)

			binary.NativeEndian.PutUint64(v, 0x600d)
			if err := m.Update(k1, v, UpdateAny); err != nil {
				t.Fatalf("update of key 1 after the writer died: %v", err)
			}
			if n := r.Counter(shm.CounterSpinRecoveries).Load(); n != 1 {
				t.Errorf("spin lock recoveries = %d, want 1", n)
			}
			keys := map[uint64]int{}
			var cur []byte
			for steps := 0; ; steps++ {
				next := make([]byte, 8)
				if err := m.NextKey(cur, next); err != nil {
					break
				}
				if steps > 16 {
					t.Fatal("walk does not end")
				}
				keys[binary.NativeEndian.Uint64(next)]++
				cur = next
			}
			if keys[1] != 1 || keys[2] != 1 || len(keys) != 2 {
				t.Errorf("walk after the crash: key → times seen %v, want keys 1 and 2 once each", keys)
			}
			got := make([]byte, 16)
			if err := m.Lookup(k1, got, 0); err != nil || binary.NativeEndian.Uint64(got) != 0x600d {
				t.Errorf("lookup key 1 = %#x, %v; want the update after the crash, 0x600d", binary.NativeEndian.Uint64(got), err)
			}
			if c := m.Count(); c != 2+tc.drift {
				t.Errorf("Count() = %d with keys 1 and 2 in the map, want %d", c, 2+tc.drift)
			}
		})
	}
}

// TestCrashWindowPopped: a writer killed right after it took an element
// from the pool leaks that element. A hash has spares for that; an LRU
// hash must not lose capacity either: afterwards it still holds
// max_entries keys (and a 1-element LRU still takes inserts).
func TestCrashWindowPopped(t *testing.T) {
	for _, tc := range []struct {
		typ Type
		max uint32
	}{{Hash, 4}, {LRUHash, 1}, {LRUHash, 4}} {
		t.Run(fmt.Sprintf("%s/%d", tc.typ, tc.max), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "region")
			r, err := shm.Create(path, shm.Options{CPUs: 2, SizeLimit: 64 << 20})
			if err != nil {
				t.Fatal(err)
			}
			d := rcu.New(r)
			defer r.Close()
			defer d.Close()
			m, err := Create(r, d, Spec{Name: "p", Type: tc.typ, KeySize: 8, ValueSize: 16, MaxEntries: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			cmd := proctest.Command("internal-half-update", path, "p", "popped")
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			c := proctest.StartCmd(t, "internal-half-update", cmd)
			c.Expect(t, "stopped")
			c.Kill(t)
			k, v := make([]byte, 8), make([]byte, 16)
			for i := range uint64(3 * tc.max) {
				binary.NativeEndian.PutUint64(k, i)
				if err := m.Update(k, v, UpdateAny); err != nil && !(tc.typ == Hash && i >= uint64(tc.max)) {
					t.Fatalf("insert %d after the crash: %v", i, err)
				}
			}
			if c := m.Count(); c != int64(tc.max) {
				t.Errorf("Count() = %d after inserting %d keys, want max_entries %d", c, 3*tc.max, tc.max)
			}
		})
	}
}
