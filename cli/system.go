package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/system"
	"github.com/spf13/cobra"
)

// Version is the client's version, set at build time.
var Version = "dev"

func (a *app) addSystemCommands(root *cobra.Command) {
	root.AddCommand(a.infoCmd(), a.versionCmd())
}

func (a *app) infoCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var info system.Info
			if err := a.call(http.MethodGet, "/info", nil, nil, &info); err != nil {
				return err
			}
			var moss map[string]interface{}
			if err := a.callRaw(http.MethodGet, "/moss/v1/info", &moss); err != nil {
				return err
			}
			if format != "" {
				var generic map[string]interface{}
				b, _ := json.Marshal(info)
				_ = json.Unmarshal(b, &generic)
				generic["Moss"] = moss
				return renderEach(a.out, format, []interface{}{generic})
			}
			w := a.out
			fmt.Fprintf(w, "Client:\n Version:    %s\n Context:    moss\n\n", Version)
			fmt.Fprintf(w, "Server:\n Containers: %d\n  Running: %d\n  Paused: %d\n  Stopped: %d\n Images: %d\n",
				info.Containers, info.ContainersRunning, info.ContainersPaused, info.ContainersStopped, info.Images)
			fmt.Fprintf(w, " Server Version: %s\n Storage Driver: %s\n", info.ServerVersion, info.Driver)
			for _, kv := range info.DriverStatus {
				fmt.Fprintf(w, "  %s: %s\n", kv[0], kv[1])
			}
			fmt.Fprintf(w, " Logging Driver: %s\n Cgroup Version: %s\n", info.LoggingDriver, info.CgroupVersion)
			fmt.Fprintln(w, " Security Options:")
			for _, o := range info.SecurityOptions {
				fmt.Fprintf(w, "  %s\n", o)
			}
			fmt.Fprintf(w, " Kernel Version: %s\n Operating System: %s\n OSType: %s\n Architecture: %s\n CPUs: %d\n Total Memory: %s\n Name: %s\n Docker Root Dir: %s\n",
				info.KernelVersion, info.OperatingSystem, info.OSType, info.Architecture, info.NCPU,
				humanSize(float64(info.MemTotal)), info.Name, info.DockerRootDir)
			fmt.Fprintln(w, "\nMoss:")
			printTree(w, moss, "  ")
			for _, warn := range info.Warnings {
				fmt.Fprintf(a.errw, "WARNING: %s\n", warn)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return c
}

// callRaw decodes a JSON answer into a generic value.
func (a *app) callRaw(method, path string, out interface{}) error {
	return a.call(method, path, nil, nil, out)
}

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
			printTree(w, v, indent+"  ")
		case []interface{}:
			var parts []string
			for _, x := range v {
				parts = append(parts, fmt.Sprint(x))
			}
			fmt.Fprintf(w, "%s%s: %s\n", indent, k, strings.Join(parts, ", "))
		case nil:
			fmt.Fprintf(w, "%s%s:\n", indent, k)
		default:
			fmt.Fprintf(w, "%s%s: %v\n", indent, k, v)
		}
	}
}

func (a *app) versionCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the Moss version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			client := map[string]interface{}{
				"Version": Version, "ApiVersion": strings.TrimPrefix(apiPrefix, "/v"), "GoVersion": runtime.Version(),
				"Os": runtime.GOOS, "Arch": runtime.GOARCH,
			}
			var server system.VersionResponse
			serr := a.call(http.MethodGet, "/version", nil, nil, &server)
			if format != "" {
				return renderEach(a.out, format, []interface{}{map[string]interface{}{"Client": client, "Server": server}})
			}
			w := a.out
			fmt.Fprintf(w, "Client:\n Version:      %s\n API version:  %s\n Go version:   %s\n OS/Arch:      %s/%s\n",
				Version, client["ApiVersion"], runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if serr != nil {
				return serr
			}
			fmt.Fprintf(w, "\nServer: %s\n Engine:\n  Version:      %s\n  API version:  %s (minimum version %s)\n  Go version:   %s\n  OS/Arch:      %s/%s\n  Kernel:       %s\n",
				server.Platform.Name, server.Version, server.APIVersion, server.MinAPIVersion, server.GoVersion, server.Os, server.Arch, server.KernelVersion)
			for _, c := range server.Components[1:] {
				fmt.Fprintf(w, " %s:\n  Version:      %s\n", c.Name, c.Version)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return c
}
