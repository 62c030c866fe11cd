package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/system"
	"github.com/spf13/cobra"
)

func (a *app) addSystemCommands(root *cobra.Command) {
	root.AddCommand(a.infoCmd(), a.versionCmd(), a.eventsCmd())
}

func (a *app) infoCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.info(format)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	return c
}

func (a *app) info(format string) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := cl.call(http.MethodGet, "/info", nil, nil, &raw); err != nil {
		return err
	}
	var info system.Info
	if err := json.Unmarshal(raw, &info); err != nil {
		return fmt.Errorf("decode the agent's info: %w", err)
	}
	// An agent without the Moss endpoint still gets docker's sections.
	var mossRaw json.RawMessage
	var moss map[string]interface{}
	if err := cl.call(http.MethodGet, "/moss/v1/info", nil, nil, &mossRaw); err == nil {
		v, err := decodeGeneric(mossRaw)
		if err != nil {
			return err
		}
		moss, _ = v.(map[string]interface{})
	} else if !isNotFound(err) {
		return err
	}
	if format != "" {
		v, err := decodeGeneric(raw)
		if err != nil {
			return err
		}
		m, ok := v.(map[string]interface{})
		if !ok {
			return fmt.Errorf("the agent's info is not a JSON object")
		}
		m["ClientInfo"] = clientInfo()
		if moss != nil {
			m["Moss"] = moss
		}
		return renderEach(a.out, format, []interface{}{m})
	}
	writeInfo(a.out, &info, moss)
	for _, warn := range info.Warnings {
		fmt.Fprintf(a.errw, "WARNING: %s\n", warn)
	}
	return nil
}

func clientInfo() map[string]interface{} {
	return map[string]interface{}{"Version": Version, "Context": "moss", "Debug": false}
}

// writeInfo prints info like docker info, then the Moss section.
func writeInfo(w io.Writer, info *system.Info, moss map[string]interface{}) {
	fmt.Fprintf(w, "Client:\n Version:    %s\n Context:    moss\n Debug Mode: false\n\n", Version)
	fmt.Fprintf(w, "Server:\n Containers: %d\n  Running: %d\n  Paused: %d\n  Stopped: %d\n Images: %d\n",
		info.Containers, info.ContainersRunning, info.ContainersPaused, info.ContainersStopped, info.Images)
	fmt.Fprintf(w, " Server Version: %s\n Storage Driver: %s\n", info.ServerVersion, info.Driver)
	for _, kv := range info.DriverStatus {
		fmt.Fprintf(w, "  %s: %s\n", kv[0], kv[1])
	}
	if info.LoggingDriver != "" {
		fmt.Fprintf(w, " Logging Driver: %s\n", info.LoggingDriver)
	}
	if info.CgroupDriver != "" {
		fmt.Fprintf(w, " Cgroup Driver: %s\n", info.CgroupDriver)
	}
	if info.CgroupVersion != "" {
		fmt.Fprintf(w, " Cgroup Version: %s\n", info.CgroupVersion)
	}
	// As docker: the plugins of each kind on one line.
	fmt.Fprintln(w, " Plugins:")
	for _, p := range []struct {
		kind  string
		names []string
	}{{"Volume", info.Plugins.Volume}, {"Network", info.Plugins.Network}, {"Log", info.Plugins.Log}} {
		fmt.Fprintf(w, "  %s: %s\n", p.kind, strings.Join(p.names, " "))
	}
	if len(info.SecurityOptions) > 0 {
		fmt.Fprintln(w, " Security Options:")
		for _, o := range info.SecurityOptions {
			// "name=seccomp,profile=builtin" prints as docker does:
			// the name, then the other keys indented.
			parts := strings.Split(o, ",")
			for i, p := range parts {
				k, v, _ := strings.Cut(p, "=")
				if i == 0 && k == "name" {
					fmt.Fprintf(w, "  %s\n", v)
					continue
				}
				if k == "name" {
					continue
				}
				fmt.Fprintf(w, "   %s: %s\n", titleCase(k), v)
			}
		}
	}
	fmt.Fprintf(w, " Kernel Version: %s\n Operating System: %s\n OSType: %s\n Architecture: %s\n CPUs: %d\n Total Memory: %s\n Name: %s\n ID: %s\n Docker Root Dir: %s\n",
		info.KernelVersion, info.OperatingSystem, info.OSType, info.Architecture, info.NCPU,
		units.BytesSize(float64(info.MemTotal)), info.Name, info.ID, info.DockerRootDir)
	if moss != nil {
		fmt.Fprintln(w, "\nMoss:")
		printTree(w, moss, " ")
	}
}

// printTree prints a JSON object as "key: value" lines, nested objects
// indented under their key.
func printTree(w io.Writer, m map[string]interface{}, indent string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := m[k].(type) {
		case map[string]interface{}:
			fmt.Fprintf(w, "%s%s:\n", indent, k)
			printTree(w, v, indent+" ")
		case []interface{}:
			if len(v) == 0 {
				fmt.Fprintf(w, "%s%s:\n", indent, k)
				continue
			}
			if _, isObj := v[0].(map[string]interface{}); isObj {
				fmt.Fprintf(w, "%s%s:\n", indent, k)
				for _, e := range v {
					if em, ok := e.(map[string]interface{}); ok {
						printTree(w, em, indent+"  ")
					} else {
						fmt.Fprintf(w, "%s  %v\n", indent, scalar(e))
					}
				}
				continue
			}
			parts := make([]string, 0, len(v))
			for _, e := range v {
				parts = append(parts, scalar(e))
			}
			fmt.Fprintf(w, "%s%s: %s\n", indent, k, strings.Join(parts, ", "))
		default:
			fmt.Fprintf(w, "%s%s: %s\n", indent, k, scalar(v))
		}
	}
}

// scalar prints a JSON value on one line; nested lists print as
// space-separated fields (an ID map line: "0 1000 1").
func scalar(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []interface{}:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			parts = append(parts, scalar(e))
		}
		return strings.Join(parts, " ")
	case map[string]interface{}:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}
