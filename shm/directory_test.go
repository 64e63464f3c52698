package shm

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/internal/proctest"
)

func TestDirectory(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit})
	if objs := r.Objects(); len(objs) != 0 {
		t.Fatalf("new region lists %v", objs)
	}
	a := Object{Name: "counters", Kind: 1, Off: 0x1000, Size: 64}
	b := Object{Name: "prog.xdp_pass", Kind: 2, Off: 0x2000, Size: 4096}
	for _, o := range []Object{a, b} {
		if err := r.Publish(o); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []Object{a, b} {
		got, err := r.Lookup(o.Name)
		if err != nil || got != o {
			t.Fatalf("Lookup(%q) = %+v, %v; want %+v", o.Name, got, err, o)
		}
	}
	// Another attachment sees the same directory.
	r2 := openRegion(t, path)
	if got := sortedObjects(r2); fmt.Sprint(got) != fmt.Sprint([]Object{a, b}) {
		t.Fatalf("Objects = %+v", got)
	}

	// A duplicate name is refused and the original kept.
	err := r2.Publish(Object{Name: "counters", Kind: 9, Off: 0x9000, Size: 1})
	wantErr(t, err, ErrExist, `"counters"`)
	wantErr(t, err, unix.EEXIST)
	if got, _ := r.Lookup("counters"); got != a {
		t.Fatalf("duplicate Publish changed the entry: %+v", got)
	}

	_, err = r.Lookup("missing")
	wantErr(t, err, ErrNotExist, `"missing"`)
	wantErr(t, err, unix.ENOENT)
	_, err = r.Unpublish("missing")
	wantErr(t, err, ErrNotExist, `"missing"`)

	got, err := r2.Unpublish("counters")
	if err != nil || got != a {
		t.Fatalf("Unpublish = %+v, %v", got, err)
	}
	if _, err := r.Lookup("counters"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Lookup after Unpublish: %v", err)
	}
	if got := sortedObjects(r); fmt.Sprint(got) != fmt.Sprint([]Object{b}) {
		t.Fatalf("Objects after Unpublish = %+v", got)
	}
	// The name is free again.
	if err := r.Publish(Object{Name: "counters", Kind: 3}); err != nil {
		t.Fatal(err)
	}
	if o, _ := r2.Lookup("counters"); o.Kind != 3 {
		t.Fatalf("republished entry: %+v", o)
	}
}

func sortedObjects(r *Region) []Object {
	objs := r.Objects()
	sort.Slice(objs, func(i, j int) bool { return objs[i].Name < objs[j].Name })
	return objs
}

func TestDirectoryNames(t *testing.T) {
	r, _ := newRegion(t, Options{SizeLimit: smallLimit})
	longest := strings.Repeat("n", MaxNameLen)
	for _, name := range []string{"a", "A-Z_a.z-0.9", longest, "...", "-"} {
		if err := r.Publish(Object{Name: name}); err != nil {
			t.Errorf("Publish(%q): %v", name, err)
			continue
		}
		if o, err := r.Lookup(name); err != nil || o.Name != name {
			t.Errorf("Lookup(%q) = %+v, %v", name, o, err)
		}
	}
	for _, name := range []string{"", longest + "n", "a/b", "a b", "tab\t", "nul\x00", "ünïcode", "semi;colon", "new\nline"} {
		err := r.Publish(Object{Name: name})
		wantErr(t, err, ErrInvalid)
		wantErr(t, err, unix.EINVAL)
	}
	// A name differing only past a prefix is another name.
	if _, err := r.Lookup(longest[:MaxNameLen-1]); !errors.Is(err, ErrNotExist) {
		t.Fatalf("a prefix of a name was found: %v", err)
	}
	if n := len(r.Objects()); n != 5 {
		t.Fatalf("%d objects, want 5", n)
	}
}

func TestDirectoryFull(t *testing.T) {
	r, _ := newRegion(t, Options{SizeLimit: smallLimit})
	for i := 0; i < DirEntries; i++ {
		if err := r.Publish(Object{Name: fmt.Sprintf("obj%d", i), Off: uint64(i)}); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	err := r.Publish(Object{Name: "one-too-many"})
	wantErr(t, err, ErrRegionFull, "directory")
	wantErr(t, err, unix.ENOMEM)
	// A duplicate in a full directory is still a duplicate.
	wantErr(t, r.Publish(Object{Name: "obj7"}), ErrExist)
	if n := len(r.Objects()); n != DirEntries {
		t.Fatalf("%d objects, want %d", n, DirEntries)
	}
	if _, err := r.Unpublish("obj500"); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(Object{Name: "one-too-many", Off: 42}); err != nil {
		t.Fatalf("Publish after making room: %v", err)
	}
	if o, err := r.Lookup("one-too-many"); err != nil || o.Off != 42 {
		t.Fatalf("Lookup = %+v, %v", o, err)
	}
	if o, err := r.Lookup(fmt.Sprintf("obj%d", DirEntries-1)); err != nil || o.Off != DirEntries-1 {
		t.Fatalf("last entry: %+v, %v", o, err)
	}
}

// The dir-holder child publishes args[1], says "published", then takes
// the directory lock and says "locked", and waits to be killed.
var _ = proctest.Register("dir-holder", func(args []string) error {
	r, err := childOpen(args)
	if err != nil {
		return err
	}
	if err := r.Publish(Object{Name: args[1], Kind: 5, Off: 77}); err != nil {
		return err
	}
	proctest.Ready("published")
	r.lockDir()
	proctest.Ready("locked")
	waitStdin(bufio.NewReader(os.Stdin), "never")
	return nil
})

// TestDirectoryLockHolderKilled: a process killed while it holds the
// directory's lock does not block the directory: the next user recovers the
// lock (counted) and finds every entry intact.
func TestDirectoryLockHolderKilled(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit})
	if err := r.Publish(Object{Name: "before"}); err != nil {
		t.Fatal(err)
	}
	c, _ := startWithStdin(t, "dir-holder", path, "from-child")
	c.Expect(t, "published")
	c.Expect(t, "locked")
	c.Kill(t)
	if err := r.Publish(Object{Name: "after"}); err != nil {
		t.Fatal(err)
	}
	if n := r.Counter(CounterMutexRecoveries).Load(); n != 1 {
		t.Fatalf("mutex_recoveries = %d, want 1", n)
	}
	if o, err := r.Lookup("from-child"); err != nil || o.Kind != 5 || o.Off != 77 {
		t.Fatalf("the child's entry: %+v, %v", o, err)
	}
	if got := len(r.Objects()); got != 3 {
		t.Fatalf("%d objects, want 3", got)
	}
}
