package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

// topCmd is docker top: the container's processes as the host's ps shows
// them, with ps's options after the container.
func (a *app) topCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if len(args) > 1 {
				q.Set("ps_args", strings.Join(args[1:], " "))
			}
			var top container.TopResponse
			if err := cl.call(http.MethodGet, "/containers/"+url.PathEscape(args[0])+"/top", q, nil, &top); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.out, 20, 1, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(top.Titles, "\t"))
			for _, p := range top.Processes {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		},
	}
	c.Flags().SetInterspersed(false)
	return c
}
