package backprop

import (
	"math"

	"github.com/seed8b67a5e0/underflow/fpnet/detmath"
)

// Random distortions of training images: a random affine map (rotation,
// per-axis scaling, translation) and an elastic field, sampled
// bilinearly, in the spirit of Simard, Steinkraus and Platt (2003).
//
// Every distorted image is the same bits on every platform: the map is
// drawn from a seeded SplitMix64, its four coefficients are computed in
// float64 with every product explicitly rounded (no fusable a*b+c, sine
// and cosine by a fixed polynomial, not package math) and then rounded to
// 16.16 fixed point; every source coordinate is integer arithmetic; and
// each output pixel is a fixed-order sum of four float32 products, each
// rounded on its own.
//
// The elastic field is not Simard's Gaussian-smoothed per-pixel noise but
// random displacements on a coarse grid of control points (every
// ElasticGrid pixels), interpolated bilinearly: a field just as smooth at
// a tenth of the cost, with no convolution per image.

// Distortion says how to distort training images. The zero value leaves
// them as they are.
type Distortion struct {
	Shift       int     // integer translation up to ±Shift pixels in x and in y
	Rotate      float32 // rotation by up to ±Rotate degrees
	Scale       float32 // each axis scaled by a factor in [1−Scale, 1+Scale]
	Elastic     float32 // elastic displacement up to ±Elastic pixels per axis at each control point
	ElasticGrid int     // control-point spacing in pixels: 2, 4, 8 or 16
	Noise       float32 // uniform noise in [−Noise, Noise] added to each pixel, then clamped to [0, 1]
}

// Smooth reports whether d needs the sampling path (anything beyond whole-
// pixel shifts).
func (d Distortion) Smooth() bool {
	return d.Rotate != 0 || d.Scale != 0 || d.Elastic != 0 || d.Noise != 0
}

// fixedOne is 1.0 in the 16.16 fixed point of the source coordinates.
const fixedOne = 1 << 16

// distortImage writes src (rows×cols, row-major) seen through a random map
// drawn from rng to dst. field is scratch of at least
// 2·((rows−1)/grid+2)·((cols−1)/grid+2) values.
func distortImage(dst, src []float32, rows, cols int, d Distortion, rng *detmath.SplitMix64, field []int64) {
	var dx, dy int64
	if d.Shift > 0 {
		dx = int64(rng.Intn(2*d.Shift+1) - d.Shift)
		dy = int64(rng.Intn(2*d.Shift+1) - d.Shift)
	}
	// The linear part R(θ)·diag(sx, sy), as 16.16 fixed point.
	cosT, sinT := 1.0, 0.0
	if d.Rotate != 0 {
		deg := float64(symmetric(rng) * float64(d.Rotate))
		cosT, sinT = cosSinSmall(float64(deg * (math.Pi / 180)))
	}
	sx, sy := 1.0, 1.0
	if d.Scale != 0 {
		sx = 1 + float64(symmetric(rng)*float64(d.Scale))
		sy = 1 + float64(symmetric(rng)*float64(d.Scale))
	}
	m11, m12 := toFixed(float64(cosT*sx)), toFixed(-float64(sinT*sy))
	m21, m22 := toFixed(float64(sinT*sx)), toFixed(float64(cosT*sy))

	// Elastic control points: a (gy+1)×(gx+1) grid of displacement pairs.
	lg, gx, gy := 0, 0, 0
	var ex, ey []int64
	if d.Elastic != 0 {
		for 1<<lg < d.ElasticGrid {
			lg++
		}
		gx, gy = (cols-1)>>lg+2, (rows-1)>>lg+2
		ex, ey = field[:gx*gy], field[gx*gy:2*gx*gy]
		amp := toFixed(float64(d.Elastic))
		for i := range ex {
			ex[i] = int64(rng.Intn(int(2*amp+1))) - amp
			ey[i] = int64(rng.Intn(int(2*amp+1))) - amp
		}
	}
	g := int64(1) << lg

	// The centre of the image in pixel-index coordinates, (cols−1)/2, and
	// each pixel centre's offset from it, both 16.16. The products m·p are
	// kept in 32.32 and stepped exactly along a row.
	cx, cy := int64(cols-1)<<15-dx<<16, int64(rows-1)<<15-dy<<16
	px0 := int64(1-cols) << 15
	var lineX, lineY [64]int64 // the elastic field along the row, at the control columns
	for y := 0; y < rows; y++ {
		py := int64(2*y+1-rows) << 15
		accX, accY := m11*px0+m12*py, m21*px0+m22*py
		stepX, stepY := m11<<16, m21<<16
		if ex != nil {
			j, s := y>>lg, int64(y)&(g-1)
			for i := 0; i < gx; i++ {
				k := j*gx + i
				lineX[i] = ex[k]*(g-s) + ex[k+gx]*s
				lineY[i] = ey[k]*(g-s) + ey[k+gx]*s
			}
		}
		row := dst[y*cols : (y+1)*cols]
		for x := range row {
			srcX, srcY := accX>>16+cx, accY>>16+cy
			accX += stepX
			accY += stepY
			if ex != nil {
				i, r := x>>lg, int64(x)&(g-1)
				srcX += (lineX[i]*(g-r) + lineX[i+1]*r) >> (2 * lg)
				srcY += (lineY[i]*(g-r) + lineY[i+1]*r) >> (2 * lg)
			}
			row[x] = bilinear(src, rows, cols, srcX, srcY)
		}
	}
	if d.Noise != 0 {
		amp := d.Noise
		for i, v := range dst {
			// A uniform value in [−1, 1) with 24 bits, exact in float32.
			u := float32(int64(rng.Uint64()>>40)-1<<23) * 0x1p-23
			v += float32(amp * u)
			dst[i] = min(max(v, 0), 1)
		}
	}
}

// bilinear samples src at the 16.16 point (x, y) in pixel-index
// coordinates, with zeros outside the image. The weights are multiples of
// 2^-16 (8-bit fractions per axis), exact in float32, and the four terms
// are always summed in the same order, each rounded on its own.
func bilinear(src []float32, rows, cols int, x, y int64) float32 {
	ix, iy := int(x>>16), int(y>>16)
	fx, fy := (x>>8)&255, (y>>8)&255
	const unit = 0x1p-16
	w00 := float32((256-fx)*(256-fy)) * unit
	w10 := float32(fx*(256-fy)) * unit
	w01 := float32((256-fx)*fy) * unit
	w11 := float32(fx*fy) * unit
	if ix >= 0 && iy >= 0 && ix+1 < cols && iy+1 < rows {
		o := iy*cols + ix
		v := float32(w00 * src[o])
		v += float32(w10 * src[o+1])
		v += float32(w01 * src[o+cols])
		v += float32(w11 * src[o+cols+1])
		return v
	}
	// Near or past the border: pixels outside the image are zero, and
	// their terms are added as +0 like the others, in the same order.
	pix := func(i, j int) float32 {
		if i < 0 || j < 0 || i >= cols || j >= rows {
			return 0
		}
		return src[j*cols+i]
	}
	v := float32(w00 * pix(ix, iy))
	v += float32(w10 * pix(ix+1, iy))
	v += float32(w01 * pix(ix, iy+1))
	v += float32(w11 * pix(ix+1, iy+1))
	return v
}

// symmetric returns a uniform value in [−1, 1) (53 bits; exact arithmetic).
func symmetric(rng *detmath.SplitMix64) float64 { return 2*rng.Float64() - 1 }

// toFixed rounds x to 16.16 fixed point (the product by 2^16 is exact).
func toFixed(x float64) int64 { return int64(math.Round(x * fixedOne)) }

// cosSinSmall returns cos t and sin t for |t| <= 1 by their Taylor series,
// every product rounded on its own (error below 1e-13 there).
func cosSinSmall(t float64) (cos, sin float64) {
	t2 := float64(t * t)
	cos, sin = 1, t
	cterm, sterm := 1.0, t
	for k := 1; k <= 9; k++ {
		cterm = -float64(cterm*t2) / float64((2*k-1)*(2*k))
		sterm = -float64(sterm*t2) / float64((2*k)*(2*k+1))
		cos += cterm
		sin += sterm
	}
	return cos, sin
}
