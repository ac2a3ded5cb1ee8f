//go:build !purego

package probe

// The arm64 probe table: the hand-written routines of probe_arm64.s, and the
// FPCR value of each environment this CPU honours.

import (
	"github.com/seed8b67a5e0/underflow/kernels"
	"github.com/seed8b67a5e0/underflow/kernels/internal/fpctl"
)

// Declarations of probe_arm64.s.
func probeMulScalar(fpcr uint64, dst, a, b, c []float32)
func probeAddScalar(fpcr uint64, dst, a, b, c []float32)
func probeDivScalar(fpcr uint64, dst, a, b, c []float32)
func probeFMAScalar(fpcr uint64, dst, a, b, c []float32)
func probeMulAddScalar(fpcr uint64, dst, a, b, c []float32)
func probeMulNEON(fpcr uint64, dst, a, b, c []float32)
func probeAddNEON(fpcr uint64, dst, a, b, c []float32)
func probeDivNEON(fpcr uint64, dst, a, b, c []float32)
func probeFMANEON(fpcr uint64, dst, a, b, c []float32)
func probeMulAddNEON(fpcr uint64, dst, a, b, c []float32)

// controlWord is the FPCR value for env: IEEE and ArmFZ everywhere, FTZDAZ
// with FEAT_AFP (fpctl.HasAFP, read from HWCAP2); x86's FTZ-only and DAZ-only have no Arm mode.
func controlWord(env kernels.Env) (uint64, bool) { return env.FPCR(fpctl.HasAFP) }

var probeUnits = func() []Unit {
	// FP and Advanced SIMD are mandatory in arm64 Linux userspace.
	scalar := Unit{Name: "scalar", Lanes: 1}
	scalar.fns = [numOps]probeFunc{
		OpMul: probeMulScalar, OpAdd: probeAddScalar, OpDiv: probeDivScalar,
		OpFMA: probeFMAScalar, OpMulAdd: probeMulAddScalar,
	}
	neon := Unit{Name: "neon", Lanes: 4}
	neon.fns = [numOps]probeFunc{
		OpMul: probeMulNEON, OpAdd: probeAddNEON, OpDiv: probeDivNEON,
		OpFMA: probeFMANEON, OpMulAdd: probeMulAddNEON,
	}
	return []Unit{scalar, neon}
}()

// Units lists the probe units this CPU has, narrowest first.
func Units() []Unit { return probeUnits }
