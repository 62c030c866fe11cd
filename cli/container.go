package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

func (a *app) addContainerCommands(root *cobra.Command) {
	group := &cobra.Command{Use: "container", Short: "Manage containers"}
	for _, target := range []*cobra.Command{root, group} {
		a.addRunCommands(target)
		target.AddCommand(a.startCmd(), a.stopCmd(), a.killCmd(), a.restartCmd(), a.rmCmd(target == group),
			a.psCmd(target == group), a.logsCmd(), a.waitCmd(), a.renameCmd())
	}
	group.AddCommand(a.pruneCmd(), a.inspectCmd("container"))
	root.AddCommand(group, a.inspectCmd(""))
}

func (a *app) startCmd() *cobra.Command {
	var attach bool
	c := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if attach {
				if len(args) != 1 {
					return &statusError{code: 1, msg: "moss: you cannot start and attach multiple containers at once"}
				}
				var info struct {
					ID string `json:"Id"`
				}
				if err := a.call(http.MethodGet, "/containers/"+args[0]+"/json", nil, nil, &info); err != nil {
					return err
				}
				code, err := a.attachStartWait(info.ID, true, true, false)
				if err != nil {
					return err
				}
				if code != 0 {
					return &statusError{code: code}
				}
				return nil
			}
			return a.eachArg(args, func(id string) error {
				if err := a.call(http.MethodPost, "/containers/"+id+"/start", nil, nil, nil); err != nil {
					return err
				}
				fmt.Fprintln(a.out, id)
				return nil
			})
		},
	}
	c.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	return c
}

func (a *app) stopCmd() *cobra.Command {
	var t int
	var sig string
	c := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if cmd.Flags().Changed("time") {
				q.Set("t", strconv.Itoa(t))
			}
			if sig != "" {
				q.Set("signal", sig)
			}
			return a.eachArg(args, func(id string) error {
				if err := a.call(http.MethodPost, "/containers/"+id+"/stop", q, nil, nil); err != nil {
					return err
				}
				fmt.Fprintln(a.out, id)
				return nil
			})
		},
	}
	c.Flags().IntVarP(&t, "time", "t", 0, "Seconds to wait before killing the container")
	c.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return c
}

func (a *app) restartCmd() *cobra.Command {
	var t int
	c := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if cmd.Flags().Changed("time") {
				q.Set("t", strconv.Itoa(t))
			}
			return a.eachArg(args, func(id string) error {
				if err := a.call(http.MethodPost, "/containers/"+id+"/restart", q, nil, nil); err != nil {
					return err
				}
				fmt.Fprintln(a.out, id)
				return nil
			})
		},
	}
	c.Flags().IntVarP(&t, "time", "t", 0, "Seconds to wait before killing the container")
	return c
}

func (a *app) killCmd() *cobra.Command {
	var sig string
	c := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if sig != "" {
				q.Set("signal", sig)
			}
			return a.eachArg(args, func(id string) error {
				if err := a.call(http.MethodPost, "/containers/"+id+"/kill", q, nil, nil); err != nil {
					return err
				}
				fmt.Fprintln(a.out, id)
				return nil
			})
		},
	}
	c.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return c
}

func (a *app) rmCmd(inGroup bool) *cobra.Command {
	var force, volumes bool
	c := &cobra.Command{
		Use:     "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short:   "Remove one or more containers",
		Args:    cobra.MinimumNArgs(1),
		Aliases: []string{},
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"force": {b(force)}, "v": {b(volumes)}}
			return a.eachArg(args, func(id string) error {
				if err := a.call(http.MethodDelete, "/containers/"+id, q, nil, nil); err != nil {
					return err
				}
				fmt.Fprintln(a.out, id)
				return nil
			})
		},
	}
	if inGroup {
		c.Aliases = []string{"remove"}
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	c.Flags().BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return c
}

func (a *app) renameCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(http.MethodPost, "/containers/"+args[0]+"/rename", url.Values{"name": {args[1]}}, nil, nil)
		},
	}
}

func (a *app) waitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachArg(args, func(id string) error {
				var w container.WaitResponse
				if err := a.call(http.MethodPost, "/containers/"+id+"/wait", nil, nil, &w); err != nil {
					return err
				}
				fmt.Fprintln(a.out, w.StatusCode)
				return nil
			})
		},
	}
}

func (a *app) pruneCmd() *cobra.Command {
	var force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				fmt.Fprint(a.out, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")
				line, _ := bufio.NewReader(a.in).ReadString('\n')
				if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
					return nil
				}
			}
			var resp struct {
				ContainersDeleted []string
				SpaceReclaimed    uint64
			}
			if err := a.call(http.MethodPost, "/containers/prune", filterQuery(filters), nil, &resp); err != nil {
				return err
			}
			if len(resp.ContainersDeleted) > 0 {
				fmt.Fprintln(a.out, "Deleted Containers:")
				for _, id := range resp.ContainersDeleted {
					fmt.Fprintln(a.out, id)
				}
				fmt.Fprintln(a.out)
			}
			fmt.Fprintf(a.out, "Total reclaimed space: %s\n", humanSize(float64(resp.SpaceReclaimed)))
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. \"label=<key>=<value>\")")
	return c
}

// filterQuery encodes --filter k=v flags as the API's filters parameter.
func filterQuery(filters []string) url.Values {
	q := url.Values{}
	if len(filters) == 0 {
		return q
	}
	m := map[string][]string{}
	for _, f := range filters {
		k, v, _ := strings.Cut(f, "=")
		m[k] = append(m[k], v)
	}
	data, _ := json.Marshal(m)
	q.Set("filters", string(data))
	return q
}

type psRow struct {
	s       container.Summary
	noTrunc bool
}

func (r psRow) ID() string {
	if r.noTrunc {
		return r.s.ID
	}
	return shortID(r.s.ID)
}
func (r psRow) Image() string { return r.s.Image }
func (r psRow) Command() string {
	c := strconv.Quote(r.s.Command)
	if !r.noTrunc && len(r.s.Command) > 20 {
		c = strconv.Quote(r.s.Command[:19] + "…")
	}
	return c
}
func (r psRow) CreatedAt() string {
	return time.Unix(r.s.Created, 0).Format("2006-01-02 15:04:05 -0700 MST")
}
func (r psRow) RunningFor() string {
	return humanDuration(time.Since(time.Unix(r.s.Created, 0))) + " ago"
}
func (r psRow) Status() string { return r.s.Status }
func (r psRow) State() string  { return string(r.s.State) }
func (r psRow) Ports() string  { return "" }
func (r psRow) Names() string {
	var n []string
	for _, x := range r.s.Names {
		n = append(n, strings.TrimPrefix(x, "/"))
	}
	return strings.Join(n, ",")
}
func (r psRow) Labels() string {
	var l []string
	for k, v := range r.s.Labels {
		l = append(l, k+"="+v)
	}
	return strings.Join(l, ",")
}
func (r psRow) Label(k string) string { return r.s.Labels[k] }
func (r psRow) Mounts() string        { return "" }
func (r psRow) Networks() string      { return r.s.HostConfig.NetworkMode }
func (r psRow) Size() string          { return "0B" }

// MarshalJSON gives `--format json` docker's field names.
func (r psRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"ID": r.ID(), "Image": r.Image(), "Command": r.Command(), "CreatedAt": r.CreatedAt(),
		"RunningFor": r.RunningFor(), "Ports": r.Ports(), "Status": r.Status(), "State": r.State(),
		"Names": r.Names(), "Labels": r.Labels(), "Mounts": r.Mounts(), "Networks": r.Networks(), "Size": r.Size(),
	})
}

func (a *app) psCmd(inGroup bool) *cobra.Command {
	var all, quiet, noTrunc, latest, size bool
	var last int
	var format string
	var filters []string
	c := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := filterQuery(filters)
			if all || latest || last > 0 {
				q.Set("all", "1")
			}
			if latest {
				last = 1
			}
			if last > 0 {
				q.Set("limit", strconv.Itoa(last))
			}
			var list []container.Summary
			if err := a.call(http.MethodGet, "/containers/json", q, nil, &list); err != nil {
				return err
			}
			if quiet {
				for _, s := range list {
					fmt.Fprintln(a.out, psRow{s: s, noTrunc: noTrunc}.ID())
				}
				return nil
			}
			if format == "" {
				format = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
			}
			rows := make([]interface{}, 0, len(list))
			for _, s := range list {
				rows = append(rows, psRow{s: s, noTrunc: noTrunc})
			}
			return render(a.out, format, rows, map[string]string{
				"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "RunningFor": "CREATED",
				"CreatedAt": "CREATED AT", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "State": "STATE",
				"Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS", "Size": "SIZE",
			})
		},
	}
	if inGroup {
		c.Aliases = []string{"ls", "list"}
	}
	f := c.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&latest, "latest", "l", false, "Show the latest created container")
	f.IntVarP(&last, "last", "n", -1, "Show n last created containers")
	f.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	f.StringVar(&format, "format", "", "Format output using a custom template")
	f.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided")
	return c
}

func (a *app) logsCmd() *cobra.Command {
	var follow, timestamps bool
	var tailN, since, until string
	c := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "follow": {b(follow)}, "timestamps": {b(timestamps)}, "tail": {tailN}}
			for k, v := range map[string]string{"since": since, "until": until} {
				if v == "" {
					continue
				}
				t, err := parseTimeArg(v)
				if err != nil {
					return &statusError{code: 1, msg: fmt.Sprintf("moss: invalid value for --%s: %v", k, err)}
				}
				q.Set(k, t)
			}
			resp, err := a.do(context.Background(), http.MethodGet, "/containers/"+args[0]+"/logs", q, nil, "")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			return demux(resp.Body, a.out, a.errw)
		},
	}
	f := c.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "Follow log output")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "Show timestamps")
	f.StringVarP(&tailN, "tail", "n", "all", "Number of lines to show from the end of the logs")
	f.StringVar(&since, "since", "", "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\")")
	f.StringVar(&until, "until", "", "Show logs before a timestamp or relative")
	return c
}

// parseTimeArg turns docker's --since/--until forms (RFC 3339, Unix
// seconds, or a duration ago) into the API's Unix timestamp.
func parseTimeArg(v string) (string, error) {
	if d, err := time.ParseDuration(v); err == nil {
		t := time.Now().Add(-d)
		return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()), nil
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return v, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()), nil
		}
	}
	return "", fmt.Errorf("%q is not a timestamp, Unix time or duration", v)
}

func (a *app) inspectCmd(kind string) *cobra.Command {
	var format, typ string
	c := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on Moss objects",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kind != "" {
				typ = kind
			}
			var objs []interface{}
			failed := false
			for _, name := range args {
				var raw json.RawMessage
				var err error
				if typ == "" || typ == "container" {
					err = a.call(http.MethodGet, "/containers/"+name+"/json", nil, nil, &raw)
				}
				if (typ == "" && err != nil) || typ == "image" {
					err = a.call(http.MethodGet, "/images/"+name+"/json", nil, nil, &raw)
				}
				if err != nil {
					if _, ok := err.(*apiError); ok {
						fmt.Fprintf(a.errw, "Error: No such object: %s\n", name)
						failed = true
						continue
					}
					return err
				}
				var v interface{}
				if err := json.Unmarshal(raw, &v); err != nil {
					return err
				}
				objs = append(objs, v)
			}
			if format != "" {
				if err := renderEach(a.out, format, objs); err != nil {
					return err
				}
			} else {
				if objs == nil {
					objs = []interface{}{}
				}
				data, _ := json.MarshalIndent(objs, "", "    ")
				fmt.Fprintln(a.out, string(data))
			}
			if failed {
				return &statusError{code: 1}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	if kind == "" {
		c.Flags().StringVar(&typ, "type", "", "Only inspect objects of the given type (container, image)")
	}
	return c
}
