//go:build (amd64 || arm64) && !purego

package kernels

import (
	"math"
	"runtime"
	"testing"

	"github.com/seed8b67a5e0/underflow/kernels/internal/fpctl"
)

// TestElementwiseRestoresControlRegister proves that the elementwise
// assembly kernels restore the caller's MXCSR/FPCR, whatever it was: each
// caller's value comes back, and the result is the environment's, not the
// caller's. The register belongs to the OS thread, so the test locks its
// goroutine to one. (The portable loops are plain Go, which
// like all Go code assumes the ABI's default control register.)
func TestElementwiseRestoresControlRegister(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer fpctl.Set(fpctl.Default)
	src := make([]float32, 24) // a vector and a tail
	for i := range src {
		src[i] = 0x1p-127 // + 0 stays subnormal in IEEE; ·2 is 2^-126
	}
	bias := make([]float32, 12)
	dst := make([]float32, len(src))
	for _, be := range testBackends() {
		if be.biasAdd == nil {
			continue
		}
		for _, caller := range fpctl.CallerValues {
			for _, env := range Envs {
				if _, ok := be.elementwiseMode(env); !ok {
					continue // the portable loops serve it
				}
				for _, op := range []string{"BiasAdd", "BiasAddScale", "AddScaled"} {
					fpctl.Set(caller)
					withBackend(be, func() {
						switch op {
						case "BiasAdd":
							BiasAdd(env, dst, src, bias, 2, 12)
						case "BiasAddScale":
							BiasAddScale(env, dst, src, bias, 2, 12, 1)
						default:
							AddScaled(env, dst, src, src, 0) // x + 0·x
						}
					})
					got := fpctl.Get()
					fpctl.Set(fpctl.Default)
					if got != caller {
						t.Fatalf("%s %v %s: caller's control register %#x came back as %#x", be.name, env, op, caller, got)
					}
					for i, x := range dst {
						want := Add(env, src[i], 0)
						if op == "BiasAddScale" {
							want = Mul(env, want, 2)
						}
						if !SameResult(x, want) {
							t.Fatalf("%s %v %s under caller %#x: element %d = %08x, want %08x",
								be.name, env, op, caller, i, math.Float32bits(x), math.Float32bits(want))
						}
					}
				}
			}
		}
	}
}
