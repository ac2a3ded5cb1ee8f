// Package kernels is underflow's float32 engine and its numeric contract:
// the denormal environments, the exact pure-Go reference arithmetic, and the
// matrix products and elementwise passes of every backend, dispatched so
// that each gives the reference's bits.
//
// The contract these files serve is ../shared/float-semantics.md. The
// hardware probes that check the reference against the CPU are in
// kernels/probe.
package kernels

import "fmt"

// Env is a denormal environment: whether subnormal inputs are read as zero,
// whether tiny results are flushed to zero, and when "tiny" is decided.
type Env uint8

// The five environments of the numeric contract. The names are a public
// contract: tooling outside the package uses them.
const (
	IEEE   Env = iota // gradual underflow; the Go ABI default
	FTZ               // x86 MXCSR.FTZ: outputs flushed, tininess after rounding
	DAZ               // x86 MXCSR.DAZ: subnormal inputs read as zero
	FTZDAZ            // x86 MXCSR.FTZ|DAZ (0x8040)
	ArmFZ             // Arm FPCR.FZ (AH=0): inputs zeroed, outputs flushed, tininess before rounding
)

// Envs lists every environment, in declaration order.
var Envs = []Env{IEEE, FTZ, DAZ, FTZDAZ, ArmFZ}

// String gives the environment's name in the vector-file format.
func (e Env) String() string {
	switch e {
	case IEEE:
		return "IEEE"
	case FTZ:
		return "FTZ"
	case DAZ:
		return "DAZ"
	case FTZDAZ:
		return "FTZ_DAZ"
	case ArmFZ:
		return "ARM_FZ"
	}
	return fmt.Sprintf("Env(%d)", uint8(e))
}

// ParseEnv reads an environment name as String writes it.
func ParseEnv(s string) (Env, error) {
	for _, e := range Envs {
		if e.String() == s {
			return e, nil
		}
	}
	return 0, fmt.Errorf("unknown denormal environment %q (want IEEE, FTZ, DAZ, FTZ_DAZ or ARM_FZ)", s)
}

// Valid reports whether e is one of the five environments.
func (e Env) Valid() bool { return e <= ArmFZ }

// ZeroesInputs reports whether subnormal operands are read as (signed) zero.
func (e Env) ZeroesInputs() bool { return e == DAZ || e == FTZDAZ || e == ArmFZ }

// FlushesOutputs reports whether tiny results are replaced by a signed zero.
func (e Env) FlushesOutputs() bool { return e == FTZ || e == FTZDAZ || e == ArmFZ }

// TinyBeforeRounding reports whether tininess is decided on the exact result
// (Arm) rather than on the result rounded with an unbounded exponent (x86).
func (e Env) TinyBeforeRounding() bool { return e == ArmFZ }

// MXCSR returns the MXCSR value an x86 kernel loads for e: the Go ABI default
// 0x1F80 (all exceptions masked, round to nearest) plus the FTZ (bit 15) and
// DAZ (bit 6) bits. ArmFZ has no x86 encoding; ok is false for it.
func (e Env) MXCSR() (v uint32, ok bool) {
	const base, ftz, daz = 0x1F80, 1 << 15, 1 << 6
	switch e {
	case IEEE:
		return base, true
	case FTZ:
		return base | ftz, true
	case DAZ:
		return base | daz, true
	case FTZDAZ:
		return base | ftz | daz, true
	}
	return 0, false
}

// FPCR returns the FPCR value an arm64 kernel loads for e: zero (the Go ABI
// default) plus FZ (bit 24) for ArmFZ, or AH (bit 1) + FIZ (bit 0) + FZ for
// the x86-like FTZDAZ that FEAT_AFP provides. ok is false for the x86-only
// environments FTZ and DAZ, which Arm cannot do.
func (e Env) FPCR(afp bool) (v uint64, ok bool) {
	const fz, ah, fiz = 1 << 24, 1 << 1, 1 << 0
	switch e {
	case IEEE:
		return 0, true
	case ArmFZ:
		return fz, true
	case FTZDAZ:
		if afp {
			return fz | ah | fiz, true
		}
	}
	return 0, false
}
