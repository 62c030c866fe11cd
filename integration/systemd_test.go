package integration

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unitPath is contrib/systemd/moss.service (MOSS_IT_SYSTEMD_UNIT when the
// suite runs outside the repository, as hack/check.sh runs it).
func unitPath() string {
	if p := os.Getenv("MOSS_IT_SYSTEMD_UNIT"); p != "" {
		return p
	}
	return "../contrib/systemd/moss.service"
}

// unitKeys reads the [Service] keys of a systemd unit file.
func unitKeys(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	section := ""
	for s := bufio.NewScanner(f); s.Scan(); {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			if k, v, ok := strings.Cut(line, "="); ok {
				keys[k] = v
			}
		}
	}
	return keys
}

// TestSystemdUnitReboot (issue 7, restart policies after a reboot): the
// user unit in contrib/systemd passes systemd-analyze; after a simulated
// reboot (every process in the agent's namespaces, containers included,
// SIGKILLed with the namespace holder, the runtime directory emptied as a
// tmpfs is) the agent started the way the unit starts it brings back the
// containers with --restart always and unless-stopped and leaves the
// others exited; and stopping the service (KillMode=process: SIGTERM to
// the agent only) leaves the containers running.
func TestSystemdUnitReboot(t *testing.T) {
	unitFile := unitPath()
	keys := unitKeys(t, unitFile)
	if keys["ExecStart"] != "%h/.local/bin/moss agent" || keys["KillMode"] != "process" || keys["Type"] != "simple" {
		t.Fatalf("unexpected unit [Service]: %v", keys)
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		dir := t.TempDir()
		b, err := os.ReadFile(unitFile)
		if err != nil {
			t.Fatal(err)
		}
		unit := filepath.Join(dir, "moss.service")
		b = bytes.Replace(b, []byte("ExecStart=%h/.local/bin/moss agent"), []byte("ExecStart="+mossBin+" agent"), 1)
		if err := os.WriteFile(unit, b, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(sa, "verify", "--user", "--man=no", unit)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, stderr.String())
		}
	} else {
		t.Log("no systemd-analyze: the unit's syntax is not verified")
	}

	names := []string{"rb-always", "rb-unless", "rb-no"}
	rmf(t, names...)
	mustMoss(t, "run", "-d", "--name", "rb-always", "--restart", "always", image, "sleep", "1000")
	mustMoss(t, "run", "-d", "--name", "rb-unless", "--restart", "unless-stopped", image, "sleep", "1000")
	mustMoss(t, "run", "-d", "--name", "rb-no", image, "sleep", "1000")

	// The reboot: everything in the holder's user namespace, the holder,
	// then the runtime directory (but its logs).
	_, child := holderInfo()
	ns, err := os.Readlink("/proc/" + strconv.Itoa(child) + "/ns/user")
	if child <= 0 || err != nil {
		t.Fatalf("no namespace holder: %v", err)
	}
	var victims []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if l, err := os.Readlink("/proc/" + p.Name() + "/ns/user"); err == nil && l == ns {
			victims = append(victims, pid)
		}
	}
	if hp, _ := holderInfo(); hp > 0 {
		victims = append(victims, hp)
	}
	for _, pid := range victims {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range victims {
		waitGone(pid, 10*time.Second)
	}
	entries, _ := os.ReadDir(runDir)
	var wipe []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			wipe = append(wipe, filepath.Join(runDir, e.Name()))
		}
	}
	// Drivers' files may belong to subordinate IDs: removed from a user
	// namespace that maps them, as the suite's teardown does.
	_ = exec.Command("unshare", append([]string{"--user", "--map-root-user", "--map-auto", "rm", "-rf"}, wipe...)...).Run()
	for _, p := range wipe {
		if err := os.RemoveAll(p); err != nil {
			t.Fatalf("empty the runtime directory: %v", err)
		}
	}
	t.Logf("rebooted: %d processes killed", len(victims))

	// The service manager starts the agent in the foreground.
	agent := exec.Command(mossBin, "agent")
	agent.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var agentOut bytes.Buffer
	agent.Stdout, agent.Stderr = &agentOut, &agentOut
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = agent.Wait(); close(exited) }()
	defer func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = agent.Process.Kill()
		}
	}()
	waitFor(t, "the service's agent to answer", 30*time.Second, func() bool {
		c, err := net.Dial("unix", socketPath())
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if pid := agentPID(); pid != agent.Process.Pid {
		t.Fatalf("the agent answering is %d, not the service's %d:\n%s", pid, agent.Process.Pid, agentOut.String())
	}
	for _, n := range []string{"rb-always", "rb-unless"} {
		waitFor(t, n+" to come back", 20*time.Second, func() bool { return inspectState(t, n).State.Status == "running" })
	}
	if s := inspectState(t, "rb-no"); s.State.Status != "exited" {
		t.Fatalf("a container without a restart policy after the reboot: %+v", s)
	}
	if out := mustMoss(t, "exec", "rb-always", "echo", "up"); out != "up\n" {
		t.Fatalf("exec after the reboot: %q", out)
	}

	// systemctl --user stop: SIGTERM to the agent only.
	pid, _ := strconv.Atoi(strings.TrimSpace(mustMoss(t, "inspect", "-f", "{{.State.Pid}}", "rb-always")))
	_ = agent.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("the agent's exit on SIGTERM: %v\n%s", exitErr, agentOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the agent did not stop within the unit's TimeoutStopSec")
	}
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("stopping the service ended the container's process %d", pid)
	}
	if s := inspectState(t, "rb-always"); s.State.Status != "running" { // an auto-started agent adopts it
		t.Fatalf("after the service stopped: %+v", s)
	}
}
