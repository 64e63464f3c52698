package shm

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/lock"
)

// DefaultDir is where regions named without a directory live.
const DefaultDir = "/dev/shm/userbpf"

// DefaultMode is the file mode of a new region: only its creator's user may
// attach.
const DefaultMode os.FileMode = 0o600

// Options configure a new region. The zero value is valid.
type Options struct {
	// SizeLimit bounds the region file, in bytes; 0 means DefaultLimit.
	// The whole limit is reserved as virtual address space in every
	// attached process, but only what is used is backed by memory.
	SizeLimit uint64
	// CPUs is the number of virtual CPUs; 0 means the machine's possible CPUs.
	CPUs int
	// Mode is the file mode; 0 means DefaultMode.
	Mode os.FileMode
}

// params are the immutable layout parameters of an open region, validated
// once at open. They are kept out of shared memory so that nothing another
// process writes later can send this one outside its mapping.
type params struct {
	layout
	limit uint64
	ncpu  uint32
}

// Region is an attached region. Its methods are safe for concurrent use.
type Region struct {
	path    string
	fd      int
	mem     []byte
	base    unsafe.Pointer
	hdr     *header
	hdrCopy params

	slot   int
	self   *procSlot
	holder lock.Holder
	closed atomic.Bool
	// closeMu serializes Close; hooks run before closed is set, so they may
	// still free blocks.
	closeMu sync.Mutex

	hookMu    sync.Mutex
	reapHooks []func(slot int, tag uint32)

	cpuNext atomic.Uint32
}

// Resolve turns a region name into a path: a name without a slash lives in
// DefaultDir.
func Resolve(name string) string {
	if strings.ContainsRune(name, '/') {
		return name
	}
	return filepath.Join(DefaultDir, name)
}

// Create makes a new region file at path and attaches to it. It fails with
// ErrExist if path exists. The file appears complete or not at all: it is
// built under a temporary name and linked into place.
func Create(path string, o Options) (*Region, error) {
	limit := o.SizeLimit
	if limit == 0 {
		limit = DefaultLimit
	}
	ncpu := o.CPUs
	if ncpu == 0 {
		ncpu = PossibleCPUs()
	}
	mode := o.Mode
	if mode == 0 {
		mode = DefaultMode
	}
	switch {
	case ncpu < 1 || ncpu > MaxCPUs:
		return nil, pathErr("create", path, detail(ErrInvalid, "%d virtual CPUs (want 1 to %d)", ncpu, MaxCPUs))
	case limit > MaxLimit:
		return nil, pathErr("create", path, detail(ErrInvalid, "size limit %d bytes is above the maximum %d", limit, uint64(MaxLimit)))
	case mode&^os.ModePerm != 0:
		return nil, pathErr("create", path, detail(ErrInvalid, "mode %v has bits other than permissions", mode))
	}
	l := computeLayout(uint32(ncpu), limit)
	if l.maxSpans*SpanSize < minHeap {
		return nil, pathErr("create", path, detail(ErrInvalid,
			"size limit %d bytes leaves no room for a heap (minimum %d bytes)", limit, l.heapOff+minHeap))
	}
	if err := makeDir(filepath.Dir(path)); err != nil {
		return nil, pathErr("create", path, err)
	}
	// The temporary name is unique to this call: creators racing for one
	// path (in this process or others) never touch each other's file.
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := fmt.Sprintf("%s.creating.%d.%x", path, os.Getpid(), rnd)
	if err := writeNewRegion(tmp, l, limit, uint32(ncpu), mode); err != nil {
		os.Remove(tmp)
		return nil, pathErr("create", path, err)
	}
	err := os.Link(tmp, path)
	os.Remove(tmp)
	if err != nil {
		return nil, pathErr("create", path, osErr(errors.Unwrap(err)))
	}
	return Open(path)
}

// makeDir creates a region directory; DefaultDir is shared by all users
// like /tmp (sticky, world-writable), others are created 0755.
func makeDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if dir == DefaultDir {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return os.Chmod(dir, os.ModeSticky|0o777)
	}
	return os.MkdirAll(dir, 0o755)
}

// writeNewRegion writes a fresh region file: metadata backed, header last.
func writeNewRegion(tmp string, l layout, limit uint64, ncpu uint32, mode os.FileMode) error {
	fd, err := unix.Open(tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, uint32(mode))
	if err != nil {
		return osErr(err)
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, uint32(mode)); err != nil {
		return err
	}
	if err := allocateFile(fd, 0, l.heapOff); err != nil {
		return fmt.Errorf("%w: backing %d bytes of metadata: %v", ErrRegionFull, l.heapOff, err)
	}
	var h header
	copy(h.Magic[:], Magic)
	h.Version = FormatVersion
	h.HeaderSize = headerSize
	h.PageSize = pageSize
	h.SpanSize = SpanSize
	h.NumCPU = ncpu
	h.MaxProcs = MaxProcs
	h.MaxReaders = MaxReaders
	h.DirEntries = DirEntries
	h.Limit = limit
	h.ProcOff, h.ReaderOff, h.VCPUOff, h.DirOff, h.SpanOff, h.HeapOff, h.MaxSpans =
		l.procOff, l.readerOff, l.vcpuOff, l.dirOff, l.spanOff, l.heapOff, l.maxSpans
	h.Created = time.Now().UnixNano()
	h.Mode = uint32(mode)
	h.FileSize.Store(l.heapOff)
	h.Epoch.Store(1)
	h.Completed.Store(1)
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&h)), unsafe.Sizeof(h))
	if _, err := unix.Pwrite(fd, buf, 0); err != nil {
		return err
	}
	return nil
}

// Open attaches to an existing region and registers this process in its
// process table. Dead processes found in the table are reaped.
func Open(path string) (*Region, error) { return OpenWithHooks(path, nil) }

// OpenWithHooks is Open for upper layers that keep state of their own per
// process (the RCU retire ring): install runs after this process is
// registered and before dead processes are reaped, so the reap hooks it
// registers (OnReap) also run for processes that died before this attach.
func OpenWithHooks(path string, install func(*Region)) (*Region, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, pathErr("open", path, osErr(err))
	}
	p, err := readParams(fd)
	if err != nil {
		unix.Close(fd)
		return nil, pathErr("open", path, err)
	}
	mem, err := unix.Mmap(fd, 0, int(p.limit), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_NORESERVE)
	if err != nil {
		unix.Close(fd)
		return nil, pathErr("open", path, fmt.Errorf("mapping %d bytes: %w", p.limit, err))
	}
	r := &Region{path: path, fd: fd, mem: mem, base: unsafe.Pointer(&mem[0]), hdrCopy: p}
	r.hdr = (*header)(r.base)
	if err := r.register(); err != nil {
		r.unmap()
		return nil, pathErr("open", path, err)
	}
	if install != nil {
		install(r)
	}
	r.ReapDead()
	return r, nil
}

// readParams reads and validates the header with pread, before anything is
// mapped: a short or foreign file is an error, never a fault.
func readParams(fd int) (params, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return params{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return params{}, detail(ErrNotRegion, "not a regular file")
	}
	var h header
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&h)), unsafe.Sizeof(h))
	n, err := unix.Pread(fd, buf, 0)
	if err != nil {
		return params{}, err
	}
	if n == 0 {
		return params{}, detail(ErrNotRegion, "the file is empty")
	}
	if n < len(Magic) || string(h.Magic[:]) != Magic {
		return params{}, ErrNotRegion
	}
	if n < len(buf) {
		return params{}, detail(ErrTruncated, "%d bytes, the header alone is %d", n, headerSize)
	}
	if h.Version != FormatVersion {
		return params{}, detail(ErrVersion, "file has version %d, this build reads version %d", h.Version, FormatVersion)
	}
	// Other processes may be growing the region while we read it. The file
	// grows before FileSize records it, and FileSize before Brk moves, so
	// reading Brk (above), then FileSize, then the file's size sees every
	// bound that validateHeader checks hold; one read of the whole header
	// does not (it may copy FileSize before a grower stores both fields).
	var fs [8]byte
	if _, err := unix.Pread(fd, fs[:], int64(unsafe.Offsetof(h.FileSize))); err != nil {
		return params{}, err
	}
	h.FileSize.Store(*(*uint64)(unsafe.Pointer(&fs)))
	if err := unix.Fstat(fd, &st); err != nil {
		return params{}, err
	}
	return validateHeader(&h, uint64(st.Size))
}

// validateHeader checks every layout parameter against the ones computed
// from first principles, and the growth fields against the file's size.
func validateHeader(h *header, size uint64) (params, error) {
	switch {
	case h.HeaderSize != headerSize || h.PageSize != pageSize || h.SpanSize != SpanSize:
		return params{}, detail(ErrLayout, "header/page/span sizes %d/%d/%d", h.HeaderSize, h.PageSize, h.SpanSize)
	case h.MaxProcs != MaxProcs || h.MaxReaders != MaxReaders || h.DirEntries != DirEntries:
		return params{}, detail(ErrLayout, "table sizes %d/%d/%d", h.MaxProcs, h.MaxReaders, h.DirEntries)
	case h.NumCPU < 1 || h.NumCPU > MaxCPUs:
		return params{}, detail(ErrLayout, "%d virtual CPUs", h.NumCPU)
	case h.Limit > MaxLimit:
		return params{}, detail(ErrLayout, "size limit %d", h.Limit)
	}
	l := computeLayout(h.NumCPU, h.Limit)
	if l != (layout{h.ProcOff, h.ReaderOff, h.VCPUOff, h.DirOff, h.SpanOff, h.HeapOff, h.MaxSpans}) || l.maxSpans == 0 {
		return params{}, detail(ErrLayout, "table offsets do not match a region of %d CPUs and limit %d", h.NumCPU, h.Limit)
	}
	fileSize, brk := h.FileSize.Load(), h.Brk.Load()
	switch {
	case fileSize < l.heapOff || fileSize > h.Limit:
		return params{}, detail(ErrLayout, "recorded file size %d outside [%d, %d]", fileSize, l.heapOff, h.Limit)
	case brk > l.maxSpans || l.heapOff+brk*SpanSize > fileSize:
		return params{}, detail(ErrLayout, "heap of %d spans does not fit the recorded file size %d", brk, fileSize)
	case size < fileSize:
		return params{}, detail(ErrTruncated, "file is %d bytes, the region records %d", size, fileSize)
	}
	return params{layout: l, limit: h.Limit, ncpu: h.NumCPU}, nil
}

// Close detaches this process: it releases its table slot and unmaps the
// region. Blocks the process still owns stay allocated.
func (r *Region) Close() error {
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	if r.closed.Load() {
		return nil
	}
	r.releaseOwned(r.holder.Tag)
	r.runReapHooks(r.slot, r.holder.Tag)
	r.closed.Store(true)
	r.unregister()
	return r.unmap()
}

func (r *Region) unmap() error {
	err := unix.Munmap(r.mem)
	if cerr := unix.Close(r.fd); err == nil {
		err = cerr
	}
	return err
}

// Remove deletes the region file at path. Processes still attached keep
// their mapping; a region with live processes is refused with ErrBusy
// unless force is set. A file that is not a region is never removed.
func Remove(path string, force bool) error {
	r, err := Open(path)
	if err != nil {
		var pe *PathError
		if errors.As(err, &pe) {
			pe.Op = "remove"
		}
		return err
	}
	others := len(r.Processes()) - 1
	r.Close()
	if others > 0 && !force {
		return pathErr("remove", path, detail(ErrBusy, "%d other processes attached", others))
	}
	if err := os.Remove(path); err != nil {
		return pathErr("remove", path, osErr(errors.Unwrap(err)))
	}
	return nil
}

// Path is the region's file path.
func (r *Region) Path() string { return r.path }

// NumCPU is the region's number of virtual CPUs.
func (r *Region) NumCPU() int { return int(r.hdrCopy.ncpu) }

// Limit is the region's size limit in bytes.
func (r *Region) Limit() uint64 { return r.hdrCopy.limit }

// Holder is this process's lock identity in the region.
func (r *Region) Holder() *lock.Holder { return &r.holder }

// Tag is this process's owner tag.
func (r *Region) Tag() uint32 { return r.holder.Tag }

// Counter returns a statistics counter.
func (r *Region) Counter(c Counter) *atomic.Uint64 { return &r.hdr.Counters[c] }

// Pointer returns a pointer to off in region memory. The caller must know
// that off (and what it reads) lies in a block it owns or holds.
func (r *Region) Pointer(off uint64) unsafe.Pointer { return unsafe.Add(r.base, off) }

// HeapBounds returns the heap's used part as offsets [lo, top). The heap
// only grows, so a top read once stays a safe bound for the mapping's life.
func (r *Region) HeapBounds() (lo, top uint64) {
	return r.hdrCopy.heapOff, r.hdrCopy.heapOff + r.brk()*SpanSize
}

// Bytes returns the n bytes at off, checked to lie in the heap's used part.
func (r *Region) Bytes(off, n uint64) ([]byte, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	top := r.hdrCopy.heapOff + r.brk()*SpanSize
	if off < r.hdrCopy.heapOff || n > top || off > top-n {
		return nil, detail(ErrInvalid, "bytes [%#x, +%d) are outside the heap", off, n)
	}
	return r.mem[off : off+n : off+n], nil
}

// PossibleCPUs returns the number of possible CPUs of the machine
// (/sys/devices/system/cpu/possible), as the kernel sizes per-CPU maps.
func PossibleCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return 1
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, found := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if found {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || b < a {
			return 1
		}
		n += b - a + 1
	}
	return max(n, 1)
}
