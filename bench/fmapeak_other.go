//go:build purego || !amd64

package bench

// FMAPeakLoop returns the register-only FMA loop of the named backend and
// the flops one of its iterations does, or nil when there is none (no loop
// is written for this build).
func FMAPeakLoop(backend string) (loop func(iters int), flopsPerIter int) { return nil, 0 }
