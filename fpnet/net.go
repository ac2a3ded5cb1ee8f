package fpnet

import (
	"fmt"

	"github.com/seed8b67a5e0/underflow/kernels"
)

// Net is a network shape run under a recipe.
type Net struct {
	Arch   Arch
	Recipe Recipe
	// Threads is the number of goroutines each product may use (0 or 1:
	// the calling goroutine only). The bits never depend on it.
	Threads int
}

// NewNet returns the network for an architecture and recipe.
func NewNet(a Arch, r Recipe) *Net { return &Net{Arch: a, Recipe: r} }

// Workspace is one goroutine's scratch for forward (and backward) passes,
// sized once so that a pass allocates nothing.
type Workspace struct {
	maxBatch int
	// Prod[l] holds layer l's raw product z_{l-1}·W_l (batch×fan_out),
	// Act[l] its output after the elementwise ops (the last one: logits).
	Prod, Act [][]float32
	// scaledBias[l] is b_l·2^-ScaleExp in the element environment, the
	// bias the hidden and output layers add.
	scaledBias [][]float32
	// bias[l] holds a perturbed member's b_l (ForwardPerturbed).
	bias [][]float32
	// views is the network's parameter layout, computed once here so that
	// Forward allocates nothing.
	views []Layer
}

// NewWorkspace allocates scratch for batches of up to maxBatch rows.
func (n *Net) NewWorkspace(maxBatch int) *Workspace {
	if maxBatch <= 0 {
		panic("fpnet: NewWorkspace needs maxBatch > 0")
	}
	L := n.Arch.Layers()
	ws := &Workspace{maxBatch: maxBatch, Prod: make([][]float32, L), Act: make([][]float32, L),
		scaledBias: make([][]float32, L), bias: make([][]float32, L), views: n.Arch.LayerViews()}
	for l := 0; l < L; l++ {
		out := n.Arch.Sizes[l+1]
		ws.Prod[l] = make([]float32, maxBatch*out)
		ws.Act[l] = make([]float32, maxBatch*out)
		ws.scaledBias[l] = make([]float32, out)
		ws.bias[l] = make([]float32, out)
	}
	return ws
}

// MaxBatch is the largest batch the workspace holds.
func (ws *Workspace) MaxBatch() int { return ws.maxBatch }

// Forward runs the exact network on batch rows of x (batch×inputs) and
// returns the logits (batch×classes), which alias ws. With s = 2^ScaleExp,
// every product in ProductEnv and every elementwise op in ElementEnv:
//
//	h1 = (x·W1 + b1) / s
//	h_l = h_{l-1}·W_l + b_l/s          (hidden layers)
//	o  = (h_{L-1}·W_L + b_L/s) · s     (the last layer)
//
// which for 784-512-512-10 is the article's network. Division by s is the
// multiplication by 2^-ScaleExp (same value, same flush).
func (n *Net) Forward(ws *Workspace, params, x []float32, batch int) []float32 {
	return n.forward(ws, params, nil, 0, x, batch, nil)
}

// ForwardThen is Forward that hands each hidden layer's output (layer l,
// batch×fan_out values in ws) to then before the next layer reads it, so
// that a trainer can change it in place (dropout). A nil then is Forward.
func (n *Net) ForwardThen(ws *Workspace, params, x []float32, batch int, then func(l int, act []float32)) []float32 {
	return n.forward(ws, params, nil, 0, x, batch, then)
}

// ForwardPerturbed is Forward of the parameters theta + s·eps, each the
// product rounded to float32, then the sum, in IEEE (kernels.AddScaled):
// the same bits, without storing the perturbed vector. The weights are
// perturbed while the products pack them (kernels.MatMulPerturbed), the
// biases in ws.
func (n *Net) ForwardPerturbed(ws *Workspace, theta, eps []float32, s float32, x []float32, batch int) []float32 {
	if len(eps) != len(theta) {
		panic(fmt.Sprintf("fpnet: ForwardPerturbed got %d noise values for %d parameters", len(eps), len(theta)))
	}
	return n.forward(ws, theta, eps, s, x, batch, nil)
}

// ForwardPerturbedPair is ForwardPerturbed for both members of an
// antithetic pair: theta + s·eps on wsPlus and theta + (−s)·eps on wsMinus,
// the same bits as the two calls. Each layer packs both members' weights in
// one pass over theta and eps (kernels.MatMulPerturbedPair), so the noise,
// which nothing else shares, is read once for the pair.
func (n *Net) ForwardPerturbedPair(wsPlus, wsMinus *Workspace, theta, eps []float32, s float32, x []float32, batch int) (plus, minus []float32) {
	if n.Threads > 1 { // the pair product has no parallel form
		return n.ForwardPerturbed(wsPlus, theta, eps, s, x, batch), n.ForwardPerturbed(wsMinus, theta, eps, -s, x, batch)
	}
	if len(eps) != len(theta) {
		panic(fmt.Sprintf("fpnet: ForwardPerturbedPair got %d noise values for %d parameters", len(eps), len(theta)))
	}
	for _, ws := range []*Workspace{wsPlus, wsMinus} {
		n.checkForward(ws, theta, x, batch)
	}
	pe := n.Recipe.ProductEnv
	inP, inM := x, x
	for l, ly := range wsPlus.views {
		rows := batch * ly.FanOut
		prodP, prodM := wsPlus.Prod[l][:rows], wsMinus.Prod[l][:rows]
		kernels.MatMulPerturbedPair(pe, prodP, prodM, inP[:batch*ly.FanIn], inM[:batch*ly.FanIn], ly.W(theta), ly.W(eps), s, batch, ly.FanIn, ly.FanOut)
		for _, m := range []struct {
			ws   *Workspace
			prod []float32
			s    float32
		}{{wsPlus, prodP, s}, {wsMinus, prodM, -s}} {
			bias := m.ws.bias[l]
			kernels.AddScaled(kernels.IEEE, bias, ly.B(theta), ly.B(eps), m.s)
			n.Activate(l, m.ws.Act[l][:rows], m.prod, bias, m.ws.scaledBias[l], batch)
		}
		inP, inM = wsPlus.Act[l], wsMinus.Act[l]
	}
	last := len(wsPlus.views) - 1
	return wsPlus.Act[last][:batch*n.Arch.Classes()], wsMinus.Act[last][:batch*n.Arch.Classes()]
}

// checkForward panics unless a forward pass of batch rows of x through
// params fits the workspace and the architecture.
func (n *Net) checkForward(ws *Workspace, params, x []float32, batch int) {
	a := n.Arch
	if batch < 0 || batch > ws.maxBatch {
		panic(fmt.Sprintf("fpnet: Forward batch %d outside workspace's [0, %d]", batch, ws.maxBatch))
	}
	if len(params) != a.NumParams() {
		panic(fmt.Sprintf("fpnet: Forward got %d parameters, architecture %s has %d", len(params), a, a.NumParams()))
	}
	if len(x) < batch*a.Inputs() {
		panic(fmt.Sprintf("fpnet: Forward input holds %d values, %d rows of %d need %d", len(x), batch, a.Inputs(), batch*a.Inputs()))
	}
	views := ws.views
	for l, ly := range views {
		if len(views) != a.Layers() || ly.FanIn != a.Sizes[l] || ly.FanOut != a.Sizes[l+1] {
			panic(fmt.Sprintf("fpnet: Forward workspace was made for another architecture than %s", a))
		}
	}
}

// forward is Forward of params, or with eps != nil of params + s·eps; then,
// when not nil, sees each hidden layer's output (ForwardThen).
func (n *Net) forward(ws *Workspace, params, eps []float32, s float32, x []float32, batch int, then func(l int, act []float32)) []float32 {
	n.checkForward(ws, params, x, batch)
	pe := n.Recipe.ProductEnv
	threads := max(n.Threads, 1)
	in := x
	views := ws.views
	for l, ly := range views {
		rows := batch * ly.FanOut
		prod, act := ws.Prod[l][:rows], ws.Act[l][:rows]
		bias := ly.B(params)
		if eps == nil {
			kernels.MatMulParallel(pe, prod, in[:batch*ly.FanIn], ly.W(params), batch, ly.FanIn, ly.FanOut, threads)
		} else {
			kernels.MatMulPerturbed(pe, prod, in[:batch*ly.FanIn], ly.W(params), ly.W(eps), s, batch, ly.FanIn, ly.FanOut, threads)
			bias = ws.bias[l]
			kernels.AddScaled(kernels.IEEE, bias, ly.B(params), ly.B(eps), s)
		}
		n.Activate(l, act, prod, bias, ws.scaledBias[l], batch)
		if then != nil && l != len(views)-1 {
			then(l, act)
		}
		in = act
	}
	return ws.Act[len(views)-1][:batch*n.Arch.Classes()]
}

// Activate runs layer l's elementwise ops on batch rows of its product
// prod (batch×FanOut) with the bias b_l, writing act (which may be prod):
// the part of Forward that follows each product, in ElementEnv, with
// s = 2^ScaleExp:
//
//	first layer:  (prod + b_1) / s   (then · s when it is also the last)
//	hidden layer: prod + b_l/s
//	last layer:   (prod + b_L/s) · s
//
// scratch holds at least FanOut values (b_l/s, computed once per call).
// Callers that compute a layer's product themselves (low-rank ES) use it
// to stay the same network as Forward.
func (n *Net) Activate(l int, act, prod, bias, scratch []float32, batch int) {
	ee, e := n.Recipe.ElementEnv, n.Recipe.ScaleExp
	out, last := n.Arch.Sizes[l+1], n.Arch.Layers()-1
	switch {
	case l == 0:
		kernels.BiasAddScale(ee, act, prod, bias, batch, out, -e)
		if l == last {
			kernels.Scale(ee, act[:batch*out], act[:batch*out], e)
		}
	case l == last:
		sb := scratch[:out]
		kernels.Scale(ee, sb, bias[:out], -e)
		kernels.BiasAddScale(ee, act, prod, sb, batch, out, e)
	default:
		sb := scratch[:out]
		kernels.Scale(ee, sb, bias[:out], -e)
		kernels.BiasAdd(ee, act, prod, sb, batch, out)
	}
}

// Predict writes the arg-max class of each of batch rows of logits to dst.
func Predict(dst []uint8, logits []float32, batch, classes int) {
	for r := 0; r < batch; r++ {
		dst[r] = uint8(argmax(logits[r*classes : r*classes+classes]))
	}
}

// argmax returns the index of the largest value (the first on ties; NaN
// never wins).
func argmax(v []float32) int {
	best := 0
	for j := 1; j < len(v); j++ {
		if v[j] > v[best] || v[best] != v[best] {
			best = j
		}
	}
	return best
}

// EvalChunk is the number of rows Evaluate runs per forward pass. It is
// fixed so that the summed loss does not depend on the worker count.
const EvalChunk = 500

// Evaluate runs the exact network over the whole dataset with up to workers
// goroutines and returns the number of correct predictions and the mean
// cross-entropy. The result is the same bits for any worker count.
func (n *Net) Evaluate(params []float32, ds *Dataset, workers int) (correct int, meanLoss float64) {
	return n.Classify(params, ds, workers, nil)
}

// Classify is Evaluate that also writes each example's predicted class to
// pred (nil: not wanted; else at least ds.N long).
func (n *Net) Classify(params []float32, ds *Dataset, workers int, pred []uint8) (correct int, meanLoss float64) {
	if pred != nil && len(pred) < ds.N {
		panic(fmt.Sprintf("fpnet: Classify needs %d predictions' room, got %d", ds.N, len(pred)))
	}
	if ds.N == 0 {
		return 0, 0
	}
	chunks := (ds.N + EvalChunk - 1) / EvalChunk
	losses := make([]float64, chunks)
	corrects := make([]int, chunks)
	workers = max(1, min(workers, chunks))
	// Products single-threaded inside: the parallelism is over chunks.
	inner := *n
	inner.Threads = 1
	next := make(chan int, chunks)
	for c := 0; c < chunks; c++ {
		next <- c
	}
	close(next)
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			ws := inner.NewWorkspace(EvalChunk)
			for c := range next {
				lo := c * EvalChunk
				hi := min(lo+EvalChunk, ds.N)
				logits := inner.Forward(ws, params, ds.Images[lo*ds.Dim:hi*ds.Dim], hi-lo)
				l, k := SoftmaxCrossEntropy(logits, ds.Labels[lo:hi], hi-lo, n.Arch.Classes())
				if pred != nil {
					Predict(pred[lo:hi], logits, hi-lo, n.Arch.Classes())
				}
				losses[c] = l * float64(hi-lo)
				corrects[c] = k
			}
		}()
	}
	for w := 0; w < workers; w++ {
		<-done
	}
	total := 0.0
	for c := range losses {
		total += losses[c]
		correct += corrects[c]
	}
	return correct, total / float64(ds.N)
}
