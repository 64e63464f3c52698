package maps

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// TypeFormat describes a key or value type well enough to print it as
// bpftool prints values it has BTF for ("formatted"). The loader derives it
// from an object's BTF; the region keeps it with the map.
type TypeFormat struct {
	Kind    string         `json:"kind"` // "int", "struct", "array", "bytes"
	Name    string         `json:"name,omitempty"`
	Size    uint32         `json:"size"`
	Signed  bool           `json:"signed,omitempty"`
	Char    bool           `json:"char,omitempty"` // an int array of chars prints as a string
	Members []MemberFormat `json:"members,omitempty"`
	Elem    *TypeFormat    `json:"elem,omitempty"`
	Len     uint32         `json:"len,omitempty"`
}

// MemberFormat is one struct member.
type MemberFormat struct {
	Name   string     `json:"name"`
	Offset uint32     `json:"offset"` // bytes
	Type   TypeFormat `json:"type"`
}

// Formats are a map's key and value formats.
type Formats struct {
	Key   *TypeFormat `json:"key,omitempty"`
	Value *TypeFormat `json:"value,omitempty"`
}

// maxFormat bounds a stored format description.
const maxFormat = 64 << 10

// SetFormat stores the key and value formats with the map (once; later
// calls are ignored, as a reused map keeps its creator's).
func (m *Map) SetFormat(f Formats) error {
	b, err := json.Marshal(f)
	if err != nil || len(b) > maxFormat {
		return fmt.Errorf("%w: format of map %q", ErrInvalid, m.name)
	}
	off, err := m.region.Alloc(uint64(len(b)))
	if err != nil {
		return err
	}
	dst, _ := m.region.Bytes(off, uint64(len(b)))
	copy(dst, b)
	m.d.FormatLen.Store(uint32(len(b)))
	if !m.d.Format.CompareAndSwap(0, off) {
		m.region.Free(off)
	}
	return nil
}

// Format returns the map's key and value formats, if it has any.
func (m *Map) Format() (Formats, bool) {
	var f Formats
	off, n := m.d.Format.Load(), m.d.FormatLen.Load()
	if off == 0 || n == 0 || n > maxFormat {
		return f, false
	}
	b, err := m.region.Bytes(off, uint64(n))
	if err != nil || json.Unmarshal(b, &f) != nil {
		return f, false
	}
	return f, true
}

// Render prints b as JSON following the format, as bpftool's "formatted"
// output does: integers as numbers, structs as objects in member order,
// char arrays as strings, other arrays as lists.
func (t *TypeFormat) Render(b []byte) string {
	var sb strings.Builder
	t.render(&sb, b, 0)
	return sb.String()
}

func (t *TypeFormat) render(sb *strings.Builder, b []byte, depth int) {
	if depth > 16 || uint32(len(b)) < t.Size {
		sb.WriteString("null")
		return
	}
	switch t.Kind {
	case "int":
		sb.WriteString(intString(b[:t.Size], t.Signed))
	case "struct":
		sb.WriteByte('{')
		for i, mb := range t.Members {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.Quote(mb.Name))
			sb.WriteByte(':')
			if mb.Offset > uint32(len(b)) {
				sb.WriteString("null")
				continue
			}
			mb.Type.render(sb, b[mb.Offset:], depth+1)
		}
		sb.WriteByte('}')
	case "array":
		if t.Elem == nil || t.Elem.Size == 0 {
			sb.WriteString("null")
			return
		}
		if t.Elem.Char {
			s := b[:t.Len]
			if i := strings.IndexByte(string(s), 0); i >= 0 {
				s = s[:i]
			}
			sb.WriteString(strconv.Quote(string(s)))
			return
		}
		sb.WriteByte('[')
		for i := uint32(0); i < t.Len; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			t.Elem.render(sb, b[i*t.Elem.Size:], depth+1)
		}
		sb.WriteByte(']')
	default:
		sb.WriteByte('[')
		for i, c := range b[:t.Size] {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(sb, "\"0x%02x\"", c)
		}
		sb.WriteByte(']')
	}
}

func intString(b []byte, signed bool) string {
	var u uint64
	switch len(b) {
	case 1:
		u = uint64(b[0])
		if signed {
			return strconv.FormatInt(int64(int8(u)), 10)
		}
	case 2:
		u = uint64(binary.NativeEndian.Uint16(b))
		if signed {
			return strconv.FormatInt(int64(int16(u)), 10)
		}
	case 4:
		u = uint64(binary.NativeEndian.Uint32(b))
		if signed {
			return strconv.FormatInt(int64(int32(u)), 10)
		}
	case 8:
		u = binary.NativeEndian.Uint64(b)
		if signed {
			return strconv.FormatInt(int64(u), 10)
		}
	default:
		return strconv.Quote(fmt.Sprintf("%x", b))
	}
	return strconv.FormatUint(u, 10)
}
