package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (a *app) addImageCommands(root *cobra.Command) {
	group := &cobra.Command{Use: "image", Short: "Manage images"}
	ls := a.imagesCmd()
	ls.Use, ls.Aliases = "ls [OPTIONS] [REPOSITORY[:TAG]]", []string{"list"}
	rm := a.rmiCmd()
	rm.Use, rm.Aliases = "rm [OPTIONS] IMAGE [IMAGE...]", []string{"remove"}
	group.AddCommand(ls, rm, a.tagCmd(), a.importCmd(), a.loadCmd(), a.saveCmd(), a.inspectCmd("image"))
	root.AddCommand(group, a.imagesCmd(), a.rmiCmd(), a.tagCmd(), a.importCmd(), a.loadCmd(), a.saveCmd())
}

type imageRow struct {
	s                image.Summary
	repo, tag        string
	noTrunc, digests bool
}

func (r imageRow) Repository() string { return r.repo }
func (r imageRow) Tag() string        { return r.tag }
func (r imageRow) ID() string {
	if r.noTrunc {
		return r.s.ID
	}
	return shortID(r.s.ID)
}
func (r imageRow) Digest() string {
	if len(r.s.RepoDigests) > 0 {
		_, d, _ := strings.Cut(r.s.RepoDigests[0], "@")
		return d
	}
	return "<none>"
}
func (r imageRow) CreatedSince() string {
	return humanDuration(time.Since(time.Unix(r.s.Created, 0))) + " ago"
}
func (r imageRow) CreatedAt() string {
	return time.Unix(r.s.Created, 0).Format("2006-01-02 15:04:05 -0700 MST")
}
func (r imageRow) Size() string { return humanSize(float64(r.s.Size)) }

// MarshalJSON gives `--format json` docker's field names.
func (r imageRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"Repository": r.Repository(), "Tag": r.Tag(), "ID": r.ID(), "Digest": r.Digest(),
		"CreatedSince": r.CreatedSince(), "CreatedAt": r.CreatedAt(), "Size": r.Size(),
	})
}

func (a *app) imagesCmd() *cobra.Command {
	var all, quiet, noTrunc, digests bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				filters = append(filters, "reference="+args[0])
			}
			var list []image.Summary
			if err := a.call(http.MethodGet, "/images/json", filterQuery(filters), nil, &list); err != nil {
				return err
			}
			var rows []interface{}
			seen := map[string]bool{}
			for _, s := range list {
				if quiet {
					if !seen[s.ID] {
						seen[s.ID] = true
						rows = append(rows, imageRow{s: s, noTrunc: noTrunc})
					}
					continue
				}
				if len(s.RepoTags) == 0 {
					rows = append(rows, imageRow{s: s, repo: "<none>", tag: "<none>", noTrunc: noTrunc})
				}
				for _, rt := range s.RepoTags {
					i := strings.LastIndex(rt, ":")
					rows = append(rows, imageRow{s: s, repo: rt[:i], tag: rt[i+1:], noTrunc: noTrunc})
				}
			}
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(a.out, r.(imageRow).ID())
				}
				return nil
			}
			if format == "" {
				format = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
				if digests {
					format = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
				}
			}
			return render(a.out, format, rows, map[string]string{
				"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
				"CreatedAt": "CREATED AT", "Size": "SIZE", "Digest": "DIGEST",
			})
		},
	}
	f := c.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all images")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVar(&digests, "digests", false, "Show digests")
	f.StringVar(&format, "format", "", "Format output using a custom template")
	f.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided")
	return c
}

func (a *app) rmiCmd() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachArg(args, func(name string) error {
				var resp []image.DeleteResponse
				if err := a.call(http.MethodDelete, "/images/"+name, url.Values{"force": {b(force)}}, nil, &resp); err != nil {
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
	return c
}

func (a *app) tagCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, tag := splitRepoTag(args[1])
			return a.call(http.MethodPost, "/images/"+args[0]+"/tag", url.Values{"repo": {repo}, "tag": {tag}}, nil, nil)
		},
	}
}

// splitRepoTag splits "host:5000/name:tag" at the tag's colon.
func splitRepoTag(ref string) (string, string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}

func (a *app) importCmd() *cobra.Command {
	var changes []string
	var message string
	c := &cobra.Command{
		Use:   "import [OPTIONS] file|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = a.in
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return &statusError{code: 1, msg: "moss: " + err.Error()}
				}
				defer f.Close()
				in = f
			}
			q := url.Values{"fromSrc": {"-"}, "message": {message}}
			if len(args) == 2 {
				repo, tag := splitRepoTag(args[1])
				q.Set("repo", repo)
				q.Set("tag", tag)
			}
			for _, ch := range changes {
				q.Add("changes", ch)
			}
			resp, err := a.do(context.Background(), http.MethodPost, "/images/create", q, in, "application/x-tar")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			return jsonMessages(resp.Body, a.out)
		},
	}
	c.Flags().StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	c.Flags().StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	return c
}

func (a *app) loadCmd() *cobra.Command {
	var input string
	var quiet bool
	c := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = a.in
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return &statusError{code: 1, msg: "moss: " + err.Error()}
				}
				defer f.Close()
				in = f
			} else if f, ok := a.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				return &statusError{code: 1, msg: "moss: requested load from stdin, but stdin is empty"}
			}
			resp, err := a.do(context.Background(), http.MethodPost, "/images/load", url.Values{"quiet": {"1"}}, in, "application/x-tar")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			return jsonMessages(resp.Body, a.out)
		},
	}
	c.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return c
}

func (a *app) saveCmd() *cobra.Command {
	var output, format string
	c := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out io.Writer = a.out
			if output == "" {
				if f, ok := a.out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					return &statusError{code: 1, msg: "moss: cowardly refusing to save to a terminal. Use the -o flag or redirect"}
				}
			}
			q := url.Values{"names": args}
			if format != "" {
				q.Set("format", format)
			}
			resp, err := a.do(context.Background(), http.MethodGet, "/images/get", q, nil, "")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if output != "" {
				tmp := output + ".tmp"
				f, err := os.Create(tmp)
				if err != nil {
					return &statusError{code: 1, msg: "moss: " + err.Error()}
				}
				if _, err := io.Copy(f, resp.Body); err != nil {
					f.Close()
					os.Remove(tmp)
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				return os.Rename(tmp, output)
			}
			_, err = io.Copy(out, resp.Body)
			return err
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	c.Flags().StringVar(&format, "format", "", "Archive format: docker-archive (default) or oci-archive")
	return c
}
