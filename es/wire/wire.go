// Package wire is the protocol between an ES coordinator and its workers on
// NATS JetStream: the names on the server, the message types and their
// encoding, the limits every message is checked against, and the protocol
// version. es/cluster speaks it; nothing else encodes these bytes.
//
// A generation travels as scalars, never as parameters. The coordinator
// publishes the generation's tasks (ranges of pair indices); a worker
// evaluates them at its own copy of θ and publishes the fitness bits with
// the hash of the θ it used; the coordinator, holding every member's
// fitness, publishes the generation's outcome (the fitness vector and the
// hash of the θ it was measured at), from which every copy of θ takes the
// same step, bit for bit. A worker that joins, or finds that its θ no
// longer matches, starts again from the latest checkpoint in the object
// store and replays the outcomes since.
//
// Every message a process receives passes Parse*: a malformed, oversized or
// inconsistent one is an error that says what is wrong, never a panic.
package wire

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
)

// Version is the protocol version. A process refuses jobs and messages of
// any other version.
const Version = 1

// Names on the server. One server (or cluster) runs one job at a time under
// these names; the job's ID is part of every subject, so messages of an
// old job never mix with the current one.
const (
	// JobBucket is the key-value bucket whose key JobKey holds the current
	// Job as JSON. Workers watch it to learn what to do.
	JobBucket = "ufes"
	JobKey    = "job"
	// CheckpointBucket is the object store holding, under the job's ID, the
	// latest checkpoint (es's file format) a worker starts from.
	CheckpointBucket = "ufes-checkpoints"
	// TaskStream is the work queue of tasks, subjects TaskSubject(job),
	// read by the durable pull consumer TaskConsumer(job) that every worker
	// of the job shares: explicit acks, redelivery after the ack wait.
	TaskStream = "UFES_TASKS"
	// ResultStream holds the workers' results, subjects ResultSubject(job).
	ResultStream = "UFES_RESULTS"
	// OutcomeStream holds the generations' outcomes, subjects
	// OutcomeSubject(job), back to the latest checkpoint.
	OutcomeStream = "UFES_OUTCOMES"
	// HeartbeatSubject is a plain NATS subject: every worker says what it
	// is doing there about once a second.
	HeartbeatSubject = "ufes.heartbeat"
)

// TaskSubject, ResultSubject and OutcomeSubject are the job's subjects in
// the three streams; TaskConsumer is its shared task consumer.
func TaskSubject(job JobID) string    { return "ufes.task." + job.String() }
func ResultSubject(job JobID) string  { return "ufes.result." + job.String() }
func OutcomeSubject(job JobID) string { return "ufes.outcome." + job.String() }
func TaskConsumer(job JobID) string   { return "tasks-" + job.String() }

// Limits. Every message is checked against them before anything is
// allocated for it.
const (
	// MaxPop bounds the population: an outcome carries 8 bytes per member
	// and must stay under NATS's default 1 MiB payload.
	MaxPop = 1 << 16
	// MaxTaskItems bounds the pairs (and center) of one task.
	MaxTaskItems = 1 << 10
	// MaxNoiseSize bounds the noise table a job may ask a worker to build
	// (float32 entries: 4 GiB).
	MaxNoiseSize = 1 << 30
	// MaxParams bounds the network's parameter count (each copy of the
	// trainer's state is 12 bytes per parameter).
	MaxParams = 1 << 28
	// MaxWorkerID bounds a worker's name in bytes.
	MaxWorkerID = 64
	// MaxJobBytes bounds the job description.
	MaxJobBytes = 64 << 10
	// MaxHeartbeatBytes bounds a heartbeat.
	MaxHeartbeatBytes = 4 << 10
)

// JobID names a job: the first 16 bytes of the SHA-256 of its Spec, so two
// runs with the same trajectory have the same ID.
type JobID [16]byte

func (id JobID) String() string { return hex.EncodeToString(id[:]) }

// ParseJobID reads the 32 hex digits String writes.
func ParseJobID(s string) (JobID, error) {
	var id JobID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("wire: job ID %q: want %d hex digits", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("wire: job ID %q: %v", s, err)
	}
	return id, nil
}

// Hash is the SHA-256 of a parameter vector's little-endian bytes, the
// params_sha256 of cmd/train.
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short is the hash's first 12 hex digits, for messages.
func (h Hash) Short() string { return hex.EncodeToString(h[:6]) }

// Score is one member's fitness and minibatch accuracy, bit for bit.
type Score struct {
	Fitness  float64
	Accuracy float64
}

// Task asks for items [Lo, Hi) of generation Gen: item p < pairs is pair p
// (both members), item pairs is θ itself (the center). Theta is the hash of
// the coordinator's θ at Gen: a worker whose θ differs evaluates nothing.
type Task struct {
	Job    JobID
	Gen    int64
	Lo, Hi int
	Theta  Hash
}

// Result is a worker's answer to a task: for item i, Scores[2(i−Lo)] is
// θ + σε and Scores[2(i−Lo)+1] is θ − σε; for the center, the first of its
// two scores is θ's and the second is zero. Theta is the hash of the θ the
// worker evaluated at.
type Result struct {
	Job    JobID
	Gen    int64
	Lo, Hi int
	Theta  Hash
	Worker string
	Scores []Score
}

// Outcome is a finished generation: the fitness of every member (member 2p
// is θ + σε_p, 2p+1 is θ − σε_p), the center's score, and the hash of the θ
// they were measured at. Every copy of θ at generation Gen whose hash is
// Theta takes the generation's step from Fitness.
type Outcome struct {
	Job     JobID
	Gen     int64
	Theta   Hash
	Center  Score
	Fitness []float64
}

// Message kinds, the fifth byte of every binary message.
const (
	kindTask    = 1
	kindResult  = 2
	kindOutcome = 3
)

// magic starts every binary message; the sixth byte is Version.
const magic = "UFES"

const (
	headerLen  = len(magic) + 2
	taskLen    = headerLen + 16 + 8 + 4 + 4 + 32
	resultMin  = taskLen + 1
	outcomeMin = headerLen + 16 + 8 + 32 + 16 + 4
)

// ErrMalformed wraps every decoding error.
var ErrMalformed = errors.New("wire: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func appendHeader(b []byte, kind byte) []byte {
	return append(append(b, magic...), kind, Version)
}

func checkHeader(b []byte, kind byte, name string, min int) error {
	switch {
	case len(b) < headerLen || string(b[:len(magic)]) != magic:
		return malformed("%s: not a protocol message (%d bytes, bad magic)", name, len(b))
	case b[len(magic)] != kind:
		return malformed("%s: message kind %d, want %d", name, b[len(magic)], kind)
	case b[len(magic)+1] != Version:
		return malformed("%s: protocol version %d, this program speaks %d", name, b[len(magic)+1], Version)
	case len(b) < min:
		return malformed("%s: %d bytes, at least %d needed", name, len(b), min)
	}
	return nil
}

// checkRange checks a task's item range against the limits.
func checkRange(name string, gen int64, lo, hi int) error {
	switch {
	case gen < 0:
		return malformed("%s: generation %d", name, gen)
	case lo < 0 || hi <= lo || hi > MaxPop/2+1:
		return malformed("%s: items [%d, %d)", name, lo, hi)
	case hi-lo > MaxTaskItems:
		return malformed("%s: %d items, at most %d", name, hi-lo, MaxTaskItems)
	}
	return nil
}

// AppendTask appends the task's encoding to b.
func AppendTask(b []byte, t Task) []byte {
	b = appendHeader(b, kindTask)
	b = append(b, t.Job[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(t.Gen))
	b = binary.LittleEndian.AppendUint32(b, uint32(t.Lo))
	b = binary.LittleEndian.AppendUint32(b, uint32(t.Hi))
	return append(b, t.Theta[:]...)
}

// ParseTask decodes and checks a task.
func ParseTask(b []byte) (Task, error) {
	var t Task
	if err := checkHeader(b, kindTask, "task", taskLen); err != nil {
		return t, err
	}
	if len(b) != taskLen {
		return t, malformed("task: %d bytes, want %d", len(b), taskLen)
	}
	p := b[headerLen:]
	copy(t.Job[:], p)
	t.Gen = int64(binary.LittleEndian.Uint64(p[16:]))
	t.Lo = int(binary.LittleEndian.Uint32(p[24:]))
	t.Hi = int(binary.LittleEndian.Uint32(p[28:]))
	copy(t.Theta[:], p[32:])
	return t, checkRange("task", t.Gen, t.Lo, t.Hi)
}

// AppendResult appends the result's encoding to b.
func AppendResult(b []byte, r Result) []byte {
	n := len(b)
	b = AppendTask(b, Task{Job: r.Job, Gen: r.Gen, Lo: r.Lo, Hi: r.Hi, Theta: r.Theta})
	b[n+len(magic)] = kindResult
	b = append(b, byte(len(r.Worker)))
	b = append(b, r.Worker...)
	for _, s := range r.Scores {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.Fitness))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.Accuracy))
	}
	return b
}

// ParseResult decodes and checks a result: its range, its worker's name and
// its length. The values are not judged here: a NaN fitness may be true.
func ParseResult(b []byte) (Result, error) {
	var r Result
	if err := checkHeader(b, kindResult, "result", resultMin); err != nil {
		return r, err
	}
	p := b[headerLen:]
	copy(r.Job[:], p)
	r.Gen = int64(binary.LittleEndian.Uint64(p[16:]))
	r.Lo = int(binary.LittleEndian.Uint32(p[24:]))
	r.Hi = int(binary.LittleEndian.Uint32(p[28:]))
	if err := checkRange("result", r.Gen, r.Lo, r.Hi); err != nil {
		return r, err
	}
	copy(r.Theta[:], p[32:])
	n := int(p[64])
	p = p[65:]
	if n > len(p) {
		return r, malformed("result: worker name of %d bytes, %d left", n, len(p))
	}
	r.Worker = string(p[:n])
	if err := CheckWorkerID(r.Worker); err != nil {
		return r, malformed("result: %v", err)
	}
	p = p[n:]
	if want := 2 * (r.Hi - r.Lo) * 16; len(p) != want {
		return r, malformed("result of worker %s: %d score bytes for items [%d, %d), want %d", r.Worker, len(p), r.Lo, r.Hi, want)
	}
	r.Scores = make([]Score, 2*(r.Hi-r.Lo))
	for i := range r.Scores {
		r.Scores[i] = Score{Fitness: math.Float64frombits(binary.LittleEndian.Uint64(p[16*i:])),
			Accuracy: math.Float64frombits(binary.LittleEndian.Uint64(p[16*i+8:]))}
	}
	return r, nil
}

// AppendOutcome appends the outcome's encoding to b.
func AppendOutcome(b []byte, o Outcome) []byte {
	b = appendHeader(b, kindOutcome)
	b = append(b, o.Job[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(o.Gen))
	b = append(b, o.Theta[:]...)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(o.Center.Fitness))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(o.Center.Accuracy))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(o.Fitness)))
	for _, f := range o.Fitness {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	return b
}

// ParseOutcome decodes and checks an outcome.
func ParseOutcome(b []byte) (Outcome, error) {
	var o Outcome
	if err := checkHeader(b, kindOutcome, "outcome", outcomeMin); err != nil {
		return o, err
	}
	p := b[headerLen:]
	copy(o.Job[:], p)
	o.Gen = int64(binary.LittleEndian.Uint64(p[16:]))
	copy(o.Theta[:], p[24:])
	o.Center.Fitness = math.Float64frombits(binary.LittleEndian.Uint64(p[56:]))
	o.Center.Accuracy = math.Float64frombits(binary.LittleEndian.Uint64(p[64:]))
	pop := int(binary.LittleEndian.Uint32(p[72:]))
	p = p[76:]
	switch {
	case o.Gen < 0:
		return o, malformed("outcome: generation %d", o.Gen)
	case pop < 2 || pop%2 != 0 || pop > MaxPop:
		return o, malformed("outcome of generation %d: population %d", o.Gen, pop)
	case len(p) != 8*pop:
		return o, malformed("outcome of generation %d: %d fitness bytes for population %d", o.Gen, len(p), pop)
	}
	o.Fitness = make([]float64, pop)
	for i := range o.Fitness {
		o.Fitness[i] = math.Float64frombits(binary.LittleEndian.Uint64(p[8*i:]))
	}
	return o, nil
}

// CheckWorkerID checks a worker's name: 1 to MaxWorkerID bytes of letters,
// digits and . _ - : @ /, so it can be printed and logged as it is.
func CheckWorkerID(id string) error {
	if len(id) == 0 || len(id) > MaxWorkerID {
		return fmt.Errorf("worker name of %d bytes (want 1 to %d)", len(id), MaxWorkerID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':' || c == '@' || c == '/'
		if !ok {
			return fmt.Errorf("worker name %q: byte %d (0x%02x) is not allowed", id, i, c)
		}
	}
	return nil
}
