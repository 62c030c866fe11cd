package agent

import (
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
)

// Docker's restart backoff: the first restart waits restartDelayMin, each
// next one twice as long up to restartDelayMax; a run of restartResetAfter
// or more starts the series again.
const (
	restartDelayMin   = 100 * time.Millisecond
	restartDelayMax   = time.Minute
	restartResetAfter = 10 * time.Second
)

// restartState is what the agent keeps in memory about a container's
// restart policy (as docker's restart manager): the current backoff, and
// whether a stop or kill by the user cancelled restarts until the next
// start. A new agent starts with neither, so `always` restarts a container
// the user stopped when the agent restarts, as docker's daemon does.
type restartState struct {
	delay     time.Duration
	cancelled bool
}

// validateRestart checks the restart policy as docker's daemon does.
func validateRestart(h *container.HostConfig) error {
	if err := container.ValidateRestartPolicy(h.RestartPolicy); err != nil {
		return kindErr(errInvalid, "%s", err.Error())
	}
	if h.AutoRemove && !h.RestartPolicy.IsNone() {
		return kindErr(errInvalid, "can't create 'AutoRemove' container with restart policy")
	}
	return nil
}

// nextRestartDelay is the wait before the next restart, given the last
// wait (0 for none yet) and how long the container ran.
func nextRestartDelay(prev, ran time.Duration) time.Duration {
	if ran >= restartResetAfter {
		prev = 0
	}
	if prev == 0 {
		return restartDelayMin
	}
	return min(prev*2, restartDelayMax)
}

// shouldRestart is the policy's decision for a container that exited with
// code after restarts restarts. cancelled: the user stopped or killed it
// since it last started (no policy restarts it); manual: the user stopped
// it at some point since its last start by the user (unless-stopped and
// on-failure leave it stopped, across agent restarts too).
func shouldRestart(p container.RestartPolicy, code, restarts int, manual, cancelled bool) bool {
	if cancelled {
		return false
	}
	switch p.Name {
	case container.RestartPolicyAlways:
		return true
	case container.RestartPolicyUnlessStopped:
		return !manual
	case container.RestartPolicyOnFailure:
		return !manual && code != 0 && (p.MaximumRetryCount == 0 || restarts < p.MaximumRetryCount)
	}
	return false
}

// start starts c for the user: the restart policy's count, backoff and
// cancellation start afresh, as docker's do.
func (a *Agent) start(c *Container) error {
	c.mu.Lock()
	if c.State.Status != "running" {
		c.State.Restarting, c.State.RestartCount, c.State.ManuallyStopped = false, 0, false
		c.restart = restartState{}
	}
	c.mu.Unlock()
	return a.startRun(c, -1)
}

// policyAfterExit applies the restart policy to c, which just exited:
// when it restarts, it is marked restarting and counted, and the wait
// before the restart is returned. Callers hold c.mu.
func (a *Agent) policyAfterExit(c *Container) (time.Duration, bool) {
	a.stopHealth(c)
	s := &c.State
	if s.Status != "exited" || !shouldRestart(c.HostConfig.RestartPolicy, s.ExitCode, s.RestartCount, s.ManuallyStopped, c.restart.cancelled) {
		s.Restarting = false
		return 0, false
	}
	ran := time.Duration(0)
	if !s.StartedAt.IsZero() && !s.FinishedAt.IsZero() {
		ran = s.FinishedAt.Sub(s.StartedAt)
	}
	c.restart.delay = nextRestartDelay(c.restart.delay, ran)
	s.Restarting = true
	s.RestartCount++
	return c.restart.delay, true
}

// restartLater starts c again after delay unless, by then, the user
// started, stopped or removed it.
func (a *Agent) restartLater(c *Container, gen int, delay time.Duration) {
	a.log.Debug("restart scheduled", "id", c.ID, "in", delay)
	time.AfterFunc(delay, func() {
		err := a.startRun(c, gen)
		if err == nil || err == errNotModified {
			return
		}
		a.log.Warn("restart by policy failed", "id", c.ID, "error", err)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.State.Restarting && c.State.Status == "exited" {
			c.State.Restarting = false
			if err := a.save(c); err != nil {
				a.log.Error("save state", "id", c.ID, "error", err)
			}
			c.notify()
		}
	})
}

// restartAtBoot restarts, when a new agent loads it, a stopped container
// whose policy says so: it was waiting for a restart when the last agent
// ended, or ended with that agent's containers (as at a reboot).
func (a *Agent) restartAtBoot(c *Container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.State
	if s.Status != "exited" || s.Generation == 0 || c.HostConfig == nil || c.HostConfig.AutoRemove {
		return
	}
	if !s.Restarting {
		if !shouldRestart(c.HostConfig.RestartPolicy, s.ExitCode, s.RestartCount, s.ManuallyStopped, false) {
			return
		}
		s.Restarting = true
		s.RestartCount++
	}
	c.restart.delay = restartDelayMin
	a.restartLater(c, s.Generation, 0)
}

// userStopped records that the user stops c with sig: a stop, or a kill
// with SIGKILL or the stop signal, cancels policy restarts until the next
// start; any stop or kill keeps unless-stopped from restarting it. It
// reports whether a pending restart was cancelled. Callers hold c.mu.
func (c *Container) userStopped(sig syscall.Signal, stop bool) bool {
	c.State.ManuallyStopped = true
	if stop || sig == syscall.SIGKILL || sig == c.stopSignal() {
		c.restart.cancelled = true
		if c.State.Restarting {
			c.State.Restarting = false
			return true
		}
	}
	return false
}

// inspectPolicy adds the restart policy's and the health check's state to
// docker inspect's view of c. Callers hold c.mu.
func inspectPolicy(c *Container, resp *container.InspectResponse) {
	resp.RestartCount = c.State.RestartCount
	if c.State.Restarting && resp.State.Status == "exited" {
		resp.State.Status, resp.State.Restarting, resp.State.Running = "restarting", true, true
	}
	if h := c.State.Health; h != nil {
		cp := *h
		cp.Log = append([]*container.HealthcheckResult{}, h.Log...)
		resp.State.Health = &cp
	}
}
