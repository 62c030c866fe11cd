package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/spf13/cobra"
)

// eventsCmd is docker events: the agent's events as they happen, or those
// of a past period with --since/--until.
func (a *app) eventsCmd() *cobra.Command {
	var since, until, format string
	var filters []string
	c := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the agent",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := filterFlags(filters)
			if err != nil {
				return err
			}
			now := time.Now()
			for _, p := range []struct{ name, v string }{{"since", since}, {"until", until}} {
				if p.v == "" {
					continue
				}
				t, err := parseTimeArg(p.v, now)
				if err != nil {
					return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: invalid value for --%s: %v", p.name, err)}
				}
				q.Set(p.name, t)
			}
			var tmpl func(io.Writer, events.Message) error
			if format != "" {
				if strings.TrimSpace(format) == "json" {
					format = "{{json .}}"
				}
				t, err := parseTemplate(format)
				if err != nil {
					return err
				}
				tmpl = func(w io.Writer, m events.Message) error {
					if err := t.Execute(w, m); err != nil {
						return err
					}
					_, err := fmt.Fprintln(w)
					return err
				}
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			resp, err := cl.do(context.Background(), http.MethodGet, "/events", q, nil, "")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return readAPIError(resp)
			}
			dec := json.NewDecoder(resp.Body)
			for {
				var m events.Message
				if err := dec.Decode(&m); err != nil {
					if err == io.EOF {
						return nil
					}
					return fmt.Errorf("read the event stream: %w", err)
				}
				if tmpl != nil {
					if err := tmpl(a.out, m); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintln(a.out, eventLine(m))
			}
		},
	}
	f := c.Flags()
	f.StringVar(&since, "since", "", "Show all events created since timestamp")
	f.StringVar(&until, "until", "", "Stream events until this timestamp")
	f.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided")
	f.StringVar(&format, "format", "", "Format output using a custom template ('json' for JSON lines)")
	return c
}

// eventLine is docker's line for an event: time, type, action, the
// object's ID and its attributes, sorted.
func eventLine(m events.Message) string {
	t := time.Unix(0, m.TimeNano)
	if m.TimeNano == 0 {
		t = time.Unix(m.Time, 0)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %s", t.Format("2006-01-02T15:04:05.000000000Z07:00"), m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(m.Actor.Attributes))
		for k := range m.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]string, 0, len(keys))
		for _, k := range keys {
			attrs = append(attrs, k+"="+m.Actor.Attributes[k])
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(attrs, ", "))
	}
	return b.String()
}
