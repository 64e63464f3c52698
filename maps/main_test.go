package maps_test

// Shared helpers of the maps test suite. Multi-process tests run real child
// processes through proctest: the test binary re-executes itself and runs
// a function registered by name; children attach to the region file the
// parent created and open maps by name, as any other user would.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// newRegion creates a region with 2 virtual CPUs in a temporary directory;
// it is closed when the test ends.
func newRegion(tb testing.TB) (*userbpf.Region, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "maps.region")
	r, err := userbpf.CreateRegion(path, userbpf.RegionOptions{SizeLimit: 1 << 30, CPUs: 2})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Errorf("region close: %v", err)
		}
	})
	return r, path
}

// createMap creates a map or fails the test.
func createMap(tb testing.TB, r *userbpf.Region, s maps.Spec) *maps.Map {
	tb.Helper()
	m, err := r.CreateMap(s)
	if err != nil {
		tb.Fatalf("create %s: %v", s.String(), err)
	}
	return m
}

// openChild attaches a child to the region at path and opens map name.
func openChild(path, name string, flags uint32) (*userbpf.Region, *maps.Map, error) {
	r, err := userbpf.OpenRegion(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := r.OpenMap(name, flags)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return r, m, nil
}

// child is a started child process with a pipe to its stdin.
type child struct {
	*proctest.Child
	in io.WriteCloser
}

// startChild starts child function name. The child dies with the test
// process (Pdeathsig), so a failed run leaves no process behind.
func startChild(tb testing.TB, name string, args ...string) *child {
	tb.Helper()
	cmd := proctest.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	c := proctest.StartCmd(tb, name, cmd)
	tb.Cleanup(func() { in.Close() })
	return &child{c, in}
}

// tell writes one line to the child's stdin.
func (c *child) tell(tb testing.TB, line string) {
	tb.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		tb.Fatalf("tell child %s %q: %v", c.Name, line, err)
	}
}

// stdin is a child's view of what the parent tells it.
var stdin = bufio.NewReader(os.Stdin)

// awaitLine blocks a child until the parent tells it something, and
// returns the line (without newline); EOF returns "".
func awaitLine() string {
	l, _ := stdin.ReadString('\n')
	if n := len(l); n > 0 && l[n-1] == '\n' {
		l = l[:n-1]
	}
	return l
}

// startAll starts n children of one function, waits until each printed
// "ready", then tells every one "go": a start gate made of pipes.
func startAll(tb testing.TB, n int, name string, args func(i int) []string) []*child {
	tb.Helper()
	cs := make([]*child, n)
	for i := range cs {
		cs[i] = startChild(tb, name, args(i)...)
	}
	for _, c := range cs {
		c.Expect(tb, "ready")
	}
	for _, c := range cs {
		c.tell(tb, "go")
	}
	return cs
}

// wantErr fails unless err matches both the sentinel and the kernel errno.
func wantErr(tb testing.TB, what string, err, sentinel error, errno syscall.Errno) {
	tb.Helper()
	if !errors.Is(err, sentinel) || !errors.Is(err, errno) {
		tb.Errorf("%s: err = %v, want %v (errno %d, %v)", what, err, sentinel, int(errno), errno)
	}
}

// noErr fails the test on err.
func noErr(tb testing.TB, what string, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// Values the multi-process tests store are patterns derived from the key
// and a generation, four 64-bit words that all depend on both:
//
//	w0 = key<<32 | gen   w1 = ^w0   w2 = w0 × golden   w3 = rotl(w0, 17)
//
// A value assembled from two writes (torn) breaks at least one relation
// unless both writes agree on every word.
const patternSize = 32

func putPattern(v []byte, key uint64, gen uint32) {
	w0 := key<<32 | uint64(gen)
	binary.LittleEndian.PutUint64(v[0:], w0)
	binary.LittleEndian.PutUint64(v[8:], ^w0)
	binary.LittleEndian.PutUint64(v[16:], w0*0x9e3779b97f4a7c15)
	binary.LittleEndian.PutUint64(v[24:], bits.RotateLeft64(w0, 17))
}

// checkPattern verifies a value against its key and returns its generation.
func checkPattern(v []byte, key uint64) (uint32, error) {
	w0 := binary.LittleEndian.Uint64(v[0:])
	switch {
	case w0>>32 != key&0xffffffff:
		return 0, fmt.Errorf("value of key %d belongs to key %d: % x", key, w0>>32, v)
	case binary.LittleEndian.Uint64(v[8:]) != ^w0,
		binary.LittleEndian.Uint64(v[16:]) != w0*0x9e3779b97f4a7c15,
		binary.LittleEndian.Uint64(v[24:]) != bits.RotateLeft64(w0, 17):
		return 0, fmt.Errorf("torn value of key %d: % x", key, v)
	}
	return uint32(w0), nil
}

func key64(k uint64) []byte { return binary.LittleEndian.AppendUint64(nil, k) }

// key32 is an array index (or 4-byte key) in host byte order.
func key32(k uint32) []byte { return binary.NativeEndian.AppendUint32(nil, k) }

// walk visits the map's keys with NextKey from the start. It fails if a
// key comes twice or the walk does not end within limit steps.
func walk(m *maps.Map, limit int) ([][]byte, error) {
	var keys [][]byte
	seen := map[string]bool{}
	var cur []byte
	for steps := 0; ; steps++ {
		if steps > limit {
			return keys, fmt.Errorf("walk did not end after %d keys", limit)
		}
		next := make([]byte, m.KeySize())
		err := m.NextKey(cur, next)
		if errors.Is(err, maps.ErrKeyNotExist) {
			return keys, nil
		}
		if err != nil {
			return keys, err
		}
		if seen[string(next)] {
			return keys, fmt.Errorf("walk visits key % x twice", next)
		}
		seen[string(next)] = true
		keys = append(keys, next)
		cur = next
	}
}
