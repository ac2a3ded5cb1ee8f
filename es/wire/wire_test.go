package wire

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/seed8b67a5e0/underflow/es"
)

func sampleResult() Result {
	return Result{Job: JobID{1, 2}, Gen: 41, Lo: 3, Hi: 5, Theta: Hash{9, 9}, Worker: "host-12-ab:cd",
		Scores: []Score{{-2.5, 0.125}, {math.NaN(), 0}, {math.Inf(-1), 1}, {math.Copysign(0, -1), 0.5}}}
}

func TestMessagesRoundTrip(t *testing.T) {
	task := Task{Job: JobID{7}, Gen: 1 << 40, Lo: 0, Hi: MaxTaskItems, Theta: Hash{1}}
	if got, err := ParseTask(AppendTask(nil, task)); err != nil || got != task {
		t.Fatalf("task: %+v, %v", got, err)
	}
	r := sampleResult()
	got, err := ParseResult(AppendResult(nil, r))
	if err != nil {
		t.Fatal(err)
	}
	// NaN != NaN: compare the encodings, which are the bits.
	if !bytes.Equal(AppendResult(nil, got), AppendResult(nil, r)) || got.Worker != r.Worker || got.Lo != 3 || got.Hi != 5 {
		t.Fatalf("result: %+v", got)
	}
	if math.Signbit(got.Scores[3].Fitness) != true {
		t.Fatal("the sign of zero was lost")
	}
	o := Outcome{Job: JobID{3}, Gen: 5, Theta: Hash{4}, Center: Score{-1, 0.5}, Fitness: []float64{1, math.NaN(), -0.0, 4}}
	gotO, err := ParseOutcome(AppendOutcome(nil, o))
	if err != nil || !bytes.Equal(AppendOutcome(nil, gotO), AppendOutcome(nil, o)) {
		t.Fatalf("outcome: %+v, %v", gotO, err)
	}
}

func TestParseRefusesMalformedMessages(t *testing.T) {
	task := AppendTask(nil, Task{Job: JobID{1}, Gen: 2, Lo: 0, Hi: 1})
	result := AppendResult(nil, sampleResult())
	outcome := AppendOutcome(nil, Outcome{Job: JobID{3}, Gen: 5, Fitness: make([]float64, 4)})
	edit := func(b []byte, at int, v ...byte) []byte {
		c := append([]byte(nil), b...)
		copy(c[at:], v)
		return c
	}
	cases := map[string]struct {
		parse func([]byte) error
		data  []byte
		want  string
	}{
		"empty task":           {pt, nil, "bad magic"},
		"task as result":       {pr, task, "kind"},
		"future version":       {pt, edit(task, 5, 2), "protocol version 2"},
		"task too long":        {pt, append(append([]byte(nil), task...), 0), "want"},
		"empty range":          {pt, edit(task, 30, 1, 0, 0, 0, 1), "items [1, 1)"},
		"range past limit":     {pt, edit(task, 34, 0xff, 0xff, 0, 0), "items"},
		"negative generation":  {pt, edit(task, 22, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), "generation -1"},
		"truncated result":     {pr, result[:len(result)-1], "score bytes"},
		"result name overflow": {pr, edit(result, 70, 200), "worker name"},
		"result bad name":      {pr, edit(result, 71, ' '), "not allowed"},
		"outcome odd pop":      {po, edit(outcome, 78, 3), "population 3"},
		"outcome short":        {po, outcome[:len(outcome)-8], "fitness bytes"},
		"outcome huge pop":     {po, edit(outcome, 78, 0, 0, 0, 1), "population"},
	}
	for name, c := range cases {
		err := c.parse(c.data)
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (want %q)", name, err, c.want)
		}
	}
}

func pt(b []byte) error { _, err := ParseTask(b); return err }
func pr(b []byte) error { _, err := ParseResult(b); return err }
func po(b []byte) error { _, err := ParseOutcome(b); return err }

func sampleSpec() Spec {
	cfg := es.DefaultConfig()
	h := strings.Repeat("ab", 32)
	return Spec{Config: cfg, Arch: "784-16-10", Recipe: "openai2017", Batch: 10, BatchSeed: 1, Fitness: es.FitnessXent,
		HeldNorms: []float64{1.5, 2.5}, TrainExamples: 100, DataSHA256: h, NoiseSHA256: h, Start: h}
}

func TestJobRoundTripAndChecks(t *testing.T) {
	j := NewJob(sampleSpec())
	b, err := j.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseJob(b)
	if err != nil || !reflect.DeepEqual(got, j) {
		t.Fatalf("%+v, %v", got, err)
	}
	if id, _ := got.JobID(); id != j.Spec.ID() {
		t.Fatal("the ID is not the spec's")
	}
	bad := func(name, want string, f func(s *Spec)) {
		t.Helper()
		s := sampleSpec()
		f(&s)
		b, _ := NewJob(s).Marshal()
		if _, err := ParseJob(b); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v (want %q)", name, err, want)
		}
	}
	bad("pop", "population", func(s *Spec) { s.Config.Pop = MaxPop + 2 })
	bad("noise", "noise table", func(s *Spec) { s.Config.NoiseSize = MaxNoiseSize + 1 })
	bad("arch", "architecture", func(s *Spec) { s.Arch = "784" })
	bad("recipe", "recipe", func(s *Spec) { s.Recipe = "cuda" })
	bad("batch", "batch", func(s *Spec) { s.Batch = 101 })
	bad("norms", "held norms", func(s *Spec) { s.HeldNorms = []float64{1} })
	bad("hash", "not a SHA-256", func(s *Spec) { s.DataSHA256 = "zz" })
	bad("fitness", "fitness", func(s *Spec) { s.Fitness = "loss" })
	bad("sigma", "sigma", func(s *Spec) { s.Config.Sigma = 0 })
	// A job whose ID is not its spec's, unknown fields, another protocol.
	forged := bytes.Replace(b, []byte(j.ID), []byte(strings.Repeat("0", 32)), 1)
	for name, data := range map[string][]byte{
		"forged ID":     forged,
		"unknown field": bytes.Replace(b, []byte(`{"protocol"`), []byte(`{"x":1,"protocol"`), 1),
		"protocol 2":    bytes.Replace(b, []byte(`"protocol":1`), []byte(`"protocol":2`), 1),
		"huge":          make([]byte, MaxJobBytes+1),
		"state":         bytes.Replace(b, []byte(`"running"`), []byte(`"paused"`), 1),
	} {
		if _, err := ParseJob(data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParse feeds arbitrary bytes to every decoder a process runs on what
// it receives: none may panic, and whatever one accepts must encode back to
// the same bytes (the binary ones) or parse again (the JSON ones).
func FuzzParse(f *testing.F) {
	f.Add(AppendTask(nil, Task{Job: JobID{1}, Gen: 2, Lo: 0, Hi: 1}))
	f.Add(AppendResult(nil, sampleResult()))
	f.Add(AppendOutcome(nil, Outcome{Job: JobID{3}, Gen: 5, Fitness: make([]float64, 4)}))
	b, _ := NewJob(sampleSpec()).Marshal()
	f.Add(b)
	f.Add([]byte(`{"protocol":1,"worker":"w","state":"ready","slots":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if v, err := ParseTask(data); err == nil && !bytes.Equal(AppendTask(nil, v), data) {
			t.Fatal("task does not re-encode to its bytes")
		}
		if v, err := ParseResult(data); err == nil && !bytes.Equal(AppendResult(nil, v), data) {
			t.Fatal("result does not re-encode to its bytes")
		}
		if v, err := ParseOutcome(data); err == nil && !bytes.Equal(AppendOutcome(nil, v), data) {
			t.Fatal("outcome does not re-encode to its bytes")
		}
		if j, err := ParseJob(data); err == nil {
			b, _ := j.Marshal()
			if _, err := ParseJob(b); err != nil {
				t.Fatalf("an accepted job does not parse again: %v", err)
			}
		}
		ParseHeartbeat(data)
	})
}
