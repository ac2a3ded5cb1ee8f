package probe

import (
	"math"
	"testing"

	"github.com/seed8b67a5e0/underflow/kernels"
)

// FuzzScalarOps compares every unit of the hardware with the reference, in
// every environment the CPU honours, for every operation on the fuzzed
// operand bits. Run it with `go test -fuzz FuzzScalarOps ./kernels/probe`.
func FuzzScalarOps(f *testing.F) {
	for _, e := range EdgeCases() {
		f.Add(e.A, e.B, e.C)
	}
	f.Fuzz(func(t *testing.T, ab, bb, cb uint32) {
		envs := HardwareEnvs()
		a, b, c := math.Float32frombits(ab), math.Float32frombits(bb), math.Float32frombits(cb)
		for _, u := range Units() {
			la, lb, lc, dst := make([]float32, u.Lanes), make([]float32, u.Lanes), make([]float32, u.Lanes), make([]float32, u.Lanes)
			for i := range la {
				la[i], lb[i], lc[i] = a, b, c
			}
			for _, env := range envs {
				for _, op := range Ops {
					if !u.Has(op) {
						continue
					}
					if err := u.Run(env, op, dst, la, lb, lc); err != nil {
						t.Fatal(err)
					}
					want := op.Reference(env, a, b, c)
					for i, got := range dst {
						if !kernels.SameResult(got, want) {
							t.Fatalf("%s lane %d %v %v(%08x, %08x, %08x): hardware %08x, reference %08x",
								u.Name, i, env, op, ab, bb, cb, math.Float32bits(got), math.Float32bits(want))
						}
					}
				}
			}
		}
	})
}
