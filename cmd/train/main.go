// Command train trains the float32 "deep linear" network of OpenAI 2017 on
// MNIST: matrix products, bias adds and scalings only, made nonlinear by
// float32 underflow.
//
//	go run ./cmd/train                         # the best method, defaults
//	go run ./cmd/train -method backprop        # the article's 92% row
//	go run ./cmd/train -method es              # the article's 96.7% row
//	go run ./cmd/train -resume runs/backprop-ftz-20261127-140000
//
// Each run writes a folder (-out) with metrics.jsonl, a checkpoint, the
// final model (model.safetensors), curve.svg and summary.json, and prints
// its result beside the article's table. Ctrl-C writes a checkpoint and
// exits cleanly; -resume continues the run bit for bit.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/atomicfile"
	"github.com/seed8b67a5e0/underflow/fpnet/mnist"
	"github.com/seed8b67a5e0/underflow/fpnet/safetensors"
	"github.com/seed8b67a5e0/underflow/kernels"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	os.Exit(trainMain(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// trainMain is the whole command; it returns the exit status: 0 done (or
// interrupted cleanly), 1 failure, 2 bad command line. A bad command line
// is found before anything on disk is created or changed.
func trainMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if err != nil {
		if errors.Is(err, errUsage) {
			if err.Error() == flag.ErrHelp.Error() {
				return 0 // -h: the usage was printed
			}
			fmt.Fprintf(stderr, "train: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "train: %v\n", err)
		return 1
	}
	if err := run(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "train: %v\n", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func run(ctx context.Context, o *Options, stdout, stderr io.Writer) error {
	m, _ := lookupMethod(o.Method)
	recipe, _ := fpnet.RecipeByName(o.Recipe)
	arch, _ := fpnet.ParseArch(o.Arch)
	net := fpnet.NewNet(arch, recipe)
	net.Threads = o.Workers

	train, test, err := loadData(o.Data)
	if err != nil {
		return err
	}
	val, err := o.splitVal(train)
	if err != nil {
		return err
	}
	if val != nil {
		train = train.Subset(train.N - val.N)
	}
	if train, test, err = o.fitData(arch, train, test); err != nil {
		return err
	}

	// The starting point. A resumed run takes its parameters from its
	// checkpoint, not from -init's file, which may have changed or gone.
	initial := func() ([]float32, error) {
		if o.Init == "" {
			p := fpnet.InitParams(arch, o.Seed)
			if o.InitScale != "" {
				exps, _ := parseInitScale(o.InitScale, arch.Layers())
				for l, ly := range arch.LayerViews() {
					s := float32(math.Ldexp(1, exps[l])) // a power of two: every weight scales exactly
					for i, w := range ly.W(p) {
						ly.W(p)[i] = w * s
					}
				}
			}
			return p, nil
		}
		a, p, _, err := safetensors.LoadParams(o.Init)
		if err != nil {
			return nil, fmt.Errorf("-init: %v", err)
		}
		if !a.Equal(arch) {
			return nil, fmt.Errorf("-init %s: architecture %s, this run's is %s", o.Init, a, arch)
		}
		return p, nil
	}
	var params []float32
	if o.Resume == "" {
		if params, err = initial(); err != nil {
			return err
		}
	} else {
		params = make([]float32, arch.NumParams())
	}

	r := &Run{Opts: o, Net: net, Train: train, Val: val, Test: test, Params: params, ResumeDir: o.Resume, Initial: initial,
		Start: time.Now(), log: stderr, tty: isTerminal(stderr)}
	if o.Budget > 0 {
		r.Deadline = r.Start.Add(o.Budget)
	}
	r.lastEval = r.Start

	ctx, r.cancel = context.WithCancel(ctx)
	defer r.cancel()
	err = m.Run(ctx, r)
	if r.metrics != nil {
		defer r.metrics.Close()
	}
	if err != nil {
		return err
	}
	if err := r.Begin(); err != nil { // a method that returned before training
		return err
	}
	interrupted := ctx.Err() != nil
	trainWall := time.Since(r.Start)
	switch {
	case interrupted:
		r.Logf("train: interrupted at step %d; checkpoint written, resume with -resume %s", r.Steps, r.Dir)
	case r.OutOfBudget() && r.TotalSteps > 0 && r.Steps < r.TotalSteps:
		r.Logf("train: budget %v spent at step %d of %d; continue with -resume %s (and a new -budget)", o.Budget, r.Steps, r.TotalSteps, r.Dir)
	}
	if err := fpnet.CheckFinite(arch, r.Params); err != nil {
		return fmt.Errorf("training diverged: %v", err)
	}

	// Final numbers: the exact forward pass on the full sets.
	trainCorrect, trainLoss := net.Evaluate(r.Params, train, o.Workers)
	testCorrect, testLoss := net.Evaluate(r.Params, test, o.Workers)
	trainAcc := float64(trainCorrect) / float64(train.N)
	testAcc := float64(testCorrect) / float64(test.N)
	// The same parameters with nothing flushing: how much of the accuracy
	// the underflow carries.
	linear := fpnet.NewNet(arch, fpnet.Recipe{Name: "ieee", ProductEnv: kernels.IEEE, ElementEnv: kernels.IEEE, ScaleExp: recipe.ScaleExp})
	linearCorrect, _ := linear.Evaluate(r.Params, test, o.Workers)
	linearAcc := float64(linearCorrect) / float64(test.N)
	el := time.Since(r.Start).Seconds()
	final := map[string]any{"kind": "final", "step": r.Steps, "elapsed_s": round3(el), "train_acc": trainAcc, "test_acc": testAcc}
	var valAcc, valLoss float64
	if val != nil {
		valCorrect, l := net.Evaluate(r.Params, val, o.Workers)
		valAcc, valLoss = float64(valCorrect)/float64(val.N), l
		final["val_acc"] = valAcc
		r.curve = append(r.curve, curvePoint{Seconds: trainWall.Seconds(), Step: r.Steps, Acc: valAcc})
	} else {
		r.curve = append(r.curve, curvePoint{Seconds: trainWall.Seconds(), Step: r.Steps, Acc: testAcc})
	}
	r.record(final)

	sha := fpnet.ParamsSHA256(r.Params)
	modelPath := filepath.Join(r.Dir, "model.safetensors")
	meta := map[string]string{"method": o.Method, "seed": fmt.Sprint(o.Seed), "steps": fmt.Sprint(r.Steps),
		"test_accuracy": fmt.Sprintf("%.4f", testAcc), "backend": kernels.Backend()}
	if err := safetensors.SaveParams(modelPath, arch, recipe.Name, r.Params, meta); err != nil {
		return err
	}
	if err := writeCurveSVG(filepath.Join(r.Dir, "curve.svg"), o, recipe.Name, r.curve); err != nil {
		return err
	}
	// wall_seconds and train_seconds count every session of the run (the
	// earlier ones up to their last checkpoint); session_* this one.
	summary := map[string]any{
		"method": o.Method, "recipe": recipe.Name, "arch": arch.String(), "backend": kernels.Backend(),
		"seed": o.Seed, "steps": r.Steps, "wall_seconds": round3(r.PriorSeconds + el), "train_seconds": round3(r.PriorSeconds + trainWall.Seconds()),
		"session_wall_seconds": round3(el), "session_train_seconds": round3(trainWall.Seconds()),
		"train_accuracy": trainAcc, "test_accuracy": testAcc, "train_loss": trainLoss, "test_loss": testLoss,
		"train_examples": train.N, "test_examples": test.N, "params_sha256": sha, "model": modelPath,
		"interrupted": interrupted, "budget_exhausted": r.OutOfBudget(), "workers": o.Workers,
		"resumed": o.Resume != "", "test_accuracy_without_underflow": linearAcc,
	}
	if val != nil {
		summary["val_accuracy"], summary["val_loss"], summary["val_examples"] = valAcc, valLoss, val.N
	}
	if r.Config != nil {
		summary["config"] = r.Config
	}
	for k, v := range r.Summary {
		summary[k] = v
	}
	sj, err := json.MarshalIndent(jsonSafe(summary), "", "  ")
	if err != nil {
		return fmt.Errorf("summary.json: %v", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(r.Dir, "summary.json"), append(sj, '\n')); err != nil {
		return err
	}
	printReport(stdout, o, recipe.Name, r, trainAcc, testAcc, r.PriorSeconds+el, sha, r.Dir)
	if val != nil {
		fmt.Fprintf(stdout, "validation (the last %d training images, held out): %.2f%%\n", val.N, 100*valAcc)
	}
	fmt.Fprintf(stdout, "the same parameters with nothing flushing (IEEE everywhere): %.2f%% test\n", 100*linearAcc)
	return nil
}

// splitVal returns the validation set -val asks for: the end of the
// training file, whatever -train-n then takes from its start, so runs on
// subsets are scored on the same held-out images as full runs. Nil without
// -val.
func (o *Options) splitVal(train *fpnet.Dataset) (*fpnet.Dataset, error) {
	if o.Val <= 0 {
		return nil, nil
	}
	if o.Val >= train.N {
		return nil, badFlag("-val %s holds out every one of the %d training images", o.show("val", o.Val), train.N)
	}
	return tail(train, o.Val), nil
}

// tail returns the last n examples of d (sharing storage).
func tail(d *fpnet.Dataset, n int) *fpnet.Dataset {
	s := *d
	s.N = n
	s.Images = d.Images[(d.N-n)*d.Dim:]
	s.Labels = d.Labels[d.N-n:]
	return &s
}

// fitData checks the data against the network and the flags, before any
// training: the images must be the network's input size and -train-n and
// -test-n within the sets (a larger one would silently be the whole set).
// It returns the sets cut to -train-n and -test-n.
func (o *Options) fitData(arch fpnet.Arch, train, test *fpnet.Dataset) (*fpnet.Dataset, *fpnet.Dataset, error) {
	if train.Dim != arch.Inputs() {
		return nil, nil, badFlag("-arch %s takes %d inputs, the data's images have %d (%d×%d)", o.Arch, arch.Inputs(), train.Dim, train.Rows, train.Cols)
	}
	if test.Dim != train.Dim {
		return nil, nil, fmt.Errorf("the test images have %d pixels, the training images %d", test.Dim, train.Dim)
	}
	if o.TrainN > train.N {
		return nil, nil, badFlag("-train-n %s exceeds the %d training examples", o.show("train-n", o.TrainN), train.N)
	}
	if o.TestN > test.N {
		return nil, nil, badFlag("-test-n %s exceeds the %d test examples", o.show("test-n", o.TestN), test.N)
	}
	if o.TrainN > 0 {
		train = train.Subset(o.TrainN)
	}
	if o.TestN > 0 {
		test = test.Subset(o.TestN)
	}
	return train, test, nil
}

// jsonSafe replaces the non-finite floats among v's values (a loss that
// overflowed) with null: JSON has no NaN or Inf, and a summary that cannot
// be encoded would be lost.
func jsonSafe(v map[string]any) map[string]any {
	out := make(map[string]any, len(v))
	for k, x := range v {
		switch f := x.(type) {
		case float64:
			if math.IsNaN(f) || math.IsInf(f, 0) {
				x = nil
			}
		case float32:
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				x = nil
			}
		}
		out[k] = x
	}
	return out
}

var dataCache = struct {
	sync.Mutex
	sets map[string][2]*fpnet.Dataset
}{sets: map[string][2]*fpnet.Dataset{}}

// loadData loads MNIST once per process and folder (the tests run the
// command many times in one process; the data is never modified).
func loadData(dir string) (train, test *fpnet.Dataset, err error) {
	dataCache.Lock()
	defer dataCache.Unlock()
	if s, ok := dataCache.sets[dir]; ok {
		return s[0], s[1], nil
	}
	train, test, err = mnist.Load(dir)
	if err == nil {
		dataCache.sets[dir] = [2]*fpnet.Dataset{train, test}
	}
	return train, test, err
}

// printReport puts the run's numbers beside the article's table.
func printReport(w io.Writer, o *Options, recipe string, r *Run, trainAcc, testAcc, seconds float64, sha, dir string) {
	fmt.Fprintf(w, "\n%-58s %9s %9s\n", "MNIST, "+r.Net.Arch.String()+", no activation function", "train", "test")
	fmt.Fprintf(w, "%-58s %8.2f%% %8.2f%%   %d steps, %s, %s backend\n",
		fmt.Sprintf("this run: %s, recipe %s", o.Method, recipe), 100*trainAcc, 100*testAcc, r.Steps, fmtDur(time.Duration(seconds*float64(time.Second))), kernels.Backend())
	fmt.Fprintf(w, "%-58s %9s %9s\n", "OpenAI 2017: backprop, same linear network", "94%", "92%")
	fmt.Fprintf(w, "%-58s %9s %9s\n", "OpenAI 2017: ES, float32 underflow as the nonlinearity", ">99%", "96.7%")
	fmt.Fprintf(w, "%-58s %9s %9s\n", "reference: 3-layer ReLU MLP, backprop", "-", "98.51%")
	fmt.Fprintf(w, "params sha256 %s\nrun folder %s\n", sha, dir)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
