package fpnet

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/seed8b67a5e0/underflow/fpnet/detmath"
)

// Arch is the network's shape: Sizes[0] inputs, Sizes[len-1] classes, and
// the hidden widths between.
type Arch struct {
	Sizes []int
}

// DefaultArch is the article's 784-512-512-10 network.
var DefaultArch = Arch{Sizes: []int{784, 512, 512, 10}}

// Layers is the number of weight layers.
func (a Arch) Layers() int { return len(a.Sizes) - 1 }

// Inputs is the input dimension.
func (a Arch) Inputs() int { return a.Sizes[0] }

// Classes is the output dimension.
func (a Arch) Classes() int { return a.Sizes[len(a.Sizes)-1] }

// NumParams counts the parameters: fan_in×fan_out weights plus fan_out
// biases per layer.
func (a Arch) NumParams() int {
	n := 0
	for l := 0; l < a.Layers(); l++ {
		n += a.Sizes[l]*a.Sizes[l+1] + a.Sizes[l+1]
	}
	return n
}

// Validate reports whether the shape is usable.
func (a Arch) Validate() error {
	if len(a.Sizes) < 2 {
		return fmt.Errorf("architecture %v: need at least an input and an output size", a.Sizes)
	}
	for _, s := range a.Sizes {
		if s <= 0 || s > 1<<16 {
			return fmt.Errorf("architecture %v: layer size %d out of range [1, 65536]", a.Sizes, s)
		}
	}
	return nil
}

// String writes the shape as "784-512-512-10".
func (a Arch) String() string {
	parts := make([]string, len(a.Sizes))
	for i, s := range a.Sizes {
		parts[i] = strconv.Itoa(s)
	}
	return strings.Join(parts, "-")
}

// ParseArch reads a shape as String writes it.
func ParseArch(s string) (Arch, error) {
	var a Arch
	for _, p := range strings.Split(s, "-") {
		n, err := strconv.Atoi(p)
		if err != nil {
			return Arch{}, fmt.Errorf("architecture %q: %q is not a layer size", s, p)
		}
		a.Sizes = append(a.Sizes, n)
	}
	return a, a.Validate()
}

// Equal reports whether two shapes are the same.
func (a Arch) Equal(b Arch) bool {
	if len(a.Sizes) != len(b.Sizes) {
		return false
	}
	for i := range a.Sizes {
		if a.Sizes[i] != b.Sizes[i] {
			return false
		}
	}
	return true
}

// Layer is one weight layer's place in the flat parameter vector:
// W (FanIn×FanOut, row-major) at WOff, then its bias at BOff.
type Layer struct {
	FanIn, FanOut int
	WOff, BOff    int
}

// LayerViews returns the layout of the flat vector: W1, b1, W2, b2, ...
func (a Arch) LayerViews() []Layer {
	ls := make([]Layer, a.Layers())
	off := 0
	for l := range ls {
		in, out := a.Sizes[l], a.Sizes[l+1]
		ls[l] = Layer{FanIn: in, FanOut: out, WOff: off, BOff: off + in*out}
		off += in*out + out
	}
	return ls
}

// W returns layer l's weights inside params.
func (ly Layer) W(params []float32) []float32 {
	return params[ly.WOff : ly.WOff+ly.FanIn*ly.FanOut]
}

// B returns layer l's bias inside params.
func (ly Layer) B(params []float32) []float32 { return params[ly.BOff : ly.BOff+ly.FanOut] }

// InitParams draws the article's initial parameters: weights
// N(0, sqrt(2/fan_in)), biases zero. The draw is bit-identical on every
// platform (deterministic PRNG, own log, no fused multiply-add).
func InitParams(a Arch, seed uint64) []float32 {
	p := make([]float32, a.NumParams())
	g := detmath.NewGaussian(seed)
	for _, ly := range a.LayerViews() {
		std := detmath.Sqrt(2 / float64(ly.FanIn))
		w := ly.W(p)
		for i := range w {
			w[i] = float32(g.Next() * std)
		}
	}
	return p
}
