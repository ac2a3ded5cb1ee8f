package bench_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/kernels"
)

// BenchmarkESPair compares, on one goroutine, three ways to evaluate one
// antithetic pair θ ± σε of the 784-512-512-10 network (openai2017, the
// forward pass only), the noise slice at a random offset of the 128 MiB
// table as in a generation:
//
//   - materialised: θ + σε written to a vector (kernels.AddScaled), then
//     Forward, twice (the code before issue 11);
//   - perturbed: ForwardPerturbed twice (each member's weights packed
//     from θ and ε);
//   - pair: ForwardPerturbedPair (both members packed in one pass).
//
// The three alternate op by op, so a busy machine slows them alike; each
// reports the thread CPU time per pair it took and its ratio to
// materialised.
//
//	go test -run '^$' -bench ESPair -benchtime 60x ./bench
func BenchmarkESPair(b *testing.B) {
	train, noise := esBenchSetup(b)
	recipe, err := fpnet.RecipeByName("openai2017")
	if err != nil {
		b.Fatal(err)
	}
	arch := fpnet.Arch{Sizes: []int{784, 512, 512, 10}}
	net := fpnet.NewNet(arch, recipe)
	theta := fpnet.InitParams(arch, 1)
	dim := len(theta)
	for _, batch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d/%s", batch, kernels.Backend()), func(b *testing.B) {
			x := train.Images[:batch*arch.Inputs()]
			wsP, wsM := net.NewWorkspace(batch), net.NewWorkspace(batch)
			member := make([]float32, dim)
			r := rand.New(rand.NewPCG(1, uint64(batch)))
			const sigma = 0.01
			ways := []struct {
				name string
				run  func(eps []float32)
			}{
				{"materialised", func(eps []float32) {
					kernels.AddScaled(kernels.IEEE, member, theta, eps, sigma)
					net.Forward(wsP, member, x, batch)
					kernels.AddScaled(kernels.IEEE, member, theta, eps, -sigma)
					net.Forward(wsM, member, x, batch)
				}},
				{"perturbed", func(eps []float32) {
					net.ForwardPerturbed(wsP, theta, eps, sigma, x, batch)
					net.ForwardPerturbed(wsM, theta, eps, -sigma, x, batch)
				}},
				{"pair", func(eps []float32) { net.ForwardPerturbedPair(wsP, wsM, theta, eps, sigma, x, batch) }},
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			spent := make([]time.Duration, len(ways))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for w, way := range ways {
					eps := noise.Slice(r.IntN(len(noise.Values)-dim+1), dim)
					t0, ok := threadCPU()
					way.run(eps)
					t1, _ := threadCPU()
					if !ok {
						b.Skip("no thread CPU clock here")
					}
					spent[w] += t1 - t0
				}
			}
			for w, way := range ways {
				b.ReportMetric(spent[w].Seconds()*1000/float64(b.N), way.name+"-cpu-ms/pair")
				if w > 0 {
					b.ReportMetric(float64(spent[0])/float64(spent[w]), way.name+"-speedup")
				}
			}
		})
	}
}
