package bench_test

// The FMA peak of this machine: a register-only loop of independent fused
// multiply-adds (bench.FMAPeakAVX2), on one goroutine and on one per core.
// The ES benchmarks give their product rate as a fraction of the
// threads=GOMAXPROCS figure of the same run:
//
//	go test -run '^$' -bench 'FMAPeak|ESGeneration' -benchtime 3x ./bench
//
// cpu-GFLOP/s divides by the CPU time the process used instead of the wall
// time: on a shared machine it is the rate while the loop held a core.

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/seed8b67a5e0/underflow/bench"
	"github.com/seed8b67a5e0/underflow/kernels"
)

// fmaPeakIters is one assembly call: about 2 ms on a 3 GHz core, short
// enough not to hold up the garbage collector.
const fmaPeakIters = 1 << 20

func BenchmarkFMAPeak(b *testing.B) {
	found := false
	for _, be := range kernels.AvailableBackends() {
		loop, flops := bench.FMAPeakLoop(be)
		if loop == nil {
			continue
		}
		found = true
		for _, threads := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("%s/threads=%d", be, threads), func(b *testing.B) {
				cpu0 := processCPU()
				b.ResetTimer()
				var wg sync.WaitGroup
				for t := 0; t < threads; t++ {
					wg.Go(func() {
						for i := 0; i < b.N; i++ {
							loop(fmaPeakIters)
						}
					})
				}
				wg.Wait()
				total := float64(flops) * fmaPeakIters * float64(b.N) * float64(threads)
				b.ReportMetric(total/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cpu := (processCPU() - cpu0).Seconds(); cpu > 0 {
					b.ReportMetric(total/cpu/1e9, "cpu-GFLOP/s")
				}
			})
		}
	}
	if !found {
		b.Skipf("no FMA peak loop for the backends of this build (%v)", kernels.AvailableBackends())
	}
}
