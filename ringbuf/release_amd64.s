#include "textflag.h"

// func prefetchWrite(addr unsafe.Pointer)
TEXT ·prefetchWrite(SB), NOSPLIT, $0-8
	MOVQ	addr+0(FP), AX
	BYTE	$0x0F; BYTE $0x0D; BYTE $0x08     // PREFETCHW (AX)
	BYTE	$0x0F; BYTE $0x0D; BYTE $0x48; BYTE $0x40 // PREFETCHW 64(AX)
	RET

// func prefetchRead(addr unsafe.Pointer)
TEXT ·prefetchRead(SB), NOSPLIT, $0-8
	MOVQ	addr+0(FP), AX
	PREFETCHT0	(AX)
	PREFETCHT0	64(AX)
	RET
