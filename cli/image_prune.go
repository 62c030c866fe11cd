package cli

import (
	"fmt"
	"net/http"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"
)

func (a *app) imagePruneCmd() *cobra.Command {
	var all, force bool
	var filters filterOpt
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			warning := "WARNING! This will remove all dangling images."
			if all {
				warning = "WARNING! This will remove all images without at least one container associated to them."
			}
			if !force && !a.confirm(warning) {
				return nil
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			q := filterQuery(append(filters.vals, "dangling="+fmt.Sprint(!all)))
			var rep image.PruneReport
			if err := cl.call(http.MethodPost, "/images/prune", q, nil, &rep); err != nil {
				return err
			}
			if len(rep.ImagesDeleted) > 0 {
				fmt.Fprintln(a.out, "Deleted Images:")
				for _, d := range rep.ImagesDeleted {
					if d.Untagged != "" {
						fmt.Fprintf(a.out, "untagged: %s\n", d.Untagged)
					} else {
						fmt.Fprintf(a.out, "deleted: %s\n", d.Deleted)
					}
				}
				fmt.Fprintln(a.out)
			}
			fmt.Fprintf(a.out, "Total reclaimed space: %s\n", units.HumanSize(float64(rep.SpaceReclaimed)))
			return nil
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	c.Flags().Var(&filters, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	c.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return c
}
