package cluster

import (
	"github.com/seed8b67a5e0/underflow/es"
	"github.com/seed8b67a5e0/underflow/es/wire"
)

// NewSpec describes the job a trainer runs on a network objective: its
// configuration, the network, the data's and the noise's fingerprints, and
// startSHA, the params_sha256 of the parameters the run began from (before
// any resume).
func NewSpec(tr *es.Trainer, obj *es.NetObjective, startSHA string) wire.Spec {
	cfg := tr.Cfg
	cfg.Workers = 0
	return wire.Spec{
		Config: cfg, Arch: obj.Net.Arch.String(), Recipe: obj.Net.Recipe.Name,
		Batch: obj.Batch, BatchSeed: obj.Seed, Fitness: obj.Fitness, HeldNorms: obj.HeldNorms(),
		TrainExamples: obj.Data.N, DataSHA256: wire.DataFingerprint(obj.Data),
		NoiseSHA256: tr.Noise.SHA256(), Start: startSHA,
	}
}
