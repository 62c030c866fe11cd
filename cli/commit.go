package cli

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
)

// addCommitCommands registers commit at the top level and under `moss
// container` (made by addContainerCommands), as docker does.
func (a *app) addCommitCommands(root *cobra.Command) {
	root.AddCommand(a.commitCmd())
	for _, c := range root.Commands() {
		if c.Name() == "container" {
			c.AddCommand(a.commitCmd())
		}
	}
}

// commitOptions are the flags of commit.
type commitOptions struct {
	author, message string
	changes         []string
	pause           bool
}

// commitResponse is the agent's answer to /commit: docker's ID and the
// warnings Moss adds (a container it could not pause).
type commitResponse struct {
	ID       string   `json:"Id"`
	Warnings []string `json:"Warnings"`
}

func (a *app) commitCmd() *cobra.Command {
	o := &commitOptions{}
	c := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.commit(o, args)
		},
	}
	f := c.Flags()
	f.StringVarP(&o.author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	f.StringArrayVarP(&o.changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	f.StringVarP(&o.message, "message", "m", "", "Commit message")
	f.BoolVarP(&o.pause, "pause", "p", true, "Pause container during commit")
	return c
}

func (a *app) commit(o *commitOptions, args []string) error {
	q := url.Values{"container": {args[0]}, "pause": {b(o.pause)}}
	if len(args) == 2 {
		repo, tag := splitRepoTag(args[1])
		q.Set("repo", repo)
		if tag != "" {
			q.Set("tag", tag)
		}
	}
	if o.author != "" {
		q.Set("author", o.author)
	}
	if o.message != "" {
		q.Set("comment", o.message)
	}
	for _, ch := range o.changes {
		q.Add("changes", ch)
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	var resp commitResponse
	if err := cl.call(http.MethodPost, "/commit", q, nil, &resp); err != nil {
		return err
	}
	for _, w := range resp.Warnings {
		fmt.Fprintf(a.errw, "WARNING: %s\n", w)
	}
	fmt.Fprintln(a.out, resp.ID)
	return nil
}
