package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/atomicfile"
	"github.com/seed8b67a5e0/underflow/kernels"
)

// Run is what a method trains with and reports to.
type Run struct {
	Opts        *Options
	Net         *fpnet.Net
	Train, Test *fpnet.Dataset
	// Val is the held-out validation set (nil without -val): the periodic
	// evaluations score it instead of the test set.
	Val *fpnet.Dataset
	// Params are trained in place; on entry the initial parameters.
	Params []float32
	// Steps is the number of steps (minibatches, generations) done; the
	// method keeps it current.
	Steps int64
	// TotalSteps is the planned number of steps, for the ETA (0: unknown).
	TotalSteps int64
	// Samples counts training examples processed (for samples/s).
	Samples int64
	// Config is the method's effective configuration (defaults and flags
	// resolved), written to summary.json; optional.
	Config any
	// Summary holds further summary.json fields the method reports
	// (optional).
	Summary map[string]any
	// Dir is the run folder, set by Begin; ResumeDir is set when the run
	// resumes.
	Dir, ResumeDir string
	// Initial gives the parameters the run started from (-init's file or
	// the seeded initialisation). A resumed run holds its state in its
	// checkpoint and does not need them; they are here for a checkpoint
	// written before it held everything it needs.
	Initial  func() ([]float32, error)
	Start    time.Time
	Deadline time.Time // zero: no budget
	// PriorSeconds is the wall time of the run's earlier sessions, up to
	// their last checkpoint (a resumed run's method sets it from there).
	PriorSeconds float64

	log        io.Writer // live progress
	metrics    *os.File
	mu         sync.Mutex
	lastLine   time.Time
	lastEval   time.Time
	startSteps int64
	startSmpl  int64
	tty        bool
	curve      []curvePoint
	lineOpen   bool
	lastPlain  time.Time
	cancel     context.CancelFunc
	begun      bool
}

type curvePoint struct {
	Seconds float64
	Step    int64
	Acc     float64 // validation accuracy with -val, else test accuracy
}

// Begin creates the run folder (a new, unique one under runs/ unless -out
// names it), writes options.json and opens metrics.jsonl: the first writes
// of a run. A method calls it once its setup and any resumed checkpoint
// have been checked, so that a run refused before training has touched
// nothing on disk. Calling it again does nothing.
func (r *Run) Begin() error {
	if r.begun {
		return nil
	}
	o := r.Opts
	optJSON, err := json.MarshalIndent(o, "", "  ")
	if err != nil { // validate refused NaN and Inf; this is a bug
		return fmt.Errorf("options.json: %v", err)
	}
	dir := o.Out
	if dir == "" {
		if dir, err = newRunDir(filepath.Join("runs", o.Method+"-"+r.Start.Format("20060102-150405"))); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "options.json"), append(optJSON, '\n')); err != nil {
		return err
	}
	// A resumed run in its own folder adds to its metrics; a new run starts
	// them (a folder without a run may hold a dead one's).
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if r.ResumeDir == "" || filepath.Clean(dir) != filepath.Clean(r.ResumeDir) {
		flags |= os.O_TRUNC
	}
	if r.metrics, err = os.OpenFile(filepath.Join(dir, "metrics.jsonl"), flags, 0o644); err != nil {
		return err
	}
	r.Dir, r.begun = dir, true
	recipe := r.Net.Recipe
	sets := fmt.Sprintf("%d train / %d test images", r.Train.N, r.Test.N)
	if r.Val != nil {
		sets = fmt.Sprintf("%d train / %d validation / %d test images", r.Train.N, r.Val.N, r.Test.N)
	}
	r.Logf("train: method %s, recipe %s (products %v, elementwise %v, scaling 2^%d), arch %s, %s, backend %s, %d workers, out %s",
		o.Method, recipe.Name, recipe.ProductEnv, recipe.ElementEnv, recipe.ScaleExp, r.Net.Arch, sets, kernels.Backend(), o.Workers, dir)
	r.record(map[string]any{"kind": "start", "method": o.Method, "recipe": recipe.Name, "backend": kernels.Backend(), "resume": o.Resume != ""})
	return nil
}

// newRunDir creates a folder named base, or base-2, base-3, ... when that
// is taken: two runs started in the same second get a folder each
// (os.Mkdir fails for the second).
func newRunDir(base string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return "", err
	}
	for i := 1; i <= 10000; i++ {
		dir := base
		if i > 1 {
			dir = fmt.Sprintf("%s-%d", base, i)
		}
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: 10000 run folders of that name exist", base)
}

// SessionSeconds is the run's wall time so far, earlier sessions included:
// what a checkpoint records as wall_seconds.
func (r *Run) SessionSeconds() float64 { return r.PriorSeconds + time.Since(r.Start).Seconds() }

// CheckpointPath is where the method keeps its checkpoint file name.
func (r *Run) CheckpointPath(name string) string { return filepath.Join(r.Dir, name) }

// OutOfBudget reports whether the wall-clock budget is spent.
func (r *Run) OutOfBudget() bool { return !r.Deadline.IsZero() && time.Now().After(r.Deadline) }

// EvalDue reports whether a test evaluation is due (-eval-every).
func (r *Run) EvalDue() bool { return time.Since(r.lastEval) >= r.Opts.EvalEvery }

// Progress is one step's report.
type Progress struct {
	Loss     float64 // mean training loss of the step (backprop) or -fitness
	Fitness  float64 // ES: mean fitness (0 for backprop)
	BatchAcc float64 // minibatch accuracy, in [0, 1]
	Extra    map[string]float64
	Note     string // appended to the live line (workers, evaluations/s)
}

// Progress records a step: a metrics.jsonl line at most every second and
// the live line.
func (r *Run) Progress(p Progress) {
	if r.Opts.stopAfter > 0 && r.Steps >= r.Opts.stopAfter && r.cancel != nil {
		r.cancel()
	}
	now := time.Now()
	if now.Sub(r.lastLine) < time.Second && r.Steps != r.TotalSteps {
		return
	}
	r.lastLine = now
	el := now.Sub(r.Start)
	rate := float64(r.Samples-r.startSmpl) / el.Seconds()
	rec := map[string]any{"kind": "step", "step": r.Steps, "elapsed_s": round3(el.Seconds()), "loss": p.Loss,
		"batch_acc": p.BatchAcc, "samples_per_s": round3(rate)}
	if p.Fitness != 0 {
		rec["fitness"] = p.Fitness
	}
	for k, v := range p.Extra {
		rec[k] = v
	}
	r.record(rec)
	eta := "?"
	if r.TotalSteps > 0 && r.Steps > r.startSteps {
		left := time.Duration(float64(el) / float64(r.Steps-r.startSteps) * float64(r.TotalSteps-r.Steps))
		if !r.Deadline.IsZero() && now.Add(left).After(r.Deadline) {
			left = r.Deadline.Sub(now)
		}
		eta = fmtDur(left)
	}
	total := "?"
	if r.TotalSteps > 0 {
		total = fmt.Sprint(r.TotalSteps)
	}
	score := fmt.Sprintf("loss %.4f", p.Loss)
	if p.Fitness != 0 {
		score = fmt.Sprintf("fitness %.4f", p.Fitness)
	}
	line := fmt.Sprintf("%s step %d/%s  %s  ETA %s  %s  batch acc %.2f%%  %.0f samples/s  [%s]",
		r.Opts.Method, r.Steps, total, fmtDur(el), eta, score, 100*p.BatchAcc, rate, kernels.Backend())
	if p.Note != "" {
		line += "  " + p.Note
	}
	r.printLine(line, false)
}

func (r *Run) printLine(line string, permanent bool) {
	if r.Opts.Quiet && !permanent {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.tty && !permanent:
		fmt.Fprintf(r.log, "\r\033[K%s", line)
		r.lineOpen = true
	case r.tty:
		if r.lineOpen {
			fmt.Fprint(r.log, "\r\033[K")
			r.lineOpen = false
		}
		fmt.Fprintln(r.log, line)
	default:
		if permanent || time.Since(r.lastPlain) >= 10*time.Second {
			fmt.Fprintln(r.log, line)
			if !permanent {
				r.lastPlain = time.Now()
			}
		}
	}
}

// Evaluate measures params with the exact forward pass on the validation
// set (with -val) or else the test set, records it, and returns the
// accuracy in [0, 1].
func (r *Run) Evaluate(params []float32) float64 {
	r.lastEval = time.Now()
	set, name := r.Test, "test"
	if r.Val != nil {
		set, name = r.Val, "val"
	}
	correct, loss := r.Net.Evaluate(params, set, r.Opts.Workers)
	acc := float64(correct) / float64(set.N)
	el := time.Since(r.Start).Seconds()
	r.record(map[string]any{"kind": "eval", "step": r.Steps, "elapsed_s": round3(el), name + "_acc": acc, name + "_loss": loss})
	r.curve = append(r.curve, curvePoint{Seconds: el, Step: r.Steps, Acc: acc})
	r.printLine(fmt.Sprintf("  step %d  %s  %s acc %.2f%%  %s loss %.4f", r.Steps, fmtDur(time.Since(r.Start)), name, 100*acc, name, loss), true)
	return acc
}

// Logf prints a permanent line.
func (r *Run) Logf(format string, args ...any) { r.printLine(fmt.Sprintf(format, args...), true) }

func (r *Run) record(rec map[string]any) {
	if r.metrics == nil {
		return
	}
	b, err := json.Marshal(jsonSafe(rec))
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.metrics.Write(append(b, '\n'))
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

func fmtDur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	}
	return fmt.Sprintf("%dm%02ds", m, s)
}
