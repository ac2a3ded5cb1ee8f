package backprop

import (
	"math"
	"sync"
	"testing"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/detmath"
	"github.com/seed8b67a5e0/underflow/fpnet/mnist"
)

var (
	mnistOnce  sync.Once
	mnistTrain *fpnet.Dataset
	mnistErr   error
)

// realMNIST loads the GoMNIST module's training set once per test binary.
func realMNIST(t testing.TB) *fpnet.Dataset {
	t.Helper()
	mnistOnce.Do(func() { mnistTrain, _, mnistErr = mnist.Load("") })
	if mnistErr != nil {
		t.Fatalf("loading MNIST from the GoMNIST module: %v", mnistErr)
	}
	return mnistTrain
}

// A whole-pixel shift through the sampling path is the plain shift: the
// fixed-point map lands exactly on pixel centres.
func TestDistortShiftIsExactShift(t *testing.T) {
	train := realMNIST(t)
	field := make([]int64, 1024)
	got, want := make([]float32, 784), make([]float32, 784)
	for i := 0; i < 50; i++ {
		src := train.Images[i*784 : (i+1)*784]
		rng := detmath.SplitMix64{State: uint64(i)}
		distortImage(got, src, 28, 28, Distortion{Shift: 2}, &rng, field)
		rng = detmath.SplitMix64{State: uint64(i)}
		dx := rng.Intn(5) - 2
		dy := rng.Intn(5) - 2
		shiftImage(want, src, 28, 28, dx, dy)
		for p := range got {
			if math.Float32bits(got[p]) != math.Float32bits(want[p]) {
				t.Fatalf("image %d shifted by (%d, %d): pixel %d is %v, the plain shift gives %v", i, dx, dy, p, got[p], want[p])
			}
		}
	}
}

// Distortions keep pixels in [0, 1], change the image, and keep most of
// its ink; each option on its own does something.
func TestDistortOptions(t *testing.T) {
	train := realMNIST(t)
	field := make([]int64, 1024)
	dst := make([]float32, 784)
	for _, d := range []Distortion{{Rotate: 15}, {Scale: 0.15}, {Elastic: 2, ElasticGrid: 4}, {Elastic: 3, ElasticGrid: 8}, {Noise: 0.2},
		{Shift: 1, Rotate: 10, Scale: 0.1, Elastic: 1.5, ElasticGrid: 2, Noise: 0.05}} {
		changed := 0
		for i := 0; i < 20; i++ {
			src := train.Images[i*784 : (i+1)*784]
			rng := detmath.SplitMix64{State: uint64(i + 1)}
			distortImage(dst, src, 28, 28, d, &rng, field)
			var inkSrc, inkDst float64
			for p, v := range dst {
				if !(v >= 0 && v <= 1) {
					t.Fatalf("%+v: pixel %d is %v", d, p, v)
				}
				if v != src[p] {
					changed++
				}
				inkSrc += float64(src[p])
				inkDst += float64(v)
			}
			if r := inkDst / inkSrc; d.Noise == 0 && (r < 0.6 || r > 1.5) {
				t.Errorf("%+v: image %d keeps %.2f of its ink", d, i, r)
			}
		}
		if changed < 20*50 {
			t.Errorf("%+v changed only %d pixels in 20 images", d, changed)
		}
	}
}

// goldenDistortSHA256 is the hash of distorted MNIST images with every
// option on (made on linux/amd64); make test checks it under purego and
// arm64, where Go fuses a*b+c unless told not to.
const goldenDistortSHA256 = "cc065f4b10c38b92173fa6802e7a5d199b9437915833e381aa1bd24ab94384b4"

func TestDistortGolden(t *testing.T) {
	train := realMNIST(t)
	field := make([]int64, 1024)
	var all []float32
	dst := make([]float32, 784)
	for i, d := range []Distortion{{Shift: 1, Rotate: 12, Scale: 0.12, Elastic: 2, ElasticGrid: 4, Noise: 0.1}, {Rotate: 40, Scale: 0.5, Elastic: 8, ElasticGrid: 16}} {
		for k := 0; k < 64; k++ {
			rng := detmath.SplitMix64{State: uint64(1000*i + k)}
			distortImage(dst, train.Images[k*784:(k+1)*784], 28, 28, d, &rng, field)
			all = append(all, dst...)
		}
	}
	if got := fpnet.ParamsSHA256(all); got != goldenDistortSHA256 {
		t.Errorf("distorted images hash to %s, golden %s: the distortion is not the same bits on this platform", got, goldenDistortSHA256)
	}
}

func TestCosSinSmall(t *testing.T) {
	for i := -100; i <= 100; i++ {
		x := float64(i) / 100
		c, s := cosSinSmall(x)
		if math.Abs(c-math.Cos(x)) > 1e-13 || math.Abs(s-math.Sin(x)) > 1e-13 {
			t.Errorf("cosSinSmall(%v) = %v, %v; want %v, %v", x, c, s, math.Cos(x), math.Sin(x))
		}
	}
}
