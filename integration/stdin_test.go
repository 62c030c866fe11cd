package integration

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Acceptance 4: -i without a TTY: piped input reaches the container, 50 MB
// arrive byte-identical, and without -i the container's stdin is empty.
func TestStdin(t *testing.T) {
	r := runCmd(t, "data\n", mossBin, "run", "-i", "--rm", image, "cat")
	if r.code != 0 || r.stdout != "data\n" {
		t.Fatalf("echo data | moss run -i cat: %d %q %q", r.code, r.stdout, r.stderr)
	}
	big := filepath.Join(t.TempDir(), "big")
	data := make([]byte, 50<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(big)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(mossBin, "run", "-i", "--rm", image, "sha256sum")
	cmd.Stdin = f
	out, err := cmd.Output()
	if want := fmt.Sprintf("%x", sha256.Sum256(data)); err != nil || !strings.HasPrefix(string(out), want) {
		t.Fatalf("50 MB through run -i: %q, %v; want %s", out, err, want)
	}
	// The container stops reading: the rest of the input is not an error.
	if r := runCmd(t, strings.Repeat("x", 1<<20), mossBin, "run", "-i", "--rm", image, "head", "-c", "3"); r.code != 0 || r.stdout != "xxx" {
		t.Errorf("run -i head -c 3: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// Without -i the input is not passed on.
	if r := runCmd(t, "ignored\n", mossBin, "run", "--rm", image, "cat"); r.code != 0 || r.stdout != "" {
		t.Errorf("run without -i: %d %q", r.code, r.stdout)
	}
	if _, err := exec.LookPath("docker"); err == nil {
		d := runEnv(t, []string{"DOCKER_HOST=unix://" + socketPath()}, "data\n", "docker", "run", "-i", "--rm", image, "cat")
		if d.code != 0 || d.stdout != "data\n" {
			t.Errorf("echo data | docker run -i --rm cat: %d %q %q", d.code, d.stdout, d.stderr)
		}
	}
}
