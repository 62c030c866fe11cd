package cli

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

// exportCmd is docker export: the container's file system as a tar archive.
func (a *app) exportCmd() *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && isTerminal(a.out) {
				return &statusError{code: exitFailure, msg: "moss: cowardly refusing to save to a terminal. Use the -o flag or redirect"}
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			return a.download(cl, "/containers/"+url.PathEscape(args[0])+"/export", nil, output)
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return c
}

// diffCmd is docker diff: A added, C changed, D deleted paths.
func (a *app) diffCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			var changes []container.FilesystemChange
			if err := cl.call(http.MethodGet, "/containers/"+url.PathEscape(args[0])+"/changes", nil, nil, &changes); err != nil {
				return err
			}
			for _, ch := range changes {
				kind := map[container.ChangeType]string{0: "C", 1: "A", 2: "D"}[ch.Kind]
				fmt.Fprintf(a.out, "%s %s\n", kind, ch.Path)
			}
			return nil
		},
	}
}
