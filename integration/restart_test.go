package integration

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ctrState is what the restart and health tests read of docker inspect.
type ctrState struct {
	RestartCount int
	State        struct {
		Status     string
		Running    bool
		Restarting bool
		Pid        int
		ExitCode   int
		Health     *struct {
			Status        string
			FailingStreak int
			Log           []struct {
				ExitCode int
				Output   string
			}
		}
	}
}

func inspectState(t *testing.T, name string) ctrState {
	t.Helper()
	var out []ctrState
	if err := json.Unmarshal([]byte(mustMoss(t, "inspect", name)), &out); err != nil || len(out) != 1 {
		t.Fatalf("inspect %s: %v", name, err)
	}
	return out[0]
}

func healthOf(s ctrState) string {
	if s.State.Health == nil {
		return ""
	}
	return s.State.Health.Status
}

// TestRestartOnFailure (issue 7, acceptance 5): a failing command with
// --restart on-failure:3 is restarted 3 times with the backoff, then stays
// exited; a start by the user counts afresh; a stop by the user keeps an
// `always` container down.
func TestRestartOnFailure(t *testing.T) {
	t0 := time.Now()
	mustMoss(t, "run", "-d", "--name", "rof", "--restart", "on-failure:3", image, "sh", "-c", "date +%s.%N >> /runs; exit 3")
	rmf(t, "rof")
	waitFor(t, "three restarts, then exited", 20*time.Second, func() bool {
		s := inspectState(t, "rof")
		return s.RestartCount == 3 && s.State.Status == "exited"
	})
	// Docker's backoff: 100, 200, 400 ms between the four runs.
	if took := time.Since(t0); took < 700*time.Millisecond {
		t.Errorf("four runs in %v: no backoff", took)
	}
	// The next restart would come after 800 ms: it stays exited.
	time.Sleep(1500 * time.Millisecond)
	s := inspectState(t, "rof")
	if s.RestartCount != 3 || s.State.Status != "exited" || s.State.ExitCode != 3 {
		t.Fatalf("after the retries: %+v", s)
	}
	if out := mustMoss(t, "ps", "-a", "--filter", "name=rof", "--format", "{{.Status}}"); !strings.HasPrefix(out, "Exited (3)") {
		t.Errorf("ps status %q", out)
	}
	mustMoss(t, "start", "rof")
	waitFor(t, "three restarts after a start by the user", 20*time.Second, func() bool {
		s := inspectState(t, "rof")
		return s.RestartCount == 3 && s.State.Status == "exited"
	})

	mustMoss(t, "run", "-d", "--name", "ralw", "--restart", "always", image, "sh", "-c", "sleep 0.3")
	rmf(t, "ralw")
	waitFor(t, "always restarts a command that ends", 20*time.Second, func() bool { return inspectState(t, "ralw").RestartCount >= 2 })
	mustMoss(t, "stop", "-t", "1", "ralw")
	waitFor(t, "stopped", 10*time.Second, func() bool { s := inspectState(t, "ralw"); return s.State.Status == "exited" })
	n := inspectState(t, "ralw").RestartCount
	time.Sleep(time.Second)
	if s := inspectState(t, "ralw"); s.State.Status != "exited" || s.RestartCount != n {
		t.Fatalf("always restarted a container the user stopped: %+v", s)
	}
}

// TestUpdateRestartPolicy: `update --restart` changes the policy of a
// running container, which the next exit follows; a --rm container's
// policy cannot change, and a bad policy changes nothing.
func TestUpdateRestartPolicy(t *testing.T) {
	mustMoss(t, "run", "-d", "--name", "urp", image, "sh", "-c", "sleep 0.5; exit 4")
	rmf(t, "urp")
	mustMoss(t, "update", "--restart", "on-failure:2", "urp")
	waitFor(t, "two restarts under the updated policy", 20*time.Second, func() bool {
		s := inspectState(t, "urp")
		return s.RestartCount == 2 && s.State.Status == "exited"
	})
	if got := mustMoss(t, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "urp"); got != "on-failure:2\n" {
		t.Fatalf("restart policy after update: %q", got)
	}
	if r := moss(t, "update", "--restart", "bogus", "urp"); r.code == 0 || !strings.Contains(r.stderr, "unknown policy 'bogus'") {
		t.Fatalf("update --restart bogus: %+v", r)
	}
	if got := mustMoss(t, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "urp"); got != "on-failure\n" {
		t.Fatalf("a refused update changed the policy: %q", got)
	}
	mustMoss(t, "run", "-d", "--rm", "--name", "urp-rm", image, "sleep", "30")
	rmf(t, "urp-rm")
	if r := moss(t, "update", "--restart", "always", "urp-rm"); r.code == 0 || !strings.Contains(r.stderr, "AutoRemove is enabled") {
		t.Fatalf("update --restart of a --rm container: %+v", r)
	}
}

// TestRestartAfterAgentKilled (issue 7, acceptance 5): with the agent
// SIGKILLed, a container with --restart always whose process dies while no
// agent runs is restarted by the next agent; an unless-stopped container
// the user stopped stays stopped; one that runs is adopted, not restarted.
func TestRestartAfterAgentKilled(t *testing.T) {
	mustMoss(t, "run", "-d", "--name", "rak", "--restart", "always", image, "sleep", "1000")
	mustMoss(t, "run", "-d", "--name", "rak-unless", "--restart", "unless-stopped", image, "sleep", "1000")
	mustMoss(t, "run", "-d", "--name", "rak-up", "--restart", "always", image, "sleep", "1000")
	rmf(t, "rak", "rak-unless", "rak-up")
	mustMoss(t, "stop", "-t", "1", "rak-unless")
	before := inspectState(t, "rak")
	upPid := inspectState(t, "rak-up").State.Pid
	if before.State.Pid <= 0 || upPid <= 0 {
		t.Fatalf("no pids: %+v", before)
	}
	a := agentPID()
	if err := syscall.Kill(a, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(a, 5*time.Second)
	if err := syscall.Kill(before.State.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the container's process %d: %v", before.State.Pid, err)
	}
	waitGone(before.State.Pid, 5*time.Second)
	mustMoss(t, "version")
	if now := agentPID(); now == a || now <= 0 {
		t.Fatalf("no new agent: %d", now)
	}
	waitFor(t, "the always container running again", 20*time.Second, func() bool {
		s := inspectState(t, "rak")
		return s.State.Status == "running" && s.State.Pid != before.State.Pid && s.RestartCount == 1
	})
	if out := mustMoss(t, "exec", "rak", "echo", "back"); strings.TrimSpace(out) != "back" {
		t.Fatalf("exec in the restarted container: %q", out)
	}
	if s := inspectState(t, "rak-unless"); s.State.Status != "exited" || s.RestartCount != 0 {
		t.Fatalf("unless-stopped container stopped by the user after the agent restart: %+v", s)
	}
	if s := inspectState(t, "rak-up"); s.State.Status != "running" || s.State.Pid != upPid || s.RestartCount != 0 {
		t.Fatalf("running always container after the agent restart: %+v (pid was %d)", s, upPid)
	}
}

// TestHealthCheck (issue 7, acceptance 6): a health check that starts
// failing turns the status to unhealthy after the retries; ps shows the
// health and filters by it; events tell each change; the image's
// HEALTHCHECK applies unless --no-healthcheck.
func TestHealthCheck(t *testing.T) {
	start := time.Now()
	mustMoss(t, "run", "-d", "--name", "hc", "--health-cmd", "echo probe; test ! -f /tmp/bad", "--health-interval", "150ms",
		"--health-retries", "2", image, "sleep", "1000")
	rmf(t, "hc")
	waitFor(t, "healthy", 20*time.Second, func() bool { return healthOf(inspectState(t, "hc")) == "healthy" })
	if out := mustMoss(t, "ps", "--filter", "name=hc", "--format", "{{.Status}}"); !strings.HasSuffix(strings.TrimSpace(out), "(healthy)") {
		t.Errorf("ps status %q", out)
	}
	if out := mustMoss(t, "ps", "-q", "--filter", "health=healthy", "--filter", "name=hc"); strings.TrimSpace(out) == "" {
		t.Error("ps --filter health=healthy does not list it")
	}
	mustMoss(t, "exec", "hc", "touch", "/tmp/bad")
	waitFor(t, "unhealthy", 20*time.Second, func() bool { return healthOf(inspectState(t, "hc")) == "unhealthy" })
	s := inspectState(t, "hc")
	h := s.State.Health
	if h.FailingStreak < 2 || len(h.Log) == 0 || len(h.Log) > 5 || h.Log[len(h.Log)-1].ExitCode != 1 ||
		!strings.Contains(h.Log[len(h.Log)-1].Output, "probe") || s.State.Status != "running" {
		t.Fatalf("unhealthy state: %+v", s)
	}
	if out := mustMoss(t, "ps", "-q", "--filter", "health=unhealthy", "--filter", "name=hc"); strings.TrimSpace(out) == "" {
		t.Error("ps --filter health=unhealthy does not list it")
	}
	ev := mustMoss(t, "events", "--since", start.Add(-time.Second).Format(time.RFC3339Nano), "--until", "0s",
		"--filter", "container=hc", "--format", "{{.Action}}")
	if !strings.Contains(ev, "health_status: healthy") || !strings.Contains(ev, "health_status: unhealthy") {
		t.Fatalf("events:\n%s", ev)
	}
	mustMoss(t, "rm", "-f", "hc")

	// A probe that outlives its timeout counts as a failure.
	mustMoss(t, "run", "-d", "--name", "hct", "--health-cmd", "sleep 5", "--health-interval", "100ms", "--health-timeout", "200ms",
		"--health-retries", "1", image, "sleep", "1000")
	rmf(t, "hct")
	waitFor(t, "unhealthy by timeout", 20*time.Second, func() bool { return healthOf(inspectState(t, "hct")) == "unhealthy" })
	if l := inspectState(t, "hct").State.Health.Log; !strings.Contains(l[len(l)-1].Output, "exceeded timeout") {
		t.Errorf("timed-out probe: %+v", l)
	}
	mustMoss(t, "stop", "-t", "1", "hct")

	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + image + "\nHEALTHCHECK --interval=100ms --retries=1 CMD [\"true\"]\n"})
	mustMoss(t, "build", "-q", "-t", "mosstest/healthy", ctx)
	rmImages(t, "mosstest/healthy")
	mustMoss(t, "run", "-d", "--name", "hci", "mosstest/healthy", "sleep", "1000")
	mustMoss(t, "run", "-d", "--name", "hcn", "--no-healthcheck", "mosstest/healthy", "sleep", "1000")
	rmf(t, "hci", "hcn")
	waitFor(t, "healthy by the image's HEALTHCHECK", 20*time.Second, func() bool { return healthOf(inspectState(t, "hci")) == "healthy" })
	if s := inspectState(t, "hcn"); s.State.Health != nil {
		t.Errorf("--no-healthcheck: %+v", s.State.Health)
	}
}

// TestDockerCLIHealth (issue 7, acceptance 8): docker run --health-cmd,
// then docker inspect and docker ps show the health; docker run
// --restart.
func TestDockerCLIHealth(t *testing.T) {
	if r := docker(t, "run", "-d", "--name", "dhc", "--health-cmd", "true", "--health-interval", "100ms", image, "sleep", "1000"); r.code != 0 {
		t.Fatalf("docker run: %+v", r)
	}
	rmf(t, "dhc")
	waitFor(t, "healthy in docker inspect", 20*time.Second, func() bool {
		return strings.TrimSpace(docker(t, "inspect", "--format", "{{.State.Health.Status}}", "dhc").stdout) == "healthy"
	})
	if out := docker(t, "ps", "--filter", "name=dhc").stdout; !strings.Contains(out, "(healthy)") {
		t.Errorf("docker ps:\n%s", out)
	}
	if out := docker(t, "ps", "-q", "--filter", "health=healthy").stdout; strings.TrimSpace(out) == "" {
		t.Error("docker ps --filter health=healthy lists nothing")
	}
	if r := docker(t, "run", "-d", "--name", "drs", "--restart", "on-failure:2", image, "false"); r.code != 0 {
		t.Fatalf("docker run --restart: %+v", r)
	}
	rmf(t, "drs")
	waitFor(t, "two restarts", 20*time.Second, func() bool {
		out := strings.Fields(docker(t, "inspect", "--format", "{{.RestartCount}} {{.State.Status}}", "drs").stdout)
		return len(out) == 2 && out[0] == "2" && out[1] == "exited"
	})
	if r := docker(t, "run", "--restart", "bogus", image, "true"); r.code != 125 || !strings.Contains(r.stderr, "invalid restart policy: unknown policy 'bogus'") {
		t.Errorf("docker run --restart bogus: %+v", r)
	}
}

// TestRestartHealthBadInput (issue 7, bad input): docker's messages for a
// bad restart policy or health check, exit 125, nothing created.
func TestRestartHealthBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--restart", "bogus"}, "invalid restart policy: unknown policy 'bogus'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"},
		{[]string{"--restart", "always:3"}, "invalid restart policy: maximum retry count can only be used with 'on-failure'"},
		{[]string{"--restart", "on-failure:two"}, "invalid restart policy format: maximum retry count must be an integer"},
		{[]string{"--restart", "always", "--rm"}, "conflicting options: cannot specify both --restart and --rm"},
		{[]string{"--health-retries", "-1", "--health-cmd", "true"}, "--health-retries cannot be negative"},
		{[]string{"--health-interval", "-1s"}, "--health-interval cannot be negative"},
		{[]string{"--no-healthcheck", "--health-cmd", "true"}, "--no-healthcheck conflicts with --health-* options"},
	} {
		args := append(append([]string{"run", "--name", "badpol"}, c.args...), image, "true")
		r := moss(t, args...)
		if r.code != 125 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("moss %v: exit %d, stderr %q; want 125 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
	if r := moss(t, "inspect", "badpol"); r.code == 0 {
		rmf(t, "badpol")
		t.Error("a container was created from bad input")
	}
	// The agent checks what other clients send, as docker's daemon.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--restart", "always:3"}, "invalid restart policy: maximum retry count can only be used with 'on-failure'"},
		{[]string{"--health-interval", "1us", "--health-cmd", "true"}, "Interval in Healthcheck cannot be less than 1ms"},
	} {
		r := docker(t, append(append([]string{"run"}, c.args...), image, "true")...)
		if r.code != 125 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("docker %v: exit %d, stderr %q; want 125 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
}
