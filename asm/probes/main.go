// Command probes generates kernels/probe_amd64.s: tiny assembly routines that
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

//go:generate go run . -out ../../kernels/probe_amd64.s -stubs ../../kernels/probe_amd64.go -pkg kernels

// unit is one instruction family and register width.
type unit struct {
	name  string
	lanes int
	reg   func(i int) reg.VecPhysical
	load  func(m Mem, r reg.VecPhysical)
	store func(r reg.VecPhysical, m Mem)
	// mul, add and div compute d = d op s; fma computes d = x*y + d.
	mul, add, div func(s, d reg.VecPhysical)
	fma           func(x, y, d reg.VecPhysical)
	vzeroupper    bool
}

var units = []unit{
	{
		name: "Scalar", lanes: 1, reg: xmm,
		load:  func(m Mem, r reg.VecPhysical) { MOVSS(m, r) },
		store: func(r reg.VecPhysical, m Mem) { MOVSS(r, m) },
		mul:   func(s, d reg.VecPhysical) { MULSS(s, d) },
		add:   func(s, d reg.VecPhysical) { ADDSS(s, d) },
		div:   func(s, d reg.VecPhysical) { DIVSS(s, d) },
		fma:   func(x, y, d reg.VecPhysical) { VFMADD231SS(y, x, d) },
	},
	{
		name: "SSE", lanes: 4, reg: xmm,
		load:  func(m Mem, r reg.VecPhysical) { MOVUPS(m, r) },
		store: func(r reg.VecPhysical, m Mem) { MOVUPS(r, m) },
		mul:   func(s, d reg.VecPhysical) { MULPS(s, d) },
		add:   func(s, d reg.VecPhysical) { ADDPS(s, d) },
		div:   func(s, d reg.VecPhysical) { DIVPS(s, d) },
		fma:   func(x, y, d reg.VecPhysical) { VFMADD231PS(y, x, d) },
	},
	{
		name: "AVX", lanes: 8, reg: ymm, vzeroupper: true,
		load:  func(m Mem, r reg.VecPhysical) { VMOVUPS(m, r) },
		store: func(r reg.VecPhysical, m Mem) { VMOVUPS(r, m) },
		mul:   func(s, d reg.VecPhysical) { VMULPS(s, d, d) },
		add:   func(s, d reg.VecPhysical) { VADDPS(s, d, d) },
		div:   func(s, d reg.VecPhysical) { VDIVPS(s, d, d) },
		fma:   func(x, y, d reg.VecPhysical) { VFMADD231PS(y, x, d) },
	},
	{
		name: "AVX512", lanes: 16, reg: zmm, vzeroupper: true,
		load:  func(m Mem, r reg.VecPhysical) { VMOVUPS(m, r) },
		store: func(r reg.VecPhysical, m Mem) { VMOVUPS(r, m) },
		mul:   func(s, d reg.VecPhysical) { VMULPS(s, d, d) },
		add:   func(s, d reg.VecPhysical) { VADDPS(s, d, d) },
		div:   func(s, d reg.VecPhysical) { VDIVPS(s, d, d) },
		fma:   func(x, y, d reg.VecPhysical) { VFMADD231PS(y, x, d) },
	},
}

func xmm(i int) reg.VecPhysical { return []reg.VecPhysical{reg.X0, reg.X1, reg.X2}[i] }
func ymm(i int) reg.VecPhysical { return []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2}[i] }
func zmm(i int) reg.VecPhysical { return []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2}[i] }

// ops are the operations of the vector-file format; mul_add is the product
// rounded (and flushed) on its own, then the add.
var ops = []struct {
	name     string
	operands int
	body     func(u unit, a, b, c reg.VecPhysical) reg.VecPhysical // returns the result register
}{
	{"Mul", 2, func(u unit, a, b, _ reg.VecPhysical) reg.VecPhysical { u.mul(b, a); return a }},
	{"Add", 2, func(u unit, a, b, _ reg.VecPhysical) reg.VecPhysical { u.add(b, a); return a }},
	{"Div", 2, func(u unit, a, b, _ reg.VecPhysical) reg.VecPhysical { u.div(b, a); return a }},
	{"FMA", 3, func(u unit, a, b, c reg.VecPhysical) reg.VecPhysical { u.fma(a, b, c); return c }},
	{"MulAdd", 3, func(u unit, a, b, c reg.VecPhysical) reg.VecPhysical { u.mul(b, a); u.add(c, a); return a }},
}

func main() {
	ConstraintExpr("!purego")

	for _, u := range units {
		for _, op := range ops {
			probe(u, op.name, op.operands, op.body)
		}
	}

	TEXT("getMXCSR", NOSPLIT, "func() uint32")
	Doc("getMXCSR returns the calling thread's MXCSR (for tests).")
	m := AllocLocal(8)
	STMXCSR(m)
	r := GP32()
	MOVL(m, r)
	Store(r, ReturnIndex(0))
	RET()

	TEXT("setMXCSR", NOSPLIT, "func(v uint32)")
	Doc("setMXCSR loads v into the calling thread's MXCSR (for tests).")
	v, err := Param("v").Resolve()
	if err != nil {
		panic(err)
	}
	LDMXCSR(v.Addr)
	RET()

	Generate()
}

func probe(u unit, opName string, operands int, body func(u unit, a, b, c reg.VecPhysical) reg.VecPhysical) {
	name := fmt.Sprintf("probe%s%s", opName, u.name)
	TEXT(name, NOSPLIT, "func(mxcsr uint32, dst, a, b, c []float32)")
	Doc(fmt.Sprintf("%s runs %s on %d lane(s) at a time under mxcsr, restoring the caller's MXCSR.", name, opName, u.lanes))

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
	ra, rb, rc := u.reg(0), u.reg(1), u.reg(2)
	u.load(Mem{Base: pa, Index: i, Scale: 4}, ra)
	u.load(Mem{Base: pb, Index: i, Scale: 4}, rb)
	if operands == 3 {
		u.load(Mem{Base: pc, Index: i, Scale: 4}, rc)
	}
	res := body(u, ra, rb, rc)
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
