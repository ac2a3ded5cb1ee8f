//go:build !purego

package fpctl

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// FPCR and SetFPCR read and write the calling thread's FPCR (fpctl_arm64.s).
func FPCR() uint64
func SetFPCR(v uint64)

// Get and Set read and load the calling thread's FPCR.
func Get() uint64  { return FPCR() }
func Set(v uint64) { SetFPCR(v) }

// CallerValues are non-default FPCR values a caller might hold:
// FZ, default-NaN, round toward zero (RMode 0b11), and half-precision AHP.
// No trap-enable bits, so the Go code between set and check cannot trap.
var CallerValues = []uint64{1 << 24, 1<<25 | 1<<24, 3 << 22, 1<<26 | 1<<22}

// Default is the Go ABI's FPCR.
const Default = 0

// StatusBits: FPCR has no sticky flags (they live in FPSR).
const StatusBits = 0

// HasAFP reports FEAT_AFP (FPCR.AH/FIZ), which Linux announces as HWCAP2_AFP.
// With it, FPCR AH|FIZ|FZ gives the x86 FTZ+DAZ results; without it that
// environment has no Arm mode.
var HasAFP = func() bool {
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
