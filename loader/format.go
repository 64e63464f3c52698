package loader

import (
	"github.com/cilium/ebpf/btf"

	"github.com/userbpf/userbpf/maps"
)

// formats derives the map's key and value formats from its BTF types.
func (ms *MapSpec) formats() maps.Formats {
	return maps.Formats{Key: typeFormat(ms.KeyType, 0), Value: typeFormat(ms.ValueType, 0)}
}

// typeFormat describes a BTF type for formatted printing; nil if there is
// none or it cannot be sized.
func typeFormat(t btf.Type, depth int) *maps.TypeFormat {
	if t == nil || depth > 16 {
		return nil
	}
	size, err := btf.Sizeof(t)
	if err != nil || size <= 0 {
		return nil
	}
	f := &maps.TypeFormat{Size: uint32(size), Name: t.TypeName()}
	switch u := btf.UnderlyingType(t).(type) {
	case *btf.Int:
		f.Kind = "int"
		f.Signed = u.Encoding&btf.Signed != 0
		f.Char = u.Encoding&btf.Char != 0 || u.Size == 1 && (u.Name == "char" || u.Name == "unsigned char")
	case *btf.Enum:
		f.Kind = "int"
		f.Signed = u.Signed
	case *btf.Pointer:
		f.Kind = "int"
	case *btf.Struct:
		f.Kind = "struct"
		for _, m := range u.Members {
			if m.BitfieldSize != 0 || m.Offset%8 != 0 {
				continue // bitfields print with their containing bytes omitted
			}
			mf := typeFormat(m.Type, depth+1)
			if mf == nil {
				continue
			}
			f.Members = append(f.Members, maps.MemberFormat{Name: m.Name, Offset: uint32(m.Offset / 8), Type: *mf})
		}
	case *btf.Array:
		f.Kind = "array"
		f.Elem = typeFormat(u.Type, depth+1)
		f.Len = u.Nelems
		if f.Elem == nil {
			f.Kind = "bytes"
		}
	default:
		f.Kind = "bytes"
	}
	return f
}
