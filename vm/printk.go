package vm

import "fmt"

// maxPrintkStr bounds a %s argument of bpf_trace_printk.
const maxPrintkStr = 1024

// bpf_trace_printk(fmt, fmt_size, arg1, arg2, arg3): format as the kernel
// (bpf_bprintf_prepare) accepts: at most three conversions, each
// %[0 +-]*[width](d|i|u|x|X with an optional l or ll, or c, s, p, px,
// pK), and %%; fmt must be NUL-terminated within fmt_size. The message
// goes to Machine.Trace; R0 is its length, or -EINVAL for a bad format.
func helperTracePrintk(m *Machine, fmtAddr, fmtSize, a1, a2, a3 uint64) (uint64, error) {
	raw, ok := m.Bytes(fmtAddr, fmtSize, false)
	if !ok {
		return 0, m.fault(m.pc, ErrMemory, fmt.Sprintf("trace_printk: format of %d bytes at %#x is not readable", fmtSize, fmtAddr))
	}
	if fmtSize == 0 || raw[len(raw)-1] != 0 {
		return Errno(EINVAL), nil
	}
	f := raw
	for i, c := range raw {
		if c == 0 {
			f = raw[:i]
			break
		}
	}
	out, ok := m.formatPrintk(f, [3]uint64{a1, a2, a3})
	if !ok {
		return Errno(EINVAL), nil
	}
	if m.Trace != nil {
		m.Trace(m, out)
	}
	return uint64(len(out)), nil
}

func (m *Machine) formatPrintk(f []byte, args [3]uint64) ([]byte, bool) {
	var out, spec []byte
	nargs := 0
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			out = append(out, f[i])
			continue
		}
		if i+1 < len(f) && f[i+1] == '%' {
			out = append(out, '%')
			i++
			continue
		}
		if nargs == len(args) {
			return nil, false
		}
		spec = append(spec[:0], '%')
		i++
		for i < len(f) && (f[i] == '0' || f[i] == '+' || f[i] == '-' || f[i] == ' ') {
			spec = append(spec, f[i])
			i++
		}
		for i < len(f) && f[i] >= '0' && f[i] <= '9' {
			spec = append(spec, f[i])
			i++
		}
		if i >= len(f) {
			return nil, false
		}
		arg := args[nargs]
		nargs++
		switch f[i] {
		case 'p':
			if i+1 < len(f) && (f[i+1] == 'x' || f[i+1] == 'K') {
				i++
			}
			out = fmt.Appendf(out, "0x%016x", arg)
			continue
		case 's':
			out = fmt.Appendf(out, string(append(spec, 's')), m.cString(arg))
			continue
		case 'c':
			out = fmt.Appendf(out, string(append(spec, 'c')), rune(byte(arg)))
			continue
		}
		long := false
		if f[i] == 'l' {
			long = true
			i++
			if i < len(f) && f[i] == 'l' {
				i++
			}
		}
		if i >= len(f) {
			return nil, false
		}
		switch f[i] {
		case 'd', 'i':
			v := int64(int32(arg))
			if long {
				v = int64(arg)
			}
			out = fmt.Appendf(out, string(append(spec, 'd')), v)
		case 'u', 'x', 'X':
			v := uint64(uint32(arg))
			if long {
				v = arg
			}
			verb := f[i]
			if verb == 'u' {
				verb = 'd'
			}
			out = fmt.Appendf(out, string(append(spec, verb)), v)
		default:
			return nil, false
		}
	}
	return out, true
}

// cString reads a NUL-terminated string the program may read; an
// unreadable one prints empty, as in the kernel.
func (m *Machine) cString(addr uint64) string {
	var s []byte
	for i := uint64(0); i < maxPrintkStr; i++ {
		c, ok := m.Bytes(addr+i, 1, false)
		if !ok || c[0] == 0 {
			break
		}
		s = append(s, c[0])
	}
	return string(s)
}
