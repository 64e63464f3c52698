package programs

import (
	"encoding/binary"
	"fmt"

	"github.com/userbpf/userbpf/graph"
	"github.com/userbpf/userbpf/shm"
	"github.com/userbpf/userbpf/vm"
)

// KindProgram marks program records in the region's directory.
const KindProgram = 2

// A stored program is one region block, published under the program's
// name, so that any attached process can run it:
//
//	0   Magic u32      "UPRG"
//	4   Version u32    1
//	8   NInsns u32
//	12  NMaps u32
//	16  Type u32       the program type (enum bpf_prog_type) its section named
//	20  ID u32         the program's ID in the region (what PROG_ARRAY slots hold)
//	24  Runs u64       runs by every process (atomic; see faults.go)
//	32  Faults u64     runs that aborted since the program was stored or re-enabled (atomic)
//	40  AbortLimit u32 disable the program after this many faults; 0: never (atomic)
//	44  FaultState u32 bit 31 disabled; bits 24-30 the last fault's FaultKind;
//	                   bits 0-23 its instruction index (atomic)
//	48  Types u64      the graph type table of the structs the program
//	                   allocates (bpf_obj_new), 0 if none
//	56  (reserved, 8 bytes)
//	64  Insns [NInsns × 8]   the instructions, encoded as on the wire
//	…   Maps [NMaps × 128]   {Flags u32, NameLen u32, Name [120]}: the maps
//	                          Program.Maps[i] names, by region name
//
// Map flags: bit 0 the map's single value is global data the program
// reaches through PseudoMapValue loads, bit 1 that value is read-only.
const (
	progMagic     = 0x47525055
	progVersion   = 1
	progHeader    = 64
	progStatsOff  = 24 // the progStats record (faults.go)
	progMapRecord = 128
	maxProgInsns  = 1 << 20
	maxProgMaps   = 64

	mapGlobalData = 1 << 0
	mapReadOnly   = 1 << 1
)

// StoredMap is how a stored program names a map it uses.
type StoredMap struct {
	Name       string // the map's name in the region
	GlobalData bool   // PseudoMapValue loads reach its single value
	ReadOnly   bool   // that value is read-only to the program
}

// Store writes a program (its instructions and the names of its maps) to
// the region under name. Loading the same name twice is ErrExist.
func Store(r *shm.Region, name string, typ uint32, insns []vm.Insn, ms []StoredMap) error {
	return StoreWithTypes(r, name, typ, insns, ms, nil)
}

// StoreWithTypes is Store for a program that allocates objects: types
// (loader.ProgramSpec.Types) is stored with it, and its
// bpf_core_type_id_local loads index into it.
func StoreWithTypes(r *shm.Region, name string, typ uint32, insns []vm.Insn, ms []StoredMap, types *graph.Table) error {
	if len(insns) == 0 || len(insns) > maxProgInsns || len(ms) > maxProgMaps {
		return fmt.Errorf("store program %q: %w: %d instructions, %d maps", name, shm.ErrInvalid, len(insns), len(ms))
	}
	size := uint64(progHeader + 8*len(insns) + progMapRecord*len(ms))
	off, err := r.Alloc(size)
	if err != nil {
		return fmt.Errorf("store program %q: %w", name, err)
	}
	b, _ := r.Bytes(off, size)
	le := binary.LittleEndian
	le.PutUint32(b[0:], progMagic)
	le.PutUint32(b[4:], progVersion)
	le.PutUint32(b[8:], uint32(len(insns)))
	le.PutUint32(b[12:], uint32(len(ms)))
	le.PutUint32(b[16:], typ)
	le.PutUint32(b[20:], r.NewObjectID())

	copy(b[progHeader:], vm.Encode(insns))
	for i, m := range ms {
		rec := b[progHeader+8*len(insns)+progMapRecord*i:][:progMapRecord]
		var f uint32
		if m.GlobalData {
			f |= mapGlobalData
		}
		if m.ReadOnly {
			f |= mapReadOnly
		}
		if len(m.Name) > progMapRecord-8 {
			r.Free(off)
			return fmt.Errorf("store program %q: %w: map name %q too long", name, shm.ErrInvalid, m.Name)
		}
		le.PutUint32(rec[0:], f)
		le.PutUint32(rec[4:], uint32(len(m.Name)))
		copy(rec[8:], m.Name)
	}
	if types != nil {
		toff, err := graph.Of(r).StoreTable(types)
		if err != nil {
			r.Free(off)
			return fmt.Errorf("store program %q: %w", name, err)
		}
		le.PutUint64(b[48:], toff)
	}
	if err := r.Publish(shm.Object{Name: name, Kind: KindProgram, Off: off, Size: size}); err != nil {
		if t := le.Uint64(b[48:]); t != 0 {
			r.Free(t)
		}
		r.Free(off)
		return fmt.Errorf("store program %q: %w", name, err)
	}
	return nil
}

// stored is a program read back from the region.
type stored struct {
	off   uint64 // the record's region offset
	typ   uint32
	id    uint32
	insns []vm.Insn
	maps  []StoredMap
	types uint64 // graph type table, 0 if none
}

// readStored reads and validates the program record called name: another
// process wrote it, so every length is checked before it is used.
func readStored(r *shm.Region, name string) (*stored, error) {
	o, err := r.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("open program %q: %w", name, err)
	}
	if o.Kind != KindProgram {
		return nil, fmt.Errorf("open program %q: %w: the object is not a program", name, shm.ErrInvalid)
	}
	b, err := r.Bytes(o.Off, o.Size)
	if err != nil || len(b) < progHeader {
		return nil, fmt.Errorf("open program %q: %w: record %v", name, shm.ErrCorrupt, err)
	}
	le := binary.LittleEndian
	n, nm := le.Uint32(b[8:]), le.Uint32(b[12:])
	if le.Uint32(b) != progMagic || le.Uint32(b[4:]) != progVersion || n == 0 || n > maxProgInsns || nm > maxProgMaps || o.Off%8 != 0 ||
		uint64(progHeader)+8*uint64(n)+progMapRecord*uint64(nm) != o.Size {
		return nil, fmt.Errorf("open program %q: %w: bad program record", name, shm.ErrCorrupt)
	}
	insns, err := vm.Decode(b[progHeader : progHeader+8*int(n)])
	if err != nil {
		return nil, fmt.Errorf("open program %q: %w: %v", name, shm.ErrCorrupt, err)
	}
	s := &stored{off: o.Off, typ: le.Uint32(b[16:]), id: le.Uint32(b[20:]), insns: insns, types: le.Uint64(b[48:])}
	for i := 0; i < int(nm); i++ {
		rec := b[progHeader+8*int(n)+progMapRecord*i:][:progMapRecord]
		f, l := le.Uint32(rec), le.Uint32(rec[4:])
		if l == 0 || l > progMapRecord-8 {
			return nil, fmt.Errorf("open program %q: %w: map record %d", name, shm.ErrCorrupt, i)
		}
		s.maps = append(s.maps, StoredMap{Name: string(rec[8 : 8+l]), GlobalData: f&mapGlobalData != 0, ReadOnly: f&mapReadOnly != 0})
	}
	return s, nil
}

// Names lists the programs stored in the region.
func Names(r *shm.Region) []string {
	var ns []string
	for _, o := range r.Objects() {
		if o.Kind == KindProgram {
			ns = append(ns, o.Name)
		}
	}
	return ns
}

// nameByID finds the stored program with the given ID.
func nameByID(r *shm.Region, id uint32) (string, bool) {
	for _, o := range r.Objects() {
		if o.Kind != KindProgram || o.Size < progHeader {
			continue
		}
		b, err := r.Bytes(o.Off, progHeader)
		if err == nil && binary.LittleEndian.Uint32(b) == progMagic && binary.LittleEndian.Uint32(b[20:]) == id {
			return o.Name, true
		}
	}
	return "", false
}
