// Package vectorfile reads and writes ftzcheck's vector files, a public
// format: one case a line,
//
//	ENV OP A B C RESULT
//
// ENV is IEEE, FTZ, DAZ, FTZ_DAZ or ARM_FZ; OP is mul, add, fma, mul_add
// (the product rounded, then the add) or div; A, B, C and RESULT are float32
// bit patterns as 8 hex digits without 0x; C is "-" for two-operand ops.
// "#" starts a comment; blank lines and columns after RESULT are ignored.
package vectorfile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/seed8b67a5e0/underflow/fpnet/atomicfile"
	"github.com/seed8b67a5e0/underflow/kernels"
	"github.com/seed8b67a5e0/underflow/kernels/probe"
)

// Case is one line of a vector file.
type Case struct {
	Line    int // 1-based line number in the file it was read from; 0 if built
	Env     kernels.Env
	Op      probe.Op
	A, B, C uint32 // C is 0 for two-operand ops
	Result  uint32
}

// String formats the case as a vector-file line (without newline).
func (c Case) String() string {
	cs := "-"
	if c.Op.Operands() == 3 {
		cs = fmt.Sprintf("%08x", c.C)
	}
	return fmt.Sprintf("%s %s %08x %08x %s %08x", c.Env, c.Op, c.A, c.B, cs, c.Result)
}

// ParseError names the line of a malformed file and what is wrong with it.
type ParseError struct {
	Name string // file name, or "" when reading a stream
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.Name, e.Line, e.Msg)
}

// Read parses every case of r; name is used in errors. It stops at the first
// malformed line with a *ParseError naming it.
func Read(r io.Reader, name string) ([]Case, error) {
	var cases []Case
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		c, msg := parseFields(fields)
		if msg != "" {
			return nil, &ParseError{Name: name, Line: line, Msg: msg}
		}
		c.Line = line
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		return nil, &ParseError{Name: name, Line: line + 1, Msg: err.Error()}
	}
	return cases, nil
}

// ReadFile parses the vector file at path.
func ReadFile(path string) ([]Case, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f, path)
}

func parseFields(f []string) (Case, string) {
	var c Case
	if len(f) < 6 {
		return c, fmt.Sprintf("want 6 columns ENV OP A B C RESULT, got %d: %q", len(f), strings.Join(f, " "))
	}
	env, err := kernels.ParseEnv(f[0])
	if err != nil {
		return c, err.Error()
	}
	op, err := probe.ParseOp(f[1])
	if err != nil {
		return c, err.Error()
	}
	c.Env, c.Op = env, op
	var msg string
	if c.A, msg = parseHex("A", f[2]); msg != "" {
		return c, msg
	}
	if c.B, msg = parseHex("B", f[3]); msg != "" {
		return c, msg
	}
	switch {
	case op.Operands() == 3:
		if f[4] == "-" {
			return c, fmt.Sprintf("%s takes three operands, but C is -", op)
		}
		if c.C, msg = parseHex("C", f[4]); msg != "" {
			return c, msg
		}
	case f[4] != "-":
		// A two-operand op ignores C; a value there is still checked as hex
		// so that a shifted column is caught.
		if _, msg = parseHex("C", f[4]); msg != "" {
			return c, msg + " (or - for a two-operand op)"
		}
	}
	if c.Result, msg = parseHex("RESULT", f[5]); msg != "" {
		return c, msg
	}
	return c, ""
}

func parseHex(col, s string) (uint32, string) {
	if len(s) != 8 {
		return 0, fmt.Sprintf("%s %q: want 8 hex digits without 0x", col, s)
	}
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Sprintf("%s %q: want 8 hex digits without 0x", col, s)
	}
	return uint32(v), ""
}

// Write writes the header lines (each prefixed by "# ") and the cases.
func Write(w io.Writer, header []string, cases []Case) error {
	bw := bufio.NewWriter(w)
	for _, h := range header {
		fmt.Fprintf(bw, "# %s\n", h)
	}
	for _, c := range cases {
		bw.WriteString(c.String())
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// WriteFile writes the file atomically (atomicfile.WriteFile: a temporary
// file in the same directory, synced, renamed over path), so that a reader
// never sees a half-written file.
func WriteFile(path string, header []string, cases []Case) error {
	var buf bytes.Buffer
	if err := Write(&buf, header, cases); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}
