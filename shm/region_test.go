package shm

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// smallLimit keeps the regions of file-level tests small enough to copy.
const smallLimit = 16 << 20

func TestCreateOpenCloseRemove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r1")
	r, err := Create(path, Options{SizeLimit: smallLimit, CPUs: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.Path() != path || r.NumCPU() != 3 || r.Limit() != smallLimit {
		t.Fatalf("Path, NumCPU, Limit = %q, %d, %d; want %q, 3, %d", r.Path(), r.NumCPU(), r.Limit(), path, smallLimit)
	}
	if r.Tag() == 0 || r.Slot() == 0 || r.Holder().Tag != r.Tag() {
		t.Fatalf("creator is not registered: tag %#x slot %d", r.Tag(), r.Slot())
	}
	// Something written through one attachment is there in the next.
	off, err := r.Alloc(100)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Bytes(off, 100)
	if err != nil {
		t.Fatal(err)
	}
	copy(b, "kept across attachments")
	if err := r.Publish(Object{Name: "obj", Kind: 7, Off: off, Size: 100}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Alloc(8); !errors.Is(err, ErrClosed) {
		t.Fatalf("Alloc after Close: %v, want ErrClosed", err)
	}
	if err := r.Free(off); !errors.Is(err, ErrClosed) {
		t.Fatalf("Free after Close: %v, want ErrClosed", err)
	}

	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "r1" {
		t.Fatalf("directory holds %v, want only r1 (no temporary file left behind)", entries)
	}

	r2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if r2.NumCPU() != 3 || r2.Limit() != smallLimit {
		t.Fatalf("reopened: NumCPU %d Limit %d", r2.NumCPU(), r2.Limit())
	}
	o, err := r2.Lookup("obj")
	if err != nil {
		t.Fatal(err)
	}
	if o != (Object{Name: "obj", Kind: 7, Off: off, Size: 100}) {
		t.Fatalf("Lookup = %+v", o)
	}
	b2, err := r2.Bytes(o.Off, o.Size)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b2[:23]); got != "kept across attachments" {
		t.Fatalf("block holds %q", got)
	}
	if ps := r2.Processes(); len(ps) != 1 || ps[0].PID != os.Getpid() || ps[0].Tag != r2.Tag() || !ps[0].Alive {
		t.Fatalf("Processes = %+v, want only this one", ps)
	}

	// Remove refuses while another attachment is live, unless forced.
	wantErr(t, Remove(path, false), ErrBusy, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("refused Remove deleted the file: %v", err)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Remove(path, false); err != nil {
		t.Fatal(err)
	}
	wantErr(t, func() error { _, err := Open(path); return err }(), ErrNotExist, path)
	wantErr(t, Remove(path, false), ErrNotExist, path)

	// Forced removal of a region in use.
	r3, err := Create(path, Options{SizeLimit: smallLimit})
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	if err := Remove(path, true); err != nil {
		t.Fatal(err)
	}
	if _, err := r3.Alloc(64); err != nil {
		t.Fatalf("an attached process lost its region when the file was removed: %v", err)
	}
}

func TestCreateExisting(t *testing.T) {
	r, path := newRegion(t, Options{SizeLimit: smallLimit})
	_, err := Create(path, Options{SizeLimit: smallLimit})
	wantErr(t, err, ErrExist, path)
	wantErr(t, err, unix.EEXIST)
	if _, err := r.Alloc(64); err != nil {
		t.Fatalf("the existing region was damaged: %v", err)
	}
	// An existing file that is not a region is not overwritten either.
	other := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(other, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Create(other, Options{SizeLimit: smallLimit})
	wantErr(t, err, ErrExist, other)
	if b, _ := os.ReadFile(other); string(b) != "precious" {
		t.Fatalf("Create overwrote an existing file: %q", b)
	}
	// Remove leaves a file that is not a region alone.
	wantErr(t, Remove(other, true), ErrNotRegion, other)
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("Remove deleted a file that is not a region: %v", err)
	}
}

func TestCreateMode(t *testing.T) {
	// Create sets the mode exactly, whatever the umask.
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, tc := range []struct {
		mode, want os.FileMode
	}{
		{0, DefaultMode},
		{0o600, 0o600},
		{0o640, 0o640},
		{0o666, 0o666},
	} {
		t.Run(fmt.Sprintf("%o", tc.mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r")
			r, err := Create(path, Options{SizeLimit: smallLimit, Mode: tc.mode})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != tc.want {
				t.Fatalf("mode %v, want %v", fi.Mode(), tc.want)
			}
			if got := os.FileMode(r.hdr.Mode); got != tc.want {
				t.Fatalf("header records mode %v, want %v", got, tc.want)
			}
		})
	}
	if DefaultMode != 0o600 {
		t.Fatalf("DefaultMode is %v, the design says 0600", DefaultMode)
	}
}

func TestCreateInvalidOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"too many cpus", Options{CPUs: MaxCPUs + 1}},
		{"negative cpus", Options{CPUs: -1}},
		{"limit above max", Options{SizeLimit: MaxLimit + 1}},
		{"limit without heap", Options{SizeLimit: 1 << 20 / 4}},
		{"mode with setuid", Options{Mode: os.ModeSetuid | 0o600}},
		{"mode directory", Options{Mode: os.ModeDir | 0o700}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			_, err := Create(path, tc.o)
			wantErr(t, err, ErrInvalid, path)
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("a refused Create left a file: %v", err)
			}
		})
	}
	// The smallest limit that leaves a heap is accepted.
	l := computeLayout(1, 1<<20)
	r, err := Create(filepath.Join(dir, "small"), Options{SizeLimit: l.heapOff + minHeap, CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

func TestResolve(t *testing.T) {
	for in, want := range map[string]string{
		"maps":        "/dev/shm/userbpf/maps",
		"a.b-c_d":     "/dev/shm/userbpf/a.b-c_d",
		"/tmp/x":      "/tmp/x",
		"./x":         "./x",
		"dir/sub/reg": "dir/sub/reg",
	} {
		if got := Resolve(in); got != want {
			t.Errorf("Resolve(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDefaultDir creates a region by bare name: it lands in DefaultDir,
// which is shared by all users like /tmp.
func TestDefaultDir(t *testing.T) {
	name := fmt.Sprintf("shm-test-%d-%s", os.Getpid(), randHex(4))
	path := Resolve(name)
	if filepath.Dir(path) != DefaultDir {
		t.Fatalf("Resolve(%q) = %q, not in %s", name, path, DefaultDir)
	}
	_, statErr := os.Stat(DefaultDir)
	made := os.IsNotExist(statErr)
	r, err := Create(path, Options{SizeLimit: smallLimit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	r.Close()
	fi, err := os.Stat(DefaultDir)
	if err != nil {
		t.Fatal(err)
	}
	// Made by Create, it is shared by all users like /tmp. (Made by
	// someone else first, it is theirs: leave its mode alone.)
	if made && (!fi.IsDir() || fi.Mode().Perm() != 0o777 || fi.Mode()&os.ModeSticky == 0) {
		t.Fatalf("%s has mode %v, want a sticky world-writable directory", DefaultDir, fi.Mode())
	}
	if err := Remove(Resolve(name), false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("Remove left %s: %v", path, err)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// regionBytes creates a small region, lets it grow past its metadata, and
// returns its file's bytes.
func regionBytes(t testing.TB) []byte {
	t.Helper()
	r, path := newRegion(t, Options{SizeLimit: smallLimit, CPUs: 2})
	if _, err := r.Alloc(SpanSize * 2); err != nil {
		t.Fatal(err)
	}
	r.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Offsets of header fields, from the struct itself.
var (
	hdrVersion   = int(unsafe.Offsetof(header{}.Version))
	hdrNumCPU    = int(unsafe.Offsetof(header{}.NumCPU))
	hdrLimit     = int(unsafe.Offsetof(header{}.Limit))
	hdrSpanSize  = int(unsafe.Offsetof(header{}.SpanSize))
	hdrMaxProcs  = int(unsafe.Offsetof(header{}.MaxProcs))
	hdrHeapOff   = int(unsafe.Offsetof(header{}.HeapOff))
	hdrMaxSpans  = int(unsafe.Offsetof(header{}.MaxSpans))
	hdrFileSize  = int(unsafe.Offsetof(header{}.FileSize))
	hdrBrk       = int(unsafe.Offsetof(header{}.Brk))
	hdrHeaderSz  = int(unsafe.Offsetof(header{}.HeaderSize))
	hdrProcOff   = int(unsafe.Offsetof(header{}.ProcOff))
	hdrReaderOff = int(unsafe.Offsetof(header{}.ReaderOff))
)

func TestHeaderOffsetsMatchDrawing(t *testing.T) {
	// The drawing in layout.go is the format's documentation; keep them equal.
	for name, got := range map[string][2]int{
		"Version":    {hdrVersion, 8},
		"HeaderSize": {hdrHeaderSz, 12},
		"SpanSize":   {hdrSpanSize, 20},
		"NumCPU":     {hdrNumCPU, 24},
		"MaxProcs":   {hdrMaxProcs, 28},
		"Limit":      {hdrLimit, 40},
		"ProcOff":    {hdrProcOff, 48},
		"MaxSpans":   {hdrMaxSpans, 96},
		"Created":    {int(unsafe.Offsetof(header{}.Created)), 104},
		"Mode":       {int(unsafe.Offsetof(header{}.Mode)), 112},
		"FileSize":   {hdrFileSize, 128},
		"Brk":        {hdrBrk, 136},
		"Counters":   {int(unsafe.Offsetof(header{}.Counters)), 192},
		"Epoch":      {int(unsafe.Offsetof(header{}.Epoch)), 320},
		"Completed":  {int(unsafe.Offsetof(header{}.Completed)), 328},
		"ReaderHigh": {int(unsafe.Offsetof(header{}.ReaderHigh)), 336},
		"VCPUSeq":    {int(unsafe.Offsetof(header{}.VCPUSeq)), 384},
		"DirLock":    {int(unsafe.Offsetof(header{}.DirLock)), 392},
		"ClassHead":  {int(unsafe.Offsetof(header{}.ClassHead)), 448},
		"RunHead":    {int(unsafe.Offsetof(header{}.RunHead)), 1216},
	} {
		if got[0] != got[1] {
			t.Errorf("header.%s is at %d, the drawing says %d", name, got[0], got[1])
		}
	}
}

func TestOpenBadFiles(t *testing.T) {
	good := regionBytes(t)
	le := binary.LittleEndian
	heapOff := le.Uint64(good[hdrHeapOff:])
	fileSize := le.Uint64(good[hdrFileSize:])
	if uint64(len(good)) != fileSize || fileSize <= heapOff {
		t.Fatalf("region file is %d bytes, header records %d, heap at %d", len(good), fileSize, heapOff)
	}
	patch := func(off int, v uint64, width int) func([]byte) []byte {
		return func(b []byte) []byte {
			b = append([]byte(nil), b...)
			if width == 4 {
				le.PutUint32(b[off:], uint32(v))
			} else {
				le.PutUint64(b[off:], v)
			}
			return b
		}
	}
	garbage := make([]byte, 3*4096)
	rand.Read(garbage)
	garbage[0] = 'X' // never the magic by chance
	for _, tc := range []struct {
		name    string
		content []byte
		edit    func([]byte) []byte
		want    error
		mention string
	}{
		{name: "garbage", content: garbage, want: ErrNotRegion},
		{name: "text", content: []byte("hello, I am not a region\n"), want: ErrNotRegion},
		{name: "empty", content: []byte{}, want: ErrNotRegion, mention: "empty"},
		{name: "magic only", content: []byte(Magic), want: ErrTruncated},
		{name: "truncated in header", edit: func(b []byte) []byte { return b[:100] }, want: ErrTruncated},
		{name: "header only", edit: func(b []byte) []byte { return b[:headerSize] }, want: ErrTruncated},
		{name: "truncated in tables", edit: func(b []byte) []byte { return b[:heapOff-1] }, want: ErrTruncated},
		{name: "truncated heap", edit: func(b []byte) []byte { return b[:fileSize-SpanSize] }, want: ErrTruncated},
		{name: "truncated by a byte", edit: func(b []byte) []byte { return b[:fileSize-1] }, want: ErrTruncated},
		{name: "version 2", edit: patch(hdrVersion, 2, 4), want: ErrVersion, mention: "version 2"},
		{name: "version 0", edit: patch(hdrVersion, 0, 4), want: ErrVersion},
		{name: "version max", edit: patch(hdrVersion, 0xffffffff, 4), want: ErrVersion},
		{name: "header size", edit: patch(hdrHeaderSz, 8192, 4), want: ErrLayout},
		{name: "span size", edit: patch(hdrSpanSize, 4096, 4), want: ErrLayout},
		{name: "max procs", edit: patch(hdrMaxProcs, 1<<20, 4), want: ErrLayout},
		{name: "zero cpus", edit: patch(hdrNumCPU, 0, 4), want: ErrLayout},
		{name: "too many cpus", edit: patch(hdrNumCPU, MaxCPUs+1, 4), want: ErrLayout},
		{name: "cpus beyond table", edit: patch(hdrNumCPU, 200, 4), want: ErrLayout},
		{name: "limit", edit: patch(hdrLimit, 1<<30, 8), want: ErrLayout},
		{name: "huge limit", edit: patch(hdrLimit, 1<<62, 8), want: ErrLayout},
		{name: "proc offset", edit: patch(hdrProcOff, 0, 8), want: ErrLayout},
		{name: "reader offset", edit: patch(hdrReaderOff, 1<<50, 8), want: ErrLayout},
		{name: "heap offset", edit: patch(hdrHeapOff, heapOff+8, 8), want: ErrLayout},
		{name: "max spans", edit: patch(hdrMaxSpans, 1<<30, 8), want: ErrLayout},
		{name: "file size below heap", edit: patch(hdrFileSize, heapOff-4096, 8), want: ErrLayout},
		{name: "file size above limit", edit: patch(hdrFileSize, smallLimit+SpanSize, 8), want: ErrLayout},
		{name: "file size beyond file", edit: patch(hdrFileSize, fileSize+SpanSize, 8), want: ErrTruncated},
		{name: "brk beyond file size", edit: patch(hdrBrk, (fileSize-heapOff)/SpanSize+1, 8), want: ErrLayout},
		{name: "brk beyond limit", edit: patch(hdrBrk, 1<<40, 8), want: ErrLayout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := tc.content
			if tc.edit != nil {
				content = tc.edit(good)
			}
			path := filepath.Join(t.TempDir(), "bad")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path)
			if err == nil {
				r.Close()
				t.Fatalf("Open succeeded, want %v", tc.want)
			}
			wantErr(t, err, tc.want, path, tc.mention)
			wantErr(t, err, unix.EINVAL)
			var pe *PathError
			if !errors.As(err, &pe) || pe.Path != path || pe.Op != "open" {
				t.Fatalf("error %q is not a *PathError for open of %s", err, path)
			}
			// Remove must refuse it the same way and keep the file.
			wantErr(t, Remove(path, true), tc.want, path)
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("Remove deleted a bad file: %v", err)
			}
		})
	}
	// The unedited bytes open: the cases above fail for their edit only.
	path := filepath.Join(t.TempDir(), "good")
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	r := openRegion(t, path)
	mustCheck(t, r)
}

func TestOpenNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want error
	}{
		{dir, ErrNotRegion},
		{fifo, ErrNotRegion},
		{"/dev/null", ErrNotRegion},
		{filepath.Join(dir, "missing"), ErrNotExist},
		{filepath.Join(dir, "missing", "deeper"), ErrNotExist},
		{link, ErrNotExist},
	} {
		r, err := Open(tc.path)
		if err == nil {
			r.Close()
			t.Fatalf("Open(%s) succeeded", tc.path)
		}
		wantErr(t, err, tc.want, tc.path)
	}
	// A region in a path whose parent is a file cannot be created.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Create(filepath.Join(file, "r"), Options{SizeLimit: smallLimit}); err == nil ||
		!strings.Contains(err.Error(), file) {
		t.Fatalf("Create under a file: %v", err)
	}
}

// TestOpenWhileGrowing opens regions again and again while another
// attachment grows them: a reader of the header must never see a growing
// region as truncated or inconsistent.
func TestOpenWhileGrowing(t *testing.T) {
	for round := 0; round < 4; round++ {
		r, path := newRegion(t, Options{SizeLimit: 64 << 20})
		done := make(chan error, 1)
		go func() {
			for {
				// Runs of fresh spans: every one moves Brk, many grow the file.
				if _, err := r.Alloc(SpanSize); err != nil {
					if errors.Is(err, ErrRegionFull) {
						err = nil
					}
					done <- err
					return
				}
			}
		}()
		for running := true; running; {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				running = false
			default:
			}
			r2, err := Open(path)
			if err != nil {
				<-done
				t.Fatalf("open while growing: %v", err)
			}
			r2.Close()
		}
		r.Close()
	}
}

// copyFile copies src to dst.
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCreateConcurrent: of many creators of one path, in one process or
// several, exactly one succeeds, the others get ErrExist, and no temporary
// file is left behind.
func TestCreateConcurrent(t *testing.T) {
	for round := 0; round < 20; round++ {
		dir := t.TempDir()
		path := filepath.Join(dir, "r")
		const n = 6
		errs := make(chan error, n)
		regions := make(chan *Region, n)
		for range n {
			go func() {
				r, err := Create(path, Options{SizeLimit: smallLimit})
				if err == nil {
					regions <- r
				}
				errs <- err
			}()
		}
		won := 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				won++
			case !errors.Is(err, ErrExist):
				t.Fatalf("round %d: a losing Create failed with %v, want ErrExist", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d creators succeeded", round, won)
		}
		(<-regions).Close()
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Fatalf("round %d: directory holds %v", round, entries)
		}
	}
}
