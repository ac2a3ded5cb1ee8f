// Command probes generates kernels/probe/probe_gen_amd64.s: tiny assembly routines that
// run one float32 operation under a given MXCSR, so that tests and
// cmd/ftzcheck can ask the CPU itself what it does near 2^-126.
//
// Every routine has the signature
//
//	func(mxcsr uint32, dst, a, b, c []float32)
//
// and computes dst[i] = op(a[i], b[i], c[i]) for i < len(dst), len(dst) a
// multiple of the unit's lane count (the Go wrapper guarantees this and that
// a, b and c are long enough; c is not read by two-operand ops). It saves the
// caller's MXCSR, loads the environment's, runs the loop and restores the
// caller's MXCSR before it returns: the Go ABI requires FTZ=DAZ=0 at calls.
//
// Units: Scalar (SSE scalar mulss/addss/divss, VEX vfmadd231ss), SSE (xmm,
// 4 lanes), AVX (VEX ymm, 8 lanes), AVX512 (EVEX zmm, 16 lanes).
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

//go:generate go run . -out ../../kernels/probe/probe_gen_amd64.s -stubs ../../kernels/probe/probe_gen_amd64.go -pkg probe

// unit is one instruction family and register width.
type unit struct {
	name  string
	lanes int
	reg   func(i int) reg.VecPhysical
	load  func(m Mem, r reg.VecPhysical)
	store func(r reg.VecPhysical, m Mem)
	// mul, add and div compute d = d op s; fma computes d = x*y + d.
	mul, add, div func(s Op, d reg.VecPhysical)
	fma           func(x reg.VecPhysical, y Op, d reg.VecPhysical)
	vzeroupper    bool
	// memSource takes b (and mul_add's c) straight from memory as the
	// instruction's source operand, to show that DAZ applies to memory
	// operands too, as the matrix kernels use them.
	memSource bool
}

var (
	sseOps = unit{
		load:  func(m Mem, r reg.VecPhysical) { MOVUPS(m, r) },
		store: func(r reg.VecPhysical, m Mem) { MOVUPS(r, m) },
		mul:   func(s Op, d reg.VecPhysical) { MULPS(s, d) },
		add:   func(s Op, d reg.VecPhysical) { ADDPS(s, d) },
		div:   func(s Op, d reg.VecPhysical) { DIVPS(s, d) },
		fma:   func(x reg.VecPhysical, y Op, d reg.VecPhysical) { VFMADD231PS(y, x, d) },
	}
	vexOps = unit{
		vzeroupper: true,
		load:       func(m Mem, r reg.VecPhysical) { VMOVUPS(m, r) },
		store:      func(r reg.VecPhysical, m Mem) { VMOVUPS(r, m) },
		mul:        func(s Op, d reg.VecPhysical) { VMULPS(s, d, d) },
		add:        func(s Op, d reg.VecPhysical) { VADDPS(s, d, d) },
		div:        func(s Op, d reg.VecPhysical) { VDIVPS(s, d, d) },
		fma:        func(x reg.VecPhysical, y Op, d reg.VecPhysical) { VFMADD231PS(y, x, d) },
	}
)

// with returns u under another name, width and register file.
func with(u unit, name string, lanes int, r func(int) reg.VecPhysical, memSource bool) unit {
	u.name, u.lanes, u.reg, u.memSource = name, lanes, r, memSource
	return u
}

var units = []unit{
	{
		name: "Scalar", lanes: 1, reg: xmm,
		load:  func(m Mem, r reg.VecPhysical) { MOVSS(m, r) },
		store: func(r reg.VecPhysical, m Mem) { MOVSS(r, m) },
		mul:   func(s Op, d reg.VecPhysical) { MULSS(s, d) },
		add:   func(s Op, d reg.VecPhysical) { ADDSS(s, d) },
		div:   func(s Op, d reg.VecPhysical) { DIVSS(s, d) },
		fma:   func(x reg.VecPhysical, y Op, d reg.VecPhysical) { VFMADD231SS(y, x, d) },
	},
	// Legacy SSE memory operands must be 16-byte aligned, so SSE has no
	// memory-source variant.
	with(sseOps, "SSE", 4, xmm, false),
	with(vexOps, "AVX", 8, ymm, false),
	with(vexOps, "AVXMem", 8, ymm, true),
	with(vexOps, "AVX512", 16, zmm, false),
	with(vexOps, "AVX512Mem", 16, zmm, true),
}

func xmm(i int) reg.VecPhysical { return []reg.VecPhysical{reg.X0, reg.X1, reg.X2}[i] }
func ymm(i int) reg.VecPhysical { return []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2}[i] }
func zmm(i int) reg.VecPhysical { return []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2}[i] }

// ops are the operations of the vector-file format; mul_add is the product
// rounded (and flushed) on its own, then the add. a is always a register, b
// and c registers or memory operands; fma accumulates into c's register.
var ops = []struct {
	name     string
	operands int
	cInReg   bool // c must be a register (the fma accumulator)
	body     func(u unit, a reg.VecPhysical, b, c Op) reg.VecPhysical
}{
	{"Mul", 2, false, func(u unit, a reg.VecPhysical, b, _ Op) reg.VecPhysical { u.mul(b, a); return a }},
	{"Add", 2, false, func(u unit, a reg.VecPhysical, b, _ Op) reg.VecPhysical { u.add(b, a); return a }},
	{"Div", 2, false, func(u unit, a reg.VecPhysical, b, _ Op) reg.VecPhysical { u.div(b, a); return a }},
	{"FMA", 3, true, func(u unit, a reg.VecPhysical, b, c Op) reg.VecPhysical {
		acc := c.(reg.VecPhysical)
		u.fma(a, b, acc)
		return acc
	}},
	{"MulAdd", 3, false, func(u unit, a reg.VecPhysical, b, c Op) reg.VecPhysical { u.mul(b, a); u.add(c, a); return a }},
}

func main() {
	ConstraintExpr("!purego")

	for _, u := range units {
		for _, op := range ops {
			probe(u, op.name, op.operands, op.cInReg, op.body)
		}
	}

	Generate()
}

func probe(u unit, opName string, operands int, cInReg bool, body func(u unit, a reg.VecPhysical, b, c Op) reg.VecPhysical) {
	name := fmt.Sprintf("probe%s%s", opName, u.name)
	TEXT(name, NOSPLIT, "func(mxcsr uint32, dst, a, b, c []float32)")
	src := "registers"
	if u.memSource {
		src = "b (and mul_add's c) as memory operands"
	}
	Doc(fmt.Sprintf("%s runs %s on %d lane(s) at a time, %s, under mxcsr, restoring the caller's MXCSR.", name, opName, u.lanes, src))

	dst := Load(Param("dst").Base(), GP64())
	pa := Load(Param("a").Base(), GP64())
	pb := Load(Param("b").Base(), GP64())
	pc := GP64()
	if operands == 3 {
		Load(Param("c").Base(), pc)
	}
	n := Load(Param("dst").Len(), GP64())
	i := GP64()
	XORQ(i, i)

	saved := AllocLocal(8)
	STMXCSR(saved)
	mx, err := Param("mxcsr").Resolve()
	if err != nil {
		panic(err)
	}
	LDMXCSR(mx.Addr)

	Label(name + "_loop")
	CMPQ(i, n)
	JAE(LabelRef(name + "_done"))
	ra := u.reg(0)
	u.load(Mem{Base: pa, Index: i, Scale: 4}, ra)
	var b, c Op = Mem{Base: pb, Index: i, Scale: 4}, Mem{Base: pc, Index: i, Scale: 4}
	if !u.memSource {
		u.load(b.(Mem), u.reg(1))
		b = u.reg(1)
	}
	if operands == 3 && (cInReg || !u.memSource) {
		u.load(c.(Mem), u.reg(2))
		c = u.reg(2)
	}
	res := body(u, ra, b, c)
	u.store(res, Mem{Base: dst, Index: i, Scale: 4})
	ADDQ(U32(u.lanes), i)
	JMP(LabelRef(name + "_loop"))

	Label(name + "_done")
	LDMXCSR(saved)
	if u.vzeroupper {
		VZEROUPPER()
	}
	RET()
}
