package es

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/seed8b67a5e0/underflow/fpnet/detmath"
)

// noiseBlock is the number of table entries generated from one stream. Blocks
// are independent, so the table is built in parallel with the same bits for
// any number of goroutines.
const noiseBlock = 1 << 16

// NoiseTable is the shared table of standard normal float32 values. A
// perturbation is the slice Values[off : off+dim] for a seeded offset.
type NoiseTable struct {
	Seed   uint64
	Values []float32
}

// NewNoiseTable builds a table of size standard normal values from seed,
// using up to threads goroutines (0 = all CPUs). The bits depend only on
// seed and size.
func NewNoiseTable(seed uint64, size, threads int) (*NoiseTable, error) {
	if size <= 0 {
		return nil, fmt.Errorf("es: noise table size %d must be positive", size)
	}
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	t := &NoiseTable{Seed: seed, Values: make([]float32, size)}
	blocks := (size + noiseBlock - 1) / noiseBlock
	var wg sync.WaitGroup
	next := make(chan int, blocks)
	for b := 0; b < blocks; b++ {
		next <- b
	}
	close(next)
	for w := 0; w < min(threads, blocks); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range next {
				lo := b * noiseBlock
				fillGaussian(t.Values[lo:min(lo+noiseBlock, size)], detmath.StreamKey(seed, tagNoise, uint64(b)))
			}
		}()
	}
	wg.Wait()
	return t, nil
}

// fillGaussian fills dst with standard normal values by Marsaglia's polar
// method, drawing from the stream with the given key. Only +, −, ×, ÷,
// math.Sqrt and the deterministic detmath.LogAtanh are used, with no fusable a*b+c.
func fillGaussian(dst []float32, key uint64) {
	s := detmath.NewStream(key)
	const scale = 1.0 / (1 << 52)
	for i := 0; i < len(dst); {
		// u, v uniform in (−1, 1) on a 2^-52 grid: exact conversions.
		u := float64(s.Uint64()>>11)*scale - 1
		v := float64(s.Uint64()>>11)*scale - 1
		r := float64(u*u) + float64(v*v)
		if r >= 1 || r == 0 {
			continue
		}
		f := math.Sqrt(-2 * detmath.LogAtanh(r) / r)
		dst[i] = float32(float64(u * f))
		i++
		if i < len(dst) {
			dst[i] = float32(float64(v * f))
			i++
		}
	}
}

// Slice returns the perturbation of length dim starting at off.
func (t *NoiseTable) Slice(off, dim int) []float32 { return t.Values[off : off+dim] }

// Offset returns the seeded offset of pair p's perturbation in generation
// gen: uniform over every start where a slice of length dim fits.
func (t *NoiseTable) Offset(seed uint64, gen int64, p, dim int) int {
	s := detmath.NewStream(detmath.StreamKey(seed, tagOffset, uint64(gen), uint64(p)))
	return s.Intn(len(t.Values) - dim + 1)
}

// SHA256 returns the hex SHA-256 of the table's little-endian bytes: a
// fingerprint to compare platforms with.
func (t *NoiseTable) SHA256() string {
	h := sha256.New()
	var buf [4096]byte
	for i := 0; i < len(t.Values); {
		n := 0
		for ; n+4 <= len(buf) && i < len(t.Values); i++ {
			binary.LittleEndian.PutUint32(buf[n:], math.Float32bits(t.Values[i]))
			n += 4
		}
		h.Write(buf[:n])
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// Stream purposes, part of every stream key so no two uses share numbers.
const (
	tagNoise  = 1 // building the noise table
	tagOffset = 2 // a pair's offset into the noise table
	tagBatch  = 3 // the minibatch of a generation
	tagGuide  = 4 // guided ES: a pair's step along the surrogate gradient
)
