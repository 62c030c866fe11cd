package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	units "github.com/docker/go-units"
)

// templateFuncs are docker's --format helpers (docker/cli templates).
var templateFuncs = template.FuncMap{
	"json": func(v interface{}) (string, error) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSpace(buf.String()), nil
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": titleCase,
	"truncate": func(s string, n int) string {
		if len(s) < n {
			return s
		}
		return s[:n]
	},
	"pad": func(s string, before, after int) string {
		if s == "" {
			return s
		}
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
}

// titleCase upper-cases the first letter of every word and leaves the rest
// as it is (docker's cases.Title with NoLower).
func titleCase(s string) string {
	var b strings.Builder
	prevLetter := false
	for _, r := range s {
		if !prevLetter {
			r = unicode.ToTitle(r)
		}
		prevLetter = unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\''
		b.WriteRune(r)
	}
	return b.String()
}

func parseTemplate(format string) (*template.Template, error) {
	t, err := template.New("").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, &statusError{code: exitFailure, msg: fmt.Sprintf("moss: template parsing error: %v", err)}
	}
	return t, nil
}

// listFormat resolves a list command's --format: empty or "table" is the
// command's default table, "json" one JSON object per line.
func listFormat(format, def string) string {
	switch strings.TrimSpace(format) {
	case "", "table":
		return def
	case "json":
		return "{{json .}}"
	}
	return format
}

var (
	actionRe = regexp.MustCompile(`\{\{-?[^}]*?-?\}\}`)
	fieldRe  = regexp.MustCompile(`\.([A-Za-z_]\w*)`)
)

// tableHeader renders the header line of a table template: every action
// becomes the header of the first field it names.
func tableHeader(format string, headers map[string]string) string {
	return actionRe.ReplaceAllStringFunc(format, func(action string) string {
		m := fieldRe.FindStringSubmatch(action)
		if m == nil {
			return ""
		}
		if h, ok := headers[m[1]]; ok {
			return h
		}
		return strings.ToUpper(m[1])
	})
}

// render prints rows with a list template like docker's formatter: a
// "table" template gets a header line and tab-aligned columns, any other
// template prints one line per row.
func render(w io.Writer, format string, rows []interface{}, headers map[string]string) error {
	table := false
	if rest, ok := strings.CutPrefix(format, "table"); ok {
		table, format = true, rest
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(strings.Trim(format, " "))
	t, err := parseTemplate(format)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, r := range rows {
		if err := t.Execute(&buf, r); err != nil {
			return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: template: %v", err)}
		}
		buf.WriteByte('\n')
	}
	if !table {
		_, err := w.Write(buf.Bytes())
		return err
	}
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, tableHeader(format, headers))
	_, _ = tw.Write(buf.Bytes())
	return tw.Flush()
}

// renderEach prints each object with a template, one per line (inspect,
// info, version).
func renderEach(w io.Writer, format string, objs []interface{}) error {
	if strings.TrimSpace(format) == "json" {
		format = "{{json .}}"
	}
	t, err := parseTemplate(format)
	if err != nil {
		return err
	}
	for _, o := range objs {
		var buf bytes.Buffer
		if err := t.Execute(&buf, o); err != nil {
			return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: template: %v", err)}
		}
		buf.WriteByte('\n')
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// shortID is docker's TruncateID: the first 12 hex digits without the
// algorithm.
func shortID(id string) string {
	if i := strings.IndexRune(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ellipsis shortens s to max runes, the last one an ellipsis.
func ellipsis(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// humanDuration is docker's units.HumanDuration ("About a minute").
func humanDuration(d time.Duration) string { return units.HumanDuration(d) }

// sinceUnix is how long ago a Unix timestamp was, docker's "3 hours ago".
func sinceUnix(sec int64) string {
	return humanDuration(time.Now().UTC().Sub(time.Unix(sec, 0))) + " ago"
}

// humanSize is the size of lists (images, ps -s): decimal units, three
// significant digits ("4.26MB").
func humanSize(size int64) string { return units.HumanSizeWithPrecision(float64(size), 3) }

// naturalLess orders strings as docker's lists do (sortorder.NaturalLess):
// runs of digits compare as numbers and sort before other bytes, so "net2"
// comes before "net10".
func naturalLess(a, b string) bool {
	isDigit := func(c byte) bool { return '0' <= c && c <= '9' }
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		da, db := isDigit(a[i]), isDigit(b[j])
		if da != db {
			return da
		}
		if !da {
			if a[i] != b[j] {
				return a[i] < b[j]
			}
			i++
			j++
			continue
		}
		// Two numbers: skip leading zeros, then the longer is larger, then
		// the digits decide, then fewer leading zeros come first.
		za, zb := i, j
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		sa, sb := i, j
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if na, nb := a[sa:i], b[sb:j]; len(na) != len(nb) {
			return len(na) < len(nb)
		} else if na != nb {
			return na < nb
		}
		if sa-za != sb-zb {
			return sa-za < sb-zb
		}
	}
	return len(a)-i < len(b)-j
}

// joinLabels is the Labels column of ps and network ls: k=v, sorted, comma
// separated.
func joinLabels(labels map[string]string) string {
	l := make([]string, 0, len(labels))
	for k, v := range labels {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}
