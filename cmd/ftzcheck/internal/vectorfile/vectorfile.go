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

// maxData bounds the part of a line before its comment: a case is about 40
// bytes, and columns after RESULT are ignored but kept within this. A
// comment may be of any length.
const maxData = 1 << 20

// Read parses every case of r; name is used in errors. It stops at the first
// malformed line with a *ParseError naming it; a failure to read is returned
// as such (wrapped, naming name), not as a malformed line.
func Read(r io.Reader, name string) ([]Case, error) {
	var cases []Case
	br := bufio.NewReaderSize(r, 64*1024)
	var data []byte // the line up to its '#', at most maxData bytes
	line := 0
	for {
		line++
		data = data[:0]
		comment, tooLong, atEOF := false, false, false
		for { // one line, in pieces when it is longer than the buffer
			piece, err := br.ReadSlice('\n')
			if !comment {
				if i := bytes.IndexByte(piece, '#'); i >= 0 {
					piece, comment = piece[:i], true
				}
				if len(data)+len(piece) > maxData {
					tooLong = true
				} else {
					data = append(data, piece...)
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				atEOF = true
			} else if err != nil {
				return nil, fmt.Errorf("read %s: %w", name, err)
			}
			break
		}
		if tooLong {
			return nil, &ParseError{Name: name, Line: line, Msg: fmt.Sprintf("longer than %d bytes before its comment: not a case", maxData)}
		}
		if fields := strings.Fields(string(data)); len(fields) > 0 {
			c, msg := parseFields(fields)
			if msg != "" {
				return nil, &ParseError{Name: name, Line: line, Msg: msg}
			}
			c.Line = line
			cases = append(cases, c)
		}
		if atEOF {
			return cases, nil
		}
	}
}

// ReadFile parses the vector file at path. A folder, or a file that cannot
// be read, is an I/O error naming path.
func ReadFile(path string) ([]Case, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if st.IsDir() {
		return nil, fmt.Errorf("%s is a folder, not a vector file", path)
	}
	return Read(f, path)
}

// echo quotes a piece of the input for a message, cut to a readable length.
func echo(s string) string {
	const max = 40
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:max], len(s))
}

func parseFields(f []string) (Case, string) {
	var c Case
	if len(f) < 6 {
		return c, fmt.Sprintf("want 6 columns ENV OP A B C RESULT, got %d: %s", len(f), echo(strings.Join(f, " ")))
	}
	env, err := kernels.ParseEnv(f[0])
	if err != nil {
		return c, fmt.Sprintf("unknown denormal environment %s (want IEEE, FTZ, DAZ, FTZ_DAZ or ARM_FZ)", echo(f[0]))
	}
	op, err := probe.ParseOp(f[1])
	if err != nil {
		return c, fmt.Sprintf("unknown operation %s (want mul, add, fma, mul_add or div)", echo(f[1]))
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
		return 0, fmt.Sprintf("%s %s: want 8 hex digits without 0x", col, echo(s))
	}
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Sprintf("%s %s: want 8 hex digits without 0x", col, echo(s))
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
