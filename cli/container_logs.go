package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

// logsOptions are the flags of logs.
type logsOptions struct {
	follow, timestamps, details bool
	tail, since, until          string
}

func (a *app) logsCmd() *cobra.Command {
	o := &logsOptions{}
	c := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.logs(o, args[0])
		},
	}
	f := c.Flags()
	f.BoolVarP(&o.follow, "follow", "f", false, "Follow log output")
	f.BoolVarP(&o.timestamps, "timestamps", "t", false, "Show timestamps")
	f.BoolVar(&o.details, "details", false, "Show extra details provided to logs")
	f.StringVarP(&o.tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	f.StringVar(&o.since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	f.StringVar(&o.until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	return c
}

func (a *app) logs(o *logsOptions, name string) error {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "tail": {o.tail}}
	if o.follow {
		q.Set("follow", "1")
	}
	if o.timestamps {
		q.Set("timestamps", "1")
	}
	if o.details {
		q.Set("details", "1")
	}
	now := time.Now()
	for _, p := range []struct{ flag, v string }{{"since", o.since}, {"until", o.until}} {
		if p.v == "" {
			continue
		}
		ts, err := parseTimeArg(p.v, now)
		if err != nil {
			return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: invalid value for \"--%s\": %v", p.flag, err)}
		}
		q.Set(p.flag, ts)
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	var info container.InspectResponse
	if err := cl.call(http.MethodGet, "/containers/"+url.PathEscape(name)+"/json", nil, nil, &info); err != nil {
		return err
	}
	resp, err := cl.do(context.Background(), http.MethodGet, "/containers/"+url.PathEscape(name)+"/logs", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if info.Config != nil && info.Config.Tty {
		_, err = io.Copy(a.out, resp.Body)
		return err
	}
	return demux(resp.Body, a.out, a.errw)
}

// parseTimeArg turns docker's --since/--until forms (a duration before
// now, Unix seconds with optional fraction, RFC 3339 or a plain date and
// time in local time) into the API's seconds.nanoseconds.
func parseTimeArg(v string, now time.Time) (string, error) {
	unix := func(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }
	if d, err := time.ParseDuration(v); err == nil {
		return unix(now.Add(-d)), nil
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return v, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, v); err == nil {
			return unix(t), nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return unix(t), nil
		}
	}
	return "", fmt.Errorf("%q is not a timestamp, a Unix time or a duration", v)
}
