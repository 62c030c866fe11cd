package cli

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// historyItem is an entry of the agent's /images/{name}/history answer.
type historyItem struct {
	ID        string   `json:"Id"`
	Created   int64    `json:"Created"`
	CreatedBy string   `json:"CreatedBy"`
	Tags      []string `json:"Tags"`
	Size      int64    `json:"Size"`
	Comment   string   `json:"Comment"`
}

const (
	historyTable         = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
	historyNonHumanTable = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
)

var historyHeaders = map[string]string{
	"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
	"Size": "SIZE", "Comment": "COMMENT",
}

// historyOptions are the flags of history.
type historyOptions struct {
	human, noTrunc, quiet bool
	format                string
}

func (a *app) historyCmd() *cobra.Command {
	o := &historyOptions{}
	c := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.history(o, args[0])
		},
	}
	f := c.Flags()
	f.StringVar(&o.format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	// docker's -H shorthand is the global --host here.
	f.BoolVar(&o.human, "human", true, "Print sizes and dates in human readable format")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only show image IDs")
	return c
}

func (a *app) history(o *historyOptions, name string) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	var items []historyItem
	if err := cl.call(http.MethodGet, "/images/"+url.PathEscape(name)+"/history", nil, nil, &items); err != nil {
		return err
	}
	def := historyTable
	switch {
	case o.quiet:
		def = "{{.ID}}"
	case !o.human:
		def = historyNonHumanTable
	}
	format := def
	if f := strings.TrimSpace(o.format); f != "" && f != "table" {
		format = listFormat(f, def)
	}
	rows := make([]interface{}, 0, len(items))
	for _, h := range items {
		rows = append(rows, historyRow{h: h, trunc: !o.noTrunc, human: o.human})
	}
	return render(a.out, format, rows, historyHeaders)
}

// historyRow is one history entry as docker's templates see it.
type historyRow struct {
	h            historyItem
	trunc, human bool
}

// historyEpoch: dates before it are not shown in human form (docker's).
var historyEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

func (r historyRow) ID() string {
	if r.trunc {
		return shortID(r.h.ID)
	}
	return r.h.ID
}

func (r historyRow) CreatedAt() string { return time.Unix(r.h.Created, 0).Format(time.RFC3339) }

func (r historyRow) CreatedSince() string {
	if !r.human {
		return r.CreatedAt()
	}
	if r.h.Created <= historyEpoch {
		return ""
	}
	return sinceUnix(r.h.Created)
}

func (r historyRow) CreatedBy() string {
	s := strings.ReplaceAll(r.h.CreatedBy, "\t", " ")
	if r.trunc {
		return ellipsis(s, 45)
	}
	return s
}

func (r historyRow) Size() string {
	if r.human {
		return humanSize(r.h.Size)
	}
	return strconv.FormatInt(r.h.Size, 10)
}

func (r historyRow) Comment() string { return r.h.Comment }

// MarshalJSON gives `--format json` docker's field names.
func (r historyRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"ID": r.ID(), "CreatedAt": r.CreatedAt(), "CreatedSince": r.CreatedSince(), "CreatedBy": r.CreatedBy(),
		"Size": r.Size(), "Comment": r.Comment(),
	})
}
