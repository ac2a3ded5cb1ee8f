//go:build !purego

package bench

// FMAPeakLoop returns the register-only FMA loop of the named backend and
// the flops one of its iterations does, or nil when there is none.
func FMAPeakLoop(backend string) (loop func(iters int), flopsPerIter int) {
	switch backend {
	case "avx2":
		return FMAPeakAVX2, 192
	case "avx512":
		return FMAPeakAVX512, 384
	}
	return nil, 0
}
