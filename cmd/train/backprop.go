package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/backprop"
	"github.com/seed8b67a5e0/underflow/fpnet/safetensors"
)

func init() {
	Register(&Method{Name: "backprop", Description: "gradients of the plain linear map, blind to the flushes (the article's 92% row)",
		Flags: backpropFlags, Checkpoint: backpropCheckpoint, Memory: backpropMemory,
		Validate: func(o *Options) error { return backpropConfig(o, false).Validate() },
		Run:      func(ctx context.Context, r *Run) error { return runBackprop(ctx, r, false) }})
	Register(&Method{Name: "backprop-ftz", Description: "backprop with a surrogate gradient through each flush; exact forward pass",
		Flags: append([]string{"tau", "surrogate"}, backpropFlags...), Checkpoint: backpropCheckpoint, Memory: backpropMemory,
		Validate: func(o *Options) error { return backpropConfig(o, true).Validate() },
		Run:      func(ctx context.Context, r *Run) error { return runBackprop(ctx, r, true) }})
}

// backpropFlags are both backprop methods' own flags; -tau and -surrogate
// are backprop-ftz's alone (blind backprop has no surrogate).
var backpropFlags = []string{"epochs", "shift", "wd", "lr-final", "rotate", "scale", "elastic", "elastic-grid", "noise",
	"dropout", "label-smoothing", "ema"}

// backpropMemory is a lower bound of what a backprop run allocates: the
// parameters, their gradient and Adam's two moments, the checkpoint's
// encoding (its data section and the file's bytes), and the batch's
// activations forward and back.
func backpropMemory(o *Options, arch fpnet.Arch) []memoryUse {
	batch := backpropConfig(o, true).Batch
	return []memoryUse{
		{paramBytes(arch, 4), "parameters, gradient and Adam state"},
		{paramBytes(arch, 6), "checkpoint encoding"},
		{2 * activationBytes(arch, batch), "activations"},
	}
}

const backpropCheckpoint = "checkpoint.safetensors"

// backpropConfig is the method's defaults with the command line on top.
func backpropConfig(o *Options, flushAware bool) backprop.Config {
	return backpropConfigOn(backprop.DefaultConfig(flushAware), o)
}

// backpropConfigOn is c with the settings o gives on top; a setting o
// leaves at its "method default" keeps c's value.
func backpropConfigOn(c backprop.Config, o *Options) backprop.Config {
	c.Seed = o.Seed
	if o.Epochs > 0 {
		c.Epochs = o.Epochs
	}
	if o.LR > 0 {
		c.LR = float32(o.LR)
		c.LRFinal = min(c.LRFinal, c.LR)
	}
	if o.LRFinal >= 0 {
		c.LRFinal = float32(o.LRFinal)
	}
	if o.Batch > 0 {
		c.Batch = o.Batch
	}
	if o.Tau > 0 {
		c.Tau = float32(o.Tau)
	}
	if o.Surrogate != "" {
		c.Surrogate = o.Surrogate
	}
	if o.Shift >= 0 {
		c.Shift = o.Shift
	}
	if o.WeightDecay >= 0 {
		c.WeightDecay = float32(o.WeightDecay)
	}
	if o.Rotate >= 0 {
		c.Rotate = float32(o.Rotate)
	}
	if o.Scale >= 0 {
		c.Scale = float32(o.Scale)
	}
	if o.Elastic >= 0 {
		c.Elastic = float32(o.Elastic)
	}
	if o.ElasticGrid > 0 {
		c.ElasticGrid = o.ElasticGrid
	}
	if o.Noise >= 0 {
		c.Noise = float32(o.Noise)
	}
	if o.Dropout >= 0 {
		c.Dropout = float32(o.Dropout)
	}
	if o.Smoothing >= 0 {
		c.LabelSmoothing = float32(o.Smoothing)
	}
	if o.EMA >= 0 {
		c.EMA = float32(o.EMA)
	}
	return c
}

func runBackprop(ctx context.Context, r *Run, flushAware bool) error {
	cfg := backpropConfig(r.Opts, flushAware)
	var resumed *safetensors.Checkpoint
	path := filepath.Join(r.ResumeDir, backpropCheckpoint)
	if r.ResumeDir != "" {
		var err error
		if resumed, err = safetensors.LoadCheckpoint(path); err != nil {
			return err
		}
		// A setting the run left to the method's default keeps the value
		// it had when the run began, which the checkpoint holds: the
		// defaults may have changed since.
		var began backprop.Config
		if saved, ok := resumed.Meta["config"]; ok && json.Unmarshal([]byte(saved), &began) == nil {
			cfg = backpropConfigOn(began, r.Opts)
		}
	}
	tr, err := backprop.NewTrainer(r.Net, cfg, r.Params, r.Train.N)
	if err != nil {
		return err
	}
	r.Config = cfg
	if resumed != nil {
		if err := restoreBackprop(tr, resumed, path, r); err != nil {
			return err
		}
		r.Logf("train: resumed %s at step %d of %d", r.ResumeDir, tr.Step, tr.TotalSteps())
	}
	if err := r.Begin(); err != nil {
		return err
	}
	ckpt := r.CheckpointPath(backpropCheckpoint)
	r.Steps, r.TotalSteps = tr.Step, tr.TotalSteps()
	r.startSteps = tr.Step
	save := func() error { return saveBackprop(tr, ckpt, r) }
	for !tr.Done() {
		if ctx.Err() != nil || r.OutOfBudget() {
			break
		}
		loss, correct := tr.TrainStep(r.Train)
		r.Steps = tr.Step
		r.Samples += int64(cfg.Batch)
		p := Progress{Loss: loss, BatchAcc: float64(correct) / float64(cfg.Batch),
			Extra: map[string]float64{"lr": float64(tr.Opt.LR), "epoch": float64(tr.Step) / float64(tr.StepsPerEpoch())}}
		r.Progress(p)
		if r.EvalDue() || tr.Done() {
			r.Evaluate(tr.Averaged())
		}
		if tr.Step%int64(tr.StepsPerEpoch()) == 0 { // a checkpoint per epoch
			if err := save(); err != nil {
				return err
			}
		}
	}
	err = save()
	copy(r.Params, tr.Averaged())
	return err
}

// saveBackprop writes the checkpoint. Besides the state it carries what the
// trajectory depends on, the whole configuration and the number of training
// examples, so that a resume compares them with its own settings instead of
// trusting options.json, a file anyone can edit.
func saveBackprop(tr *backprop.Trainer, path string, r *Run) error {
	cfg, err := json.Marshal(tr.Cfg)
	if err != nil {
		return err
	}
	c := &safetensors.Checkpoint{
		Meta: map[string]string{"method": r.Opts.Method, "recipe": r.Net.Recipe.Name, "arch": r.Net.Arch.String(),
			"step": strconv.FormatInt(tr.Step, 10), "adam_t": strconv.FormatInt(tr.Opt.T, 10), "seed": strconv.FormatUint(r.Opts.Seed, 10),
			"params_sha256": fpnet.ParamsSHA256(tr.Params), "config": string(cfg), "train_examples": strconv.Itoa(r.Train.N),
			"wall_seconds": strconv.FormatFloat(r.SessionSeconds(), 'f', 3, 64)},
		Tensors: map[string][]float32{"params": tr.Params, "adam_m": tr.Opt.M, "adam_v": tr.Opt.V},
	}
	if tr.EMA != nil {
		c.Tensors["ema"] = tr.EMA
	}
	return safetensors.SaveCheckpoint(path, c)
}

// sameConfig compares the configuration a checkpoint was made with (its
// JSON) with this run's, setting by setting; a setting the checkpoint lacks
// was added since and takes its default, which is what that run had.
func sameConfig(saved string, now any) error {
	var was, is map[string]any
	if err := json.Unmarshal([]byte(saved), &was); err != nil {
		return fmt.Errorf("its config: %v", err)
	}
	b, _ := json.Marshal(now)
	json.Unmarshal(b, &is)
	keys := make([]string, 0, len(was))
	for k := range was {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if fmt.Sprint(was[k]) != fmt.Sprint(is[k]) {
			return fmt.Errorf("it was made with %s %v, this run has %v (was options.json edited?): a resumed run must continue the same trajectory", k, was[k], is[k])
		}
	}
	return nil
}

func restoreBackprop(tr *backprop.Trainer, c *safetensors.Checkpoint, path string, r *Run) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("checkpoint %s: %s", path, fmt.Sprintf(format, args...))
	}
	if c.Meta["method"] != r.Opts.Method || c.Meta["arch"] != r.Net.Arch.String() || c.Meta["recipe"] != r.Net.Recipe.Name {
		return bad("is a %s / %s / %s checkpoint, this run is %s / %s / %s", c.Meta["method"], c.Meta["recipe"], c.Meta["arch"], r.Opts.Method, r.Net.Recipe.Name, r.Net.Arch)
	}
	if s := c.Meta["seed"]; s != "" && s != strconv.FormatUint(r.Opts.Seed, 10) {
		return bad("it was made with seed %s, this run has %d (was options.json edited?)", s, r.Opts.Seed)
	}
	// Checkpoints written before they carried the configuration lack it;
	// for those, options.json is all there is.
	if saved, ok := c.Meta["config"]; ok {
		if err := sameConfig(saved, tr.Cfg); err != nil {
			return bad("%v", err)
		}
	}
	if n, ok := c.Meta["train_examples"]; ok && n != strconv.Itoa(r.Train.N) {
		return bad("it was made training on %s examples, this run has %d (-train-n, options.json or the data changed)", n, r.Train.N)
	}
	if w, err := strconv.ParseFloat(c.Meta["wall_seconds"], 64); err == nil && w >= 0 && !math.IsInf(w, 0) {
		r.PriorSeconds = w
	}
	n := len(tr.Params)
	names := []string{"params", "adam_m", "adam_v"}
	if tr.EMA != nil {
		names = append(names, "ema")
	}
	for _, name := range names {
		if len(c.Tensors[name]) != n {
			return bad("tensor %s has %d values, want %d", name, len(c.Tensors[name]), n)
		}
	}
	if err := fpnet.CheckFinite(r.Net.Arch, c.Tensors["params"]); err != nil {
		return bad("%v", err)
	}
	step, err1 := strconv.ParseInt(c.Meta["step"], 10, 64)
	t, err2 := strconv.ParseInt(c.Meta["adam_t"], 10, 64)
	if err1 != nil || err2 != nil || step < 0 || t < 0 || step > tr.TotalSteps() {
		return bad("bad step %q or adam_t %q", c.Meta["step"], c.Meta["adam_t"])
	}
	copy(tr.Params, c.Tensors["params"])
	copy(tr.Opt.M, c.Tensors["adam_m"])
	copy(tr.Opt.V, c.Tensors["adam_v"])
	if tr.EMA != nil {
		copy(tr.EMA, c.Tensors["ema"])
	}
	tr.Opt.T = t
	tr.Step = step
	return nil
}
