//go:build openblas

package bench_test

// Our product and OpenBLAS's sgemm side by side, one thread each, run
// alternately inside one benchmark so that machine noise hits both alike:
//
//	OPENBLAS_NUM_THREADS=1 go test -tags openblas -run '^$' -bench MatMulVsOpenBLAS -count 3 ./bench
//
// Reported: ours-GFLOP/s (default backend, IEEE, normal inputs),
// openblas-GFLOP/s and ratio = ours / OpenBLAS, from wall time; and the same
// three from the thread's CPU time (cpu-*), which time slices lost to other
// processes on a shared machine do not inflate.

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/seed8b67a5e0/underflow/bench"
	"github.com/seed8b67a5e0/underflow/kernels"
)

func BenchmarkMatMulVsOpenBLAS(b *testing.B) {
	b.Logf("ours: backend %s; OpenBLAS core %s", kernels.Backend(), bench.OpenBLASCore())
	for _, s := range mmShapes {
		b.Run(fmt.Sprintf("%s/%s", kernels.Backend(), s), func(b *testing.B) {
			a, bm := mmInputs(s, "normal")
			dst := make([]float32, s.m*s.n)
			kernels.MatMul(kernels.IEEE, dst, a, bm, s.m, s.k, s.n)
			bench.OpenBLASSgemm(dst, a, bm, s.m, s.k, s.n)
			runtime.LockOSThread() // both run on this thread: its CPU time is theirs
			defer runtime.UnlockOSThread()
			var ours, theirs, oursCPU, theirsCPU time.Duration
			for b.Loop() {
				t0, c0 := time.Now(), cpuNow()
				kernels.MatMul(kernels.IEEE, dst, a, bm, s.m, s.k, s.n)
				t1, c1 := time.Now(), cpuNow()
				bench.OpenBLASSgemm(dst, a, bm, s.m, s.k, s.n)
				t2, c2 := time.Now(), cpuNow()
				ours += t1.Sub(t0)
				theirs += t2.Sub(t1)
				oursCPU += c1 - c0
				theirsCPU += c2 - c1
			}
			flop := 2 * float64(s.m) * float64(s.k) * float64(s.n) * float64(b.N)
			b.ReportMetric(flop/ours.Seconds()/1e9, "ours-GFLOP/s")
			b.ReportMetric(flop/theirs.Seconds()/1e9, "openblas-GFLOP/s")
			b.ReportMetric(theirs.Seconds()/ours.Seconds(), "ratio")
			b.ReportMetric(flop/oursCPU.Seconds()/1e9, "ours-cpu-GFLOP/s")
			b.ReportMetric(flop/theirsCPU.Seconds()/1e9, "openblas-cpu-GFLOP/s")
			b.ReportMetric(theirsCPU.Seconds()/oursCPU.Seconds(), "cpu-ratio")
		})
	}
}

func cpuNow() time.Duration {
	t, _ := threadCPU()
	return t
}
