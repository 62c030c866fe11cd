package agent

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestNextRestartDelay(t *testing.T) {
	var d time.Duration
	var got []time.Duration
	for range 12 {
		d = nextRestartDelay(d, time.Second)
		got = append(got, d)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 12800 * time.Millisecond,
		25600 * time.Millisecond, 51200 * time.Millisecond, time.Minute, time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	// A run of 10 s starts the series again.
	if d := nextRestartDelay(time.Minute, 10*time.Second); d != restartDelayMin {
		t.Errorf("after a 10 s run: %v", d)
	}
	if d := nextRestartDelay(400*time.Millisecond, 9*time.Second); d != 800*time.Millisecond {
		t.Errorf("after a 9 s run: %v", d)
	}
}

func TestShouldRestart(t *testing.T) {
	p := func(name string, max int) container.RestartPolicy {
		return container.RestartPolicy{Name: container.RestartPolicyMode(name), MaximumRetryCount: max}
	}
	cases := []struct {
		policy            container.RestartPolicy
		code, restarts    int
		manual, cancelled bool
		want              bool
	}{
		{p("", 0), 1, 0, false, false, false},
		{p("no", 0), 1, 0, false, false, false},
		{p("always", 0), 0, 0, false, false, true},
		{p("always", 0), 0, 50, true, false, true}, // stopped by the user, then the agent restarted
		{p("always", 0), 137, 0, true, true, false},
		{p("unless-stopped", 0), 0, 0, false, false, true},
		{p("unless-stopped", 0), 0, 0, true, false, false},
		{p("on-failure", 0), 0, 0, false, false, false},
		{p("on-failure", 0), 1, 100, false, false, true},
		{p("on-failure", 3), 1, 2, false, false, true},
		{p("on-failure", 3), 1, 3, false, false, false},
		{p("on-failure", 3), 143, 0, true, false, false},
		{p("on-failure", 3), 1, 0, false, true, false},
	}
	for _, c := range cases {
		if got := shouldRestart(c.policy, c.code, c.restarts, c.manual, c.cancelled); got != c.want {
			t.Errorf("%+v: got %v", c, got)
		}
	}
}

func TestPolicyAfterExit(t *testing.T) {
	a := &Agent{}
	c := &Container{HostConfig: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}},
		Config: &container.Config{}}
	now := time.Now()
	exit := func(code int) (time.Duration, bool) {
		c.State.Status, c.State.ExitCode = "exited", code
		c.State.StartedAt, c.State.FinishedAt = now, now.Add(time.Second)
		return a.policyAfterExit(c)
	}
	if d, ok := exit(1); !ok || d != 100*time.Millisecond || c.State.RestartCount != 1 || !c.State.Restarting {
		t.Fatalf("first failure: %v %v %+v", d, ok, c.State)
	}
	if d, ok := exit(1); !ok || d != 200*time.Millisecond || c.State.RestartCount != 2 {
		t.Fatalf("second failure: %v %v %+v", d, ok, c.State)
	}
	if _, ok := exit(1); ok || c.State.RestartCount != 2 || c.State.Restarting {
		t.Fatalf("third failure restarts: %+v", c.State)
	}
	c.HostConfig.RestartPolicy = container.RestartPolicy{Name: "always"}
	c.State.Status = "running"
	c.userStopped(syscall.SIGTERM, true)
	if _, ok := exit(143); ok {
		t.Fatal("always restarted a container the user stopped")
	}
	// A kill with another signal than the stop signal does not cancel
	// always, but keeps unless-stopped down.
	c.restart = restartState{}
	c.State.ManuallyStopped = false
	c.userStopped(syscall.SIGHUP, false)
	if _, ok := exit(129); !ok {
		t.Fatal("always did not restart after SIGHUP")
	}
	c.HostConfig.RestartPolicy = container.RestartPolicy{Name: "unless-stopped"}
	if _, ok := exit(129); ok {
		t.Fatal("unless-stopped restarted after a kill by the user")
	}
}

func TestValidateRestart(t *testing.T) {
	for _, c := range []struct {
		p    container.RestartPolicy
		rm   bool
		want string
	}{
		{container.RestartPolicy{Name: "bogus"}, false, "invalid restart policy: unknown policy 'bogus'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"},
		{container.RestartPolicy{Name: "always", MaximumRetryCount: 3}, false, "invalid restart policy: maximum retry count can only be used with 'on-failure'"},
		{container.RestartPolicy{Name: "on-failure", MaximumRetryCount: -1}, false, "invalid restart policy: maximum retry count cannot be negative"},
		{container.RestartPolicy{Name: "always"}, true, "can't create 'AutoRemove' container with restart policy"},
		{container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}, false, ""},
		{container.RestartPolicy{Name: "no"}, true, ""},
	} {
		err := validateHost(&container.HostConfig{RestartPolicy: c.p, AutoRemove: c.rm})
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%+v: got %q, want %q", c.p, got, c.want)
		}
	}
}

func TestRecordHealth(t *testing.T) {
	started := time.Now()
	hc := &container.HealthConfig{Retries: 2, StartPeriod: time.Minute}
	h := &container.Health{Status: container.Starting}
	res := func(code int, at time.Duration) *container.HealthcheckResult {
		return &container.HealthcheckResult{Start: started.Add(at), ExitCode: code}
	}
	// Failures in the start period do not count while it starts.
	for i := range 3 {
		if recordHealth(h, res(1, time.Duration(i)*time.Second), hc, started) || h.Status != container.Starting || h.FailingStreak != 0 {
			t.Fatalf("failure in the start period: %+v", h)
		}
	}
	if !recordHealth(h, res(0, 4*time.Second), hc, started) || h.Status != container.Healthy {
		t.Fatalf("success: %+v", h)
	}
	if recordHealth(h, res(1, 5*time.Second), hc, started) || h.Status != container.Healthy || h.FailingStreak != 1 {
		t.Fatalf("one failure: %+v", h)
	}
	if !recordHealth(h, res(1, 6*time.Second), hc, started) || h.Status != container.Unhealthy || h.FailingStreak != 2 {
		t.Fatalf("two failures: %+v", h)
	}
	if len(h.Log) != healthLogKept || !h.Log[len(h.Log)-1].Start.Equal(started.Add(6*time.Second)) {
		t.Fatalf("log: %d entries", len(h.Log))
	}
	// Past the start period, failures count from the start.
	h = &container.Health{Status: container.Starting}
	hc = &container.HealthConfig{}
	for i := range healthRetries {
		recordHealth(h, res(1, time.Duration(i)*time.Second), hc, started)
	}
	if h.Status != container.Unhealthy {
		t.Fatalf("default retries: %+v", h)
	}
}

func TestHealthConfig(t *testing.T) {
	img := &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 5}
	got := mergeHealthcheck(&container.HealthConfig{Interval: 2 * time.Second}, img)
	if strings.Join(got.Test, " ") != "CMD true" || got.Interval != 2*time.Second || got.Retries != 5 {
		t.Errorf("merged: %+v", got)
	}
	if got := mergeHealthcheck(&container.HealthConfig{Test: []string{"NONE"}}, img); probeArgs(&container.Config{Healthcheck: got}) != nil {
		t.Errorf("NONE over the image's check: %+v", got)
	}
	if got := mergeHealthcheck(nil, img); got == img || got.Interval != time.Second {
		t.Errorf("image's check: %+v", got)
	}
	args := probeArgs(&container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "exit 1"}}})
	if strings.Join(args, "|") != "/bin/sh|-c|exit 1" {
		t.Errorf("CMD-SHELL: %q", args)
	}
	args = probeArgs(&container.Config{Shell: []string{"/bin/ash", "-ec"}, Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}}})
	if strings.Join(args, "|") != "/bin/ash|-ec|true" {
		t.Errorf("CMD-SHELL with SHELL: %q", args)
	}
	for hc, want := range map[*container.HealthConfig]string{
		{Retries: -1}:                    "Retries in Healthcheck cannot be negative",
		{Interval: time.Microsecond}:     "Interval in Healthcheck cannot be less than 1ms",
		{Test: []string{"CMD"}}:          "health check CMD without a command",
		{Test: []string{"BOGUS", "x"}}:   `unknown type of health check: "BOGUS" (CMD, CMD-SHELL or NONE)`,
		{Test: []string{"NONE"}}:         "",
		{Test: []string{"CMD", "true"}}:  "",
		{StartInterval: time.Nanosecond}: "StartInterval in Healthcheck cannot be less than 1ms",
	} {
		err := validateHealth(hc)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("%+v: got %q, want %q", hc, got, want)
		}
	}
}

func TestStatusString(t *testing.T) {
	now := time.Now()
	c := &Container{State: State{Status: "running", StartedAt: now.Add(-3 * time.Second), Health: &container.Health{Status: container.Healthy}}}
	if got := c.statusString(now); got != "Up 3 seconds (healthy)" {
		t.Errorf("healthy: %q", got)
	}
	c.State.Health.Status = container.Starting
	if got := c.statusString(now); got != "Up 3 seconds (health: starting)" {
		t.Errorf("starting: %q", got)
	}
	c.State = State{Status: "exited", ExitCode: 1, Restarting: true, FinishedAt: now.Add(-2 * time.Second)}
	if got := c.statusString(now); got != "Restarting (1) 2 seconds ago" {
		t.Errorf("restarting: %q", got)
	}
}
