package cli

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"

	"github.com/spf13/cobra"
)

// addPluginCommands registers `moss plugin`: the agent's network and
// volume plugins, built-in or external processes it supervises.
func (a *app) addPluginCommands(root *cobra.Command) {
	grp := group("plugin", "Manage plugins")
	grp.AddCommand(a.pluginLsCmd())
	root.AddCommand(grp)
}

// pluginInfo is one entry of GET /moss/v1/plugins.
type pluginInfo struct {
	Name    string `json:"Name"`
	Kind    string `json:"Kind"` // network or volume
	Version string `json:"Version"`
	Path    string `json:"Path"`
	Builtin bool   `json:"Builtin"`
	Status  string `json:"Status"` // running, restarting, failed or stopped
	Pid     int    `json:"Pid"`
	Error   string `json:"Error"`
}

const pluginTable = "table {{.Name}}\t{{.Kind}}\t{{.Version}}\t{{.Status}}\t{{.Path}}"

var pluginHeaders = map[string]string{
	"Name": "NAME", "Kind": "KIND", "Version": "VERSION", "Status": "STATUS", "Path": "PATH",
	"Builtin": "BUILTIN", "Pid": "PID", "Error": "ERROR",
}

func (a *app) pluginLsCmd() *cobra.Command {
	var quiet bool
	var format string
	c := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List plugins",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			var list []pluginInfo
			if err := cl.call(http.MethodGet, "/moss/v1/plugins", nil, nil, &list); err != nil {
				return err
			}
			sort.SliceStable(list, func(i, j int) bool {
				if list[i].Kind != list[j].Kind {
					return list[i].Kind < list[j].Kind
				}
				return naturalLess(list[i].Name, list[j].Name)
			})
			f := format
			if quiet && (f == "" || f == "table") {
				f = "{{.Name}}"
			}
			rows := make([]interface{}, 0, len(list))
			for _, p := range list {
				rows = append(rows, pluginRow{p})
			}
			return render(a.out, listFormat(f, pluginTable), rows, pluginHeaders)
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display plugin names")
	c.Flags().StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	return c
}

// pluginRow is one plugin as the ls templates see it.
type pluginRow struct{ p pluginInfo }

func (r pluginRow) Name() string    { return r.p.Name }
func (r pluginRow) Kind() string    { return r.p.Kind }
func (r pluginRow) Version() string { return r.p.Version }
func (r pluginRow) Status() string  { return r.p.Status }
func (r pluginRow) Error() string   { return r.p.Error }
func (r pluginRow) Builtin() bool   { return r.p.Builtin }

// Path is the plugin's executable, or "built-in" for one inside moss.
func (r pluginRow) Path() string {
	if r.p.Builtin {
		return "built-in"
	}
	return r.p.Path
}

// Pid is the plugin process's PID, empty when none runs.
func (r pluginRow) Pid() string {
	if r.p.Pid <= 0 {
		return ""
	}
	return strconv.Itoa(r.p.Pid)
}

// MarshalJSON gives `--format json` the agent's fields as they are.
func (r pluginRow) MarshalJSON() ([]byte, error) { return json.Marshal(r.p) }
