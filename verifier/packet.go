package verifier

import "fmt"

// Packet pointers. The kernel rewrites loads of some context fields into
// pointers to the packet: struct __sk_buff's data, data_end and data_meta
// for the skb program types, struct xdp_md's for XDP. A program reads the
// packet through data (and data_meta) after comparing with data_end.
//
// userbpf's VM hands programs the raw context and rewrites nothing: the
// fields hold whatever the caller put there, so the verifier gives the
// pointers their kinds (arithmetic keeps them, comparisons with pkt_end
// are allowed, pkt_end is never dereferenced) and leaves the bounds of a
// load or store through them to the VM's run-time memory check, which
// aborts the run when the memory is not the program's (docs/semantics.md,
// Verifier).

// Program types (the kernel's enum bpf_prog_type) whose context has
// packet pointers.
const (
	progSchedCLS  = 3
	progSchedACT  = 4
	progXDP       = 6
	progCgroupSKB = 8
	progLWTIn     = 10
	progLWTOut    = 11
	progLWTXmit   = 12
	progSKSKB     = 14
)

// Offsets of the packet fields in struct __sk_buff and struct xdp_md.
const (
	skbData     = 76
	skbDataEnd  = 80
	skbDataMeta = 140
	xdpData     = 0
	xdpDataEnd  = 4
	xdpDataMeta = 8
)

// ctxPacketField is the packet pointer kind a 4-byte load of context
// offset off gives in this program's type, or kNone for a number. Socket
// filters read the packet with LD_ABS/LD_IND only (the kernel refuses
// their data fields); data_meta exists for tc and XDP.
func (v *verifier) ctxPacketField(off int64) kind {
	switch v.p.Type {
	case progSchedCLS, progSchedACT:
		switch off {
		case skbData:
			return kPkt
		case skbDataEnd:
			return kPktEnd
		case skbDataMeta:
			return kPktMeta
		}
	case progCgroupSKB, progLWTIn, progLWTOut, progLWTXmit, progSKSKB:
		switch off {
		case skbData:
			return kPkt
		case skbDataEnd:
			return kPktEnd
		}
	case progXDP:
		switch off {
		case xdpData:
			return kPkt
		case xdpDataEnd:
			return kPktEnd
		case xdpDataMeta:
			return kPktMeta
		}
	}
	return kNone
}

// packetAccess is a load or store through a packet (or metadata) pointer:
// any offset, its bounds checked at run time. A store may not write a
// pointer into the packet (the kernel's "leaks addr into packet").
func (v *verifier) packetAccess(pc int, regno uint8, base reg, write bool, val *reg) (reg, error) {
	if write && val != nil && val.k != kScalar {
		return reg{}, v.errAt(pc, ErrMemAccess, fmt.Sprintf("store of a %s into the packet through R%d: a pointer may not leak into packet data", val.typeName(), regno))
	}
	return scalar(), nil
}
