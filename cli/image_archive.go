package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// isTerminal tells whether v is a terminal (save and load refuse one).
func isTerminal(v interface{}) bool {
	_, ok := terminalFd(v)
	return ok
}

// importOptions are the flags of import.
type importOptions struct {
	changes []string
	message string
}

func (a *app) importCmd() *cobra.Command {
	o := &importOptions{}
	c := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.importImage(o, args)
		},
	}
	c.Flags().StringArrayVarP(&o.changes, "change", "c", nil, "Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME)")
	c.Flags().StringVarP(&o.message, "message", "m", "", "Set commit message for imported image")
	return c
}

func (a *app) importImage(o *importOptions, args []string) error {
	q := url.Values{}
	var body io.Reader
	switch src := args[0]; {
	case src == "-":
		q.Set("fromSrc", "-")
		body = a.in
	case strings.HasPrefix(src, "http://"), strings.HasPrefix(src, "https://"):
		q.Set("fromSrc", src)
	default:
		f, err := os.Open(src)
		if err != nil {
			return &statusError{code: exitFailure, msg: "moss: " + err.Error()}
		}
		defer f.Close()
		q.Set("fromSrc", "-")
		body = f
	}
	if len(args) == 2 {
		repo, tag := splitRepoTag(args[1])
		q.Set("repo", repo)
		if tag != "" {
			q.Set("tag", tag)
		}
	}
	for _, ch := range o.changes {
		q.Add("changes", ch)
	}
	if o.message != "" {
		q.Set("message", o.message)
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	resp, err := cl.do(context.Background(), http.MethodPost, "/images/create", q, body, "application/x-tar")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return jsonMessages(resp.Body, a.out)
}

func (a *app) loadCmd() *cobra.Command {
	var input string
	var quiet bool
	c := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := a.in
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return &statusError{code: exitFailure, msg: "moss: " + err.Error()}
				}
				defer f.Close()
				in = f
			} else if isTerminal(in) {
				return &statusError{code: exitFailure, msg: "moss: requested load from stdin, but stdin is empty"}
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			resp, err := cl.do(context.Background(), http.MethodPost, "/images/load", url.Values{"quiet": {"1"}}, in, "application/x-tar")
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
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && isTerminal(a.out) {
				return &statusError{code: exitFailure, msg: "moss: cowardly refusing to save to a terminal. Use the -o flag or redirect"}
			}
			q := url.Values{"names": args}
			switch format {
			case "", "docker-archive", "oci-archive":
			default:
				return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: invalid --format %q: use docker-archive or oci-archive", format)}
			}
			if format != "" {
				q.Set("format", format)
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			return a.download(cl, "/images/get", q, output)
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	c.Flags().StringVar(&format, "format", "", "Archive format: docker-archive (default) or oci-archive (a Moss extension)")
	return c
}

// download writes the body of a GET to the file output (copyToFile) or,
// without one, to stdout.
func (a *app) download(cl *client, path string, q url.Values, output string) error {
	resp, err := cl.do(context.Background(), http.MethodGet, path, q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if output == "" {
		_, err = io.Copy(a.out, resp.Body)
		return err
	}
	return copyToFile(output, resp.Body)
}

// copyToFile writes r to a temporary file next to path and renames it into
// place, so a failed save leaves no truncated archive.
func copyToFile(path string, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".moss-save-")
	if err != nil {
		return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: failed to save image: %v", err)}
	}
	tmp := f.Name()
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: failed to save image: %v", err)}
	}
	return nil
}
