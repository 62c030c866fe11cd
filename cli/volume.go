package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/volume"
	"github.com/spf13/cobra"
)

// addVolumeCommands registers `moss volume` (create, ls, inspect, rm,
// prune), docker's verbs on the agent's /volumes endpoints.
func (a *app) addVolumeCommands(root *cobra.Command) {
	grp := group("volume", "Manage volumes")
	grp.AddCommand(a.volumeCreateCmd(), a.volumeLsCmd(), a.volumeInspectCmd(), a.volumeRmCmd(), a.volumePruneCmd())
	root.AddCommand(grp)
}

// volume create

func (a *app) volumeCreateCmd() *cobra.Command {
	var name, driver string
	var opts mapOpt
	labels := listOpt{validate: validateLabel}
	c := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" {
					return &statusError{code: exitFailure, msg: "conflicting options: cannot specify a volume-name through both --name and as a positional arg"}
				}
				name = args[0]
			}
			req := volume.CreateRequest{Name: name, Driver: driver, DriverOpts: opts.m}
			if len(labels.vals) > 0 {
				req.Labels = labelMap(labels.vals)
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			var v volume.Volume
			if err := cl.call(http.MethodPost, "/volumes/create", nil, req, &v); err != nil {
				return err
			}
			fmt.Fprintln(a.out, v.Name)
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	f.StringVar(&name, "name", "", "Specify volume name")
	_ = f.MarkHidden("name")
	f.VarP(&opts, "opt", "o", "Set driver specific options")
	f.Var(&labels, "label", "Set metadata for a volume")
	return c
}

// volume ls

const volumeTable = "table {{.Driver}}\t{{.Name}}"

var volumeHeaders = map[string]string{
	"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT", "Labels": "LABELS",
	"Label": "LABEL", "Links": "LINKS", "Size": "SIZE", "Group": "GROUP", "Availability": "AVAILABILITY", "Status": "STATUS",
}

func (a *app) volumeLsCmd() *cobra.Command {
	var quiet bool
	var format string
	var filters filterOpt
	c := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			var resp volume.ListResponse
			if err := cl.call(http.MethodGet, "/volumes", filterQuery(filters.vals), nil, &resp); err != nil {
				return err
			}
			list := resp.Volumes
			sort.SliceStable(list, func(i, j int) bool { return naturalLess(list[i].Name, list[j].Name) })
			f := format
			if quiet && (f == "" || f == "table") {
				f = "{{.Name}}"
			}
			rows := make([]interface{}, 0, len(list))
			for _, v := range list {
				rows = append(rows, volumeRow{v})
			}
			return render(a.out, listFormat(f, volumeTable), rows, volumeHeaders)
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	c.Flags().StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	c.Flags().VarP(&filters, "filter", "f", `Provide filter values (e.g. "dangling=true")`)
	return c
}

// volumeRow is one volume as docker's volume ls templates see it.
type volumeRow struct{ v volume.Volume }

func (r volumeRow) Name() string       { return r.v.Name }
func (r volumeRow) Driver() string     { return r.v.Driver }
func (r volumeRow) Scope() string      { return r.v.Scope }
func (r volumeRow) Mountpoint() string { return r.v.Mountpoint }
func (r volumeRow) Labels() string     { return joinLabels(r.v.Labels) }

// Label is the value of one label: {{.Label "com.example.key"}}.
func (r volumeRow) Label(k string) string { return r.v.Labels[k] }

// Links is the number of containers using the volume, when the agent
// counted them (docker: N/A otherwise).
func (r volumeRow) Links() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return strconv.FormatInt(r.v.UsageData.RefCount, 10)
}

// Size is the volume's disk usage, when the agent measured it.
func (r volumeRow) Size() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return units.HumanSize(float64(r.v.UsageData.Size))
}

// Group, Availability and Status describe swarm cluster volumes, which
// Moss has not: docker prints N/A for a local volume.
func (r volumeRow) Group() string        { return "N/A" }
func (r volumeRow) Availability() string { return "N/A" }
func (r volumeRow) Status() string       { return "N/A" }

// MarshalJSON gives `--format json` docker's field names.
func (r volumeRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"Name": r.Name(), "Driver": r.Driver(), "Scope": r.Scope(), "Mountpoint": r.Mountpoint(), "Labels": r.Labels(),
		"Links": r.Links(), "Size": r.Size(), "Group": r.Group(), "Availability": r.Availability(), "Status": r.Status(),
	})
}

// volume inspect

func (a *app) volumeInspectCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.inspectEach(format, args, func(name string) string { return "/volumes/" + url.PathEscape(name) }, nil)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	return c
}

// volume rm

func (a *app) volumeRmCmd() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Long:    "Remove one or more volumes. You cannot remove a volume that is in use by a container.",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			var q url.Values
			if force {
				q = url.Values{"force": {"1"}}
			}
			return a.eachArg(args, func(name string) error {
				if err := cl.call(http.MethodDelete, "/volumes/"+url.PathEscape(name), q, nil, nil); err != nil {
					return err
				}
				fmt.Fprintln(a.out, name)
				return nil
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return c
}

// volume prune

func (a *app) volumePruneCmd() *cobra.Command {
	var force, all bool
	var filters filterOpt
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			what := "anonymous local volumes"
			list := filters.vals
			if all {
				for _, f := range list {
					if k, _, _ := strings.Cut(f, "="); strings.EqualFold(k, "all") {
						return &statusError{code: exitFailure, msg: "conflicting options: cannot specify both --all and --filter all=1"}
					}
				}
				// Since API 1.42 a prune takes anonymous volumes only
				// unless the all filter says otherwise.
				list = append(list[:len(list):len(list)], "all=true")
				what = "all local volumes"
			}
			if !force && !a.confirm("WARNING! This will remove "+what+" not used by at least one container.") {
				return nil
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			var resp volume.PruneReport
			if err := cl.call(http.MethodPost, "/volumes/prune", filterQuery(list), nil, &resp); err != nil {
				return err
			}
			var reclaimed uint64
			if len(resp.VolumesDeleted) > 0 {
				fmt.Fprintln(a.out, "Deleted Volumes:")
				for _, n := range resp.VolumesDeleted {
					fmt.Fprintln(a.out, n)
				}
				fmt.Fprintln(a.out)
				reclaimed = resp.SpaceReclaimed
			}
			fmt.Fprintf(a.out, "Total reclaimed space: %s\n", units.HumanSize(float64(reclaimed)))
			return nil
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	c.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	c.Flags().Var(&filters, "filter", `Provide filter values (e.g. "label=<label>")`)
	return c
}
