//go:build !purego

package probe

// The amd64 probe table: which generated routine (probe_gen_amd64.s) serves
// each operation on each unit, gated on the CPU's features.

import (
	"golang.org/x/sys/cpu"

	"github.com/seed8b67a5e0/underflow/kernels"
)

// controlWord is the MXCSR value for env. Every amd64 CPU has FTZ and DAZ
// (DAZ arrived with SSE2, which amd64 requires), so the four x86
// environments are all native; Arm's FZ has no x86 encoding.
func controlWord(env kernels.Env) (uint64, bool) {
	v, ok := env.MXCSR()
	return uint64(v), ok
}

// mx adapts a generated routine, which takes the 32-bit MXCSR, to probeFunc.
func mx(f func(mxcsr uint32, dst, a, b, c []float32)) probeFunc {
	return func(ctl uint64, dst, a, b, c []float32) { f(uint32(ctl), dst, a, b, c) }
}

// x86Unit builds a unit from its generated routines (mul, add, div, fma,
// mul_add); fma is left out where the CPU lacks FMA.
func x86Unit(name string, lanes int, fma bool, mul, add, div, fmaFn, mulAdd func(uint32, []float32, []float32, []float32, []float32)) Unit {
	u := Unit{Name: name, Lanes: lanes}
	u.fns[OpMul], u.fns[OpAdd], u.fns[OpDiv], u.fns[OpMulAdd] = mx(mul), mx(add), mx(div), mx(mulAdd)
	if fma {
		u.fns[OpFMA] = mx(fmaFn)
	}
	return u
}

var probeUnits = func() []Unit {
	// The scalar and SSE fma use VEX vfmadd231ss/ps, which need FMA; the
	// other scalar and SSE ops need only SSE2, part of amd64. The -mem units
	// take b (and mul_add's c) as memory operands, as the matrix kernels do.
	fma := cpu.X86.HasFMA
	units := []Unit{
		x86Unit("scalar", 1, fma, probeMulScalar, probeAddScalar, probeDivScalar, probeFMAScalar, probeMulAddScalar),
		x86Unit("sse", 4, fma, probeMulSSE, probeAddSSE, probeDivSSE, probeFMASSE, probeMulAddSSE),
	}
	if cpu.X86.HasAVX {
		units = append(units,
			x86Unit("avx", 8, fma, probeMulAVX, probeAddAVX, probeDivAVX, probeFMAAVX, probeMulAddAVX),
			x86Unit("avx-mem", 8, fma, probeMulAVXMem, probeAddAVXMem, probeDivAVXMem, probeFMAAVXMem, probeMulAddAVXMem))
	}
	// x/sys/cpu reports AVX512F only where the OS also saves the ZMM state.
	if cpu.X86.HasAVX512F {
		units = append(units,
			x86Unit("avx512", 16, true, probeMulAVX512, probeAddAVX512, probeDivAVX512, probeFMAAVX512, probeMulAddAVX512),
			x86Unit("avx512-mem", 16, true, probeMulAVX512Mem, probeAddAVX512Mem, probeDivAVX512Mem, probeFMAAVX512Mem, probeMulAddAVX512Mem))
	}
	return units
}()

// Units lists the probe units this CPU has, narrowest first.
func Units() []Unit { return probeUnits }
