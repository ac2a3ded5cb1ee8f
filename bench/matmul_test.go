package bench_test

// Matrix-product throughput per backend, environment and input range:
//
//	go test -run '^$' -bench 'MatMul/' -count 5 ./bench | tee new.txt; benchstat new.txt
//
// Shapes are the network's (m = 100 and 1000 rows against 784×512, 512×512
// and 512×10) and 1024³. The purego backend runs only the m = 100 shapes:
// it is the exact scalar reference, about three orders of magnitude slower.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/seed8b67a5e0/underflow/kernels"
)

type mmShape struct{ m, k, n int }

var mmShapes = []mmShape{
	{100, 784, 512}, {100, 512, 512}, {100, 512, 10},
	{1000, 784, 512}, {1000, 512, 512}, {1000, 512, 10},
	{1024, 1024, 1024},
}

func (s mmShape) String() string { return fmt.Sprintf("%dx%dx%d", s.m, s.k, s.n) }

// mmInputs gives a (m×k) and b (k×n). "normal": entries of order 1.
// "subnormal": a near 2^-120 and b of order 2^-8, so most products and
// partial sums lie in the subnormal band, as in the network's second layer.
func mmInputs(s mmShape, inputs string) (a, b []float32) {
	r := rand.New(rand.NewPCG(uint64(s.m), uint64(s.n)))
	scaleA, scaleB := 1.0, 1.0
	if inputs == "subnormal" {
		scaleA, scaleB = math.Ldexp(1, -120), math.Ldexp(1, -8)
	}
	a = make([]float32, s.m*s.k)
	for i := range a {
		a[i] = float32(r.NormFloat64() * scaleA)
	}
	b = make([]float32, s.k*s.n)
	for i := range b {
		b[i] = float32(r.NormFloat64() * scaleB)
	}
	return a, b
}

func gflops(b *testing.B, s mmShape) {
	b.ReportMetric(2*float64(s.m)*float64(s.k)*float64(s.n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// cpuClock measures the benchmark goroutine's thread CPU time, for
// single-threaded products: on a machine shared with other work, time
// slices lost to other processes inflate wall time but not CPU time.
type cpuClock struct {
	start time.Duration
	ok    bool
}

func startCPUClock(b *testing.B) *cpuClock {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	t, ok := threadCPU()
	return &cpuClock{t, ok}
}

// report adds cpu-GFLOP/s where the OS gives thread CPU time.
func (c *cpuClock) report(b *testing.B, s mmShape) {
	if t, ok := threadCPU(); ok && c.ok && t > c.start {
		b.ReportMetric(2*float64(s.m)*float64(s.k)*float64(s.n)*float64(b.N)/(t-c.start).Seconds()/1e9, "cpu-GFLOP/s")
	}
}

func BenchmarkMatMul(b *testing.B) {
	for _, backend := range kernels.AvailableBackends() {
		for _, env := range []kernels.Env{kernels.IEEE, kernels.FTZDAZ} {
			for _, inputs := range []string{"normal", "subnormal"} {
				for _, s := range mmShapes {
					if backend == "purego" && s.m > 100 {
						continue
					}
					b.Run(fmt.Sprintf("%s/%s/%s/%s", backend, env, inputs, s), func(b *testing.B) {
						if err := kernels.SetBackend(backend); err != nil {
							b.Fatal(err)
						}
						defer kernels.SetBackend(kernels.AvailableBackends()[0])
						if !kernels.Native(env) {
							b.Fatalf("backend %s does not run %s natively", backend, env)
						}
						a, bm := mmInputs(s, inputs)
						dst := make([]float32, s.m*s.n)
						kernels.MatMul(env, dst, a, bm, s.m, s.k, s.n)
						clock := startCPUClock(b)
						for b.Loop() {
							kernels.MatMul(env, dst, a, bm, s.m, s.k, s.n)
						}
						gflops(b, s)
						clock.report(b, s)
					})
				}
			}
		}
	}
}

// BenchmarkMatMulParallel: the parallel form at m = 1000 on 1 and 2
// goroutines, default backend, IEEE.
func BenchmarkMatMulParallel(b *testing.B) {
	benchParallel(b, []mmShape{{1000, 784, 512}, {1000, 512, 512}, {1000, 512, 10}})
}

// BenchmarkMatMulParallelBatch: the parallel form at the trainer's batch
// sizes (100 and 200 rows), where the split decides how much of B each
// goroutine packs; cpu-GFLOP/s (process CPU time) shows work a split
// duplicates even on a busy machine.
func BenchmarkMatMulParallelBatch(b *testing.B) {
	benchParallel(b, []mmShape{{100, 784, 512}, {100, 512, 512}, {200, 784, 512}, {200, 512, 512}})
}

// benchParallel runs MatMulParallel on each shape with 1 and 2 threads.
func benchParallel(b *testing.B, shapes []mmShape) {
	for _, s := range shapes {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/%s/threads=%d", kernels.Backend(), s, threads), func(b *testing.B) {
				a, bm := mmInputs(s, "normal")
				dst := make([]float32, s.m*s.n)
				cpu0 := processCPU()
				for b.Loop() {
					kernels.MatMulParallel(kernels.IEEE, dst, a, bm, s.m, s.k, s.n, threads)
				}
				gflops(b, s)
				if cpu := (processCPU() - cpu0).Seconds(); cpu > 0 {
					b.ReportMetric(2*float64(s.m)*float64(s.k)*float64(s.n)*float64(b.N)/cpu/1e9, "cpu-GFLOP/s")
				}
			})
		}
	}
}

// BenchmarkMatMulParallelRows: the thinnest network shape, k×n = 512×10,
// on 1 and 2 threads as m grows, to see where the parallel form's loss on
// it comes from (a fixed hand-off cost would fade as m grows).
func BenchmarkMatMulParallelRows(b *testing.B) {
	var shapes []mmShape
	for _, m := range []int{500, 1000, 2000, 4000, 10000} {
		shapes = append(shapes, mmShape{m, 512, 10})
	}
	benchParallel(b, shapes)
}

// BenchmarkMatMulTrans: the transposed forms backprop uses, at the
// network's shapes with a batch of 100 (default backend, IEEE):
// dW = Xᵀ·dY (TransA, a stored batch×fan_in) and dX = dY·Wᵀ (TransB, b
// stored fan_in×fan_out).
func BenchmarkMatMulTrans(b *testing.B) {
	for _, tc := range []struct {
		form    string
		m, k, n int
	}{
		{"TransA", 784, 100, 512}, {"TransA", 512, 100, 512}, {"TransA", 512, 100, 10},
		{"TransB", 100, 512, 784}, {"TransB", 100, 512, 512}, {"TransB", 100, 10, 512},
	} {
		s := mmShape{tc.m, tc.k, tc.n}
		b.Run(fmt.Sprintf("%s/%s/%s", kernels.Backend(), tc.form, s), func(b *testing.B) {
			a, bm := mmInputs(s, "normal")
			dst := make([]float32, s.m*s.n)
			fn := kernels.MatMulTransA
			if tc.form == "TransB" {
				fn = kernels.MatMulTransB
			}
			fn(kernels.IEEE, dst, a, bm, s.m, s.k, s.n)
			clock := startCPUClock(b)
			for b.Loop() {
				fn(kernels.IEEE, dst, a, bm, s.m, s.k, s.n)
			}
			gflops(b, s)
			clock.report(b, s)
		})
	}
}
