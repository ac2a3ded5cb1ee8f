//go:build (amd64 || arm64) && !purego

package kernels

import (
	"math"
	"runtime"
	"testing"
)

// TestProbeRestoresControlRegister proves that every probe restores the
// caller's MXCSR/FPCR, whatever it was, and runs under its own environment
// rather than the caller's. The register belongs to the OS thread, so the
// test locks its goroutine to one.
func TestProbeRestoresControlRegister(t *testing.T) {
	envs := hwEnvs(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if got := controlRegister() &^ controlStatusBits; got != defaultControlValue {
		t.Fatalf("control register at start is %#x, want the ABI default %#x", got, defaultControlValue)
	}
	defer setControlRegister(defaultControlValue)

	// mul(2^-127, 1): IEEE keeps the subnormal, so a probe that inherited
	// the caller's FTZ/DAZ or rounding would show it.
	a, b, c := []float32{0x1p-127}, []float32{1}, []float32{0}
	runs := 0
	for _, u := range ProbeUnits() {
		la, lb, lc, dst := make([]float32, u.Lanes), make([]float32, u.Lanes), make([]float32, u.Lanes), make([]float32, u.Lanes)
		for i := range la {
			la[i], lb[i], lc[i] = a[0], b[0], c[0]
		}
		for _, caller := range callerControlValues {
			for _, env := range envs {
				for _, op := range Ops {
					if !u.Has(op) {
						continue
					}
					setControlRegister(caller)
					err := u.Run(env, op, dst, la, lb, lc)
					got := controlRegister()
					setControlRegister(defaultControlValue)
					if err != nil {
						t.Fatal(err)
					}
					if got != caller {
						t.Fatalf("%s %v %v: caller's control register %#x came back as %#x", u.Name, env, op, caller, got)
					}
					if want := op.Reference(env, la[0], lb[0], lc[0]); !SameResult(dst[0], want) {
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

// TestElementwiseRestoresControlRegister does the same for the elementwise
// assembly kernels: each caller's value comes back, and the result is the
// environment's, not the caller's. (The portable loops are plain Go, which
// like all Go code assumes the ABI's default control register.)
func TestElementwiseRestoresControlRegister(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer setControlRegister(defaultControlValue)
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
		for _, caller := range callerControlValues {
			for _, env := range Envs {
				if _, ok := be.elementwiseMode(env); !ok {
					continue // the portable loops serve it
				}
				for _, op := range []string{"BiasAdd", "BiasAddScale", "AddScaled"} {
					setControlRegister(caller)
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
					got := controlRegister()
					setControlRegister(defaultControlValue)
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
