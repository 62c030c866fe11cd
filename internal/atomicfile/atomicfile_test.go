package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	for i, content := range []string{"one", "two", "three"} {
		write := Write
		if i == 2 {
			write = WriteUnsynced
		}
		if err := write(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("%q, %v", got, err)
		}
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Fatal("temporary file left")
	}
	if err := Write(filepath.Join(p, "sub"), nil); err == nil {
		t.Fatal("write under a file succeeded")
	}
}
