//go:build !purego

package kernels

import (
	"runtime"

	"github.com/klauspost/cpuid/v2"
)

// The amd64 micro-kernels (generated: matmul_gen_amd64.s) and their blocking.
// The tile comes from the generator (matmulTile*), never restated here.
// kc keeps a packed B panel (kc×nr floats: 16 KiB for AVX2, 24 KiB for
// AVX-512) in a 32 KiB L1; mc bounds one assembly call to about half a
// million fused multiply-adds.
var (
	avx2Kernel = newAMD64Kernel(matmulTileAVX2, 256, 120, matmulKernelAVX2, matmulKernelAVX2Cols,
		copyRowsAVX2, perturbBlockAVX2, perturbPairBlockAVX2, transposeRowsAVX2)
	avx512Kernel = newAMD64Kernel(matmulTileAVX512, 192, 120, matmulKernelAVX512, matmulKernelAVX512Cols,
		copyRowsAVX512, perturbBlockAVX512, perturbPairBlockAVX512, transposeRowsAVX512)
)

type kernelFunc = func(a, b, c *float32, kc, lda, ldc, mtiles int, mode uint32)

// newAMD64Kernel assembles one generated family: mc is rounded down to
// whole tiles.
func newAMD64Kernel(tile func() (mr, nr int), kc, mc int, run, runCols kernelFunc,
	copyRows func(dst, src *float32, kb, rs int), perturbBlock func(dst, theta, eps *float32, kb, panels, rs int, s float32),
	perturbPairBlock func(dst, dstMinus, theta, eps *float32, kb, panels, rs int, s, sMinus float32),
	transposeRows func(dst, src *float32, groups, cs int)) *microKernel {
	mr, nr := tile()
	return &microKernel{mr: mr, nr: nr, kc: kc, mc: mc / mr * mr, nc: 1024,
		run: run, runCols: runCols, copyRows: copyRows, perturbBlock: perturbBlock, perturbPairBlock: perturbPairBlock, transposeRows: transposeRows,
		// The small shapes are vector-width agnostic ymm/xmm code, the
		// same for every family.
		shortK: matmulShortKAVX2, narrow: matmulNarrowAVX2}
}

// x86 kernels do IEEE, FTZ, DAZ and FTZ+DAZ through MXCSR; ARM_FZ (tininess
// before rounding) has no x86 mode and goes to the reference.
func mxcsrMode(env Env) (uint32, bool) { return env.MXCSR() }

var (
	avx2Backend = &backend{name: "avx2", kern: avx2Kernel, envMode: mxcsrMode,
		biasAdd: biasAddRowsAVX, biasAddScale: biasAddScaleRowsAVX, addScaled: addScaledAVX, weightedSum: weightedSumAVX,
		adam: adamAVX, adamDecay: adamDecayAVX}
	// The elementwise passes and Adam are memory-bound or bound by the
	// divider: the ymm kernels serve AVX-512 too.
	avx512Backend = &backend{name: "avx512", kern: avx512Kernel, envMode: mxcsrMode,
		biasAdd: biasAddRowsAVX, biasAddScale: biasAddScaleRowsAVX, addScaled: addScaledAVX, weightedSum: weightedSumAVX,
		adam: adamAVX, adamDecay: adamDecayAVX}
)

// simdBackends lists the SIMD backends this CPU and OS can run, fastest
// first. cpuid reports AVX-512 only with OS support for its state. On darwin
// the OS enables AVX-512 state lazily, so it is opt-in there: only
// UNDERFLOW_BACKEND=avx512 selects it (selectBackend checks the forced name
// against this list, so it stays listed second).
func simdBackends() []*backend {
	var bs []*backend
	hasAVX2 := cpuid.CPU.Supports(cpuid.AVX, cpuid.AVX2, cpuid.FMA3)
	if hasAVX2 && cpuid.CPU.Supports(cpuid.AVX512F) {
		bs = append(bs, avx512Backend)
	}
	if hasAVX2 {
		bs = append(bs, avx2Backend)
	}
	if runtime.GOOS == "darwin" && len(bs) == 2 {
		bs[0], bs[1] = bs[1], bs[0]
	}
	return bs
}
