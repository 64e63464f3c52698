package shm

import (
	"unsafe"
)

// Object is a named entry of the region's directory: where an object (a
// map, a program) keeps its descriptor.
type Object struct {
	Name string
	Kind uint32
	Off  uint64
	Size uint64
}

func (r *Region) dirEntry(i int) *dirEntry {
	return (*dirEntry)(unsafe.Add(r.base, r.hdrCopy.dirOff+uint64(i)*128))
}

// validName accepts 1 to MaxNameLen characters from [A-Za-z0-9_.-].
func validName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen {
		return detail(ErrInvalid, "object name %q must have 1 to %d characters", name, MaxNameLen)
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return detail(ErrInvalid, "object name %q: character %q is not one of A-Z a-z 0-9 _ . -", name, c)
		}
	}
	return nil
}

// lockDir takes the directory mutex. Entries are written so that a holder
// killed at any point leaves every entry either free or complete (State is
// set last on insert and cleared first on removal), so a recovered mutex
// needs no repair.
func (r *Region) lockDir() { r.hdr.DirLock.Lock(&r.holder) }

func (r *Region) unlockDir() { r.hdr.DirLock.Unlock() }

func (e *dirEntry) name() string { return string(e.Name[:min(e.NameLen, MaxNameLen)]) }

// find returns the index of the used entry called name, or -1.
func (r *Region) find(name string) int {
	for i := 0; i < DirEntries; i++ {
		e := r.dirEntry(i)
		if e.State.Load() == 1 && e.name() == name {
			return i
		}
	}
	return -1
}

// Publish adds o to the directory. It fails with ErrExist if the name is
// taken and ErrRegionFull if the directory is full.
func (r *Region) Publish(o Object) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if err := validName(o.Name); err != nil {
		return err
	}
	r.lockDir()
	defer r.unlockDir()
	if r.find(o.Name) >= 0 {
		return detail(ErrExist, "object %q", o.Name)
	}
	for i := 0; i < DirEntries; i++ {
		e := r.dirEntry(i)
		if e.State.Load() != 0 {
			continue
		}
		e.Kind, e.Off, e.Size = o.Kind, o.Off, o.Size
		e.Name = [MaxNameLen + 1]byte{}
		copy(e.Name[:], o.Name)
		e.NameLen = uint32(len(o.Name))
		e.State.Store(1)
		return nil
	}
	return detail(ErrRegionFull, "directory holds %d objects already", DirEntries)
}

// Lookup finds the object called name.
func (r *Region) Lookup(name string) (Object, error) {
	if r.closed.Load() {
		return Object{}, ErrClosed
	}
	r.lockDir()
	defer r.unlockDir()
	i := r.find(name)
	if i < 0 {
		return Object{}, detail(ErrNotExist, "object %q", name)
	}
	e := r.dirEntry(i)
	return Object{Name: name, Kind: e.Kind, Off: e.Off, Size: e.Size}, nil
}

// Unpublish removes the object called name from the directory and returns
// it; freeing what it points to is the caller's business.
func (r *Region) Unpublish(name string) (Object, error) {
	if r.closed.Load() {
		return Object{}, ErrClosed
	}
	r.lockDir()
	defer r.unlockDir()
	i := r.find(name)
	if i < 0 {
		return Object{}, detail(ErrNotExist, "object %q", name)
	}
	e := r.dirEntry(i)
	o := Object{Name: name, Kind: e.Kind, Off: e.Off, Size: e.Size}
	e.State.Store(0)
	return o, nil
}

// Objects lists the directory.
func (r *Region) Objects() []Object {
	if r.closed.Load() {
		return nil
	}
	r.lockDir()
	defer r.unlockDir()
	var os []Object
	for i := 0; i < DirEntries; i++ {
		e := r.dirEntry(i)
		if e.State.Load() == 1 {
			os = append(os, Object{Name: e.name(), Kind: e.Kind, Off: e.Off, Size: e.Size})
		}
	}
	return os
}
