package cli

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"
)

// addImageCommands registers the image verbs at the top level (images,
// rmi, tag, import, load, save, history) and under `moss image` (also
// prune).
func (a *app) addImageCommands(root *cobra.Command) {
	grp := group("image", "Manage images")
	ls := a.imagesCmd()
	ls.Use, ls.Aliases = "ls [OPTIONS] [REPOSITORY[:TAG]]", []string{"list"}
	rm := a.rmiCmd()
	rm.Use, rm.Aliases = "rm [OPTIONS] IMAGE [IMAGE...]", []string{"remove", "rmi"}
	grp.AddCommand(ls, rm, a.tagCmd(), a.importCmd(), a.loadCmd(), a.saveCmd(), a.inspectCmd("image"), a.historyCmd(), a.imagePruneCmd())
	root.AddCommand(grp, a.imagesCmd(), a.rmiCmd(), a.tagCmd(), a.importCmd(), a.loadCmd(), a.saveCmd(), a.historyCmd())
}

// imagesOptions are the flags of images.
type imagesOptions struct {
	all, quiet, noTrunc, digests bool
	format                       string
	filters                      []string
}

const (
	imagesTable        = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	imagesDigestsTable = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
)

var imageHeaders = map[string]string{
	"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
	"CreatedAt": "CREATED AT", "Size": "SIZE", "Digest": "DIGEST", "Containers": "CONTAINERS",
	"VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
}

func (a *app) imagesCmd() *cobra.Command {
	o := &imagesOptions{}
	c := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.images(o, args)
		},
	}
	f := c.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all images (default hides intermediate images)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only show image IDs")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVar(&o.digests, "digests", false, "Show digests")
	f.StringVar(&o.format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	f.StringArrayVarP(&o.filters, "filter", "f", nil, "Filter output based on conditions provided")
	return c
}

func (a *app) images(o *imagesOptions, args []string) error {
	filters := o.filters
	if len(args) == 1 {
		filters = append(filters, "reference="+args[0])
	}
	q, err := filterFlags(filters)
	if err != nil {
		return err
	}
	if o.all {
		q.Set("all", "1")
	}
	if o.digests {
		q.Set("digests", "1")
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	var list []image.Summary
	if err := cl.call(http.MethodGet, "/images/json", q, nil, &list); err != nil {
		return err
	}
	format := o.format
	if o.quiet && format == "" {
		format = "{{.ID}}"
	}
	def := imagesTable
	if o.digests {
		def = imagesDigestsTable
	}
	format = listFormat(format, def)
	var rows []interface{}
	for _, s := range list {
		for _, r := range imageRows(s, o.digests, !o.noTrunc) {
			rows = append(rows, r)
		}
	}
	return render(a.out, format, rows, imageHeaders)
}

// imageRows expands one image into docker's rows: one per repository and
// tag (and digest with --digests), or one <none> row.
func imageRows(s image.Summary, digests, trunc bool) []imageRow {
	tags := map[string][]string{}
	dgsts := map[string][]string{}
	for _, rt := range s.RepoTags {
		repo, tag := splitRepoTag(rt)
		if tag == "" {
			continue
		}
		repo = familiarName(repo)
		tags[repo] = append(tags[repo], tag)
	}
	for _, rd := range s.RepoDigests {
		repo, d, ok := strings.Cut(rd, "@")
		if !ok {
			continue
		}
		repo = familiarName(repo)
		dgsts[repo] = append(dgsts[repo], d)
	}
	var rows []imageRow
	row := func(repo, tag, digest string) imageRow {
		return imageRow{s: s, repo: repo, tag: tag, digest: digest, trunc: trunc}
	}
	for repo, ts := range tags {
		ds := dgsts[repo]
		delete(dgsts, repo)
		if !digests {
			ds = nil
		}
		for _, tag := range ts {
			if len(ds) == 0 {
				rows = append(rows, row(repo, tag, "<none>"))
				continue
			}
			for _, d := range ds {
				rows = append(rows, row(repo, tag, d))
			}
		}
	}
	for repo, ds := range dgsts {
		if !digests {
			rows = append(rows, row(repo, "<none>", "<none>"))
			continue
		}
		for _, d := range ds {
			rows = append(rows, row(repo, "<none>", d))
		}
	}
	if len(rows) == 0 {
		rows = append(rows, row("<none>", "<none>", "<none>"))
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].repo != rows[j].repo {
			return rows[i].repo < rows[j].repo
		}
		if rows[i].tag != rows[j].tag {
			return rows[i].tag < rows[j].tag
		}
		return rows[i].digest < rows[j].digest
	})
	return rows
}

// familiarName drops the default registry and library namespace, as docker
// shows references.
func familiarName(repo string) string {
	for _, p := range []string{"docker.io/library/", "docker.io/"} {
		if rest, ok := strings.CutPrefix(repo, p); ok {
			return rest
		}
	}
	return repo
}

// splitRepoTag splits "host:5000/name:tag" at the tag's colon; the tag is
// empty when there is none.
func splitRepoTag(ref string) (string, string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}

// imageRow is one row of images as docker's templates see it.
type imageRow struct {
	s                 image.Summary
	repo, tag, digest string
	trunc             bool
}

func (r imageRow) Repository() string { return r.repo }
func (r imageRow) Tag() string        { return r.tag }
func (r imageRow) Digest() string     { return r.digest }

func (r imageRow) ID() string {
	if r.trunc {
		return shortID(r.s.ID)
	}
	return r.s.ID
}

func (r imageRow) CreatedSince() string {
	if r.s.Created == 0 {
		return "N/A"
	}
	return sinceUnix(r.s.Created)
}

func (r imageRow) CreatedAt() string { return time.Unix(r.s.Created, 0).String() }
func (r imageRow) Size() string      { return humanSize(r.s.Size) }
func (r imageRow) VirtualSize() string {
	return humanSize(r.s.Size)
}

func (r imageRow) SharedSize() string {
	if r.s.SharedSize == -1 {
		return "N/A"
	}
	return humanSize(r.s.SharedSize)
}

func (r imageRow) UniqueSize() string {
	if r.s.SharedSize == -1 {
		return "N/A"
	}
	return humanSize(r.s.Size - r.s.SharedSize)
}

func (r imageRow) Containers() string {
	if r.s.Containers == -1 {
		return "N/A"
	}
	return strconv.FormatInt(r.s.Containers, 10)
}

// MarshalJSON gives `--format json` docker's field names.
func (r imageRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"Repository": r.Repository(), "Tag": r.Tag(), "ID": r.ID(), "Digest": r.Digest(),
		"CreatedSince": r.CreatedSince(), "CreatedAt": r.CreatedAt(), "Size": r.Size(),
		"VirtualSize": r.VirtualSize(), "SharedSize": r.SharedSize(), "UniqueSize": r.UniqueSize(),
		"Containers": r.Containers(),
	})
}
