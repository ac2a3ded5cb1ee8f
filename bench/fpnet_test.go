package bench_test

// Forward pass of the article's 784-512-512-10 network over the whole 10k
// MNIST test set, per recipe, on one goroutine and on all cores, reported as
// images/s and GFLOP/s of products (1.34 MFLOP per image):
//
//	go test -run '^$' -bench 'Forward' -count 5 ./bench | tee new.txt; benchstat new.txt
//
// The same bits come out for every worker count; the benchmark also runs
// on trained-looking parameters (a few hundred backprop-ftz steps) so that
// many activations sit in the subnormal band, the case Intel CPUs slow on.

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/backprop"
	"github.com/seed8b67a5e0/underflow/fpnet/mnist"
	"github.com/seed8b67a5e0/underflow/kernels"
)

var fwdBench struct {
	once sync.Once
	test *fpnet.Dataset
	err  error
}

func benchTestSet(b *testing.B) *fpnet.Dataset {
	fwdBench.once.Do(func() { _, fwdBench.test, fwdBench.err = mnist.Load("") })
	if fwdBench.err != nil {
		b.Fatal(fwdBench.err)
	}
	return fwdBench.test
}

func BenchmarkForwardTestSet(b *testing.B) {
	test := benchTestSet(b)
	arch := fpnet.DefaultArch
	params := fpnet.InitParams(arch, 1)
	flops := 0.0
	for _, ly := range arch.LayerViews() {
		flops += 2 * float64(ly.FanIn*ly.FanOut)
	}
	for _, recipe := range []string{"openai2017", "ftz", "ieee"} {
		r, err := fpnet.RecipeByName(recipe)
		if err != nil {
			b.Fatal(err)
		}
		net := fpnet.NewNet(arch, r)
		for _, workers := range []int{1, runtime.NumCPU()} {
			b.Run(fmt.Sprintf("%s/%s/workers=%d", kernels.Backend(), recipe, workers), func(b *testing.B) {
				for b.Loop() {
					net.Evaluate(params, test, workers)
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(float64(test.N)/sec, "images/s")
				b.ReportMetric(flops*float64(test.N)/sec/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkForwardVsGradient: one forward pass against one backprop-ftz
// gradient (forward and backward) of a batch of 100 on one thread, the
// cost of guided ES's surrogate per generation against a member's.
//
//	go test -run '^$' -bench ForwardVsGradient -count 3 ./bench
func BenchmarkForwardVsGradient(b *testing.B) {
	test := benchTestSet(b)
	arch := fpnet.DefaultArch
	recipe, err := fpnet.RecipeByName("openai2017")
	if err != nil {
		b.Fatal(err)
	}
	net := fpnet.NewNet(arch, recipe)
	net.Threads = 1
	params := fpnet.InitParams(arch, 1)
	const batch = 100
	x, y := test.Images[:batch*arch.Inputs()], test.Labels[:batch]
	bp, err := backprop.NewTrainer(net, backprop.DefaultConfig(true), params, test.N)
	if err != nil {
		b.Fatal(err)
	}
	ws := net.NewWorkspace(batch)
	grad := make([]float32, len(params))
	b.Run(kernels.Backend()+"/forward", func(b *testing.B) {
		for b.Loop() {
			net.Forward(ws, params, x, batch)
		}
	})
	b.Run(kernels.Backend()+"/gradient", func(b *testing.B) {
		for b.Loop() {
			bp.Gradient(grad, x, y, batch)
		}
	})
}
