package vm

// fusedMoves maps the ALU-with-immediate operation that may follow a
// register move to the superinstruction that runs both: clang emits
// "rX = rY; rX op= K" for stack addresses (r2 = r10; r2 += -4), masks and
// shifts all the time, and one dispatch costs about what the work does.
var fusedMoves = map[[2]uint8]uint8{
	{opMov64X, opAdd64K}:  opMovAdd64K,
	{opMov64X, opAnd64K}:  opMovAnd64K,
	{opMov64X, opOr64K}:   opMovOr64K,
	{opMov64X, opXor64K}:  opMovXor64K,
	{opMov64X, opLsh64K}:  opMovLsh64K,
	{opMov64X, opRsh64K}:  opMovRsh64K,
	{opMov64X, opArsh64K}: opMovArsh64K,
	{opMov64X, opMul64K}:  opMovMul64K,
	{opMov32X, opAdd32K}:  opMov32Add32K,
}

// fuseMoves turns each register move followed by an ALU-with-immediate
// instruction on the same register into a superinstruction carrying the
// second's immediate. fast runs it as both instructions (two of the
// budget); exec, which sees it only when fewer than two remain, runs the
// move alone and the second instruction after it, as unfused code would.
func fuseMoves(c *code) {
	for i := 0; i+1 < len(c.insns); i++ {
		x, y := c.insns[i], c.insns[i+1]
		op, ok := fusedMoves[[2]uint8{x.op, y.op}]
		if !ok || x.regs&15 != y.regs&15 {
			continue
		}
		c.insns[i] = xinsn{op: op, regs: x.regs, imm: y.imm}
	}
}
