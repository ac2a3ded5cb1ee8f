//go:build !purego

package kernels

import "github.com/klauspost/cpuid/v2"

// The AVX-512 kernel cannot run on a CPU without AVX-512. Its generator code
// is shared with the AVX2 kernels, and matmulKernelAVX2x14 uses the AVX-512
// tile's 14 rows, so running that twin here covers the AVX-512 kernel's row
// addressing, tile loop and blocking with everything but the register width.
func init() {
	if cpuid.CPU.Supports(cpuid.AVX, cpuid.AVX2, cpuid.FMA3) {
		twin := &microKernel{mr: 14, nr: 8, kc: 256, mc: 112, nc: 1024, run: matmulKernelAVX2x14}
		extraTestBackends = append(extraTestBackends, &backend{name: "avx2x14-twin", kern: twin, envMode: mxcsrMode})
	}
}
