package main

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/seed8b67a5e0/underflow/es"
	"github.com/seed8b67a5e0/underflow/es/cluster"
	"github.com/seed8b67a5e0/underflow/fpnet"
)

func init() {
	Register(&Method{Name: "es", Description: "OpenAI-ES on the exact network (the article's 96.7% row): shared noise table, antithetic pairs, centered ranks, Adam, L2",
		Validate: validateES, Run: runES})
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
}

// esRunConfig is the ES run's whole configuration, as summary.json's
// "config" shows it: es.Config and the objective's settings.
type esRunConfig struct {
	es.Config
	Batch     int    `json:"batch"`
	Fitness   string `json:"fitness"`
	HoldNorms bool   `json:"hold_norms"`
}

// esSettings is the ES configuration with the command line on top.
func esSettings(o *Options) (cfg es.Config, batch int, fitness string) {
	cfg = es.DefaultConfig()
	cfg.NoiseSize = o.NoiseSize
	cfg.Seed, cfg.NoiseSeed, cfg.Workers = o.Seed, o.Seed, o.Workers
	cfg.Guide = float32(o.Guide)
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
		return fmt.Errorf("-noise-size %d is smaller than the %d parameters of %s: a perturbation is one slice of the table", cfg.NoiseSize, arch.NumParams(), arch)
	}
	if err := cfg.Validate(arch.NumParams()); err != nil {
		return err
	}
	if o.LRFinal >= 0 && o.Generations == 0 {
		return fmt.Errorf("-lr-final needs -generations: the learning rate falls linearly to it over that many generations")
	}
	if batch > 60000 {
		return fmt.Errorf("-batch %d exceeds the training set", batch)
	}
	if o.Distributed() {
		sec, err := o.natsSecurity()
		if err != nil {
			return err
		}
		if o.Serve != "" {
			if _, _, err := cluster.CheckServe(o.Serve, sec); err != nil {
				return err
			}
		}
	}
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
	obj, err := es.NewNetObjective(r.Net, r.Train, batch, cfg.Seed, fitness)
	if err != nil {
		return err
	}
	if o.HoldNorms { // the norms of the initial (or -init) parameters, also on resume
		obj.HoldLayerNorms(r.Params)
	}
	r.Config = esRunConfig{Config: cfg, Batch: batch, Fitness: fitness, HoldNorms: o.HoldNorms}
	t0 := time.Now()
	noise, err := es.NewNoiseTable(cfg.NoiseSeed, cfg.NoiseSize, o.Workers)
	if err != nil {
		return err
	}
	lr := fmt.Sprint(cfg.LR)
	if cfg.DecayGens > 0 {
		lr = fmt.Sprintf("%g→%g over %d generations", cfg.LR, cfg.LRFinal, cfg.DecayGens)
	}
	r.Logf("es: noise table of %d values (%d MiB) built in %s; pop %d, sigma %g, lr %s, L2 %g, batch %d, fitness %s, hold norms %v, guide %g",
		cfg.NoiseSize, cfg.NoiseSize*4>>20, time.Since(t0).Round(time.Millisecond), cfg.Pop, cfg.Sigma, lr, cfg.L2, batch, fitness, o.HoldNorms, cfg.Guide)
	if o.Distributed() {
		// The coordinator's trainer takes every step and checks suspect
		// fitness values; its slots speed up the step.
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	tr, err := es.NewTrainer(cfg, obj, noise, r.Params)
	if err != nil {
		return err
	}
	// What must match for a checkpoint to continue this run, besides
	// es.Config (L2, noise size, ... : Restore compares it whole).
	meta := map[string]string{"method": o.Method, "recipe": r.Net.Recipe.Name, "arch": r.Net.Arch.String(),
		"batch": strconv.Itoa(batch), "fitness": fitness, "train_examples": strconv.Itoa(r.Train.N),
		"hold_norms": strconv.FormatBool(o.HoldNorms)}
	path := r.CheckpointPath(esCheckpoint)
	if r.ResumeDir != "" {
		ck, err := es.LoadCheckpoint(filepath.Join(r.ResumeDir, esCheckpoint))
		if err != nil {
			return err
		}
		if _, ok := ck.Meta["hold_norms"]; !ok && ck.Meta != nil {
			ck.Meta["hold_norms"] = "false" // written before -hold-norms existed
		}
		if err := tr.Restore(ck, meta); err != nil {
			return err
		}
		r.Logf("es: resumed %s at generation %d", r.ResumeDir, tr.Gen)
	}

	// One generation: in this process, or through the workers.
	step := func() (es.Stats, error) { return tr.Step(), nil }
	var cl *esCluster
	if o.Distributed() {
		if cl, err = startESCluster(ctx, r, tr, obj, noise, meta, r.Params); err != nil {
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
		if err := tr.Checkpoint(meta).Save(path); err != nil {
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
