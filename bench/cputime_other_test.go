//go:build !linux

package bench_test

import "time"

// threadCPU: no per-thread CPU clock here; only wall-time figures are
// reported.
func threadCPU() (time.Duration, bool) { return 0, false }
