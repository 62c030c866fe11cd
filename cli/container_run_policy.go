package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"
)

// policyOptions are the restart policy and health check flags of run and
// create.
type policyOptions struct {
	restart                                                      string
	healthCmd                                                    string
	healthInterval, healthTimeout, healthStart, healthStartEvery time.Duration
	healthRetries                                                int
	noHealthcheck                                                bool
}

func (o *policyOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits (no, on-failure[:max-retries], always, unless-stopped)")
	fs.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	fs.DurationVar(&o.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStart, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStartEvery, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	fs.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fs.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
}

// parseRestartPolicy reads --restart as docker's CLI does: NAME or
// NAME:MAX-RETRIES; the agent checks the name.
func parseRestartPolicy(s string) (container.RestartPolicy, error) {
	if s == "" {
		return container.RestartPolicy{}, nil
	}
	name, count, ok := strings.Cut(s, ":")
	if ok && name == "" {
		return container.RestartPolicy{}, errors.New("invalid restart policy format: no policy provided before colon")
	}
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if count != "" {
		n, err := strconv.Atoi(count)
		if err != nil {
			return container.RestartPolicy{}, errors.New("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	return p, nil
}

// apply sets the restart policy and the health check of the request, with
// docker's checks and messages.
func (o *policyOptions) apply(cfg *container.Config, host *container.HostConfig) error {
	p, err := parseRestartPolicy(o.restart)
	if err != nil {
		return err
	}
	if err := container.ValidateRestartPolicy(p); err != nil {
		return err
	}
	if host.AutoRemove && !p.IsNone() {
		return errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	host.RestartPolicy = p
	given := o.healthCmd != "" || o.healthInterval != 0 || o.healthTimeout != 0 || o.healthStart != 0 ||
		o.healthStartEvery != 0 || o.healthRetries != 0
	if o.noHealthcheck {
		if given {
			return errors.New("--no-healthcheck conflicts with --health-* options")
		}
		cfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
		return nil
	}
	if !given {
		return nil
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"interval", o.healthInterval}, {"timeout", o.healthTimeout}, {"start-period", o.healthStart}, {"start-interval", o.healthStartEvery}} {
		if d.v < 0 {
			return fmt.Errorf("--health-%s cannot be negative", d.flag)
		}
	}
	if o.healthRetries < 0 {
		return errors.New("--health-retries cannot be negative")
	}
	hc := &container.HealthConfig{
		Interval: o.healthInterval, Timeout: o.healthTimeout, StartPeriod: o.healthStart,
		StartInterval: o.healthStartEvery, Retries: o.healthRetries,
	}
	if o.healthCmd != "" {
		hc.Test = []string{"CMD-SHELL", o.healthCmd}
	}
	cfg.Healthcheck = hc
	return nil
}
