// Package integration tests the built moss binary as a black box, as the
// unprivileged user running the tests: real user namespaces, real overlay
// mounts, the real docker CLI as a second client. TestMain gives the run a
// private runtime and data directory, imports the busybox test image and
// tears everything down at the end.
//
// Environment:
//
//	MOSS_BIN                 the binary under test (default ../bin/moss)
//	MOSS_IT_ROOTFS           a prebuilt busybox rootfs tarball (default: contrib/mkimage.sh builds one)
//	MOSS_IT_USER_NOSUBUID=1  the user running the tests has no subordinate IDs: TestNoSubuid runs instead of skipping
//	MOSS_IT_KEEP=1           keep the temporary directories (and the agent log) after the run
//	MOSS_IT_SYSTEMD_UNIT     contrib/systemd/moss.service, when the suite runs outside the repository
package integration

import (
	"bytes"
	"encoding/json"
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
	baseDir string
	runDir  string
	dataDir string
	rootfs  string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() == 0 {
		fmt.Fprintln(os.Stderr, "integration: run as an unprivileged user (make check and make integration do)")
		return 1
	}
	mossBin = os.Getenv("MOSS_BIN")
	if mossBin == "" {
		mossBin = "../bin/moss"
	}
	mossBin, _ = filepath.Abs(mossBin)
	if _, err := os.Stat(mossBin); err != nil {
		fmt.Fprintf(os.Stderr, "integration: no binary to test: %v (make build, or set MOSS_BIN)\n", err)
		return 1
	}
	var err error
	baseDir, err = os.MkdirTemp("", "moss-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	runDir, dataDir = filepath.Join(baseDir, "run"), filepath.Join(baseDir, "data")
	xdg := filepath.Join(baseDir, "xdg")
	for _, d := range []string{runDir, dataDir, xdg} {
		if err := os.Mkdir(d, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	// Every child process (moss, the agent it starts, docker) sees only
	// this run's directories, never the user's own agent.
	os.Setenv("MOSS_RUNTIME_DIR", runDir)
	os.Setenv("MOSS_DATA_DIR", dataDir)
	os.Setenv("XDG_RUNTIME_DIR", xdg)
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(baseDir, "config"))
	os.Setenv("DOCKER_CONFIG", filepath.Join(baseDir, "docker"))
	rootfs = os.Getenv("MOSS_IT_ROOTFS")
	if rootfs == "" {
		out, err := exec.Command("../contrib/mkimage.sh", baseDir).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build test image: %v: %s\n", err, out)
			return 1
		}
		rootfs = filepath.Join(baseDir, "busybox-rootfs.tar")
	}
	defer teardown()
	if out, err := exec.Command(mossBin, "import", rootfs, image).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "import test image: %v: %s\n--- agent log:\n%s\n", err, out, readFile(filepath.Join(runDir, "agent.log")))
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- agent log (%s):\n%s\n--- holder log:\n%s\n",
			filepath.Join(runDir, "agent.log"),
			tailString(readFile(filepath.Join(runDir, "agent.log")), 60),
			tailString(readFile(filepath.Join(runDir, "holder.log")), 20))
	}
	return code
}

// teardown removes every container, stops the agent and the namespace
// holder, and removes the directories. The storage holds files of
// subordinate IDs that the user cannot remove from the host namespace, so
// they are removed from inside the holder's user namespace first (or from a
// new one mapping the user's subordinate range when the holder is gone).
func teardown() {
	if out, err := exec.Command(mossBin, "ps", "-aq").Output(); err == nil {
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			_ = exec.Command(mossBin, append([]string{"rm", "-f"}, ids...)...).Run()
		}
	}
	if pid := agentPID(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		waitGone(pid, 10*time.Second)
	}
	if os.Getenv("MOSS_IT_KEEP") != "" {
		fmt.Fprintf(os.Stderr, "integration: keeping %s (MOSS_IT_KEEP); the holder still runs\n", baseDir)
		return
	}
	removed := false
	if child := holderChild(); child > 0 {
		removed = exec.Command("nsenter", "--user", "--mount", "--preserve-credentials", "-t", strconv.Itoa(child), "rm", "-rf", dataDir).Run() == nil
	}
	if pid := holderPID(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		waitGone(pid, 10*time.Second)
	}
	if !removed {
		_ = exec.Command("unshare", "--user", "--map-root-user", "--map-auto", "rm", "-rf", dataDir).Run()
	}
	if err := os.RemoveAll(baseDir); err != nil {
		fmt.Fprintf(os.Stderr, "integration: could not remove %s: %v\n", baseDir, err)
	}
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

// holderInfo reads the PIDs of the holder's parent and child from the
// suite's runtime directory.
func holderInfo() (pid, child int) { return holderInfoIn(runDir) }

// holderInfoIn reads the holder's description in a runtime directory:
// holder.json (pid, child_pid), or the plain files holder.pid and
// holder/child_pid.
func holderInfoIn(runDir string) (pid, child int) {
	var in struct {
		PID      int `json:"pid"`
		ChildPID int `json:"child_pid"`
	}
	if err := json.Unmarshal([]byte(readFile(filepath.Join(runDir, "holder.json"))), &in); err == nil && in.PID > 0 {
		return in.PID, in.ChildPID
	}
	return pidFile(filepath.Join(runDir, "holder.pid")), pidFile(filepath.Join(runDir, "holder", "child_pid"))
}

func holderPID() int     { p, _ := holderInfo(); return p }
func holderChild() int   { _, c := holderInfo(); return c }
func agentPID() int      { return pidFile(filepath.Join(runDir, "agent.pid")) }
func socketPath() string { return filepath.Join(runDir, "moss.sock") }

// copyExecutable copies the executable src to dst (a plugin directory's).
func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
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

// runEnv runs a command with extra environment entries and returns its
// result; it fails the test only when the command cannot be started.
func runEnv(t *testing.T, env []string, stdin string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
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

func runCmd(t *testing.T, stdin string, name string, args ...string) result {
	t.Helper()
	return runEnv(t, nil, stdin, name, args...)
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
	return runEnv(t, []string{"DOCKER_HOST=unix://" + socketPath()}, "", "docker", args...)
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

// rmf removes the named containers when the test ends.
func rmf(t *testing.T, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			_ = exec.Command(mossBin, "rm", "-f", n).Run()
		}
	})
}
