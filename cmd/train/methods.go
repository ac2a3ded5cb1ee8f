package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/seed8b67a5e0/underflow/fpnet"
)

// A Method is one way to train the network. cmd/train finds methods in a
// registry: backprop.go registers "backprop" and "backprop-ftz", es.go
// registers "es", each from its init().
//
// The contract between main and a method:
//   - Flags names the method's own flags (beside commonFlags); any other
//     flag given with the method is refused, naming both.
//   - Validate (optional) checks the method's own flags in o before any data
//     loads; an error is a bad flag (exit 2).
//   - Memory estimates, from the options alone, a lower bound of the bytes
//     the run allocates, and says what they hold; a run that cannot fit is
//     refused before it starts (exit 2).
//   - Checkpoint is the checkpoint's file name in the run folder.
//   - Run trains r.Params in place, starting from what it holds (from
//     -init, or the seeded article initialisation), or from r.ResumeDir's
//     checkpoint when that is set (the method owns its checkpoint file
//     there: r.CheckpointPath(name)). A resumed run continues the same
//     trajectory or refuses: what the trajectory depends on is in the
//     checkpoint, and compared.
//   - Run checks everything it can before it calls r.Begin, which creates
//     the run folder and writes options.json: a run that fails before
//     Begin has touched nothing on disk. Checkpoints come after Begin.
//   - Run calls r.Progress after each step (rate-limited output), and
//     r.Evaluate(params) when r.EvalDue() (test accuracy at intervals).
//   - Run stops when its step/epoch count is done, when r.OutOfBudget(),
//     or when ctx is cancelled (Ctrl-C). In every case it writes its
//     checkpoint (atomically) before returning, so the run can be resumed,
//     and leaves the final parameters in r.Params and the steps done in
//     r.Steps. Returning nil after a cancellation is right: main notices.
//   - main then evaluates r.Params with the exact forward pass on the full
//     training and test sets and writes the model, summary.json, the plot
//     and the report.
type Method struct {
	Name        string
	Description string
	Flags       []string
	Checkpoint  string
	Validate    func(o *Options) error
	Memory      func(o *Options, arch fpnet.Arch) []memoryUse
	Run         func(ctx context.Context, r *Run) error
}

var methods = map[string]*Method{}

// Register adds a method; a duplicate name is a programming error.
func Register(m *Method) {
	if _, dup := methods[m.Name]; dup {
		panic("cmd/train: method " + m.Name + " registered twice")
	}
	methods[m.Name] = m
}

// methodNames lists the registered methods in order.
func methodNames() string { return strings.Join(sortedMethodNames(), ", ") }

func sortedMethodNames() []string {
	var names []string
	for n := range methods {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookupMethod(name string) (*Method, error) {
	m, ok := methods[name]
	if !ok {
		return nil, fmt.Errorf("unknown method %q (have %s)", name, methodNames())
	}
	return m, nil
}
