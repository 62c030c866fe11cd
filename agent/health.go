package agent

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/moss-containers/moss/agent/spec"
)

// Docker's health check defaults and limits.
const (
	healthInterval      = 30 * time.Second
	healthTimeout       = 30 * time.Second
	healthStartInterval = 5 * time.Second
	healthRetries       = 3
	healthLogKept       = 5
	healthOutputMax     = 4096
)

// healthRun is the health check of one run of a container; closing stop
// ends it.
type healthRun struct {
	stop chan struct{}
}

// validateHealth checks a health check configuration as docker's daemon
// does.
func validateHealth(hc *container.HealthConfig) error {
	if hc == nil {
		return nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Interval", hc.Interval}, {"Timeout", hc.Timeout}, {"StartPeriod", hc.StartPeriod}, {"StartInterval", hc.StartInterval}} {
		if d.v != 0 && d.v < container.MinimumDuration {
			return kindErr(errInvalid, "%s in Healthcheck cannot be less than %s", d.name, container.MinimumDuration)
		}
	}
	if hc.Retries < 0 {
		return kindErr(errInvalid, "Retries in Healthcheck cannot be negative")
	}
	if len(hc.Test) > 0 {
		switch hc.Test[0] {
		case "NONE", "CMD", "CMD-SHELL":
		default:
			return kindErr(errInvalid, "unknown type of health check: %q (CMD, CMD-SHELL or NONE)", hc.Test[0])
		}
		if hc.Test[0] != "NONE" && len(hc.Test) < 2 {
			return kindErr(errInvalid, "health check %s without a command", hc.Test[0])
		}
	}
	return nil
}

// mergeHealthcheck is the container's health check over the image's, as
// docker merges them: what the container leaves zero comes from the image.
func mergeHealthcheck(user, img *container.HealthConfig) *container.HealthConfig {
	if img == nil {
		return user
	}
	if user == nil {
		h := *img
		return &h
	}
	h := *user
	if len(h.Test) == 0 {
		h.Test = img.Test
	}
	if h.Interval == 0 {
		h.Interval = img.Interval
	}
	if h.Timeout == 0 {
		h.Timeout = img.Timeout
	}
	if h.StartPeriod == 0 {
		h.StartPeriod = img.StartPeriod
	}
	if h.StartInterval == 0 {
		h.StartInterval = img.StartInterval
	}
	if h.Retries == 0 {
		h.Retries = img.Retries
	}
	return &h
}

// imageDefaults adds what the image's Docker configuration has beyond the
// OCI one to cfg: its health check and its shell.
func (a *Agent) imageDefaults(cfg *container.Config, imageID string) {
	ic, err := a.store.ImageConfig(imageID)
	if err != nil {
		return
	}
	cfg.Healthcheck = mergeHealthcheck(cfg.Healthcheck, ic.Config.Healthcheck)
	if len(cfg.Shell) == 0 && len(ic.Config.Shell) > 0 {
		cfg.Shell = ic.Config.Shell
	}
}

// probeArgs is the command of the health check, nil when there is none.
func probeArgs(cfg *container.Config) []string {
	hc := cfg.Healthcheck
	if hc == nil || len(hc.Test) < 2 {
		return nil
	}
	switch hc.Test[0] {
	case "CMD":
		return hc.Test[1:]
	case "CMD-SHELL":
		shell := cfg.Shell
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return append(append([]string{}, shell...), hc.Test[1])
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// startHealth starts the health check of c's current run, when it has
// one: the status is starting until the first result. Callers hold c.mu.
func (a *Agent) startHealth(c *Container) {
	a.stopHealth(c)
	args := probeArgs(c.Config)
	if args == nil {
		c.State.Health = nil
		return
	}
	if c.State.Health == nil {
		c.State.Health = &container.Health{}
	}
	c.State.Health.Status, c.State.Health.FailingStreak = container.Starting, 0
	h := &healthRun{stop: make(chan struct{})}
	c.health = h
	go a.monitorHealth(c, c.State.Generation, args, h.stop)
}

// stopHealth ends c's health check; the status of a container that is not
// running is unhealthy, as docker's. Callers hold c.mu.
func (a *Agent) stopHealth(c *Container) {
	if c.health != nil {
		close(c.health.stop)
		c.health = nil
		if c.State.Health != nil && c.State.Status != "running" {
			c.State.Health.Status = container.Unhealthy
		}
	}
}

// monitorHealth runs the probe of run gen of c at the check's interval
// (its start interval while it starts) until stop is closed.
func (a *Agent) monitorHealth(c *Container, gen int, args []string, stop <-chan struct{}) {
	hc := c.Config.Healthcheck
	interval := orDefault(hc.Interval, healthInterval)
	startInterval := orDefault(hc.StartInterval, healthStartInterval)
	timeout := orDefault(hc.Timeout, healthTimeout)
	c.mu.Lock()
	started := c.State.StartedAt
	c.mu.Unlock()
	next := func() time.Duration {
		if time.Since(started) >= hc.StartPeriod {
			return interval
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.State.Health != nil && c.State.Health.Status == container.Starting {
			return startInterval
		}
		return interval
	}
	t := time.NewTimer(next())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		res := a.probe(c, args, timeout, stop)
		if res == nil {
			return
		}
		select {
		case <-stop:
			return
		default:
		}
		c.mu.Lock()
		if c.State.Generation != gen || c.State.Status != "running" || c.State.Health == nil {
			c.mu.Unlock()
			return
		}
		changed := recordHealth(c.State.Health, res, hc, started)
		if err := a.save(c); err != nil {
			a.log.Warn("save health", "id", c.ID, "error", err)
		}
		if changed {
			a.containerEventLocked(c, events.Action(string(events.ActionHealthStatus)+": "+string(c.State.Health.Status)), nil)
		}
		c.mu.Unlock()
		t.Reset(next())
	}
}

// recordHealth adds a probe's result to h, as docker counts them: a
// success makes it healthy, retries failures in a row unhealthy; failures
// within the start period do not count while it starts. It reports
// whether the status changed.
func recordHealth(h *container.Health, res *container.HealthcheckResult, hc *container.HealthConfig, started time.Time) bool {
	old := h.Status
	h.Log = append(h.Log, res)
	if len(h.Log) > healthLogKept {
		h.Log = append([]*container.HealthcheckResult{}, h.Log[len(h.Log)-healthLogKept:]...)
	}
	retries := hc.Retries
	if retries <= 0 {
		retries = healthRetries
	}
	if res.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = container.Healthy
	} else if h.Status != container.Starting || res.Start.Sub(started) >= hc.StartPeriod {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = container.Unhealthy
		}
	}
	return h.Status != old
}

// probe runs the health check's command in c once, with the exec
// machinery of docker exec, and returns its result; nil when c no longer
// runs, is paused (its processes could not answer), or stop was closed
// before it started.
func (a *Agent) probe(c *Container, args []string, timeout time.Duration, stop <-chan struct{}) *container.HealthcheckResult {
	c.mu.Lock()
	rootfs, cfg, host := c.Rootfs, c.Config, c.HostConfig
	err := execableLocked(c)
	c.mu.Unlock()
	if err != nil {
		return nil
	}
	res := &container.HealthcheckResult{Start: time.Now().UTC()}
	fail := func(msg string) *container.HealthcheckResult {
		res.End, res.ExitCode, res.Output = time.Now().UTC(), -1, msg
		return res
	}
	sp, err := spec.Exec(rootfs, cfg, host, spec.ExecRequest{Args: args})
	if err != nil {
		return fail(err.Error())
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err.Error())
	}
	defer r.Close()
	select {
	case <-stop:
		w.Close()
		return nil
	default:
	}
	x, err := a.execLauncher.Start(a.dirs.RuncRoot(), c.ID, sp, a.ownCgroups(c.ID), nil, w, w)
	w.Close()
	if err != nil {
		return fail("OCI runtime exec failed: " + runError(err).Error())
	}
	out := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, io.LimitReader(r, healthOutputMax))
		_, _ = io.Copy(io.Discard, r)
		out <- b.Bytes()
	}()
	var timedOut atomic.Bool
	var ended atomic.Bool
	kill := func() {
		if !ended.Load() {
			_ = syscall.Kill(x.Pid, syscall.SIGKILL)
		}
	}
	timer := time.AfterFunc(timeout, func() { timedOut.Store(true); kill() })
	quit := make(chan struct{})
	go func() {
		select {
		case <-stop:
			kill()
		case <-quit:
		}
	}()
	st := x.Wait()
	ended.Store(true)
	timer.Stop()
	close(quit)
	var output []byte
	select {
	case output = <-out:
	case <-time.After(execGrace): // children in the background hold the pipe
		r.Close()
		output = <-out
	}
	res.End = time.Now().UTC()
	if timedOut.Load() {
		res.ExitCode, res.Output = -1, fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		return res
	}
	res.ExitCode, res.Output = st.Code, string(output)
	return res
}

// healthSummary is the health of c for docker ps; nil when it has no
// health check. Callers hold c.mu.
func healthSummary(c *Container) *container.HealthSummary {
	if c.State.Health == nil {
		return nil
	}
	return &container.HealthSummary{Status: c.State.Health.Status, FailingStreak: c.State.Health.FailingStreak}
}

// healthStatus is a summary's health for ps --filter health=: none
// without a health check.
func healthStatus(h *container.HealthSummary) string {
	if h == nil {
		return string(container.NoHealthcheck)
	}
	return string(h.Status)
}
