package es

import (
	"math"
	"sync"
	"testing"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/mnist"
)

var mnistData struct {
	once        sync.Once
	train, test *fpnet.Dataset
	err         error
}

func loadMNIST(t testing.TB) (train, test *fpnet.Dataset) {
	t.Helper()
	mnistData.once.Do(func() { mnistData.train, mnistData.test, mnistData.err = mnist.Load("") })
	if mnistData.err != nil {
		t.Fatal(mnistData.err)
	}
	return mnistData.train, mnistData.test
}

// tinyNetTrainer is the small configuration the determinism tests run: a
// 784-16-16-10 network under the article's recipe on real MNIST images.
func tinyNetTrainer(t testing.TB, workers int, recipeName string) *Trainer {
	t.Helper()
	return tinyGuidedNetTrainer(t, workers, recipeName, 0)
}

// tinyGuidedNetTrainer is tinyNetTrainer with guided ES (guide > 0).
func tinyGuidedNetTrainer(t testing.TB, workers int, recipeName string, guide float32) *Trainer {
	t.Helper()
	return tinyNetTrainerWith(t, workers, recipeName, 32, func(c *Config) { c.Guide = guide })
}

// tinyNetTrainerWith builds the tiny network's trainer on minibatches of
// batch images: pop 8, σ 0.02, lr 0.01, a 2^15-value noise table, then set
// changes the configuration.
func tinyNetTrainerWith(t testing.TB, workers int, recipeName string, batch int, set func(*Config)) *Trainer {
	t.Helper()
	train, _ := loadMNIST(t)
	recipe, err := fpnet.RecipeByName(recipeName)
	if err != nil {
		t.Fatal(err)
	}
	arch := fpnet.Arch{Sizes: []int{784, 16, 16, 10}}
	obj, err := NewNetObjective(fpnet.NewNet(arch, recipe), train, batch, 5, FitnessXent)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Pop, cfg.Sigma, cfg.LR, cfg.NoiseSize, cfg.Workers = 8, 0.02, 0.01, 1<<15, workers
	set(&cfg)
	noise, err := NewNoiseTable(cfg.NoiseSeed, cfg.NoiseSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(cfg, obj, noise, fpnet.InitParams(arch, 3))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// goldenTinyNetSHA256 is the parameter hash after 6 generations of the tiny
// network, made on linux/amd64 (avx2). purego, avx512 and arm64 (neon, under
// qemu) must reproduce it, with any number of workers: `make test` runs this
// test on each of them.
const goldenTinyNetSHA256 = "0522f850a3d6d1fa7f08dde37d9a20a7b520443a5f103f99a8dd018a134c11ba"

func TestNetTrainerSameBitsEverywhere(t *testing.T) {
	checkSameBits(t, []int{1, 2, 3}, 6, goldenTinyNetSHA256, func(w int) *Trainer {
		return tinyNetTrainer(t, w, "openai2017")
	})
}

// goldenGuidedTinyNetSHA256 is the same for guided ES (share 0.5), whose
// surrogate gradient (fpnet's backprop-ftz) must be as reproducible.
const goldenGuidedTinyNetSHA256 = "2a73e6644296361798f591cedd42999594de347b42bbc9b858f2809822ec93d2"

func TestGuidedNetTrainerSameBitsEverywhere(t *testing.T) {
	if goldenGuidedTinyNetSHA256 == goldenTinyNetSHA256 {
		t.Fatal("guided ES's golden is plain ES's")
	}
	checkSameBits(t, []int{1, 2}, 6, goldenGuidedTinyNetSHA256, func(w int) *Trainer {
		return tinyGuidedNetTrainer(t, w, "openai2017", 0.5)
	})
}

// The determinism test only means something if the flushes matter on this
// configuration: the exact network must disagree with its IEEE control.
func TestTinyNetUsesTheFlushes(t *testing.T) {
	exact, ieee := tinyNetTrainer(t, 1, "openai2017"), tinyNetTrainer(t, 1, "ieee")
	exact.Obj.Begin(0)
	ieee.Obj.Begin(0)
	a, b := exact.evals[0].Evaluate(exact.Params), ieee.evals[0].Evaluate(ieee.Params)
	if a.Fitness == b.Fitness {
		t.Fatalf("openai2017 and ieee give the same fitness %v: no flush reached the result", a.Fitness)
	}
}

func TestNetObjectiveBatchesCoverEpoch(t *testing.T) {
	train, _ := loadMNIST(t)
	small := train.Subset(100)
	arch := fpnet.Arch{Sizes: []int{784, 4, 10}}
	recipe, _ := fpnet.RecipeByName("openai2017")
	obj, err := NewNetObjective(fpnet.NewNet(arch, recipe), small, 25, 1, FitnessAcc)
	if err != nil {
		t.Fatal(err)
	}
	counts := make(map[uint8]int)
	for g := int64(0); g < 4; g++ { // one epoch: each example once
		obj.Begin(g)
		for _, y := range obj.y {
			counts[y]++
		}
	}
	want := make(map[uint8]int)
	for _, y := range small.Labels {
		want[y]++
	}
	for c, n := range want {
		if counts[c] != n {
			t.Fatalf("class %d drawn %d times in one epoch, the data has %d", c, counts[c], n)
		}
	}
	if _, err := NewNetObjective(fpnet.NewNet(arch, recipe), small, 101, 1, FitnessAcc); err == nil {
		t.Fatal("batch larger than the data accepted")
	}
	if _, err := NewNetObjective(fpnet.NewNet(arch, recipe), small, 10, 1, "mse"); err == nil {
		t.Fatal("unknown fitness accepted")
	}
}

func TestHoldLayerNormsProjects(t *testing.T) {
	var first string
	for _, w := range []int{1, 2} {
		tr := tinyNetTrainer(t, w, "openai2017")
		obj := tr.Obj.(*NetObjective)
		obj.HoldLayerNorms(tr.Params)
		want := append([]float64(nil), obj.heldNorms...)
		for i := 0; i < 4; i++ {
			tr.Step()
		}
		for l, ly := range obj.Net.Arch.LayerViews() {
			if got := frobenius(ly.W(tr.Params)); math.Abs(got-want[l]) > 1e-6*want[l] {
				t.Fatalf("layer %d norm %v after training, held %v", l, got, want[l])
			}
		}
		h := paramsHash(tr.Params)
		if first == "" {
			first = h
		} else if h != first {
			t.Fatalf("%d workers give %s, 1 worker %s", w, h, first)
		}
	}
}
