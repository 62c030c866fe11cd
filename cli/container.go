package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/moss-containers/moss/internal/escape"
)

// addContainerCommands registers the container verbs at the top level and
// under `moss container`, as docker does.
func (a *app) addContainerCommands(root *cobra.Command) {
	grp := group("container", "Manage containers")
	for _, target := range []*cobra.Command{root, grp} {
		target.AddCommand(a.runCmd(), a.createCmd(), a.startCmd(), a.stopCmd(), a.killCmd(), a.restartCmd(),
			a.rmCmd(target == grp), a.psCmd(target == grp), a.logsCmd(), a.waitCmd(), a.renameCmd(), a.execCmd(), a.attachCmd(), a.topCmd(), a.cpCmd(), a.exportCmd(), a.diffCmd(), a.portCmd())
	}
	for _, target := range []*cobra.Command{root, grp} {
		target.AddCommand(a.resourceCmds()...)
	}
	grp.AddCommand(a.pruneCmd(), a.inspectCmd("container"))
	root.AddCommand(grp, a.inspectCmd(""))
}

// simpleEach runs one request per argument and prints the argument when it
// succeeds (stop, kill, restart, rm, start).
func (a *app) simpleEach(method, verb string, q url.Values, args []string) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	return a.eachArg(args, func(name string) error {
		path := "/containers/" + url.PathEscape(name)
		if verb != "" {
			path += "/" + verb
		}
		if err := cl.call(method, path, q, nil, nil); err != nil {
			return err
		}
		fmt.Fprintln(a.out, name)
		return nil
	})
}

func (a *app) startCmd() *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	c := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !attach && !interactive {
				return a.simpleEach(http.MethodPost, "start", nil, args)
			}
			if len(args) != 1 {
				return &statusError{code: exitFailure, msg: "moss: you cannot start and attach multiple containers at once"}
			}
			return a.attachTo(args[0], attachOptions{
				stdout: true, stderr: true, stdin: interactive, sigProxy: true, detachKeys: detachKeys, start: true,
			})
		},
	}
	c.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	c.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return c
}

// attachCmd is docker attach: this terminal's input and output to a
// running container's, until it exits (its exit code) or the detach keys.
func (a *app) attachCmd() *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	c := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := escape.Parse(detachKeys); err != nil {
				return &statusError{code: exitFailure, msg: "moss: " + err.Error()}
			}
			return a.attachTo(args[0], attachOptions{
				stdout: true, stderr: true, stdin: !noStdin, sigProxy: sigProxy, detachKeys: detachKeys,
			})
		},
	}
	c.Flags().BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	c.Flags().BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	c.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return c
}

// attachTo completes o from the container's configuration (its TTY,
// --rm, stdin only when it keeps stdin open), attaches (starting it with
// o.start; else it must run) and returns docker's exit status: the
// container's, or none after the detach keys.
func (a *app) attachTo(ref string, o attachOptions) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	var info container.InspectResponse
	if err := cl.call(http.MethodGet, "/containers/"+url.PathEscape(ref)+"/json", nil, nil, &info); err != nil {
		return err
	}
	if !o.start && (info.State == nil || !info.State.Running) {
		return &apiError{msg: "You cannot attach to a stopped container, start it first"}
	}
	if info.Config != nil {
		o.tty = info.Config.Tty
		o.stdin = o.stdin && info.Config.OpenStdin
	}
	if info.HostConfig != nil {
		o.removed = info.HostConfig.AutoRemove
	}
	code, detached, err := a.attachWait(info.ID, o)
	if err != nil || detached {
		return err
	}
	if code != 0 {
		return &statusError{code: code}
	}
	return nil
}

func (a *app) stopCmd() *cobra.Command {
	return a.stopLikeCmd("stop", "Stop one or more running containers")
}

func (a *app) restartCmd() *cobra.Command {
	return a.stopLikeCmd("restart", "Restart one or more containers")
}

// stopLikeCmd builds stop and restart, which share their flags and request.
func (a *app) stopLikeCmd(verb, short string) *cobra.Command {
	var t int
	var sig string
	c := &cobra.Command{
		Use:   verb + " [OPTIONS] CONTAINER [CONTAINER...]",
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if cmd.Flags().Changed("time") {
				q.Set("t", strconv.Itoa(t))
			}
			if sig != "" {
				q.Set("signal", sig)
			}
			return a.simpleEach(http.MethodPost, verb, q, args)
		},
	}
	c.Flags().IntVarP(&t, "time", "t", 0, "Seconds to wait before killing the container")
	c.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return c
}

func (a *app) killCmd() *cobra.Command {
	var sig string
	c := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if sig != "" {
				q.Set("signal", sig)
			}
			return a.simpleEach(http.MethodPost, "kill", q, args)
		},
	}
	c.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return c
}

func (a *app) rmCmd(inGroup bool) *cobra.Command {
	var force, volumes, link bool
	c := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if link {
				return &statusError{code: exitFailure, msg: "moss: --link is not supported: moss has no legacy links"}
			}
			q := url.Values{"force": {b(force)}, "v": {b(volumes)}}
			return a.simpleEach(http.MethodDelete, "", q, args)
		},
	}
	if inGroup {
		c.Aliases = []string{"remove"}
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	c.Flags().BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	c.Flags().BoolVarP(&link, "link", "l", false, "Remove the specified link")
	return c
}

func (a *app) renameCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			return cl.call(http.MethodPost, "/containers/"+url.PathEscape(args[0])+"/rename", url.Values{"name": {args[1]}}, nil, nil)
		},
	}
}

func (a *app) waitCmd() *cobra.Command {
	var condition string
	c := &cobra.Command{
		Use:   "wait [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch condition {
			case "not-running", "next-exit", "removed":
			default:
				return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: invalid --condition %q: use not-running, next-exit or removed", condition)}
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			q := url.Values{"condition": {condition}}
			return a.eachArg(args, func(name string) error {
				var w container.WaitResponse
				if err := cl.call(http.MethodPost, "/containers/"+url.PathEscape(name)+"/wait", q, nil, &w); err != nil {
					return err
				}
				if w.Error != nil && w.Error.Message != "" {
					return &apiError{msg: w.Error.Message}
				}
				fmt.Fprintln(a.out, w.StatusCode)
				return nil
			})
		},
	}
	c.Flags().StringVar(&condition, "condition", "not-running", "Condition to wait for: not-running, next-exit or removed")
	return c
}

// confirm asks docker's [y/N] question on the command's streams.
func (a *app) confirm(warning string) bool {
	fmt.Fprintf(a.out, "%s\nAre you sure you want to continue? [y/N] ", warning)
	line, _ := bufio.NewReader(a.in).ReadString('\n')
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes"
}

func (a *app) pruneCmd() *cobra.Command {
	var force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !a.confirm("WARNING! This will remove all stopped containers.") {
				return nil
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			var resp container.PruneReport
			if err := cl.call(http.MethodPost, "/containers/prune", filterQuery(filters), nil, &resp); err != nil {
				return err
			}
			if len(resp.ContainersDeleted) > 0 {
				fmt.Fprintln(a.out, "Deleted Containers:")
				for _, id := range resp.ContainersDeleted {
					fmt.Fprintln(a.out, id)
				}
				fmt.Fprintln(a.out)
			}
			fmt.Fprintf(a.out, "Total reclaimed space: %s\n", units.HumanSize(float64(resp.SpaceReclaimed)))
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, `Provide filter values (e.g. "until=<timestamp>")`)
	return c
}

// filterQuery encodes --filter k=v flags as the API's filters parameter:
// {"k": {"v": true}}, the form every API version accepts.
func filterQuery(filters []string) url.Values {
	q := url.Values{}
	if len(filters) == 0 {
		return q
	}
	m := map[string]map[string]bool{}
	for _, f := range filters {
		k, v, _ := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if m[k] == nil {
			m[k] = map[string]bool{}
		}
		m[k][v] = true
	}
	data, _ := json.Marshal(m)
	q.Set("filters", string(data))
	return q
}
