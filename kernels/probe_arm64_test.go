//go:build !purego

package kernels

// The caller's control register, for TestProbeRestoresControlRegister.
func controlRegister() uint64     { return getFPCR() }
func setControlRegister(v uint64) { setFPCR(v) }

// callerControlValues are non-default FPCR values a caller might hold:
// FZ, default-NaN, round toward zero (RMode 0b11), and half-precision AHP.
// No trap-enable bits, so the Go code between set and check cannot trap.
var callerControlValues = []uint64{1 << 24, 1<<25 | 1<<24, 3 << 22, 1<<26 | 1<<22}

// defaultControlValue is the Go ABI's FPCR.
const defaultControlValue = 0

// controlStatusBits: FPCR has no sticky flags (they live in FPSR).
const controlStatusBits = 0
