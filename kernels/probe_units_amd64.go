//go:build !purego

package kernels

// The amd64 probe table: which generated routine (probe_amd64.s) serves
// each operation on each unit, gated on the CPU's features.

import "golang.org/x/sys/cpu"

// controlWord is the MXCSR value for env. Every amd64 CPU has FTZ and DAZ
// (DAZ arrived with SSE2, which amd64 requires), so the four x86
// environments are all native; Arm's FZ has no x86 encoding.
func controlWord(env Env) (uint64, bool) {
	v, ok := env.MXCSR()
	return uint64(v), ok
}

// mx adapts a generated routine, which takes the 32-bit MXCSR, to probeFunc.
func mx(f func(mxcsr uint32, dst, a, b, c []float32)) probeFunc {
	return func(ctl uint64, dst, a, b, c []float32) { f(uint32(ctl), dst, a, b, c) }
}

var probeUnits = func() []ProbeUnit {
	// The scalar and SSE fma use VEX vfmadd231ss/ps, which need FMA; the
	// other scalar and SSE ops need only SSE2, part of amd64.
	fma := cpu.X86.HasFMA
	scalar := ProbeUnit{Name: "scalar", Lanes: 1}
	scalar.fns[OpMul] = mx(probeMulScalar)
	scalar.fns[OpAdd] = mx(probeAddScalar)
	scalar.fns[OpDiv] = mx(probeDivScalar)
	scalar.fns[OpMulAdd] = mx(probeMulAddScalar)
	sse := ProbeUnit{Name: "sse", Lanes: 4}
	sse.fns[OpMul] = mx(probeMulSSE)
	sse.fns[OpAdd] = mx(probeAddSSE)
	sse.fns[OpDiv] = mx(probeDivSSE)
	sse.fns[OpMulAdd] = mx(probeMulAddSSE)
	if fma {
		scalar.fns[OpFMA] = mx(probeFMAScalar)
		sse.fns[OpFMA] = mx(probeFMASSE)
	}
	units := []ProbeUnit{scalar, sse}
	if cpu.X86.HasAVX {
		avx := ProbeUnit{Name: "avx", Lanes: 8}
		avx.fns[OpMul] = mx(probeMulAVX)
		avx.fns[OpAdd] = mx(probeAddAVX)
		avx.fns[OpDiv] = mx(probeDivAVX)
		avx.fns[OpMulAdd] = mx(probeMulAddAVX)
		if fma {
			avx.fns[OpFMA] = mx(probeFMAAVX)
		}
		units = append(units, avx)
	}
	// x/sys/cpu reports AVX512F only where the OS also saves the ZMM state.
	if cpu.X86.HasAVX512F {
		z := ProbeUnit{Name: "avx512", Lanes: 16}
		z.fns[OpMul] = mx(probeMulAVX512)
		z.fns[OpAdd] = mx(probeAddAVX512)
		z.fns[OpDiv] = mx(probeDivAVX512)
		z.fns[OpMulAdd] = mx(probeMulAddAVX512)
		z.fns[OpFMA] = mx(probeFMAAVX512)
		units = append(units, z)
	}
	return units
}()

// ProbeUnits lists the probe units this CPU has, narrowest first.
func ProbeUnits() []ProbeUnit { return probeUnits }
