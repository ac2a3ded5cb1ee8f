package vectorfile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/seed8b67a5e0/underflow/kernels"
	"github.com/seed8b67a5e0/underflow/kernels/probe"
)

func TestReadWellFormed(t *testing.T) {
	in := `# a comment line

FTZ mul 3f7fffff 00800000 - 00000000   # trailing comment
ARM_FZ fma 20000000 1f800000 00c00000 00000000 extra columns ignored
IEEE div 3F800000 40000000 00000000 3f000000
	FTZ_DAZ mul_add 20000000 1f800000 00c00000 00c00000
`
	got, err := Read(strings.NewReader(in), "x.vec")
	if err != nil {
		t.Fatal(err)
	}
	want := []Case{
		{Line: 3, Env: kernels.FTZ, Op: probe.OpMul, A: 0x3f7fffff, B: 0x00800000, Result: 0},
		{Line: 4, Env: kernels.ArmFZ, Op: probe.OpFMA, A: 0x20000000, B: 0x1f800000, C: 0x00c00000, Result: 0},
		{Line: 5, Env: kernels.IEEE, Op: probe.OpDiv, A: 0x3f800000, B: 0x40000000, Result: 0x3f000000},
		{Line: 6, Env: kernels.FTZDAZ, Op: probe.OpMulAdd, A: 0x20000000, B: 0x1f800000, C: 0x00c00000, Result: 0x00c00000},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestReadMalformed(t *testing.T) {
	cases := []struct{ line, msg string }{
		{"FTZ mul 3f7fffff 00800000 -", "6 columns"},
		{"FOO mul 3f7fffff 00800000 - 00000000", "unknown denormal environment"},
		{"ftz mul 3f7fffff 00800000 - 00000000", "unknown denormal environment"},
		{"FTZ sub 3f7fffff 00800000 - 00000000", "unknown operation"},
		{"FTZ mul 0x3f7fff 00800000 - 00000000", "8 hex digits"},
		{"FTZ mul 3f7fffff 0080000 - 00000000", "8 hex digits"},
		{"FTZ mul 3f7fffff 00800000 - 0000000g", "8 hex digits"},
		{"FTZ mul 3f7fffff 00800000 - -", "8 hex digits"},
		{"FTZ fma 3f7fffff 00800000 - 00000000", "three operands"},
		{"FTZ mul 3f7fffff 00800000 00000000", "6 columns"},
		{"FTZ mul 3f7fffff 00800000 x 00000000", "two-operand"},
	}
	for _, c := range cases {
		in := "# header\nIEEE add 3f800000 3f800000 - 40000000\n" + c.line + "\n"
		_, err := Read(strings.NewReader(in), "bad.vec")
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: error %v, want a ParseError", c.line, err)
			continue
		}
		if pe.Line != 3 || !strings.Contains(err.Error(), "bad.vec:3:") || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: error %q, want line 3 and %q", c.line, err, c.msg)
		}
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	var cases []Case
	for _, env := range kernels.Envs {
		for _, op := range probe.Ops {
			c := Case{Env: env, Op: op, A: 0x80400000, B: 0x3f800000, Result: 0xffc00000}
			if op.Operands() == 3 {
				c.C = 0x00c00000
			}
			cases = append(cases, c)
		}
	}
	path := filepath.Join(t.TempDir(), "v.vec")
	if err := WriteFile(path, []string{"header one", "header two"}, cases); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i].Line != i+3 {
			t.Errorf("case %d on line %d, want %d", i, got[i].Line, i+3)
		}
		got[i].Line = 0
	}
	if !reflect.DeepEqual(got, cases) {
		t.Errorf("round trip changed the cases:\n%+v\n%+v", got, cases)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "\nIEEE mul 80400000 3f800000 - ffc00000\n") {
		t.Errorf("unexpected format:\n%s", b)
	}
}

// A comment of any length is a comment; a data line past maxData is refused
// with a short message; a malformed line's echo is cut to a readable length.
func TestReadLongLines(t *testing.T) {
	good := "IEEE add 3f800000 3f800000 - 40000000"
	long := strings.Repeat("x", 3<<20)
	got, err := Read(strings.NewReader("# "+long+"\n"+good+" # "+long+"\n"+good), "long.vec")
	if err != nil || len(got) != 2 || got[0].Line != 2 || got[1].Line != 3 {
		t.Fatalf("long comments: %d cases, %v; want 2 cases on lines 2 and 3", len(got), err)
	}
	for name, in := range map[string]string{
		"overlong data line": good + "\n" + good + " " + long + "\n",
		"overlong token":     good + "\nIEEE add " + long + " 3f800000 - 40000000\n",
		"overlong env":       good + "\n" + long + " add 3f800000 3f800000 - 40000000\n",
		"overlong op":        good + "\nIEEE " + long + " 3f800000 3f800000 - 40000000\n",
		"too few columns":    good + "\nIEEE add " + long + "\n",
	} {
		_, err := Read(strings.NewReader(in), "long.vec")
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != 2 || len(err.Error()) > 200 {
			t.Errorf("%s: error of %d bytes (line %v): %.300v", name, len(err.Error()), pe, err)
		}
	}
}

type failingReader struct{ after int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.after <= 0 {
		return 0, errors.New("input/output error")
	}
	n := copy(p, strings.Repeat("# ok\n", r.after))
	r.after = 0
	return n, nil
}

// A failure to read is reported as one, not as a malformed line: a folder
// given as the file, a read error in the middle.
func TestReadIOErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := ReadFile(dir)
	var pe *ParseError
	if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "folder") {
		t.Errorf("folder: %v; want an I/O error naming it", err)
	}
	_, err = Read(&failingReader{after: 3}, "dev.vec")
	if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), "read dev.vec: input/output error") {
		t.Errorf("read error: %v; want it reported as a read error", err)
	}
}
