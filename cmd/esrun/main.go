// Command esrun is the ES research harness behind es/README.md's curves:
// the es package on the full network, printing JSON lines of test accuracy
// over training time, the same parameters' accuracy with nothing flushing
// (ieee recipe), and the fraction of flushed hidden activations. Unlike
// cmd/train it exposes every es setting (-l2, -fitness, -noise-size,
// -hold-norms, -decay-gens, -init-scale) but writes no run folder.
//
//	go run ./cmd/esrun -pop 200 -budget 20m -eval-every 3m -hold-norms
//
// With -diag POPS it trains nothing: at the starting parameters (-init, or
// the article's initialisation) it measures how much signal one ES
// generation carries. For each population in the comma-separated list, on
// -diag-batches minibatches, it takes two gradient estimates from
// independent noise on the same minibatch and prints their cosine, and
// each one's cosine with backprop-ftz's surrogate gradient.
//
//	go run ./cmd/esrun -diag 200,1000,4000 -init model.safetensors
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/seed8b67a5e0/underflow/es"
	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/mnist"
	"github.com/seed8b67a5e0/underflow/fpnet/safetensors"
)

func main() {
	cfg := es.DefaultConfig()
	pop := flag.Int("pop", 100, "")
	sigma := flag.Float64("sigma", 0.01, "")
	lr := flag.Float64("lr", 0.003, "")
	l2 := flag.Float64("l2", 0.005, "")
	batch := flag.Int("batch", 100, "")
	fitness := flag.String("fitness", "xent", "")
	recipeName := flag.String("recipe", "openai2017", "")
	initPath := flag.String("init", "", "")
	initScale := flag.Float64("init-scale", 1, "")
	budget := flag.Duration("budget", 10*time.Minute, "")
	evalEvery := flag.Duration("eval-every", time.Minute, "")
	workers := flag.Int("workers", 0, "")
	noiseSize := flag.Int("noise-size", 1<<25, "")
	seed := flag.Uint64("seed", 1, "")
	out := flag.String("out", "", "save params here at end")
	hold := flag.Bool("hold-norms", false, "")
	lrFinal := flag.Float64("lr-final", -1, "")
	decay := flag.Int64("decay-gens", 0, "")
	guide := flag.Float64("guide", 0, "")
	diag := flag.String("diag", "", "populations to measure the gradient estimate's signal at (no training)")
	diagBatches := flag.Int("diag-batches", 3, "")
	flag.Parse()
	cfg.Guide = float32(*guide)
	cfg.Pop, cfg.Sigma, cfg.LR, cfg.L2, cfg.Workers, cfg.NoiseSize, cfg.Seed = *pop, float32(*sigma), float32(*lr), float32(*l2), *workers, *noiseSize, *seed
	train, test, err := mnist.Load("")
	if err != nil {
		log.Fatal(err)
	}
	recipe, err := fpnet.RecipeByName(*recipeName)
	if err != nil {
		log.Fatal(err)
	}
	ieee, _ := fpnet.RecipeByName("ieee")
	arch := fpnet.Arch{Sizes: []int{784, 512, 512, 10}}
	net := fpnet.NewNet(arch, recipe)
	params := fpnet.InitParams(arch, *seed)
	if *initPath != "" {
		_, params, _, err = safetensors.LoadParams(*initPath)
		if err != nil {
			log.Fatal(err)
		}
	}
	for i := range params {
		params[i] *= float32(*initScale)
	}
	obj, err := es.NewNetObjective(net, train, *batch, cfg.Seed, *fitness)
	if err != nil {
		log.Fatal(err)
	}
	if *hold {
		obj.HoldLayerNorms(params)
	}
	if *lrFinal >= 0 {
		cfg.LRFinal, cfg.DecayGens = float32(*lrFinal), *decay
	}
	noise, err := es.NewNoiseTable(cfg.NoiseSeed, cfg.NoiseSize, 0)
	if err != nil {
		log.Fatal(err)
	}
	if *diag != "" {
		diagnose(cfg, obj, noise, params, *diag, *diagBatches)
		return
	}
	tr, err := es.NewTrainer(cfg, obj, noise, params)
	if err != nil {
		log.Fatal(err)
	}
	enc := json.NewEncoder(os.Stdout)
	start := time.Now()
	var evalTime time.Duration
	sub := train.Subset(10000)
	eval := func() {
		t0 := time.Now()
		c, loss := net.Evaluate(tr.Params, test, 2)
		ci, _ := fpnet.NewNet(arch, ieee).Evaluate(tr.Params, test, 2)
		ct, _ := net.Evaluate(tr.Params, sub, 2)
		evalTime += time.Since(t0)
		// Fraction of hidden activations flushed to zero on 1000 test images.
		ws := net.NewWorkspace(1000)
		net.Forward(ws, tr.Params, test.Images[:1000*784], 1000)
		var z1, z2, zl float64
		for _, v := range ws.Act[0][:1000*512] {
			if v == 0 {
				z1++
			}
		}
		for _, v := range ws.Act[1][:1000*512] {
			if v == 0 {
				z2++
			}
		}
		for _, v := range ws.Act[2][:1000*10] {
			if v == 0 {
				zl++
			}
		}
		var n2 float64
		for _, v := range tr.Params {
			n2 += float64(v) * float64(v)
		}
		enc.Encode(map[string]any{"gen": tr.Gen, "train_s": (time.Since(start) - evalTime).Seconds(), "test_acc": float64(c) / float64(test.N), "test_loss": loss,
			"test_acc_ieee": float64(ci) / float64(test.N), "train10k_acc": float64(ct) / float64(sub.N), "param_ms": fmt.Sprintf("%.4g", n2/float64(len(tr.Params))),
			"flushed_h1": fmt.Sprintf("%.3f", z1/512000), "flushed_h2": fmt.Sprintf("%.3f", z2/512000), "zero_logits": fmt.Sprintf("%.3f", zl/10000)})
	}
	eval()
	nextEval := *evalEvery
	var last es.Stats
	for time.Since(start)-evalTime < *budget {
		last = tr.Step()
		if time.Since(start)-evalTime >= nextEval {
			fmt.Fprintf(os.Stderr, "gen %d center fit %.4f acc %.3f mean %.4f\n", last.Gen, last.Center.Fitness, last.Center.Accuracy, last.MeanFitness)
			eval()
			nextEval += *evalEvery
		}
	}
	eval()
	if *out != "" {
		if err := safetensors.SaveParams(*out, arch, recipe.Name, tr.Params, nil); err != nil {
			log.Fatal(err)
		}
	}
}

// diagnose prints, per population and minibatch, the cosine between two ES
// gradient estimates from independent noise (their shared direction: near
// 0 means the estimate is mostly noise) and each estimate's cosine with
// the surrogate gradient.
func diagnose(cfg es.Config, obj *es.NetObjective, noise *es.NoiseTable, params []float32, pops string, batches int) {
	enc := json.NewEncoder(os.Stdout)
	dim := len(params)
	sur := make([]float32, dim)
	e1, e2 := make([]float32, dim), make([]float32, dim)
	for _, f := range strings.Split(pops, ",") {
		pop, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			log.Fatalf("-diag %q: %v", pops, err)
		}
		for b := 0; b < batches; b++ {
			t0 := time.Now()
			estimate := func(dst []float32, seed uint64) {
				c := cfg
				c.Pop, c.Seed = pop, seed
				tr, err := es.NewTrainer(c, obj, noise, params)
				if err != nil {
					log.Fatal(err)
				}
				tr.Gen = int64(b) // minibatch b, the same for both seeds
				tr.Estimate(dst)
			}
			estimate(e1, 1000+uint64(b))
			estimate(e2, 2000+uint64(b))
			obj.Surrogate(sur, params) // on minibatch b: Estimate left it in place
			enc.Encode(map[string]any{"pop": pop, "batch_index": b,
				"cos_estimates": round3(cosine(e1, e2)), "cos_surrogate": []float64{round3(cosine(e1, sur)), round3(cosine(e2, sur))},
				"seconds": round3(time.Since(t0).Seconds())})
		}
	}
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
