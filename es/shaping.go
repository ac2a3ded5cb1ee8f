package es

import (
	"math"
	"sort"
)

// CenteredRanks maps fitness values to centered ranks in [-0.5, 0.5]: the
// lowest gets -0.5, the highest 0.5, evenly spaced in between, as in
// evolution-strategies-starter. Unlike the starter, tied values share the
// mean of their ranks, so the result does not depend on sort order, and NaN
// counts as the worst fitness. A single value gets rank 0.
func CenteredRanks(fitness []float64) []float64 {
	n := len(fitness)
	out := make([]float64, n)
	if n < 2 {
		return out
	}
	key := func(i int) float64 {
		if math.IsNaN(fitness[i]) {
			return math.Inf(-1)
		}
		return fitness[i]
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return key(idx[a]) < key(idx[b]) })
	for lo := 0; lo < n; {
		hi := lo + 1
		for hi < n && key(idx[hi]) == key(idx[lo]) {
			hi++
		}
		// Positions lo..hi-1 share their mean (lo+hi-1)/2: exact in float64.
		r := float64(lo+hi-1)/2/float64(n-1) - 0.5
		for _, i := range idx[lo:hi] {
			out[i] = r
		}
		lo = hi
	}
	return out
}
