package cli

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"
)

func (a *app) rmiCmd() *cobra.Command {
	var force, noPrune bool
	c := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			q := url.Values{"force": {b(force)}, "noprune": {b(noPrune)}}
			return a.eachArg(args, func(name string) error {
				var resp []image.DeleteResponse
				if err := cl.call(http.MethodDelete, "/images/"+url.PathEscape(name), q, nil, &resp); err != nil {
					return err
				}
				for _, r := range resp {
					if r.Untagged != "" {
						fmt.Fprintf(a.out, "Untagged: %s\n", r.Untagged)
					}
					if r.Deleted != "" {
						fmt.Fprintf(a.out, "Deleted: %s\n", r.Deleted)
					}
				}
				return nil
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	c.Flags().BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents")
	return c
}

func (a *app) tagCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			repo, tag := splitRepoTag(args[1])
			q := url.Values{"repo": {repo}}
			if tag != "" {
				q.Set("tag", tag)
			}
			return cl.call(http.MethodPost, "/images/"+url.PathEscape(args[0])+"/tag", q, nil, nil)
		},
	}
}
