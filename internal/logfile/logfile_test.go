package logfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "agent.log")
	if got := Tail(p, 3); got != "" {
		t.Fatalf("missing file: %q", got)
	}
	os.WriteFile(p, []byte("a\nb\nc\nd\n\n"), 0o600)
	if got := Tail(p, 2); got != "c\nd" {
		t.Fatalf("%q", got)
	}
	if got := Tail(p, 10); got != "a\nb\nc\nd" {
		t.Fatalf("%q", got)
	}
}
