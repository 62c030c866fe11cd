package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// pushOptions are the flags of push.
type pushOptions struct {
	allTags  bool
	quiet    bool
	authfile string
}

func (a *app) pushCmd() *cobra.Command {
	o := &pushOptions{}
	c := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Long: "Upload an image to a registry: the registry is the name's first component (docker.io\n" +
			"without one), as docker push.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.push(o, args[0])
		},
	}
	f := c.Flags()
	f.BoolVarP(&o.allTags, "all-tags", "a", false, "Push all tags of an image to the repository")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress verbose output")
	f.StringVar(&o.authfile, "authfile", "", "Path of the authentication file (default $REGISTRY_AUTH_FILE, else the user's)")
	return c
}

func (a *app) push(o *pushOptions, name string) error {
	if strings.Contains(name, "@") {
		return &statusError{code: exitFailure, msg: "moss: cannot push a digest reference"}
	}
	repo, tag := splitRepoTag(name)
	q := url.Values{}
	switch {
	case o.allTags && tag != "":
		return &statusError{code: exitDaemon, msg: "moss: tag can't be used with --all-tags/-a"}
	case !o.allTags && tag == "":
		tag = "latest"
		if !o.quiet {
			fmt.Fprintln(a.out, "Using default tag: latest")
		}
	}
	if tag != "" {
		q.Set("tag", tag)
	}
	af, err := authFile(o.authfile)
	if err != nil {
		return err
	}
	if af != "" {
		q.Set("authfile", af)
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	resp, err := cl.do(context.Background(), http.MethodPost, "/images/"+repo+"/push", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := a.newProgress(o.quiet).stream(resp.Body); err != nil {
		return err
	}
	if o.quiet {
		full := repo
		if tag != "" {
			full += ":" + tag
		}
		fmt.Fprintln(a.out, full)
	}
	return nil
}
