package cli

import (
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"text/tabwriter"

	"github.com/moby/moby/api/types/system"
	"github.com/spf13/cobra"
)

// Version is the client's version, set at build time.
var Version = "dev"

// clientVersion is what `version` reports about this binary; the field
// names are docker's, for --format.
type clientVersion struct {
	Version    string
	APIVersion string `json:"ApiVersion"`
	GoVersion  string
	Os         string
	Arch       string
	Context    string
}

// versionInfo is the object --format templates see: {{.Client.Version}},
// {{.Server.Version}} (Server is nil with --client).
type versionInfo struct {
	Client clientVersion
	Server *system.VersionResponse
}

func (a *app) versionCmd() *cobra.Command {
	var format string
	var clientOnly bool
	c := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the Moss version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.version(format, clientOnly)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	c.Flags().BoolVar(&clientOnly, "client", false, "Show only the client's version, without contacting the agent")
	return c
}

func (a *app) version(format string, clientOnly bool) error {
	v := versionInfo{Client: clientVersion{
		Version: Version, APIVersion: apiVersion, GoVersion: runtime.Version(),
		Os: runtime.GOOS, Arch: runtime.GOARCH, Context: "moss",
	}}
	var serr error
	if !clientOnly {
		cl, err := a.client()
		if err != nil {
			return err
		}
		var server system.VersionResponse
		if serr = cl.call(http.MethodGet, "/version", nil, nil, &server); serr == nil {
			v.Server = &server
		}
	}
	if format != "" {
		if err := renderEach(a.out, format, []interface{}{v}); err != nil {
			return err
		}
		return serr
	}
	tw := tabwriter.NewWriter(a.out, 20, 1, 1, ' ', 0)
	c := v.Client
	fmt.Fprintf(tw, "Client:\n Version:\t%s\n API version:\t%s\n Go version:\t%s\n OS/Arch:\t%s/%s\n Context:\t%s\n",
		c.Version, c.APIVersion, c.GoVersion, c.Os, c.Arch, c.Context)
	if s := v.Server; s != nil {
		fmt.Fprint(tw, "\nServer:")
		if s.Platform.Name != "" {
			fmt.Fprintf(tw, " %s", s.Platform.Name)
		}
		fmt.Fprintln(tw)
		engine := false
		for _, comp := range s.Components {
			fmt.Fprintf(tw, " %s:\n  Version:\t%s\n", comp.Name, comp.Version)
			if comp.Name == "Engine" {
				engine = true
				writeEngine(tw, s)
				continue
			}
			keys := make([]string, 0, len(comp.Details))
			for k := range comp.Details {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(tw, "  %s:\t%v\n", k, comp.Details[k])
			}
		}
		if !engine {
			fmt.Fprintf(tw, " Engine:\n  Version:\t%s\n", s.Version)
			writeEngine(tw, s)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return serr
}

func writeEngine(tw *tabwriter.Writer, s *system.VersionResponse) {
	fmt.Fprintf(tw, "  API version:\t%s (minimum version %s)\n  Go version:\t%s\n  OS/Arch:\t%s/%s\n",
		s.APIVersion, s.MinAPIVersion, s.GoVersion, s.Os, s.Arch)
	if s.KernelVersion != "" {
		fmt.Fprintf(tw, "  Kernel:\t%s\n", s.KernelVersion)
	}
}
