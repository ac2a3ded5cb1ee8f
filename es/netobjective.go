package es

import (
	"fmt"
	"math"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/backprop"
	"github.com/seed8b67a5e0/underflow/fpnet/detmath"
	"github.com/seed8b67a5e0/underflow/kernels"
)

// Fitness kinds a NetObjective computes on the shared minibatch.
const (
	FitnessXent = "xent" // negative mean cross-entropy (fpnet.SoftmaxCrossEntropy)
	FitnessAcc  = "acc"  // fraction correct; ties share their rank
)

// NetObjective is the exact float32 network on a labelled dataset: each
// generation, the whole population shares one minibatch, drawn without
// replacement from a seeded permutation of the data (a new one per epoch).
type NetObjective struct {
	Net     *fpnet.Net
	Data    *fpnet.Dataset
	Batch   int
	Seed    uint64
	Fitness string

	// heldNorms, when set, are the Frobenius norms each weight matrix is
	// rescaled to after every update (HoldLayerNorms).
	heldNorms []float64

	// surrogate computes backprop-ftz's gradient for guided ES (built on
	// first use, on its own copy of the parameters).
	surrogate *backprop.Trainer

	// first is the generation's minibatch times θ's first weight matrix,
	// which low-rank members share (BeginLowRank).
	first []float32
	// packed holds θ's weight matrices 2... packed for the kernel, which
	// every low-rank member's products read (BeginLowRank).
	packed []kernels.PackedB

	x     []float32 // the generation's images, Batch×Dim
	y     []uint8   // and labels
	perm  []int32   // the permutation of epoch permEpoch
	epoch int64
}

// NewNetObjective checks the pieces fit together and returns the objective.
func NewNetObjective(net *fpnet.Net, data *fpnet.Dataset, batch int, seed uint64, fitness string) (*NetObjective, error) {
	switch {
	case fitness != FitnessXent && fitness != FitnessAcc:
		return nil, fmt.Errorf("es: unknown fitness %q (want %q or %q)", fitness, FitnessXent, FitnessAcc)
	case batch <= 0 || batch > data.N:
		return nil, fmt.Errorf("es: batch %d outside [1, %d examples]", batch, data.N)
	case data.Dim != net.Arch.Inputs():
		return nil, fmt.Errorf("es: data has %d inputs per example, the network %d", data.Dim, net.Arch.Inputs())
	}
	inner := *net
	inner.Threads = 1 // the parallelism is across members
	return &NetObjective{Net: &inner, Data: data, Batch: batch, Seed: seed, Fitness: fitness,
		x: make([]float32, batch*data.Dim), y: make([]uint8, batch), epoch: -1}, nil
}

// Dim is the number of network parameters.
func (o *NetObjective) Dim() int { return o.Net.Arch.NumParams() }

// Begin copies generation gen's minibatch: examples gen·Batch ... of the
// stream of epochs, each epoch a seeded permutation of the data.
func (o *NetObjective) Begin(gen int64) {
	n := int64(o.Data.N)
	d := o.Data.Dim
	pos := gen * int64(o.Batch)
	for k := 0; k < o.Batch; k++ {
		e, j := (pos+int64(k))/n, (pos+int64(k))%n
		if e != o.epoch {
			o.permute(e)
		}
		i := int(o.perm[j])
		copy(o.x[k*d:(k+1)*d], o.Data.Images[i*d:(i+1)*d])
		o.y[k] = o.Data.Labels[i]
	}
}

// permute makes epoch e's permutation (Fisher–Yates on a counter stream).
func (o *NetObjective) permute(e int64) {
	if o.perm == nil {
		o.perm = make([]int32, o.Data.N)
	}
	for i := range o.perm {
		o.perm[i] = int32(i)
	}
	s := detmath.NewStream(detmath.StreamKey(o.Seed, tagBatch, uint64(e)))
	for i := len(o.perm) - 1; i > 0; i-- {
		j := s.Intn(i + 1)
		o.perm[i], o.perm[j] = o.perm[j], o.perm[i]
	}
	o.epoch = e
}

// NewEvaluator returns an evaluator with its own workspace.
func (o *NetObjective) NewEvaluator() Evaluator {
	return &netEvaluator{o: o, ws: o.Net.NewWorkspace(o.Batch)}
}

type netEvaluator struct {
	o       *NetObjective
	ws      *fpnet.Workspace
	wsMinus *fpnet.Workspace // a pair's minus member (EvaluatePerturbedPair)
}

func (e *netEvaluator) Evaluate(params []float32) Score {
	return e.o.scoreLogits(e.o.Net.Forward(e.ws, params, e.o.x, e.o.Batch))
}

// EvaluatePerturbedPair makes the evaluator a PerturbedEvaluator: the
// network perturbs both members' weights while packing them
// (fpnet.ForwardPerturbedPair).
func (e *netEvaluator) EvaluatePerturbedPair(theta, eps []float32, s float32) (plus, minus Score) {
	if e.wsMinus == nil {
		e.wsMinus = e.o.Net.NewWorkspace(e.o.Batch)
	}
	lp, lm := e.o.Net.ForwardPerturbedPair(e.ws, e.wsMinus, theta, eps, s, e.o.x, e.o.Batch)
	return e.o.scoreLogits(lp), e.o.scoreLogits(lm)
}

// scoreLogits scores one member's logits on the generation's minibatch.
func (o *NetObjective) scoreLogits(logits []float32) Score {
	loss, correct := fpnet.SoftmaxCrossEntropy(logits, o.y, o.Batch, o.Net.Arch.Classes())
	acc := float64(correct) / float64(o.Batch)
	if o.Fitness == FitnessAcc {
		return Score{Fitness: acc, Accuracy: acc}
	}
	return Score{Fitness: -loss, Accuracy: acc}
}

// HoldLayerNorms makes the objective a Projector that, after every update,
// rescales each weight matrix to the Frobenius norm it has in params (biases
// are left alone). The flush threshold is absolute, so the overall scale of
// the weights decides how many activations flush; holding it lets ES change
// which units flush instead of growing every activation out of the band.
func (o *NetObjective) HoldLayerNorms(params []float32) {
	o.heldNorms = o.heldNorms[:0]
	for _, ly := range o.Net.Arch.LayerViews() {
		o.heldNorms = append(o.heldNorms, frobenius(ly.W(params)))
	}
}

// HeldNorms returns the norms Project holds the weight matrices at, one per
// layer (nil when the norms are not held), for a copy of the objective
// elsewhere (SetHeldNorms).
func (o *NetObjective) HeldNorms() []float64 {
	if o.heldNorms == nil {
		return nil
	}
	return append([]float64(nil), o.heldNorms...)
}

// SetHeldNorms holds the weight matrices at the given norms, one per layer,
// as HoldLayerNorms would from the parameters that had them; nil lets them
// free.
func (o *NetObjective) SetHeldNorms(norms []float64) error {
	if norms == nil {
		o.heldNorms = nil
		return nil
	}
	if len(norms) != o.Net.Arch.Layers() {
		return fmt.Errorf("es: %d held norms for %d layers", len(norms), o.Net.Arch.Layers())
	}
	for l, n := range norms {
		if !(n >= 0) || math.IsInf(n, 0) {
			return fmt.Errorf("es: held norm of layer %d is %v", l, n)
		}
	}
	o.heldNorms = append([]float64(nil), norms...)
	return nil
}

// Project rescales the weight matrices to the held norms (no-op unless
// HoldLayerNorms was called). Fixed summation order, one float32 factor per
// layer, products not fused: the same bits everywhere.
func (o *NetObjective) Project(params []float32) {
	if o.heldNorms == nil {
		return
	}
	for l, ly := range o.Net.Arch.LayerViews() {
		w := ly.W(params)
		n := frobenius(w)
		if n == 0 {
			continue
		}
		f := float32(o.heldNorms[l] / n)
		for i := range w {
			w[i] = float32(w[i] * f)
		}
	}
}

func frobenius(w []float32) float64 {
	var s float64
	for _, v := range w {
		s = float64(float64(v)*float64(v)) + s
	}
	return math.Sqrt(s)
}

// Surrogate makes the objective a Guider: it writes the gradient of the
// mean cross-entropy on the generation's minibatch that backprop-ftz
// computes (fpnet's flush-aware logistic jump surrogate, width 0.1), at
// params, to grad.
func (o *NetObjective) Surrogate(grad, params []float32) {
	if o.surrogate == nil {
		cfg := backprop.DefaultConfig(true)
		// The surrogate guided ES was measured with, whatever backprop-ftz's
		// defaults become: the logistic jump of width 0.1, on the plain
		// cross-entropy, with no unit dropped.
		cfg.Surrogate, cfg.Tau, cfg.Dropout, cfg.LabelSmoothing = "jump", 0.1, 0, 0
		cfg.Batch = o.Batch
		b, err := backprop.NewTrainer(o.Net, cfg, make([]float32, len(params)), o.Data.N)
		if err != nil {
			panic("es: surrogate gradient: " + err.Error()) // NewNetObjective checked batch and sizes
		}
		o.surrogate = b
	}
	copy(o.surrogate.Params, params)
	o.surrogate.Gradient(grad, o.x, o.y, o.Batch)
}
