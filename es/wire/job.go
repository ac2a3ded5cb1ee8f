package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"

	"github.com/seed8b67a5e0/underflow/es"
	"github.com/seed8b67a5e0/underflow/fpnet"
)

// Spec is everything a generation's bits depend on: with the same Spec and
// the same checkpoint, every process computes the same members, the same
// fitness and the same step. A worker builds its trainer from it and from
// its own copy of the data, whose fingerprint must match. It holds data
// only: no code, no paths, no commands.
type Spec struct {
	Config es.Config `json:"config"` // Workers is always 0: it changes no bit
	Arch   string    `json:"arch"`
	Recipe string    `json:"recipe"`
	Batch  int       `json:"batch"`
	// BatchSeed draws the generations' minibatches (es.NetObjective.Seed).
	BatchSeed uint64 `json:"batch_seed"`
	Fitness   string `json:"fitness"`
	// HeldNorms, when set, are the Frobenius norms every weight matrix is
	// held at after each update (es.NetObjective.SetHeldNorms).
	HeldNorms []float64 `json:"held_norms,omitempty"`
	// TrainExamples and DataSHA256 identify the training set: its first
	// TrainExamples MNIST training images (DataFingerprint).
	TrainExamples int    `json:"train_examples"`
	DataSHA256    string `json:"data_sha256"`
	// NoiseSHA256 is the noise table's fingerprint (es.NoiseTable.SHA256).
	NoiseSHA256 string `json:"noise_sha256"`
	// Start is the params_sha256 the run started from (the article's
	// initialisation or -init): two runs that differ only there are
	// different jobs.
	Start string `json:"start_sha256"`
}

// ID is the job's name: a hash of the spec.
func (s Spec) ID() JobID {
	b, _ := json.Marshal(s) // a struct of plain fields; field order is fixed
	sum := sha256.Sum256(b)
	var id JobID
	copy(id[:], sum[:])
	return id
}

// Job states.
const (
	JobRunning = "running"
	JobDone    = "done"
)

// Job is the key-value entry that tells workers what to do.
type Job struct {
	Protocol int    `json:"protocol"`
	ID       string `json:"id"`
	State    string `json:"state"`
	Spec     Spec   `json:"spec"`
}

// NewJob describes a running job with that spec.
func NewJob(s Spec) Job {
	s.Config.Workers = 0
	return Job{Protocol: Version, ID: s.ID().String(), State: JobRunning, Spec: s}
}

// JobID returns the job's parsed ID.
func (j Job) JobID() (JobID, error) { return ParseJobID(j.ID) }

// Marshal encodes the job for the key-value bucket.
func (j Job) Marshal() ([]byte, error) { return json.Marshal(j) }

// ParseJob decodes a job and checks it: the protocol version, that its ID
// is its spec's, and that the spec is one this program can run within the
// limits. Unknown fields are refused: they would mean a protocol this
// program does not speak.
func ParseJob(b []byte) (Job, error) {
	var j Job
	if len(b) > MaxJobBytes {
		return j, malformed("job: %d bytes, at most %d", len(b), MaxJobBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return j, malformed("job: %v", err)
	}
	if j.Protocol != Version {
		return j, fmt.Errorf("wire: job %s speaks protocol %d, this program %d", j.ID, j.Protocol, Version)
	}
	if j.State != JobRunning && j.State != JobDone {
		return j, malformed("job %s: state %q", j.ID, j.State)
	}
	id, err := j.JobID()
	if err != nil {
		return j, malformed("job: %v", err)
	}
	if id != j.Spec.ID() {
		return j, malformed("job %s: the ID is not its spec's (%s)", j.ID, j.Spec.ID())
	}
	if err := j.Spec.Validate(); err != nil {
		return j, fmt.Errorf("wire: job %s: %w", j.ID, err)
	}
	return j, nil
}

// Validate checks that the spec describes a run this program can do within
// the limits, before anything is allocated for it.
func (s Spec) Validate() error {
	arch, err := fpnet.ParseArch(s.Arch)
	if err != nil {
		return err
	}
	if _, err := fpnet.RecipeByName(s.Recipe); err != nil {
		return err
	}
	if n := arch.NumParams(); n > MaxParams {
		return fmt.Errorf("%s has %d parameters, at most %d", s.Arch, n, MaxParams)
	}
	c := s.Config
	switch {
	case c.Workers != 0:
		return fmt.Errorf("the config names %d workers: a job's spec leaves them to each process", c.Workers)
	case c.Pop > MaxPop:
		return fmt.Errorf("population %d, at most %d", c.Pop, MaxPop)
	case c.NoiseSize > MaxNoiseSize:
		return fmt.Errorf("noise table of %d values, at most %d", c.NoiseSize, MaxNoiseSize)
	case s.Fitness != es.FitnessXent && s.Fitness != es.FitnessAcc:
		return fmt.Errorf("fitness %q", s.Fitness)
	case s.TrainExamples <= 0 || s.Batch <= 0 || s.Batch > s.TrainExamples:
		return fmt.Errorf("batch %d of %d training examples", s.Batch, s.TrainExamples)
	case s.HeldNorms != nil && len(s.HeldNorms) != arch.Layers():
		return fmt.Errorf("%d held norms for %d layers", len(s.HeldNorms), arch.Layers())
	}
	for l, n := range s.HeldNorms {
		if !(n >= 0) || math.IsInf(n, 0) {
			return fmt.Errorf("held norm of layer %d is %v", l, n)
		}
	}
	for name, h := range map[string]string{"data_sha256": s.DataSHA256, "noise_sha256": s.NoiseSHA256, "start_sha256": s.Start} {
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("%s %q is not a SHA-256", name, h)
		}
	}
	return c.Validate(arch.NumParams())
}

// DataFingerprint is the SHA-256 of a training set as a job sees it: the
// float32 bits of its images, then its labels.
func DataFingerprint(ds *fpnet.Dataset) string {
	h := sha256.New()
	for i := 0; i < len(ds.Images); i += 1 << 16 { // in pieces: the images are 188 MB
		h.Write(fpnet.ParamsBytes(ds.Images[i:min(i+1<<16, len(ds.Images))]))
	}
	h.Write(ds.Labels)
	return hex.EncodeToString(h.Sum(nil))
}

// Heartbeat is what a worker says about itself on HeartbeatSubject, about
// once a second (JSON).
type Heartbeat struct {
	Protocol    int    `json:"protocol"`
	Worker      string `json:"worker"`
	Job         string `json:"job,omitempty"`    // the job it works on, or waits for
	State       string `json:"state"`            // one of the Worker* states
	Reason      string `json:"reason,omitempty"` // why it refused the job
	Gen         int64  `json:"gen"`              // the generation its θ is at
	Slots       int    `json:"slots"`            // evaluation goroutines
	GOOS        string `json:"goos"`
	GOARCH      string `json:"goarch"`
	Backend     string `json:"backend"` // kernels.Backend()
	Evaluations int64  `json:"evaluations"`
}

// Worker states in heartbeats.
const (
	WorkerIdle    = "idle"    // no job, or the job is done
	WorkerSyncing = "syncing" // loading the data, building the noise, replaying outcomes
	WorkerReady   = "ready"   // evaluating tasks
	WorkerRefused = "refused" // it cannot run the job (Reason says why)
)

// ParseHeartbeat decodes and checks a heartbeat.
func ParseHeartbeat(b []byte) (Heartbeat, error) {
	var h Heartbeat
	if len(b) > MaxHeartbeatBytes {
		return h, malformed("heartbeat: %d bytes, at most %d", len(b), MaxHeartbeatBytes)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, malformed("heartbeat: %v", err)
	}
	if h.Protocol != Version {
		return h, malformed("heartbeat of %q: protocol %d, this program %d", h.Worker, h.Protocol, Version)
	}
	if err := CheckWorkerID(h.Worker); err != nil {
		return h, malformed("heartbeat: %v", err)
	}
	if h.Slots < 0 || h.Slots > 1<<16 || len(h.Reason) > 1024 {
		return h, malformed("heartbeat of %s: %d slots, reason of %d bytes", h.Worker, h.Slots, len(h.Reason))
	}
	return h, nil
}
