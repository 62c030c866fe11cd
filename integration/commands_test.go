package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logs options, follow, rename, restart, prune.
func TestContainerCommands(t *testing.T) {
	mustMoss(t, "run", "-d", "--name", "talker", image, "sh", "-c", "echo one; echo two >&2; sleep 0.5; echo three")
	rmf(t, "talker", "renamed")
	// -f follows until the container stops.
	start := time.Now()
	out := mustMoss(t, "logs", "-f", "talker")
	if out != "one\nthree\n" || time.Since(start) > 10*time.Second {
		t.Fatalf("logs -f: %q after %v", out, time.Since(start))
	}
	r := moss(t, "logs", "talker")
	if r.stdout != "one\nthree\n" || r.stderr != "two\n" {
		t.Fatalf("logs streams: %+v", r)
	}
	if out := mustMoss(t, "logs", "--tail", "1", "talker"); out != "three\n" {
		t.Fatalf("logs --tail 1: %q", out)
	}
	if out := mustMoss(t, "logs", "-t", "talker"); !strings.Contains(out, "Z one") {
		t.Fatalf("logs -t: %q", out)
	}
	if out := mustMoss(t, "logs", "--since", "2099-01-01T00:00:00Z", "talker"); out != "" {
		t.Fatalf("logs --since the future: %q", out)
	}
	mustMoss(t, "rename", "talker", "renamed")
	if r := moss(t, "inspect", "talker"); r.code == 0 {
		t.Fatal("old name still resolves after rename")
	}
	// restart runs the command again; the log grows.
	mustMoss(t, "restart", "-t", "1", "renamed")
	waitFor(t, "second run", 10*time.Second, func() bool {
		return strings.Count(moss(t, "logs", "renamed").stdout, "three") == 2
	})
	mustMoss(t, "create", "--name", "prunable", image, "true")
	rmf(t, "prunable")
	out = mustMoss(t, "container", "prune", "-f")
	if !strings.Contains(out, "Deleted Containers") {
		t.Fatalf("prune: %s", out)
	}
	if r := moss(t, "inspect", "prunable"); r.code == 0 {
		t.Fatal("prune left a created container")
	}
	if r := moss(t, "inspect", "renamed"); r.code == 0 {
		t.Fatal("prune left an exited container")
	}
}

// The agent stops cleanly on SIGTERM, and the next command starts a new one.
func TestAgentStopsOnSIGTERM(t *testing.T) {
	mustMoss(t, "ps")
	pid := agentPID()
	if err := exec.Command("kill", "-TERM", itoa(pid)).Run(); err != nil {
		t.Fatal(err)
	}
	waitGone(pid, 10*time.Second)
	if r := runCmd(t, "", "kill", "-0", itoa(pid)); r.code == 0 {
		t.Fatalf("agent %d still runs after SIGTERM", pid)
	}
	mustMoss(t, "ps")
	if agentPID() == pid {
		t.Fatal("no new agent")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// The supervisor's json-file log: escaping and rotation.
func TestLogFile(t *testing.T) {
	out := mustMoss(t, "run", "--rm", image, "printf", `q"uote\\back\ttab é ✓\001\n`)
	if out != "q\"uote\\back\ttab é ✓\x01\n" {
		t.Fatalf("output %q", out)
	}
	id := strings.TrimSpace(mustMoss(t, "run", "-d", "--log-opt", "max-size=2k", "--log-opt", "max-file=2", image,
		"sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done"))
	rmf(t, id)
	if code := strings.TrimSpace(mustMoss(t, "wait", id)); code != "0" {
		t.Fatalf("exit %s", code)
	}
	logPath := strings.TrimSpace(mustMoss(t, "inspect", "--format", "{{.LogPath}}", id))
	if _, err := os.Stat(logPath + ".1"); err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	if _, err := os.Stat(logPath + ".2"); err == nil {
		t.Fatal("more files than max-file")
	}
	lines := strings.Split(strings.TrimSpace(mustMoss(t, "logs", id)), "\n")
	if len(lines) == 0 || len(lines) >= 300 || lines[len(lines)-1] != "line 299" {
		t.Fatalf("%d lines after rotation, last %q", len(lines), lines[len(lines)-1])
	}
}

// Without MOSS_RUNTIME_DIR the socket is $XDG_RUNTIME_DIR/moss/moss.sock,
// mode 0600 in a directory of mode 0700, and a command started there
// auto-starts its own agent. The second agent gets its own data directory:
// two agents never share one.
func TestDefaultSocketPath(t *testing.T) {
	xdg, err := os.MkdirTemp(baseDir, "xdg-")
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(baseDir, "data-default")
	env := []string{"MOSS_RUNTIME_DIR=", "MOSS_DATA_DIR=" + data, "XDG_RUNTIME_DIR=" + xdg}
	dir := filepath.Join(xdg, "moss")
	t.Cleanup(func() { stopAgentIn(dir, data) })
	if r := runEnv(t, env, "", mossBin, "ps"); r.code != 0 {
		t.Fatalf("moss ps with XDG_RUNTIME_DIR=%s: %+v\n%s", xdg, r, readFile(filepath.Join(dir, "agent.log")))
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{dir, os.ModeDir | 0o700}, {filepath.Join(dir, "moss.sock"), os.ModeSocket | 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&(os.ModeType|os.ModePerm) != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode(), c.mode)
		}
	}
	if pidFile(filepath.Join(dir, "agent.pid")) == agentPID() {
		t.Fatal("the command reached the suite's agent, not one of its own")
	}
}

// stopAgentIn stops the agent and namespace holder of another runtime
// directory and removes its data directory.
func stopAgentIn(runtime, data string) {
	if pid := pidFile(filepath.Join(runtime, "agent.pid")); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		waitGone(pid, 10*time.Second)
	}
	holder, child := holderInfoIn(runtime)
	if child > 0 {
		_ = exec.Command("nsenter", "--user", "--mount", "--preserve-credentials", "-t", strconv.Itoa(child), "rm", "-rf", data).Run()
	}
	if holder > 0 {
		_ = syscall.Kill(holder, syscall.SIGTERM)
		waitGone(holder, 10*time.Second)
	}
}
