package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/seed8b67a5e0/underflow/es"
	"github.com/seed8b67a5e0/underflow/es/cluster"
	"github.com/seed8b67a5e0/underflow/fpnet"
)

// esCluster wires -method es to workers (cmd/esworker) through NATS
// JetStream: a server embedded in this process (-serve) or an external one
// (-nats), the coordinator, and, unless -workers 0, a worker in this
// process that evaluates like any other.
type esCluster struct {
	ns     *server.Server // nil with -nats
	conns  []*nats.Conn
	coord  *cluster.Coordinator
	local  string // this process's worker, if any
	stop   context.CancelFunc
	worker sync.WaitGroup
}

// natsDir is the run folder's JetStream storage for -serve: the streams, the
// job and its checkpoints survive the coordinator, so -resume continues.
const natsDir = "nats"

// startESCluster starts the coordinator for trainer tr, which holds the
// run's state (restored on -resume); startSHA is the params_sha256 of where
// the run began (kept in the checkpoint, so that a resume needs no -init
// file).
func startESCluster(ctx context.Context, r *Run, tr *es.Trainer, obj *es.NetObjective, noise *es.NoiseTable,
	meta map[string]string, startSHA string) (*esCluster, error) {
	o := r.Opts
	sec, err := o.natsSecurity()
	if err != nil {
		return nil, err
	}
	c := &esCluster{}
	url := o.NATS
	if o.Serve != "" {
		if c.ns, err = cluster.StartServer(cluster.ServerConfig{Addr: o.Serve, StoreDir: filepath.Join(r.Dir, natsDir), Security: sec}); err != nil {
			return nil, err
		}
		url = cluster.ClientURL(c.ns, sec)
		r.Logf("es: NATS server with JetStream on %s (storage %s); workers join with: go run ./cmd/esworker -nats nats://HOST:%d",
			c.ns.Addr(), filepath.Join(r.Dir, natsDir), c.ns.Addr().(*net.TCPAddr).Port)
	}
	nc, err := cluster.Connect(url, sec, "underflow coordinator", r.Logf)
	if err != nil {
		c.close(ctx, false)
		return nil, err
	}
	c.conns = append(c.conns, nc)
	c.coord, err = cluster.NewCoordinator(ctx, cluster.CoordinatorConfig{Conn: nc, Spec: cluster.NewSpec(tr, obj, startSHA),
		Trainer: tr, Meta: meta, Fresh: r.ResumeDir == "", TaskPairs: o.TaskPairs, AckWait: o.TaskTimeout, Logf: r.Logf})
	if err != nil {
		c.close(ctx, false)
		return nil, err
	}
	if o.Workers > 0 {
		wc, err := cluster.Connect(url, sec, "underflow coordinator's worker", r.Logf)
		if err != nil {
			c.close(ctx, false)
			return nil, err
		}
		c.conns = append(c.conns, wc)
		c.local = cluster.DefaultWorkerID()
		w, err := cluster.NewWorker(cluster.WorkerConfig{Conn: wc, ID: c.local, Slots: o.Workers,
			Data: func() (*fpnet.Dataset, error) { return r.Train, nil }, Noise: noise, Logf: r.Logf})
		if err != nil {
			c.close(ctx, false)
			return nil, err
		}
		var wctx context.Context
		wctx, c.stop = context.WithCancel(context.Background())
		c.worker.Add(1)
		go func() {
			defer c.worker.Done()
			if err := w.Run(wctx); err != nil {
				r.Logf("es: this process's worker stopped: %v", err)
			}
		}()
	}
	return c, nil
}

// progress is the live line's note and the metrics' fields: workers
// evaluating now and their slots.
func (c *esCluster) progress() (string, map[string]float64) {
	n, slots := c.coord.Workers()
	return fmt.Sprintf("%d workers (%d slots)", n, slots), map[string]float64{"workers": float64(n), "worker_slots": float64(slots)}
}

// summary is what summary.json reports of the cluster.
func (c *esCluster) summary(r *Run) map[string]any {
	shares := c.coord.Shares()
	mode := "nats"
	if c.ns != nil {
		mode = "serve"
	}
	return map[string]any{"cluster": map[string]any{"mode": mode, "job": c.coord.JobID().String(),
		"workers": len(shares), "shares": shares, "local_worker": c.local, "local_slots": r.Opts.Workers, "cpus": runtime.NumCPU()}}
}

// close stops this process's worker and the coordinator (marking the job
// done when the run is finished), then the connections and the server.
func (c *esCluster) close(ctx context.Context, done bool) error {
	if c == nil {
		return nil
	}
	if c.stop != nil {
		c.stop()
		c.worker.Wait()
	}
	var err error
	if c.coord != nil {
		err = c.coord.Close(ctx, done)
	}
	for _, nc := range c.conns {
		nc.Close()
	}
	if c.ns != nil {
		c.ns.Shutdown()
		c.ns.WaitForShutdown()
	}
	return err
}
