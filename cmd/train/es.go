package main

import (
	"context"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/seed8b67a5e0/underflow/es"
	"github.com/seed8b67a5e0/underflow/es/cluster"
	"github.com/seed8b67a5e0/underflow/es/wire"
	"github.com/seed8b67a5e0/underflow/fpnet"
)

func init() {
	Register(&Method{Name: "es", Description: "OpenAI-ES on the exact network (the article's 96.7% row): shared noise table, antithetic pairs, centered ranks, Adam, L2",
		Flags: esFlags, Checkpoint: esCheckpoint, Validate: validateES, Memory: esMemory, Run: runES})
}

// esFlags are the ES method's own flags (-wd is the older name of -l2).
var esFlags = append([]string{"generations", "pop", "sigma", "l2", "wd", "lr-final", "noise-size", "fitness", "hold-norms", "guide",
	"perturb", "rank", "serve", "nats"}, clusterFlags...)

// esMemory is a lower bound of what an ES run allocates: the noise table;
// the parameters (the run's and the trainer's) and Adam's two moments;
// each worker's member when guided ES materialises it, or the low-rank
// update's gradient; the checkpoint's encoding; the population's fitness;
// each worker's forward workspaces (a pair's two members at full rank).
func esMemory(o *Options, arch fpnet.Arch) []memoryUse {
	cfg, batch, _ := esSettings(o)
	workers := o.Workers
	if o.Distributed() {
		workers = max(workers, runtime.GOMAXPROCS(0))
	}
	workspaces, rows := 2, batch // a pair's members evaluated together
	if cfg.Rank > 0 {
		workspaces, rows = 1, min(batch, 120) // a member's rows a chunk at a time
	}
	uses := []memoryUse{
		{4 * float64(cfg.NoiseSize), "noise table"},
		{paramBytes(arch, 4), "parameters and Adam state"},
		{paramBytes(arch, 3), "checkpoint encoding"},
		{20 * float64(cfg.Pop), "population"},
		{float64(workers*workspaces) * activationBytes(arch, rows), "activations"},
	}
	switch {
	case cfg.Guide > 0:
		uses = append(uses, memoryUse{paramBytes(arch, workers), fmt.Sprintf("%d workers' members", workers)},
			memoryUse{paramBytes(arch, 4) + activationBytes(arch, batch), "surrogate gradient"})
	case cfg.Rank > 0:
		uses = append(uses, memoryUse{paramBytes(arch, 1), "low-rank update's gradient"})
	}
	return uses
}

// esCheckpoint is the ES method's checkpoint file in the run folder.
const esCheckpoint = "es-checkpoint.bin"

// esDefaultBatch is the ES minibatch when -batch is not given.
const esDefaultBatch = 100

// The measured ES recipe (es/README.md): each weight matrix held at its
// initial norm, and the learning rate falling linearly from -lr to
// esDefaultLRFinal over esDefaultGenerations generations.
const (
	esDefaultGenerations = 2400
	esDefaultLRFinal     = 0.0003
)

// The ES perturbations (-perturb): full-rank noise on every parameter, or
// rank -rank products on the weight matrices (es.Config.Rank).
const (
	perturbFull    = "full"
	perturbLowRank = "lowrank"
	// esDefaultRank is -rank's value when -perturb lowrank is given alone:
	// EGGROLL's rank 1.
	esDefaultRank = 1
	// maxRank bounds -rank: beyond a few dozen the perturbation is no
	// longer low-rank for the 512-wide layers.
	maxRank = 64
)

// resolveESDefaults writes the ES defaults that flags left open into the
// options, and so into options.json: a resumed run keeps what it started
// with, whatever the defaults become. -hold-norms=false turns the norms
// off; -lr-final equal to -lr keeps the rate constant.
func (o *Options) resolveESDefaults() {
	if !o.Set["hold-norms"] {
		o.HoldNorms = true
	}
	if !o.Set["generations"] {
		o.Generations = esDefaultGenerations
	}
	if !o.Set["lr-final"] {
		o.LRFinal = esDefaultLRFinal
	}
	if o.Perturb == perturbLowRank && !o.Set["rank"] {
		o.Rank = esDefaultRank
	}
}

// esRunConfig is the ES run's whole configuration, as summary.json's
// "config" shows it: es.Config and the objective's settings.
type esRunConfig struct {
	es.Config
	Batch     int    `json:"batch"`
	Fitness   string `json:"fitness"`
	HoldNorms bool   `json:"hold_norms"`
	Perturb   string `json:"perturb"`
}

// esSettings is the ES configuration with the command line on top.
func esSettings(o *Options) (cfg es.Config, batch int, fitness string) {
	cfg = es.DefaultConfig()
	cfg.NoiseSize = o.NoiseSize
	cfg.Seed, cfg.NoiseSeed, cfg.Workers = o.Seed, o.Seed, o.Workers
	cfg.Guide = float32(o.Guide)
	if o.Perturb == perturbLowRank {
		cfg.Rank = o.Rank
	}
	if o.Pop > 0 {
		cfg.Pop = o.Pop
	}
	if o.Sigma > 0 {
		cfg.Sigma = float32(o.Sigma)
	}
	if o.LR > 0 {
		cfg.LR = float32(o.LR)
	}
	if o.LRFinal >= 0 { // -lr-final: linear decay over -generations
		cfg.LRFinal, cfg.DecayGens = float32(o.LRFinal), int64(o.Generations)
	}
	switch {
	case o.L2 >= 0:
		cfg.L2 = float32(o.L2)
	case o.WeightDecay >= 0: // -wd, the L2 coefficient's older name for ES
		cfg.L2 = float32(o.WeightDecay)
	}
	batch, fitness = esDefaultBatch, o.Fitness
	if o.Batch > 0 {
		batch = o.Batch
	}
	return cfg, batch, fitness
}

func validateES(o *Options) error {
	cfg, batch, _ := esSettings(o)
	arch, err := fpnet.ParseArch(o.Arch)
	if err != nil {
		return err
	}
	if o.Set["l2"] && o.Set["wd"] {
		return fmt.Errorf("-l2 and -wd both given: for -method es they are the same L2 coefficient; give -l2 only")
	}
	if cfg.NoiseSize < arch.NumParams() {
		return fmt.Errorf("-noise-size %s is smaller than the %d parameters of %s: a perturbation is one slice of the table", o.show("noise-size", cfg.NoiseSize), arch.NumParams(), arch)
	}
	if err := cfg.Validate(arch.NumParams()); err != nil {
		return err
	}
	if o.LRFinal >= 0 && o.Generations == 0 {
		return fmt.Errorf("-lr-final needs -generations: the learning rate falls linearly to it over that many generations")
	}
	if batch > 60000 {
		return fmt.Errorf("-batch %s exceeds the training set", o.show("batch", batch))
	}
	if o.Distributed() { // what a job may ask of the workers
		switch {
		case cfg.Pop > wire.MaxPop:
			return fmt.Errorf("-pop %s: a job through workers has at most %d members", o.show("pop", cfg.Pop), wire.MaxPop)
		case cfg.NoiseSize > wire.MaxNoiseSize:
			return fmt.Errorf("-noise-size %s: a job through workers has at most %d noise values", o.show("noise-size", cfg.NoiseSize), wire.MaxNoiseSize)
		case arch.NumParams() > wire.MaxParams:
			return fmt.Errorf("-arch %s has %d parameters: a job through workers has at most %d", o.Arch, arch.NumParams(), wire.MaxParams)
		}
	}
	// The cluster's secrets and address are checked with the folders, in
	// checkSurroundings: they are read from disk.
	return nil
}

// natsSecurity reads the NATS credentials the flags and the environment
// name.
func (o *Options) natsSecurity() (cluster.Security, error) {
	return cluster.LoadSecurity(cluster.SecurityFiles{TokenFile: o.TokenFile, NKeyFile: o.NKeyFile, CredsFile: o.CredsFile,
		TLSCert: o.TLSCert, TLSKey: o.TLSKey, TLSCA: o.TLSCA})
}

func runES(ctx context.Context, r *Run) error {
	o := r.Opts
	cfg, batch, fitness := esSettings(o)
	// A resumed run's checkpoint first: it holds what the objective and
	// the job need from the start of the run (the held norms, the start
	// point's hash), so that -init's file is not read again.
	var ck *es.Checkpoint
	if r.ResumeDir != "" {
		var err error
		if ck, err = es.LoadCheckpoint(filepath.Join(r.ResumeDir, esCheckpoint)); err != nil {
			return err
		}
		if _, ok := ck.Meta["hold_norms"]; !ok && ck.Meta != nil {
			ck.Meta["hold_norms"] = "false" // written before -hold-norms existed
		}
		if w, err := strconv.ParseFloat(ck.Meta["wall_seconds"], 64); err == nil && w >= 0 && !math.IsInf(w, 0) {
			r.PriorSeconds = w
		}
	}
	obj, err := es.NewNetObjective(r.Net, r.Train, batch, cfg.Seed, fitness)
	if err != nil {
		return err
	}
	// What must match for a checkpoint to continue this run, besides
	// es.Config (L2, noise size, ... : Restore compares it whole).
	meta := map[string]string{"method": o.Method, "recipe": r.Net.Recipe.Name, "arch": r.Net.Arch.String(),
		"batch": strconv.Itoa(batch), "fitness": fitness, "train_examples": strconv.Itoa(r.Train.N),
		"hold_norms": strconv.FormatBool(o.HoldNorms)}
	// What the run needs from its start, the hash of the parameters it
	// began from (the job's identity for workers) and the held norms, come
	// from the checkpoint on resume: -init's file may have changed or gone.
	// A checkpoint written before it kept them has them computed again from
	// the start, as they were then.
	startSHA, haveStart := ckMeta(ck, "start_sha256")
	if ck == nil {
		startSHA, haveStart = fpnet.ParamsSHA256(r.Params), true
	}
	if haveStart {
		meta["start_sha256"] = startSHA
	}
	if o.HoldNorms {
		held, have := ckMeta(ck, "held_norms")
		switch {
		case have:
			norms, err := parseNorms(held)
			if err == nil {
				err = obj.SetHeldNorms(norms)
			}
			if err != nil {
				return fmt.Errorf("checkpoint in %s: held_norms: %v", r.ResumeDir, err)
			}
		case ck == nil: // the norms of the initial (or -init) parameters
			obj.HoldLayerNorms(r.Params)
		default:
			start, err := r.Initial()
			if err != nil {
				return fmt.Errorf("the checkpoint in %s predates those that keep the held norms, so they come from the start again: %v", r.ResumeDir, err)
			}
			obj.HoldLayerNorms(start)
		}
		if ck == nil || have {
			meta["held_norms"] = formatNorms(obj.HeldNorms())
		}
	}
	r.Config = esRunConfig{Config: cfg, Batch: batch, Fitness: fitness, HoldNorms: o.HoldNorms, Perturb: o.Perturb}
	t0 := time.Now()
	noise, err := es.NewNoiseTable(cfg.NoiseSeed, cfg.NoiseSize, o.Workers)
	if err != nil {
		return err
	}
	lr := fmt.Sprint(cfg.LR)
	if cfg.DecayGens > 0 {
		lr = fmt.Sprintf("%g→%g over %d generations", cfg.LR, cfg.LRFinal, cfg.DecayGens)
	}
	perturb := o.Perturb
	if cfg.Rank > 0 {
		perturb = fmt.Sprintf("%s, rank %d", o.Perturb, cfg.Rank)
	}
	r.Logf("es: noise table of %d values (%d MiB) built in %s; pop %d, sigma %g, lr %s, L2 %g, batch %d, fitness %s, hold norms %v, guide %g, perturbations %s",
		cfg.NoiseSize, cfg.NoiseSize*4>>20, time.Since(t0).Round(time.Millisecond), cfg.Pop, cfg.Sigma, lr, cfg.L2, batch, fitness, o.HoldNorms, cfg.Guide, perturb)
	if o.Distributed() {
		// The coordinator's trainer takes every step and checks suspect
		// fitness values; its slots speed up the step.
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	tr, err := es.NewTrainer(cfg, obj, noise, r.Params)
	if err != nil {
		return err
	}
	if ck != nil {
		if err := tr.Restore(ck, meta); err != nil {
			return err
		}
		r.Logf("es: resumed %s at generation %d", r.ResumeDir, tr.Gen)
	}
	if err := r.Begin(); err != nil {
		return err
	}
	path := r.CheckpointPath(esCheckpoint)

	// One generation: in this process, or through the workers.
	step := func() (es.Stats, error) { return tr.Step(), nil }
	var cl *esCluster
	if o.Distributed() {
		if !haveStart {
			start, err := r.Initial()
			if err != nil {
				return fmt.Errorf("the checkpoint in %s predates those that keep the start's hash, so it comes from the start again: %v", r.ResumeDir, err)
			}
			startSHA = fpnet.ParamsSHA256(start)
		}
		if cl, err = startESCluster(ctx, r, tr, obj, noise, meta, startSHA); err != nil {
			return err
		}
		step = func() (es.Stats, error) { return cl.coord.Step(ctx) }
	}
	total := int64(o.Generations)
	r.Steps, r.TotalSteps, r.startSteps = tr.Gen, total, tr.Gen

	// Checkpoint often enough that a kill loses little, rarely enough that
	// writing costs at most ~5%: every 20× the last save's duration, ≥ 0.2 s.
	var saveCost time.Duration
	lastSave := time.Now()
	save := func() error {
		t := time.Now()
		saved := maps.Clone(meta) // wall_seconds changes: not a setting Restore compares
		saved["wall_seconds"] = strconv.FormatFloat(r.SessionSeconds(), 'f', 3, 64)
		if err := tr.Checkpoint(saved).Save(path); err != nil {
			return err
		}
		saveCost, lastSave = time.Since(t), time.Now()
		return nil
	}
	for total == 0 || tr.Gen < total {
		if ctx.Err() != nil || r.OutOfBudget() {
			break
		}
		if total == 0 && r.Deadline.IsZero() && tr.Gen > 0 && tr.Gen%100000 == 0 {
			break // neither -generations nor -budget: stop somewhere
		}
		st, err := step()
		if err != nil {
			if ctx.Err() != nil {
				break // Ctrl-C while gathering a generation: it starts again on -resume
			}
			cl.close(context.Background(), false)
			return err
		}
		r.Steps = tr.Gen
		r.Samples += int64(cfg.Pop) * int64(batch)
		loss := st.Center.Fitness
		if fitness == es.FitnessXent {
			loss = -loss
		}
		p := Progress{Loss: loss, Fitness: st.MeanFitness, BatchAcc: st.Center.Accuracy,
			Extra: map[string]float64{"best_fitness": st.BestFitness, "lr": float64(cfg.LRAt(tr.Gen - 1))}}
		if cl != nil {
			var extra map[string]float64
			p.Note, extra = cl.progress()
			maps.Copy(p.Extra, extra)
			if el := time.Since(r.Start).Seconds(); el > 0 {
				evals := float64(tr.Gen-r.startSteps) * float64(cfg.Pop+1) / el
				p.Note += fmt.Sprintf(", %.0f evaluations/s", evals)
				p.Extra["evaluations_per_s"] = round3(evals)
			}
		}
		r.Progress(p)
		if r.EvalDue() || tr.Gen == total {
			r.Evaluate(tr.Params)
		}
		if time.Since(lastSave) >= max(200*time.Millisecond, 20*saveCost) {
			if err := save(); err != nil {
				cl.close(context.Background(), false)
				return err
			}
		}
	}
	if cl != nil {
		r.Summary = cl.summary(r)
		if err := cl.close(context.Background(), total > 0 && tr.Gen >= total); err != nil {
			r.Logf("es: closing the cluster: %v", err)
		}
	}
	copy(r.Params, tr.Params)
	return save()
}

// ckMeta is a resumed checkpoint's metadata entry; ok is false without a
// checkpoint, or when the checkpoint has no such entry.
func ckMeta(ck *es.Checkpoint, key string) (v string, ok bool) {
	if ck == nil {
		return "", false
	}
	v, ok = ck.Meta[key]
	return v, ok
}

// formatNorms writes held norms exactly: each float64's bits in hex.
func formatNorms(norms []float64) string {
	s := make([]string, len(norms))
	for i, n := range norms {
		s[i] = strconv.FormatUint(math.Float64bits(n), 16)
	}
	return strings.Join(s, ",")
}

func parseNorms(s string) ([]float64, error) {
	var norms []float64
	for _, f := range strings.Split(s, ",") {
		b, err := strconv.ParseUint(f, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a norm's bits", f)
		}
		norms = append(norms, math.Float64frombits(b))
	}
	return norms, nil
}
