// Package integration tests the built moss binary as a black box, as the
// unprivileged user running the tests: real user namespaces, real overlay
// mounts, the real docker CLI as a second client. TestMain gives the run a
// private runtime and data directory, imports the busybox test image and
// tears everything down at the end.
package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const image = "mosstest/busybox:latest"

var (
	mossBin string
	runDir  string
	dataDir string
	rootfs  string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() == 0 {
		fmt.Fprintln(os.Stderr, "integration: run as an unprivileged user (make check does)")
		return 1
	}
	mossBin = os.Getenv("MOSS_BIN")
	if mossBin == "" {
		mossBin, _ = filepath.Abs("../bin/moss")
	}
	base, err := os.MkdirTemp("", "moss-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	runDir, dataDir = filepath.Join(base, "run"), filepath.Join(base, "data")
	for _, d := range []string{runDir, dataDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	os.Setenv("MOSS_RUNTIME_DIR", runDir)
	os.Setenv("MOSS_DATA_DIR", dataDir)
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(base, "config"))
	rootfs = os.Getenv("MOSS_IT_ROOTFS")
	if rootfs == "" {
		out, err := exec.Command("../contrib/mkimage.sh", base).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build test image: %v: %s\n", err, out)
			return 1
		}
		rootfs = filepath.Join(base, "busybox-rootfs.tar")
	}
	defer teardown(base)
	if out, err := exec.Command(mossBin, "import", rootfs, image).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "import test image: %v: %s\n%s\n", err, out, readFile(filepath.Join(runDir, "agent.log")))
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- agent log:\n%s\n--- holder log:\n%s\n", tailString(readFile(filepath.Join(runDir, "agent.log")), 60), tailString(readFile(filepath.Join(runDir, "holder.log")), 20))
	}
	return code
}

// teardown removes every container, stops the agent and the namespace
// holder, and removes the directories (from inside the holder's user
// namespace, where files of subordinate IDs can be removed).
func teardown(base string) {
	if out, err := exec.Command(mossBin, "ps", "-aq").Output(); err == nil {
		for _, id := range strings.Fields(string(out)) {
			_ = exec.Command(mossBin, "rm", "-f", id).Run()
		}
	}
	if pid := pidFile(filepath.Join(runDir, "agent.pid")); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		waitGone(pid, 10*time.Second)
	}
	if child := holderChild(); child > 0 {
		_ = exec.Command("nsenter", "--user", "--mount", "--preserve-credentials", "-t", strconv.Itoa(child), "rm", "-rf", dataDir).Run()
	}
	if pid := holderPID(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		waitGone(pid, 10*time.Second)
	}
	_ = os.RemoveAll(base)
}

func waitGone(pid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

func pidFile(path string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(readFile(path)))
	return n
}

func holderPID() int     { return jsonInt(filepath.Join(runDir, "holder.json"), "pid") }
func holderChild() int   { return jsonInt(filepath.Join(runDir, "holder.json"), "child_pid") }
func agentPID() int      { return pidFile(filepath.Join(runDir, "agent.pid")) }
func socketPath() string { return filepath.Join(runDir, "moss.sock") }
func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func jsonInt(path, key string) int {
	s := readFile(path)
	i := strings.Index(s, `"`+key+`":`)
	if i < 0 {
		return 0
	}
	s = s[i+len(key)+3:]
	j := strings.IndexAny(s, ",}")
	n, _ := strconv.Atoi(strings.TrimSpace(s[:j]))
	return n
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// result of one command.
type result struct {
	stdout, stderr string
	code           int
}

func runCmd(t *testing.T, stdin string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return result{out.String(), errb.String(), code}
}

// moss runs the CLI and returns its result.
func moss(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, "", mossBin, args...)
}

// mustMoss runs the CLI and fails the test unless it exits 0.
func mustMoss(t *testing.T, args ...string) string {
	t.Helper()
	r := moss(t, args...)
	if r.code != 0 {
		t.Fatalf("moss %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// docker runs the real docker CLI against the Moss socket.
func docker(t *testing.T, args ...string) result {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+socketPath(), "DOCKER_CONFIG="+filepath.Join(filepath.Dir(runDir), "docker"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for delay := 10 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(delay)
	}
}

func rmf(t *testing.T, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			_ = exec.Command(mossBin, "rm", "-f", n).Run()
		}
	})
}
