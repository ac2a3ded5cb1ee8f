package fpnet_test

import (
	"math"
	"sync"
	"testing"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/detmath"
	"github.com/seed8b67a5e0/underflow/fpnet/mnist"
	"github.com/seed8b67a5e0/underflow/kernels"
)

var (
	mnistOnce             sync.Once
	mnistTrain, mnistTest *fpnet.Dataset
	mnistErr              error
)

// realMNIST loads the GoMNIST module's data once per test binary.
func realMNIST(t testing.TB) (train, test *fpnet.Dataset) {
	t.Helper()
	mnistOnce.Do(func() { mnistTrain, mnistTest, mnistErr = mnist.Load("") })
	if mnistErr != nil {
		t.Fatalf("loading MNIST from the GoMNIST module: %v", mnistErr)
	}
	return mnistTrain, mnistTest
}

// referenceForward is the network written directly on the scalar
// reference: every elementwise op through kernels.Add and kernels.Mul.
func referenceForward(n *fpnet.Net, params, x []float32, batch int) []float32 {
	r := n.Recipe
	s := math.Float32frombits(uint32(r.ScaleExp+127) << 23)
	inv := math.Float32frombits(uint32(-r.ScaleExp+127) << 23)
	in := x
	views := n.Arch.LayerViews()
	for l, ly := range views {
		out := make([]float32, batch*ly.FanOut)
		kernels.MatMul(r.ProductEnv, out, in, ly.W(params), batch, ly.FanIn, ly.FanOut)
		b := ly.B(params)
		for i := range out {
			bj := b[i%ly.FanOut]
			if l == 0 {
				out[i] = kernels.Mul(r.ElementEnv, kernels.Add(r.ElementEnv, out[i], bj), inv)
			} else {
				out[i] = kernels.Add(r.ElementEnv, out[i], kernels.Mul(r.ElementEnv, bj, inv))
			}
			if l == len(views)-1 {
				out[i] = kernels.Mul(r.ElementEnv, out[i], s)
			}
		}
		in = out
	}
	return in
}

func TestForwardMatchesReference(t *testing.T) {
	train, _ := realMNIST(t)
	arch := fpnet.Arch{Sizes: []int{784, 40, 24, 10}}
	for _, name := range append(fpnet.RecipeNames(), "ftz@125", "openai2017@120", "ieee@0") {
		r, err := fpnet.RecipeByName(name)
		if err != nil {
			t.Fatal(err)
		}
		n := fpnet.NewNet(arch, r)
		params := fpnet.InitParams(arch, 5)
		// Biases around the flush threshold, so the b/s flush matters.
		rng := detmath.SplitMix64{State: 9}
		for _, ly := range arch.LayerViews() {
			for j := range ly.B(params) {
				ly.B(params)[j] = float32(rng.Float64()*2-1) * 0.8
			}
		}
		batch := 37
		ws := n.NewWorkspace(batch)
		got := n.Forward(ws, params, train.Images, batch)
		want := referenceForward(n, params, train.Images, batch)
		for i := range want {
			if !sameFloat(got[i], want[i]) {
				t.Fatalf("%s: logit %d = %#08x, reference %#08x", name, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
			}
		}
		n.Threads = 3
		got = n.Forward(ws, params, train.Images, batch)
		for i := range want {
			if !sameFloat(got[i], want[i]) {
				t.Fatalf("%s with 3 threads: logit %d differs", name, i)
			}
		}
	}
}

// ForwardPerturbed and ForwardPerturbedPair give Forward's bits for the
// materialised members θ ± s·ε (kernels.AddScaled in IEEE), in every recipe.
func TestForwardPerturbedMatchesMaterialised(t *testing.T) {
	train, _ := realMNIST(t)
	arch := fpnet.Arch{Sizes: []int{784, 40, 24, 10}}
	theta := fpnet.InitParams(arch, 6)
	eps := make([]float32, len(theta))
	g := detmath.NewGaussian(11)
	for i := range eps {
		eps[i] = float32(g.Next())
	}
	for _, name := range fpnet.RecipeNames() {
		r, err := fpnet.RecipeByName(name)
		if err != nil {
			t.Fatal(err)
		}
		n := fpnet.NewNet(arch, r)
		batch := 37
		wsP, wsM, ws := n.NewWorkspace(batch), n.NewWorkspace(batch), n.NewWorkspace(batch)
		for _, s := range []float32{0.01, 0.3} {
			member := make([]float32, len(theta))
			gotP, gotM := n.ForwardPerturbedPair(wsP, wsM, theta, eps, s, train.Images, batch)
			for _, m := range []struct {
				s    float32
				pair []float32
			}{{s, gotP}, {-s, gotM}} {
				kernels.AddScaled(kernels.IEEE, member, theta, eps, m.s)
				want := append([]float32(nil), n.Forward(ws, member, train.Images, batch)...)
				single := n.ForwardPerturbed(ws, theta, eps, m.s, train.Images, batch)
				for i := range want {
					if !sameFloat(single[i], want[i]) || !sameFloat(m.pair[i], want[i]) {
						t.Fatalf("%s s=%g: logit %d: perturbed %#08x, pair %#08x, materialised %#08x", name, m.s, i,
							math.Float32bits(single[i]), math.Float32bits(m.pair[i]), math.Float32bits(want[i]))
					}
				}
			}
		}
	}
}

// relDiff is ‖a−b‖/‖b‖.
func relDiff(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / den)
}

// TestUnderflowMakesItNonlinear is the article's point on real images: the
// same parameters are a linear map under ieee (up to rounding) and far from
// one under openai2017.
func TestUnderflowMakesItNonlinear(t *testing.T) {
	train, _ := realMNIST(t)
	const batch = 64
	x1 := train.Images[:batch*784]
	x2 := train.Images[batch*784 : 2*batch*784]
	sum := make([]float32, len(x1))
	double := make([]float32, len(x1))
	for i := range x1 {
		sum[i] = x1[i] + x2[i]
		double[i] = 2 * x1[i]
	}
	params := fpnet.InitParams(fpnet.DefaultArch, 1)
	results := map[string][2]float64{}
	for _, name := range []string{"openai2017", "ieee"} {
		r, _ := fpnet.RecipeByName(name)
		n := fpnet.NewNet(fpnet.DefaultArch, r)
		ws := n.NewWorkspace(batch)
		f := func(x []float32) []float32 { return append([]float32(nil), n.Forward(ws, params, x, batch)...) }
		f1, f2, fs, fd := f(x1), f(x2), f(sum), f(double)
		add := make([]float32, len(f1))
		twice := make([]float32, len(f1))
		for i := range f1 {
			add[i] = f1[i] + f2[i]
			twice[i] = 2 * f1[i]
		}
		results[name] = [2]float64{relDiff(add, fs), relDiff(twice, fd)}
		t.Logf("%-10s ‖f(x1)+f(x2) − f(x1+x2)‖/‖f(x1+x2)‖ = %.3g   ‖2f(x) − f(2x)‖/‖f(2x)‖ = %.3g", name, results[name][0], results[name][1])
	}
	if r := results["ieee"]; r[0] > 1e-4 || r[1] > 1e-4 {
		t.Errorf("ieee network is not linear up to rounding: relative errors %v", r)
	}
	if r := results["openai2017"]; r[0] < 0.05 || r[1] < 0.05 {
		t.Errorf("openai2017 network looks linear: relative errors %v, want > 5%%", r)
	}
}

// The article's examples, under the exact reference, with min = 2^-126.
func TestArticleExamples(t *testing.T) {
	min := float32(0x1p-126)
	a, b, c := 0.4*min, 0.5*min, 1/min
	// FTZ: a and b are kept as inputs, the tiny sum a+b is flushed.
	left := kernels.Mul(kernels.FTZ, kernels.Add(kernels.FTZ, a, b), c)
	right := kernels.Add(kernels.FTZ, kernels.Mul(kernels.FTZ, a, c), kernels.Mul(kernels.FTZ, b, c))
	if left != 0 || right != 0.9 {
		t.Errorf("FTZ: (a+b)·c = %v, a·c+b·c = %v; want 0 and 0.9", left, right)
	}
	// IEEE: distributive up to rounding.
	if l := kernels.Mul(kernels.IEEE, kernels.Add(kernels.IEEE, a, b), c); math.Abs(float64(l)-0.9) > 1e-6 {
		t.Errorf("IEEE: (a+b)·c = %v, want 0.9", l)
	}
	// Addition stops being associative: a = 2.5·min, b = -1.6·min, c = min.
	a, b, c = 2.5*min, -1.6*min, min
	for _, env := range []kernels.Env{kernels.FTZ, kernels.FTZDAZ, kernels.ArmFZ} {
		l := kernels.Add(env, kernels.Add(env, a, b), c) // a+b = 0.9·min flushes
		r := kernels.Add(env, a, kernels.Add(env, b, c)) // b+c = -0.6·min flushes
		if l != min || r != a {
			t.Errorf("%v: (a+b)+c = %g·min, a+(b+c) = %g·min; want 1 and 2.5", env, l/min, r/min)
		}
	}
}

func TestInitParams(t *testing.T) {
	p := fpnet.InitParams(fpnet.DefaultArch, 1)
	if len(p) != 669706 || fpnet.DefaultArch.NumParams() != 669706 {
		t.Fatalf("default network has %d parameters, want 669706", len(p))
	}
	for l, ly := range fpnet.DefaultArch.LayerViews() {
		w := ly.W(p)
		var sq float64
		for _, v := range w {
			sq += float64(v) * float64(v)
		}
		std, want := math.Sqrt(sq/float64(len(w))), math.Sqrt(2/float64(ly.FanIn))
		if math.Abs(std/want-1) > 0.03 {
			t.Errorf("W%d std %v, want %v", l+1, std, want)
		}
		for _, v := range ly.B(p) {
			if v != 0 {
				t.Fatalf("b%d not zero", l+1)
			}
		}
	}
	// The same bits on every platform and backend.
	const golden = "760a80c42b912fb3628296eeeaa25331c2e3d2b095871a3a1c6d4b8f41da2721"
	if got := fpnet.ParamsSHA256(p); got != golden {
		t.Errorf("InitParams(default, 1) hashes to %s, golden %s", got, golden)
	}
}

func TestSoftmaxCrossEntropy(t *testing.T) {
	logits := []float32{1, 2, 3, 0, 0, 0, 100, -100, 0}
	labels := []uint8{2, 1, 0}
	grad := make([]float32, 9)
	loss, correct := fpnet.SoftmaxCrossEntropyGrad(logits, labels, 3, 3, grad)
	want := (math.Log(math.Exp(1)+math.Exp(2)+math.Exp(3)) - 3 + math.Log(3) + math.Log(1+math.Exp(-100)+math.Exp(-200))) / 3
	if math.Abs(loss-want) > 1e-12 || correct != 2 {
		t.Errorf("loss %v correct %d; want %v and 2", loss, correct, want)
	}
	for r := 0; r < 3; r++ {
		var s float32
		for j := 0; j < 3; j++ {
			s += grad[r*3+j]
		}
		if math.Abs(float64(s)) > 1e-7 {
			t.Errorf("gradient row %d sums to %v, want 0", r, s)
		}
	}
}

func BenchmarkForwardTestSet(b *testing.B) {
	_, test := realMNIST(b)
	r, _ := fpnet.RecipeByName(fpnet.DefaultRecipe)
	n := fpnet.NewNet(fpnet.DefaultArch, r)
	params := fpnet.InitParams(fpnet.DefaultArch, 1)
	b.SetBytes(int64(test.N * test.Dim * 4))
	for b.Loop() {
		n.Evaluate(params, test, 1)
	}
}

// A one-layer network takes both scalings after its bias add, (x·W + b)/s·s,
// the case where Forward's first layer is also its last.
func TestForwardOneLayerMatchesReference(t *testing.T) {
	train, _ := realMNIST(t)
	arch := fpnet.Arch{Sizes: []int{784, 10}}
	for _, name := range append(fpnet.RecipeNames(), "ftz@125", "ieee@0") {
		r, err := fpnet.RecipeByName(name)
		if err != nil {
			t.Fatal(err)
		}
		n := fpnet.NewNet(arch, r)
		params := fpnet.InitParams(arch, 6)
		rng := detmath.SplitMix64{State: 10}
		for j := range arch.LayerViews()[0].B(params) {
			arch.LayerViews()[0].B(params)[j] = float32(rng.Float64()*2-1) * 0.8
		}
		batch := 23
		got := n.Forward(n.NewWorkspace(batch), params, train.Images, batch)
		want := referenceForward(n, params, train.Images, batch)
		for i := range want {
			if !sameFloat(got[i], want[i]) {
				t.Fatalf("%s: logit %d = %#08x, reference %#08x", name, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
			}
		}
	}
}

// TestForwardAllocatesNothing: Forward runs once per ES member and per
// evaluation chunk, so it must not allocate.
func TestForwardAllocatesNothing(t *testing.T) {
	r, err := fpnet.RecipeByName("openai2017")
	if err != nil {
		t.Fatal(err)
	}
	arch := fpnet.Arch{Sizes: []int{784, 16, 16, 10}}
	n := &fpnet.Net{Arch: arch, Recipe: r}
	params := fpnet.InitParams(arch, 1)
	ws := n.NewWorkspace(4)
	x := make([]float32, 4*784)
	n.Forward(ws, params, x, 4)
	if allocs := testing.AllocsPerRun(20, func() { n.Forward(ws, params, x, 4) }); allocs != 0 {
		t.Fatalf("Forward allocates %v times per call, want 0", allocs)
	}
}

// sameFloat compares results as the numeric contract does: bits, signed
// zeros included, and NaNs by class.
func sameFloat(a, b float32) bool {
	if a != a && b != b {
		return true
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

// Label smoothing: the gradient is (softmax − target)/batch with target
// (1−ε)·onehot + ε/classes, and the loss reported is the plain one.
func TestLabelSmoothingGradient(t *testing.T) {
	logits := []float32{1, 2, 3, 0.5, -1, 0, 4, 1}
	labels := []uint8{2, 0}
	const eps = 0.1
	grad := make([]float32, 8)
	loss, correct := fpnet.SmoothedSoftmaxCrossEntropyGrad(logits, labels, 2, 4, eps, grad)
	plain, plainCorrect := fpnet.SoftmaxCrossEntropy(logits, labels, 2, 4)
	if loss != plain || correct != plainCorrect {
		t.Errorf("smoothed loss %v (%d correct), plain %v (%d)", loss, correct, plain, plainCorrect)
	}
	for r := 0; r < 2; r++ {
		row := logits[r*4 : r*4+4]
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v))
		}
		for j, v := range row {
			target := eps / 4
			if j == int(labels[r]) {
				target += 1 - eps
			}
			want := (math.Exp(float64(v))/sum - target) / 2
			if math.Abs(float64(grad[r*4+j])-want) > 1e-7 {
				t.Errorf("row %d class %d: gradient %v, want %v", r, j, grad[r*4+j], want)
			}
		}
	}
}
