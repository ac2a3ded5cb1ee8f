// Package parallel splits an index range over goroutines, for the network's
// trainers and Adam, whose work is elementwise or per example so the split
// never changes the bits.
package parallel

import "sync"

// Range runs fn over [0, n) split into up to workers contiguous
// ranges, one goroutine each, and waits.
func Range(n, workers int, fn func(lo, hi int)) {
	workers = max(1, min(workers, n/8))
	if workers == 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
