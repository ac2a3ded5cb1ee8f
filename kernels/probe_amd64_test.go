//go:build !purego

package kernels

// The caller's control register, for TestProbeRestoresControlRegister.
func controlRegister() uint64     { return uint64(getMXCSR()) }
func setControlRegister(v uint64) { setMXCSR(uint32(v)) }

// callerControlValues are non-default MXCSR values a caller might hold:
// FTZ+DAZ, sticky exception flags, round toward zero. Exceptions stay
// masked, so the Go code between set and check cannot trap.
var callerControlValues = []uint64{0x1F80 | 0x8040, 0x1F80 | 0x3F, 0x7F80 | 0x8040 | 0x21}

// defaultControlValue is the Go ABI's MXCSR.
const defaultControlValue = 0x1F80

// controlStatusBits are MXCSR's sticky exception flags, which ordinary Go
// float code sets; they are not part of the ABI's requirement.
const controlStatusBits = 0x3F
