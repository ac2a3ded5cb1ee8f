package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	for _, content := range []string{"first", "second, longer"} {
		if err := WriteFile(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != content {
			t.Fatalf("read back %q, %v; want %q", b, err, content)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// A failed write names the path the caller gave, not the temporary file,
// and leaves nothing behind.
func TestWriteFileErrorNamesThePath(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"missing folder": filepath.Join(dir, "no", "such", "out.vec"),
		"a folder":       dir, // renaming a file over a folder fails
	}
	for name, path := range cases {
		err := WriteFile(path, []byte("x"))
		if err == nil || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), ".tmp") {
			t.Errorf("%s: error %v; want one naming %s and no temporary file", name, err, path)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a failed write left %v", entries)
	}
}
