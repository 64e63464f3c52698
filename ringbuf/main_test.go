package ringbuf

// Shared helpers of the ring buffer tests. Multi-process tests run real
// child processes through proctest: the test binary re-executes itself and
// runs a function registered by name; children attach to the region file
// the parent created and open the ring by name.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/userbpf/userbpf/internal/proctest"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/rcu"
	"github.com/userbpf/userbpf/shm"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// region is an attached region with its RCU domain: what the root
// package's Region is (which imports this package, through programs, so
// the tests build their own).
type region struct {
	s *shm.Region
	d *rcu.Domain
}

func openRegion(path string) (*region, error) {
	s, err := shm.Open(path)
	if err != nil {
		return nil, err
	}
	return &region{s, rcu.New(s)}, nil
}

func (r *region) CreateMap(s maps.Spec) (*maps.Map, error) { return maps.Create(r.s, r.d, s) }
func (r *region) OpenMap(name string, flags uint32) (*maps.Map, error) {
	return maps.Open(r.s, r.d, name, flags)
}
func (r *region) Shared() *shm.Region { return r.s }
func (r *region) Stats() shm.Stats    { return r.s.Stats() }
func (r *region) Close() error {
	r.d.Close()
	return r.s.Close()
}

// newRegion creates a region in a temporary directory, closed when the
// test ends.
func newRegion(tb testing.TB) (*region, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "ring.region")
	s, err := shm.Create(path, shm.Options{SizeLimit: 1 << 30, CPUs: 2})
	if err != nil {
		tb.Fatal(err)
	}
	r := &region{s, rcu.New(s)}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Errorf("region close: %v", err)
		}
	})
	return r, path
}

// newRing creates a ring buffer map and opens it; the ring is closed when
// the test ends (before the region).
func newRing(tb testing.TB, r *region, name string, typ maps.Type, size uint32) (*maps.Map, *Ring) {
	tb.Helper()
	m, err := r.CreateMap(maps.Spec{Name: name, Type: typ, MaxEntries: size})
	if err != nil {
		tb.Fatalf("create %s %s %d: %v", name, typ, size, err)
	}
	g, err := Open(m)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Close() })
	return m, g
}

// newReader makes a reader closed when the test ends.
func newReader(tb testing.TB, m *maps.Map) *Reader {
	tb.Helper()
	rd, err := NewReader(m)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rd.Close() })
	return rd
}

// openChild attaches a child to the region at path and opens map name.
func openChild(path, name string) (*region, *maps.Map, error) {
	r, err := openRegion(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := r.OpenMap(name, 0)
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

// startChild starts child function name; it dies with the test process.
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

// awaitLine blocks a child until the parent tells it something.
func awaitLine() string {
	l, _ := stdin.ReadString('\n')
	if n := len(l); n > 0 && l[n-1] == '\n' {
		l = l[:n-1]
	}
	return l
}

// wantErr fails unless err matches both the sentinel and the errno.
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

// Records of the multi-process tests carry who wrote them and a checksum:
//
//	0 producer u32   4 seq u32   8 filler (seq-dependent length and bytes)   last 4: crc32 of the rest
//
// A record that is torn, overwritten or misplaced fails its checksum or
// breaks the per-producer sequence.
func makeRecord(buf []byte, producer, seq uint32) []byte {
	n := 12 + int(seq*7+producer*13)%180
	b := buf[:n]
	binary.LittleEndian.PutUint32(b[0:], producer)
	binary.LittleEndian.PutUint32(b[4:], seq)
	for i := 8; i < n-4; i++ {
		b[i] = byte(seq*31 + uint32(i)*producer)
	}
	binary.LittleEndian.PutUint32(b[n-4:], crc32.ChecksumIEEE(b[:n-4]))
	return b
}

// checkRecord verifies a record's checksum and returns its producer and seq.
func checkRecord(b []byte) (producer, seq uint32, ok bool) {
	if len(b) < 12 || binary.LittleEndian.Uint32(b[len(b)-4:]) != crc32.ChecksumIEEE(b[:len(b)-4]) {
		return 0, 0, false
	}
	producer, seq = binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint32(b[4:])
	var want [256]byte
	return producer, seq, string(makeRecord(want[:], producer, seq)) == string(b)
}

// waitFor polls cond until it holds: it synchronizes on state another
// process makes observable (never on the passing of time), and fails the
// test if the state does not come within a minute.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// readN reads n records with a generous deadline that only catches a hang.
func readN(tb testing.TB, rd *Reader, n int) [][]byte {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out [][]byte
	for range n {
		rec, err := rd.Read(ctx)
		if err != nil {
			tb.Fatalf("read record %d of %d: %v", len(out), n, err)
		}
		out = append(out, rec.RawSample)
	}
	return out
}
