package bench_test

import (
	"fmt"
	"testing"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/backprop"
	"github.com/seed8b67a5e0/underflow/kernels"
)

// BenchmarkTrainStep: one backprop-ftz minibatch step (augmentation,
// forward, backward, Adam) of the default configuration, on one thread and
// on two. samples/cpu-s (process CPU time) is the figure to compare on a
// busy machine.
//
//	go test -run '^$' -bench TrainStep -count 3 ./bench
func BenchmarkTrainStep(b *testing.B) {
	train := benchTestSet(b) // the test images stand in: only the cost is measured
	arch := fpnet.DefaultArch
	recipe, err := fpnet.RecipeByName("openai2017")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		surrogate      string
		batch, threads int
	}{{"jump", 100, 1}, {"tanh", 100, 1}, {"cubic", 100, 1}, {"cubic", 200, 1}, {"jump", 100, 2}, {"tanh", 100, 2}, {"cubic", 100, 2}, {"cubic", 200, 2}} {
		threads := c.threads
		b.Run(fmt.Sprintf("%s/%s/batch=%d/threads=%d", kernels.Backend(), c.surrogate, c.batch, threads), func(b *testing.B) {
			net := fpnet.NewNet(arch, recipe)
			net.Threads = threads
			params := fpnet.InitParams(arch, 1)
			cfg := backprop.DefaultConfig(true)
			cfg.Surrogate = c.surrogate
			cfg.Batch = c.batch
			bp, err := backprop.NewTrainer(net, cfg, params, train.N)
			if err != nil {
				b.Fatal(err)
			}
			cpu0 := processCPU()
			for b.Loop() {
				bp.TrainStep(train)
			}
			cpu := (processCPU() - cpu0).Seconds()
			b.ReportMetric(float64(cfg.Batch)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(float64(cfg.Batch)*float64(b.N)/cpu, "samples/cpu-s")
		})
	}
}
