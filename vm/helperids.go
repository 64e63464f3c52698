package vm

// Helper numbers (the kernel's enum bpf_func_id) of the helpers this
// package implements and of those the host installs.
const (
	FnMapLookupElem       = 1
	FnMapUpdateElem       = 2
	FnMapDeleteElem       = 3
	FnProbeRead           = 4
	FnKtimeGetNs          = 5
	FnTracePrintk         = 6
	FnGetPrandomU32       = 7
	FnGetSmpProcessorID   = 8
	FnTailCall            = 12
	FnGetCurrentPidTgid   = 14
	FnGetCurrentUIDGid    = 15
	FnGetCurrentComm      = 16
	FnProbeReadStr        = 45
	FnMapPushElem         = 87
	FnMapPopElem          = 88
	FnMapPeekElem         = 89
	FnSpinLock            = 93
	FnSpinUnlock          = 94
	FnProbeReadUser       = 112
	FnProbeReadKernel     = 113
	FnProbeReadUserStr    = 114
	FnProbeReadKernelStr  = 115
	FnJiffies64           = 118
	FnKtimeGetBootNs      = 125
	FnRingbufOutput       = 130
	FnRingbufReserve      = 131
	FnRingbufSubmit       = 132
	FnRingbufDiscard      = 133
	FnRingbufQuery        = 134
	FnKtimeGetCoarseNs    = 160
	FnForEachMapElem      = 164
	FnLoop                = 181
	FnMapLookupPercpuElem = 195
	FnUserRingbufDrain    = 209
)

// Errno values helpers return negated in R0, as the kernel's.
const (
	ENOENT = 2
	E2BIG  = 7
	EFAULT = 14
	EINVAL = 22
)

// Errno returns -errno as a helper's R0.
func Errno(errno int) uint64 { return uint64(-int64(errno)) }
