//go:build !purego

package kernels

import (
	"runtime"

	"github.com/klauspost/cpuid/v2"
)

// The amd64 micro-kernels (generated: matmul_gen_amd64.s) and their blocking.
// kc keeps a packed B panel (kc×nr floats: 16 KiB for AVX2, 24 KiB for
// AVX-512) in a 32 KiB L1; mc bounds one assembly call to about half a
// million fused multiply-adds.
var (
	avx2Kernel   = &microKernel{mr: 6, nr: 16, kc: 256, mc: 120, nc: 1024, run: matmulKernelAVX2, runCols: matmulKernelAVX2Cols, copyRows: copyRows16AVX, transposeRows: transposeRows16AVX}
	avx512Kernel = &microKernel{mr: 14, nr: 32, kc: 192, mc: 112, nc: 1024, run: matmulKernelAVX512, runCols: matmulKernelAVX512Cols, copyRows: copyRows32AVX, transposeRows: transposeRows32AVX}
)

// x86 kernels do IEEE, FTZ, DAZ and FTZ+DAZ through MXCSR; ARM_FZ (tininess
// before rounding) has no x86 mode and goes to the reference.
func mxcsrMode(env Env) (uint32, bool) { return env.MXCSR() }

var (
	avx2Backend   = &backend{name: "avx2", kern: avx2Kernel, envMode: mxcsrMode}
	avx512Backend = &backend{name: "avx512", kern: avx512Kernel, envMode: mxcsrMode}
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
