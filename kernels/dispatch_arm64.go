//go:build !purego

package kernels

import "github.com/seed8b67a5e0/underflow/kernels/internal/fpctl"

// The NEON kernel (hand-written: matmul_neon_arm64.s) and its blocking.
var neonKernel = &microKernel{mr: 8, nr: 8, kc: 256, mc: 128, nc: 1024, run: matmulKernelNEON}

// fpcrMode: NEON runs IEEE and ARM_FZ, and FTZ+DAZ with FEAT_AFP; x86 FTZ
// alone and DAZ alone have no Arm mode and go to the reference.
func fpcrMode(env Env) (uint32, bool) {
	v, ok := env.FPCR(fpctl.HasAFP)
	return uint32(v), ok
}

var neonBackend = &backend{name: "neon", kern: neonKernel, envMode: fpcrMode}

// simdBackends: every arm64 CPU has Advanced SIMD (NEON).
func simdBackends() []*backend { return []*backend{neonBackend} }
