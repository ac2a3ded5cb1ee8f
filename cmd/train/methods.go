package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// A Method is one way to train the network. cmd/train finds methods in a
// registry: backprop.go registers "backprop" and "backprop-ftz", es.go
// registers "es", each from its init().
//
// The contract between main and a method:
//   - Validate (optional) checks the method's own flags in o before any data
//     loads; an error is a bad flag (exit 2).
//   - Run trains r.Params in place, starting from what it holds (from
//     -init, or the seeded article initialisation), or from r.ResumeDir's
//     checkpoint when that is set (the method owns its checkpoint file
//     there: r.CheckpointPath(name)).
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
	Validate    func(o *Options) error
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
func methodNames() string {
	var names []string
	for n := range methods {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func lookupMethod(name string) (*Method, error) {
	m, ok := methods[name]
	if !ok {
		return nil, fmt.Errorf("unknown method %q (have %s)", name, methodNames())
	}
	return m, nil
}
