package bench_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seed8b67a5e0/underflow/es"
	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/mnist"
	"github.com/seed8b67a5e0/underflow/kernels"
)

// ES generation throughput: one full generation (population evaluation on
// the shared minibatch, the center, ranks, gradient estimate and Adam step)
// of the article's 784-512-512-10 network under openai2017, on all cores.
// The figure of merit is member-samples/s: one perturbed network on one
// image (about 1.34 MFLOP of products).
//
//	go test -run '^$' -bench ESGeneration -benchtime 3x ./bench
//
// ES_BENCH_POP overrides the population (default 200). ES_BENCH_RANKS
// lists the perturbations, 0 for full-rank noise and r > 0 for rank-r
// (low-rank ES, es.Config.Rank): default "0,1,2,4". Full rank keeps the
// names it always had (batch=100/pop=200/avx2); rank r appends /rank=r.
//
// The machine is shared, so besides the wall-clock rate the benchmark
// reports the rate per CPU-second the process used (user+system time of
// all its threads): multiplied by the core count, it is what the
// generation would do with every core to itself.

var esBench struct {
	once  sync.Once
	train *fpnet.Dataset
	noise *es.NoiseTable
	err   error
}

func esBenchSetup(b *testing.B) (*fpnet.Dataset, *es.NoiseTable) {
	esBench.once.Do(func() {
		esBench.train, _, esBench.err = mnist.Load("")
		if esBench.err == nil {
			esBench.noise, esBench.err = es.NewNoiseTable(1, es.DefaultConfig().NoiseSize, 0)
		}
	})
	if esBench.err != nil {
		b.Fatal(esBench.err)
	}
	return esBench.train, esBench.noise
}

func BenchmarkESGeneration(b *testing.B) {
	pop := 200
	if s := os.Getenv("ES_BENCH_POP"); s != "" {
		var err error
		if pop, err = strconv.Atoi(s); err != nil {
			b.Fatalf("ES_BENCH_POP=%q: %v", s, err)
		}
	}
	ranks := []int{0, 1, 2, 4}
	if s := os.Getenv("ES_BENCH_RANKS"); s != "" {
		ranks = nil
		for _, f := range strings.Split(s, ",") {
			r, err := strconv.Atoi(f)
			if err != nil || r < 0 {
				b.Fatalf("ES_BENCH_RANKS=%q: %q is not a rank", s, f)
			}
			ranks = append(ranks, r)
		}
	}
	for _, batch := range []int{100, 1000} {
		for _, rank := range ranks {
			name := fmt.Sprintf("batch=%d/pop=%d/%s", batch, pop, kernels.Backend())
			if rank > 0 {
				name += fmt.Sprintf("/rank=%d", rank)
			}
			b.Run(name, func(b *testing.B) { benchESGeneration(b, batch, pop, rank) })
		}
	}
}

func benchESGeneration(b *testing.B, batch, pop, rank int) {
	train, noise := esBenchSetup(b)
	recipe, err := fpnet.RecipeByName("openai2017")
	if err != nil {
		b.Fatal(err)
	}
	arch := fpnet.Arch{Sizes: []int{784, 512, 512, 10}}
	obj, err := es.NewNetObjective(fpnet.NewNet(arch, recipe), train, batch, 1, es.FitnessXent)
	if err != nil {
		b.Fatal(err)
	}
	cfg := es.DefaultConfig()
	cfg.Pop, cfg.Rank = pop, rank
	tr, err := es.NewTrainer(cfg, obj, noise, fpnet.InitParams(arch, 1))
	if err != nil {
		b.Fatal(err)
	}
	tr.Step() // warm: workspaces touched, first epoch permuted
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr.Step()
	}
	sec := b.Elapsed().Seconds()
	cpu := (processCPU() - cpu0).Seconds()
	b.ReportMetric(float64(pop*batch*b.N)/sec, "member-samples/s")
	b.ReportMetric(float64(pop*batch*b.N)/cpu, "member-samples/cpu-s")
	if rank > 0 {
		return // low-rank members do fewer flops; member-samples are the measure
	}
	flop := 2 * float64(784*512+512*512+512*10) * float64(batch) * float64(pop+1) * float64(b.N)
	b.ReportMetric(flop/sec/1e9, "product-GFLOP/s")
	// Against FMAPeak's cpu-GFLOP/s (flops per second a core was held):
	// the fraction of the peak while the generation ran.
	b.ReportMetric(flop/cpu/1e9, "product-GFLOP/cpu-s")
}

// processCPU is the user+system CPU time the process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkESUpdate measures one generation's update alone (ranks, the
// rank-weighted noise sum over every pair, Adam, the held norms), on one
// goroutine: the work every distributed worker repeats each generation to
// keep its own copy of θ (es/cluster), beside the evaluation it shares.
//
//	go test -run '^$' -bench 'ESUpdate|ESGeneration/batch=100' -benchtime 20x ./bench
func BenchmarkESUpdate(b *testing.B) { benchESUpdate(b, 0) }

// BenchmarkESUpdateLowRank is BenchmarkESUpdate with rank-r perturbations
// (es.Config.Rank): the weight matrices' Σ_p w_p A_p·B_p is a product.
func BenchmarkESUpdateLowRank(b *testing.B) {
	for _, rank := range []int{1, 4} {
		b.Run(fmt.Sprintf("rank=%d", rank), func(b *testing.B) { benchESUpdate(b, rank) })
	}
}

// articleESTrainer is cmd/train -method es's defaults (held norms, pop
// 200) at batch 100 on the article's network, with the given goroutines
// and perturbation rank (0: full rank). It returns the trainer, its
// objective and the start.
func articleESTrainer(b *testing.B, slots, rank int) (*es.Trainer, *es.NetObjective, []float32) {
	train, noise := esBenchSetup(b)
	recipe, err := fpnet.RecipeByName("openai2017")
	if err != nil {
		b.Fatal(err)
	}
	arch := fpnet.Arch{Sizes: []int{784, 512, 512, 10}}
	obj, err := es.NewNetObjective(fpnet.NewNet(arch, recipe), train, 100, 1, es.FitnessXent)
	if err != nil {
		b.Fatal(err)
	}
	start := fpnet.InitParams(arch, 1)
	obj.HoldLayerNorms(start)
	cfg := es.DefaultConfig()
	cfg.Workers, cfg.Rank = slots, rank
	tr, err := es.NewTrainer(cfg, obj, noise, start)
	if err != nil {
		b.Fatal(err)
	}
	return tr, obj, start
}

func benchESUpdate(b *testing.B, rank int) {
	tr, _, _ := articleESTrainer(b, 1, rank)
	fitness := make([]float64, es.DefaultConfig().Pop)
	for i := range fitness {
		fitness[i] = float64(i % 7)
	}
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr.Begin()
		tr.Update(fitness, es.Score{})
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/update")
	b.ReportMetric((processCPU()-cpu0).Seconds()*1000/float64(b.N), "cpu-ms/update")
}
