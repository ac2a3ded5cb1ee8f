package backprop

import (
	"math"
	"testing"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/detmath"
	"github.com/seed8b67a5e0/underflow/fpnet/mnist"
)

// The blind gradient is the true gradient where nothing flushes: check it
// against central differences on the ieee recipe without scaling.
func TestGradientMatchesFiniteDifferences(t *testing.T) { checkFiniteDifferences(t, 0) }

// With dropout the gradient is that of the network with this step's units
// dropped: Gradient draws the same masks for the same step, so its loss is
// the function to difference.
func TestDropoutGradientMatchesFiniteDifferences(t *testing.T) { checkFiniteDifferences(t, 0.3) }

func checkFiniteDifferences(t *testing.T, dropout float32) {
	train, _, err := mnist.Load("")
	if err != nil {
		t.Fatalf("loading MNIST from the GoMNIST module: %v", err)
	}
	arch := fpnet.Arch{Sizes: []int{784, 12, 8, 10}}
	r, _ := fpnet.RecipeByName("ieee@0")
	n := fpnet.NewNet(arch, r)
	params := fpnet.InitParams(arch, 3)
	for i := range params {
		if i%7 == 0 {
			params[i] += 0.01
		}
	}
	cfg := DefaultConfig(false)
	cfg.Batch = 16
	cfg.Dropout = dropout
	bp, err := NewTrainer(n, cfg, params, 100)
	if err != nil {
		t.Fatal(err)
	}
	x, y := train.Images[:16*784], train.Labels[:16]
	grad := make([]float32, len(params))
	bp.Gradient(grad, x, y, 16)
	ws := n.NewWorkspace(16)
	lossAt := func() float64 {
		l, _ := fpnet.SoftmaxCrossEntropy(n.Forward(ws, params, x, 16), y, 16, 10)
		return l
	}
	if dropout > 0 {
		scratch := make([]float32, len(params))
		lossAt = func() float64 {
			l, _ := bp.Gradient(scratch, x, y, 16)
			return l
		}
		// Some units are dropped, and not all.
		dropped := 0
		for _, k := range bp.keep[0][:16*12] {
			if k == 0 {
				dropped++
			}
		}
		if dropped < 16*12/10 || dropped > 16*12/2 {
			t.Errorf("dropout %v dropped %d of %d units", dropout, dropped, 16*12)
		}
	}
	rng := detmath.SplitMix64{State: 1}
	checked := 0
	for k := 0; k < 200; k++ {
		i := rng.Intn(len(params))
		if k < 40 { // make sure the biases are checked too
			i = arch.LayerViews()[k%3].BOff + k%8
		}
		old := params[i]
		h := float32(1e-2)
		params[i] = old + h
		lp := lossAt()
		params[i] = old - h
		lm := lossAt()
		params[i] = old
		num := (lp - lm) / float64(2*h)
		if math.Abs(num-float64(grad[i])) > 2e-3+0.02*math.Abs(num) {
			t.Errorf("%s: gradient %v, finite difference %v", arch.ParamName(i), grad[i], num)
		}
		checked++
	}
	t.Logf("%d gradient entries agree with central differences", checked)
}

// The exp-free surrogates: tanh is the logistic jump within 1e-6; cubic
// has the same value at the threshold and is exactly 0 and 1 beyond 3τ.
func TestFastSurrogates(t *testing.T) {
	const theta, tau = 0.5, 0.1
	logistic := func(au float64) float64 {
		s := 1 / (1 + math.Exp(-(au-theta)/tau))
		return s + au*s*(1-s)/tau
	}
	for i := 0; i <= 5000; i++ {
		au := float64(i) / 1000
		if got, want := float64(tanhJump(au, theta, 1/tau)), logistic(au); math.Abs(got-want) > 1e-6 {
			t.Errorf("tanh surrogate at |u| = %v: %v, logistic %v", au, got, want)
		}
		got := cubicJump(au, theta, 1/tau)
		switch {
		case au <= theta-3*tau && got != 0, au >= theta+3*tau+1e-9 && got != 1:
			t.Errorf("cubic surrogate at |u| = %v: %v", au, got)
		}
	}
	if got := cubicJump(theta, theta, 1/tau); got != 1.75 {
		t.Errorf("cubic surrogate at the threshold: %v, want 1.75 (1/2 + θ/(4τ))", got)
	}
}
