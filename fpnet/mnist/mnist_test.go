package mnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRealMNIST(t *testing.T) {
	train, test, err := Load("")
	if err != nil {
		t.Fatalf("loading MNIST from the GoMNIST module: %v", err)
	}
	if train.N != 60000 || test.N != 10000 || train.Dim != 784 || train.Rows != 28 || test.Cols != 28 {
		t.Fatalf("MNIST shapes: train %d×%d, test %d×%d", train.N, train.Dim, test.N, test.Dim)
	}
	// LeCun's files: the first training digit is a 5, the first test digit a 7.
	if train.Labels[0] != 5 || test.Labels[0] != 7 {
		t.Errorf("first labels %d, %d; want 5, 7", train.Labels[0], test.Labels[0])
	}
	var max float32
	for _, v := range train.Images[:784] {
		max = float32(math.Max(float64(max), float64(v)))
	}
	if max != 1 {
		t.Errorf("pixels of the first image peak at %v, want 1 (255/255)", max)
	}
	dir, err := Dir()
	if err != nil || !strings.Contains(dir, "!go!m!n!i!s!t") && os.Getenv("UNDERFLOW_MNIST_DIR") == "" {
		t.Errorf("Dir() = %q, %v; want the GoMNIST module's data folder", dir, err)
	}
}

func idxImages(n, rows, cols int) []byte {
	b := make([]byte, 16+n*rows*cols)
	binary.BigEndian.PutUint32(b, idxImagesMagic)
	binary.BigEndian.PutUint32(b[4:], uint32(n))
	binary.BigEndian.PutUint32(b[8:], uint32(rows))
	binary.BigEndian.PutUint32(b[12:], uint32(cols))
	for i := 16; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

func idxLabels(n int) []byte {
	b := make([]byte, 8+n)
	binary.BigEndian.PutUint32(b, idxLabelsMagic)
	binary.BigEndian.PutUint32(b[4:], uint32(n))
	for i := 8; i < len(b); i++ {
		b[i] = byte(i % 10)
	}
	return b
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// writeMNIST writes the four files (gzipped or raw), with edits applied.
func writeMNIST(t *testing.T, zipped bool, edit func(name string, b []byte) []byte) string {
	dir := t.TempDir()
	files := map[string][]byte{
		mnistFiles[0]: idxImages(20, 28, 28), mnistFiles[1]: idxLabels(20),
		mnistFiles[2]: idxImages(10, 28, 28), mnistFiles[3]: idxLabels(10),
	}
	for name, b := range files {
		if edit != nil {
			b = edit(name, b)
		}
		if zipped {
			b, name = gz(b), name+".gz"
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadIDX(t *testing.T) {
	for _, zipped := range []bool{false, true} {
		train, test, err := Load(writeMNIST(t, zipped, nil))
		if err != nil {
			t.Fatalf("zipped=%v: %v", zipped, err)
		}
		if train.N != 20 || test.N != 10 || train.Images[0] != float32(16)/255 || train.Labels[3] != 1 {
			t.Errorf("zipped=%v: loaded %d/%d examples, first pixel %v, label %d", zipped, train.N, test.N, train.Images[0], train.Labels[3])
		}
	}
	bad := []struct {
		name string
		edit func(name string, b []byte) []byte
		want string
	}{
		{"bad magic", func(n string, b []byte) []byte {
			if n == mnistFiles[0] {
				b[3] = 0x02
			}
			return b
		}, "magic number"},
		{"truncated images", func(n string, b []byte) []byte {
			if n == mnistFiles[2] {
				return b[:len(b)-100]
			}
			return b
		}, "truncated"},
		{"trailing data", func(n string, b []byte) []byte {
			if n == mnistFiles[1] {
				return append(b, 1)
			}
			return b
		}, "trailing"},
		{"count mismatch", func(n string, b []byte) []byte {
			if n == mnistFiles[1] {
				return idxLabels(19)
			}
			return b
		}, "labels"},
		{"label out of range", func(n string, b []byte) []byte {
			if n == mnistFiles[3] {
				b[10] = 11
			}
			return b
		}, "not a digit"},
		{"short header", func(n string, b []byte) []byte {
			if n == mnistFiles[0] {
				return b[:10]
			}
			return b
		}, "too short"},
		{"zero dimension", func(n string, b []byte) []byte {
			if n == mnistFiles[0] {
				binary.BigEndian.PutUint32(b[8:], 0)
			}
			return b
		}, "dimensions"},
		// Test images of another size: refused at load, before any training.
		{"test images 28x27", func(n string, b []byte) []byte {
			if n == mnistFiles[2] {
				return idxImages(10, 28, 27)
			}
			return b
		}, "test images are 28×27, training images 28×28"},
		{"test images 27x28", func(n string, b []byte) []byte {
			if n == mnistFiles[2] {
				return idxImages(10, 27, 28)
			}
			return b
		}, "test images are 27×28"},
	}
	for _, c := range bad {
		for _, zipped := range []bool{false, true} {
			_, _, err := Load(writeMNIST(t, zipped, c.edit))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s (zipped=%v): error %v, want one mentioning %q", c.name, zipped, err, c.want)
			}
		}
	}
	// A gzip stream cut short.
	dir := writeMNIST(t, true, nil)
	p := filepath.Join(dir, mnistFiles[0]+".gz")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)/2], 0o644)
	if _, _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated gzip: error %v", err)
	}
	// A missing file.
	dir = writeMNIST(t, true, nil)
	os.Remove(filepath.Join(dir, mnistFiles[3]+".gz"))
	if _, _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing file: error %v", err)
	}
}
