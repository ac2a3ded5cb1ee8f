//go:build !purego

package kernels

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// The NEON kernel (hand-written: matmul_neon_arm64.s) and its blocking.
var neonKernel = &microKernel{mr: 8, nr: 8, kc: 256, mc: 128, nc: 1024, run: matmulKernelNEON}

// hasAFP reports FEAT_AFP (FPCR.AH/FIZ), which Linux announces as HWCAP2_AFP.
// With it, FPCR AH|FIZ|FZ gives the x86 FTZ+DAZ results; without it that
// environment has no Arm mode.
var hasAFP = func() bool {
	if runtime.GOOS != "linux" {
		return false
	}
	const atHWCAP2, hwcap2AFP = 26, 1 << 20
	auxv, err := unix.Auxv()
	if err != nil {
		return false
	}
	for _, kv := range auxv {
		if kv[0] == atHWCAP2 {
			return kv[1]&hwcap2AFP != 0
		}
	}
	return false
}()

// fpcrMode: NEON runs IEEE and ARM_FZ, and FTZ+DAZ with FEAT_AFP; x86 FTZ
// alone and DAZ alone have no Arm mode and go to the reference.
func fpcrMode(env Env) (uint32, bool) {
	v, ok := env.FPCR(hasAFP)
	return uint32(v), ok
}

var neonBackend = &backend{name: "neon", kern: neonKernel, envMode: fpcrMode}

// simdBackends: every arm64 CPU has Advanced SIMD (NEON).
func simdBackends() []*backend { return []*backend{neonBackend} }
