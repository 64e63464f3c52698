package shm

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen writes arbitrary bytes to a file, extends it (sparsely, with
// zeros) to size bytes, and opens it as a region. Open must return an error
// or a region that works; it must never panic or fault. The extension lets
// a 4 KiB header describe a whole region: a new region is exactly its header
// followed by zeros.
//
//	go test -run '^$' -fuzz FuzzOpen -fuzzminimizetime 5s ./shm/
func FuzzOpen(f *testing.F) {
	r, path := newRegion(f, Options{SizeLimit: smallLimit, CPUs: 2})
	fileSize := r.hdr.FileSize.Load()
	r.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	hdr := raw[:headerSize]
	le := binary.LittleEndian
	with := func(off int, v uint32) []byte {
		b := append([]byte(nil), hdr...)
		le.PutUint32(b[off:], v)
		return b
	}
	with64 := func(off int, v uint64) []byte {
		b := append([]byte(nil), hdr...)
		le.PutUint64(b[off:], v)
		return b
	}
	f.Add(hdr, uint32(fileSize))                                    // a valid new region
	f.Add(hdr, uint32(fileSize+1<<20))                              // a longer file
	f.Add(hdr, uint32(0))                                           // header only: truncated
	f.Add(hdr[:100], uint32(0))                                     // truncated inside the header
	f.Add(with(hdrVersion, 2), uint32(fileSize))                    // another version
	f.Add(with(hdrNumCPU, 5), uint32(fileSize))                     // a layout that still matches
	f.Add(with(hdrNumCPU, 300), uint32(fileSize))                   // one that does not
	f.Add(with64(hdrBrk, 3), uint32(fileSize))                      // a heap the span table does not describe
	f.Add(with64(hdrLimit, 1<<40), uint32(fileSize))                // the largest limit
	f.Add(with64(hdrFileSize, fileSize+SpanSize), uint32(fileSize)) // records more than the file has
	f.Add([]byte("not a region at all"), uint32(8192))
	f.Add([]byte{}, uint32(0))

	// One file, rewritten by every input (inputs run one at a time in a
	// process): a directory per input would cost more than the input.
	path = filepath.Join(f.TempDir(), "fuzz")
	f.Fuzz(func(t *testing.T, data []byte, size uint32) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if ext := int64(size % (64 << 20)); ext > int64(len(data)) {
			if err := os.Truncate(path, ext); err != nil {
				t.Fatal(err)
			}
		}
		r, err := Open(path)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) || pe.Path != path {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		defer r.Close()
		// Whatever the tables held, using the region stays inside it.
		r.Check()
		r.Processes()
		r.LeasedCPUs()
		if off, err := r.Alloc(64); err == nil {
			if err := r.Free(off); err != nil {
				t.Fatalf("free of a block just allocated: %v", err)
			}
		}
		if off, err := r.Alloc(SpanSize + 1); err == nil {
			if err := r.Free(off); err != nil {
				t.Fatalf("free of a run just allocated: %v", err)
			}
		}
	})
}
