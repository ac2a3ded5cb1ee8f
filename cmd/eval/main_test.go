package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/backprop"
	"github.com/seed8b67a5e0/underflow/fpnet/mnist"
	"github.com/seed8b67a5e0/underflow/fpnet/safetensors"
	"github.com/seed8b67a5e0/underflow/kernels"
)

var trained struct {
	once    sync.Once
	arch    fpnet.Arch
	params  []float32
	dataDir string // a small MNIST folder: 1000 real test images
	test    *fpnet.Dataset
	err     error
}

// testImages is how many real MNIST test images the tests score: enough
// for a confusion matrix, few enough for arm64 under qemu.
const testImages = 1000

// trainedModel writes a small openai2017 model trained for a few hundred
// backprop-ftz steps (well above chance, with many flushes) to a file, and
// returns it with a data folder holding the first testImages test images.
func trainedModel(t *testing.T) (path string, arch fpnet.Arch, params []float32) {
	t.Helper()
	trained.once.Do(func() {
		train, test, err := mnist.Load("")
		if err != nil {
			trained.err = err
			return
		}
		trained.test = test.Subset(testImages)
		dir, err := os.MkdirTemp("", "eval-test-data")
		if err != nil {
			trained.err = err
			return
		}
		trained.dataDir = dir
		if err := writeIDX(dir, "train", train.Subset(10)); err != nil {
			trained.err = err
			return
		}
		if err := writeIDX(dir, "t10k", trained.test); err != nil {
			trained.err = err
			return
		}
		trained.arch, _ = fpnet.ParseArch("784-32-32-10")
		recipe, _ := fpnet.RecipeByName("openai2017")
		net := fpnet.NewNet(trained.arch, recipe)
		trained.params = fpnet.InitParams(trained.arch, 3)
		cfg := backprop.DefaultConfig(true)
		cfg.Batch, cfg.Epochs = 50, 6
		bp, err := backprop.NewTrainer(net, cfg, trained.params, 2000)
		if err != nil {
			trained.err = err
			return
		}
		sub := train.Subset(2000)
		for !bp.Done() {
			bp.TrainStep(sub)
		}
	})
	if trained.err != nil {
		t.Fatal(trained.err)
	}
	path = filepath.Join(t.TempDir(), "model.safetensors")
	if err := safetensors.SaveParams(path, trained.arch, "openai2017", trained.params, map[string]string{"method": "backprop-ftz"}); err != nil {
		t.Fatal(err)
	}
	return path, trained.arch, trained.params
}

// writeIDX writes ds as the raw IDX pair PREFIX-images-idx3-ubyte and
// PREFIX-labels-idx1-ubyte, the way LeCun's files are laid out.
func writeIDX(dir, prefix string, ds *fpnet.Dataset) error {
	img := binary.BigEndian.AppendUint32(nil, 0x803)
	for _, d := range []int{ds.N, ds.Rows, ds.Cols} {
		img = binary.BigEndian.AppendUint32(img, uint32(d))
	}
	for _, v := range ds.Images[:ds.N*ds.Dim] {
		img = append(img, byte(math.Round(float64(v)*255)))
	}
	lab := binary.BigEndian.AppendUint32(nil, 0x801)
	lab = binary.BigEndian.AppendUint32(lab, uint32(ds.N))
	lab = append(lab, ds.Labels[:ds.N]...)
	if err := os.WriteFile(filepath.Join(dir, prefix+"-images-idx3-ubyte"), img, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, prefix+"-labels-idx1-ubyte"), lab, 0o644)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if trained.dataDir != "" {
		os.RemoveAll(trained.dataDir)
	}
	os.Exit(code)
}

func runEval(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	if trained.dataDir != "" {
		args = append([]string{"-data", trained.dataDir}, args...)
	}
	code = evalMain(args, &o, &e)
	return code, o.String(), e.String()
}

func evalJSON(t *testing.T, args ...string) result {
	t.Helper()
	code, stdout, stderr := runEval(append(args, "-json")...)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, stderr)
	}
	var r result
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || strings.Count(strings.TrimSpace(stdout), "\n") != 0 {
		t.Fatalf("-json printed %q: %v", stdout, err)
	}
	return r
}

// The score is what the network's own evaluation gives, the confusion
// matrix adds up, and the text report says the same.
func TestScoresModel(t *testing.T) {
	path, arch, params := trainedModel(t)
	test := trained.test
	recipe, _ := fpnet.RecipeByName("openai2017")
	wantCorrect, wantLoss := fpnet.NewNet(arch, recipe).Evaluate(params, test, 1)
	r := evalJSON(t, "-model", path, "-workers", "2")
	if r.Correct != wantCorrect || r.Loss != wantLoss || r.Examples != test.N || r.Accuracy != float64(wantCorrect)/float64(test.N) {
		t.Errorf("eval: %d correct, loss %v; Net.Evaluate: %d, %v", r.Correct, r.Loss, wantCorrect, wantLoss)
	}
	if r.Accuracy < 0.7 {
		t.Errorf("accuracy %v: the test model did not train", r.Accuracy)
	}
	if r.Recipe != "openai2017" || r.TrainedUnder != "openai2017" || r.ProductEnv != "IEEE" || r.ElementEnv != "FTZ_DAZ" || r.ScaleExp != 125 ||
		r.Arch != "784-32-32-10" || r.ParamsSHA256 != fpnet.ParamsSHA256(params) || r.Backend != kernels.Backend() {
		t.Errorf("result %+v", r)
	}
	total, diag := 0, 0
	for tr, row := range r.Confusion {
		if len(row) != 10 {
			t.Fatalf("confusion row %d has %d columns", tr, len(row))
		}
		for p, c := range row {
			total += c
			if p == tr {
				diag += c
			}
		}
	}
	if len(r.Confusion) != 10 || total != test.N || diag != r.Correct {
		t.Errorf("confusion matrix: %d rows, %d entries, diagonal %d; want 10, %d, %d", len(r.Confusion), total, diag, test.N, r.Correct)
	}
	code, stdout, stderr := runEval("-model", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"confusion matrix", "products IEEE, elementwise FTZ_DAZ", r.ParamsSHA256, "test accuracy"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
}

// -env changes only the elementwise environment: FTZ_DAZ is the recipe's
// own, so the same score; IEEE is the network with nothing flushing, the
// same as -recipe ieee; each environment agrees with the network run
// with that recipe directly.
func TestEnvAndRecipe(t *testing.T) {
	path, arch, params := trainedModel(t)
	test := trained.test
	own := evalJSON(t, "-model", path)
	for _, e := range kernels.Envs {
		r := evalJSON(t, "-model", path, "-env", e.String())
		want, wantLoss := fpnet.NewNet(arch, fpnet.Recipe{Name: "x", ProductEnv: kernels.IEEE, ElementEnv: e, ScaleExp: 125}).Evaluate(params, test, 2)
		if r.Correct != want || r.Loss != wantLoss || r.ElementEnv != e.String() || r.ProductEnv != "IEEE" {
			t.Errorf("-env %v: %d correct, loss %v, envs %s/%s; the network in that environment: %d, %v", e, r.Correct, r.Loss, r.ProductEnv, r.ElementEnv, want, wantLoss)
		}
		if e == kernels.FTZDAZ && (r.Correct != own.Correct || r.Loss != own.Loss) {
			t.Errorf("-env FTZ_DAZ (the recipe's own) scores %d, the model's recipe %d", r.Correct, own.Correct)
		}
		if e == kernels.IEEE {
			lin := evalJSON(t, "-model", path, "-recipe", "ieee")
			if lin.Correct != r.Correct || lin.Recipe != "ieee" || lin.Correct == own.Correct {
				t.Errorf("-env IEEE %d correct, -recipe ieee %d, own recipe %d", r.Correct, lin.Correct, own.Correct)
			}
		}
	}
}

func TestBadUsage(t *testing.T) {
	path, _, _ := trainedModel(t)
	for _, args := range [][]string{
		{},
		{"-model", path, "-env", "FLUSHY"},
		{"-model", path, "-env", "FTZ", "-recipe", "ieee"},
		{"-model", path, "-recipe", "fp16"},
		{"-model", path, "extra"},
		{"-model", path, "-workers", "0"},
		{"-nosuchflag"},
	} {
		code, _, stderr := runEval(args...)
		if code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}

// A damaged, truncated or foreign file, or a model that does not fit the
// data, fails with exit 1 and a message that names the problem.
func TestBadModels(t *testing.T) {
	path, arch, params := trainedModel(t)
	dir := t.TempDir()
	good, _ := os.ReadFile(path)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-7] ^= 0x04
	ck := filepath.Join(dir, "checkpoint.safetensors")
	if err := safetensors.SaveCheckpoint(ck, &safetensors.Checkpoint{Meta: map[string]string{"step": "1"}, Tensors: map[string][]float32{"params": params}}); err != nil {
		t.Fatal(err)
	}
	otherRecipe := filepath.Join(dir, "other-recipe.safetensors")
	safetensors.SaveParams(otherRecipe, arch, "bfloat17", params, nil)
	wide, _ := fpnet.ParseArch("100-16-10")
	wideModel := filepath.Join(dir, "wide.safetensors")
	safetensors.SaveParams(wideModel, wide, "openai2017", fpnet.InitParams(wide, 1), nil)
	few, _ := fpnet.ParseArch("784-16-5")
	fewModel := filepath.Join(dir, "few.safetensors")
	safetensors.SaveParams(fewModel, few, "openai2017", fpnet.InitParams(few, 1), nil)
	for _, c := range []struct {
		path string
		want string
	}{
		{write("flipped.safetensors", flipped), "checksum mismatch"},
		{write("truncated.safetensors", good[:len(good)/2]), "truncated"},
		{write("short.safetensors", good[:5]), "too short"},
		{write("text.safetensors", []byte("this is not a model, just some text that goes on")), "safetensors"},
		{ck, "format"},
		{filepath.Join(dir, "missing.safetensors"), "no such file"},
		{otherRecipe, "bfloat17"},
		{wideModel, "100 inputs"},
		{fewModel, "5 classes"},
	} {
		code, _, stderr := runEval("-model", c.path)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, %q; want 1 and a message with %q", filepath.Base(c.path), code, stderr, c.want)
		}
	}
	// A model of an unknown recipe can still be scored under a known one.
	if r := evalJSON(t, "-model", otherRecipe, "-recipe", "openai2017"); r.TrainedUnder != "bfloat17" || r.Recipe != "openai2017" {
		t.Errorf("-recipe on an unknown recipe's model: %+v", r)
	}
}
