//go:build (amd64 || arm64) && !purego

package probe

import (
	"math"
	"runtime"
	"testing"

	"github.com/seed8b67a5e0/underflow/kernels"
	"github.com/seed8b67a5e0/underflow/kernels/internal/fpctl"
)

// TestProbeRestoresControlRegister proves that every probe restores the
// caller's MXCSR/FPCR, whatever it was, and runs under its own environment
// rather than the caller's. The register belongs to the OS thread, so the
// test locks its goroutine to one.
func TestProbeRestoresControlRegister(t *testing.T) {
	envs := hwEnvs(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if got := fpctl.Get() &^ fpctl.StatusBits; got != fpctl.Default {
		t.Fatalf("control register at start is %#x, want the ABI default %#x", got, fpctl.Default)
	}
	defer fpctl.Set(fpctl.Default)

	// mul(2^-127, 1): IEEE keeps the subnormal, so a probe that inherited
	// the caller's FTZ/DAZ or rounding would show it.
	a, b, c := []float32{0x1p-127}, []float32{1}, []float32{0}
	runs := 0
	for _, u := range Units() {
		la, lb, lc, dst := make([]float32, u.Lanes), make([]float32, u.Lanes), make([]float32, u.Lanes), make([]float32, u.Lanes)
		for i := range la {
			la[i], lb[i], lc[i] = a[0], b[0], c[0]
		}
		for _, caller := range fpctl.CallerValues {
			for _, env := range envs {
				for _, op := range Ops {
					if !u.Has(op) {
						continue
					}
					fpctl.Set(caller)
					err := u.Run(env, op, dst, la, lb, lc)
					got := fpctl.Get()
					fpctl.Set(fpctl.Default)
					if err != nil {
						t.Fatal(err)
					}
					if got != caller {
						t.Fatalf("%s %v %v: caller's control register %#x came back as %#x", u.Name, env, op, caller, got)
					}
					if want := op.Reference(env, la[0], lb[0], lc[0]); !kernels.SameResult(dst[0], want) {
						t.Fatalf("%s %v %v under caller %#x: %08x, want %08x (the probe did not set its own environment)",
							u.Name, env, op, caller, math.Float32bits(dst[0]), math.Float32bits(want))
					}
					runs++
				}
			}
		}
	}
	t.Logf("%d probe runs restored the caller's control register", runs)
}
