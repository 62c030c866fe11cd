package cli

import (
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"
)

// policyRequest parses run's flags and builds the request.
func policyRequest(t *testing.T, args ...string) (*container.CreateRequest, error) {
	t.Helper()
	o := &runOptions{}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o.addFlags(fs, true)
	if err := fs.Parse(append(args, "img")); err != nil {
		t.Fatal(err)
	}
	o.fromFlags(fs)
	return o.request("img", nil)
}

func TestRunRestartAndHealthFlags(t *testing.T) {
	req, err := policyRequest(t, "--restart", "on-failure:3", "--health-cmd", "test -f /ok", "--health-interval", "100ms",
		"--health-timeout", "2s", "--health-retries", "2", "--health-start-period", "1s", "--health-start-interval", "50ms")
	if err != nil {
		t.Fatal(err)
	}
	if p := req.HostConfig.RestartPolicy; p.Name != "on-failure" || p.MaximumRetryCount != 3 {
		t.Errorf("restart policy %+v", p)
	}
	want := &container.HealthConfig{Test: []string{"CMD-SHELL", "test -f /ok"}, Interval: 100 * time.Millisecond,
		Timeout: 2 * time.Second, Retries: 2, StartPeriod: time.Second, StartInterval: 50 * time.Millisecond}
	if !reflect.DeepEqual(req.Config.Healthcheck, want) {
		t.Errorf("health check %+v", req.Config.Healthcheck)
	}
	req, err = policyRequest(t, "--no-healthcheck")
	if err != nil || !reflect.DeepEqual(req.Config.Healthcheck.Test, []string{"NONE"}) {
		t.Errorf("--no-healthcheck: %+v, %v", req.Config.Healthcheck, err)
	}
	req, err = policyRequest(t)
	if err != nil || req.Config.Healthcheck != nil || req.HostConfig.RestartPolicy.Name != "no" {
		t.Errorf("defaults: %+v %+v, %v", req.Config.Healthcheck, req.HostConfig.RestartPolicy, err)
	}
}

func TestRunRestartAndHealthBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--restart", "bogus"}, "invalid restart policy: unknown policy 'bogus'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"},
		{[]string{"--restart", "always:3"}, "invalid restart policy: maximum retry count can only be used with 'on-failure'"},
		{[]string{"--restart", "on-failure:x"}, "invalid restart policy format: maximum retry count must be an integer"},
		{[]string{"--restart", ":3"}, "invalid restart policy format: no policy provided before colon"},
		{[]string{"--restart", "on-failure:-1"}, "invalid restart policy: maximum retry count cannot be negative"},
		{[]string{"--restart", "always", "--rm"}, "conflicting options: cannot specify both --restart and --rm"},
		{[]string{"--health-retries", "-1"}, "--health-retries cannot be negative"},
		{[]string{"--health-interval", "-1s"}, "--health-interval cannot be negative"},
		{[]string{"--no-healthcheck", "--health-cmd", "true"}, "--no-healthcheck conflicts with --health-* options"},
	} {
		_, err := policyRequest(t, c.args...)
		if err == nil || err.Error() != c.want {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
	}
}
