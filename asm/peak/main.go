// Command peak generates the register-only FMA loops of package bench: the
// rate of fused multiply-adds one core can issue when nothing else limits
// it (no loads, no stores, enough independent chains to hide the latency).
// The ES benchmarks state their product rate as a fraction of this peak,
// measured in the same run, because on a shared machine an absolute figure
// from another run means little.
//
// Each loop iteration runs one VFMADD231PS on each of 12 accumulators:
// Zen 3 and most Intel cores issue two FMAs a cycle with a latency of 4 or
// 5 cycles, so 12 independent chains keep both pipes busy. The operands are
// zeros, so no value ever becomes subnormal (no denormal penalty on any
// CPU) and the result is never used.
package main

//go:generate go run . -out ../../bench/fmapeak_gen_amd64.s -stubs ../../bench/fmapeak_gen_amd64.go -pkg bench

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// chains is the number of independent accumulators.
const chains = 12

func main() {
	ConstraintExpr("!purego")
	ymm := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7,
		reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13}
	zmm := []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7,
		reg.Z8, reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13}
	gen("FMAPeakAVX2", "AVX2+FMA (ymm, 8 lanes)", 8, ymm)
	gen("FMAPeakAVX512", "AVX-512F (zmm, 16 lanes)", 16, zmm)
	Generate()
}

// gen generates name(iters int): iters iterations of chains fused
// multiply-adds on lanes-wide registers.
func gen(name, isa string, lanes int, vec []reg.VecPhysical) {
	TEXT(name, NOSPLIT, "func(iters int)")
	Doc(
		fmt.Sprintf("%s runs iters iterations of %d independent %s fused", name, chains, isa),
		fmt.Sprintf("multiply-adds on zeros: %d flops per iteration, no memory traffic.", 2*chains*lanes),
		"Requires iters >= 1.",
	)
	n := Load(Param("iters"), GP64())
	for _, v := range vec {
		VXORPS(v, v, v)
	}
	mul1, mul2 := vec[chains], vec[chains+1]
	Label(name + "_loop")
	for c := 0; c < chains; c++ {
		VFMADD231PS(mul1, mul2, vec[c])
	}
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	VZEROUPPER()
	RET()
}
