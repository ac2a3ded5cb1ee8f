//go:build !purego

package fpctl

// Get and Set read and load the calling thread's MXCSR.
func Get() uint64  { return uint64(MXCSR()) }
func Set(v uint64) { SetMXCSR(uint32(v)) }

// CallerValues are non-default MXCSR values a caller might hold:
// FTZ+DAZ, sticky exception flags, round toward zero. Exceptions stay
// masked, so the Go code between set and check cannot trap.
var CallerValues = []uint64{0x1F80 | 0x8040, 0x1F80 | 0x3F, 0x7F80 | 0x8040 | 0x21}

// Default is the Go ABI's MXCSR.
const Default = 0x1F80

// StatusBits are MXCSR's sticky exception flags, which ordinary Go
// float code sets; they are not part of the ABI's requirement.
const StatusBits = 0x3F
