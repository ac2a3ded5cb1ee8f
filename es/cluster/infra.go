package cluster

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed8b67a5e0/underflow/es/wire"
	"github.com/seed8b67a5e0/underflow/fpnet"
)

// infra is the job's furniture on the server: the bucket that announces the
// job, the checkpoint store and the three streams.
type infra struct {
	js       jetstream.JetStream
	jobs     jetstream.KeyValue
	ckpts    jetstream.ObjectStore
	tasks    jetstream.Stream
	results  jetstream.Stream
	outcomes jetstream.Stream
}

// Stream limits: the server refuses a message larger than its stream's
// MaxMsgSize, so an oversized one never reaches a process.
const (
	maxTaskBytes    = 256
	maxResultBytes  = 512 + 32*wire.MaxTaskItems
	maxOutcomeBytes = 256 + 8*wire.MaxPop
)

// createInfra creates (or updates to this version's settings) everything
// the coordinator needs, on file storage so that it survives a restart of
// the server.
func createInfra(ctx context.Context, js jetstream.JetStream) (*infra, error) {
	in := &infra{js: js}
	var err error
	if in.jobs, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: wire.JobBucket,
		Description: "underflow ES: the current job", Storage: jetstream.FileStorage, MaxValueSize: wire.MaxJobBytes}); err != nil {
		return nil, fmt.Errorf("bucket %s: %w", wire.JobBucket, err)
	}
	if in.ckpts, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: wire.CheckpointBucket,
		Description: "underflow ES: the latest checkpoint of each job", Storage: jetstream.FileStorage}); err != nil {
		return nil, fmt.Errorf("object store %s: %w", wire.CheckpointBucket, err)
	}
	streams := []struct {
		dst  *jetstream.Stream
		cfg  jetstream.StreamConfig
		desc string
	}{
		{&in.tasks, jetstream.StreamConfig{Name: wire.TaskStream, Subjects: []string{"ufes.task.*"},
			Retention: jetstream.WorkQueuePolicy, MaxMsgSize: maxTaskBytes}, "tasks"},
		{&in.results, jetstream.StreamConfig{Name: wire.ResultStream, Subjects: []string{"ufes.result.*"},
			MaxMsgSize: maxResultBytes, MaxAge: 24 * time.Hour}, "results"},
		{&in.outcomes, jetstream.StreamConfig{Name: wire.OutcomeStream, Subjects: []string{"ufes.outcome.*"},
			MaxMsgSize: maxOutcomeBytes, Duplicates: 10 * time.Minute}, "outcomes"},
	}
	for _, s := range streams {
		s.cfg.Storage = jetstream.FileStorage
		s.cfg.Description = "underflow ES: " + s.desc
		if *s.dst, err = js.CreateOrUpdateStream(ctx, s.cfg); err != nil {
			return nil, fmt.Errorf("stream %s: %w", s.cfg.Name, err)
		}
	}
	return in, nil
}

// openInfra opens what the coordinator created; a worker calls it until it
// succeeds, so it may start first.
func openInfra(ctx context.Context, js jetstream.JetStream) (*infra, error) {
	in := &infra{js: js}
	var err error
	if in.jobs, err = js.KeyValue(ctx, wire.JobBucket); err != nil {
		return nil, err
	}
	if in.ckpts, err = js.ObjectStore(ctx, wire.CheckpointBucket); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		dst  *jetstream.Stream
		name string
	}{{&in.tasks, wire.TaskStream}, {&in.results, wire.ResultStream}, {&in.outcomes, wire.OutcomeStream}} {
		if *s.dst, err = js.Stream(ctx, s.name); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// thetaHash is the SHA-256 of the parameters' little-endian bytes: the
// params_sha256 cmd/train reports.
func thetaHash(params []float32) wire.Hash {
	return sha256.Sum256(fpnet.ParamsBytes(params))
}

// retry calls op until it succeeds or ctx ends, waiting longer between
// tries up to a second. The server may be restarting: operations fail
// while it is away and succeed when it is back. Every tenth failure is
// logged.
func retry(ctx context.Context, logf func(string, ...any), what string, op func(ctx context.Context) error) error {
	wait := 50 * time.Millisecond
	for try := 1; ; try++ {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := op(octx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if try%10 == 1 {
			logf("%s: %v (retrying)", what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// isNotFound reports the errors that mean "not created yet".
func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) ||
		errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrObjectNotFound) ||
		errors.Is(err, jetstream.ErrConsumerNotFound)
}

// limiter lets each kind of log message (its format) through at most once
// a second, with a count of those it held back, so a flood of forged
// messages cannot flood the log.
type limiter struct {
	mu    sync.Mutex
	kinds map[string]*limited
}

type limited struct {
	last    time.Time
	dropped int
}

func (l *limiter) logf(logf func(string, ...any), format string, args ...any) {
	l.mu.Lock()
	if l.kinds == nil {
		l.kinds = map[string]*limited{}
	}
	k := l.kinds[format]
	if k == nil {
		k = &limited{}
		l.kinds[format] = k
	}
	if time.Since(k.last) < time.Second {
		k.dropped++
		l.mu.Unlock()
		return
	}
	if k.dropped > 0 {
		format += fmt.Sprintf(" (and %d more like it)", k.dropped)
	}
	k.last, k.dropped = time.Now(), 0
	l.mu.Unlock()
	logf(format, args...)
}
