package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
)

// templateFuncs are docker's --format helpers.
var templateFuncs = template.FuncMap{
	"json": func(v interface{}) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
	"println": fmt.Sprintln,
}

func parseTemplate(format string) (*template.Template, error) {
	if format == "json" {
		format = "{{json .}}"
	}
	t, err := template.New("format").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, &statusError{code: 1, msg: fmt.Sprintf("moss: template parsing error: %v", err)}
	}
	return t, nil
}

var fieldRef = regexp.MustCompile(`\{\{\s*\.(\w+)\s*\}\}`)

// render prints rows with a Go template; "table" templates get a header
// line from headers and tab-aligned columns like docker's.
func render(w io.Writer, format string, rows []interface{}, headers map[string]string) error {
	table := false
	if rest, ok := strings.CutPrefix(format, "table"); ok {
		table, format = true, strings.TrimSpace(rest)
	}
	format = strings.ReplaceAll(format, `\t`, "\t")
	t, err := parseTemplate(format)
	if err != nil {
		return err
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		out = tw
		head := fieldRef.ReplaceAllStringFunc(format, func(m string) string {
			name := fieldRef.FindStringSubmatch(m)[1]
			if h, ok := headers[name]; ok {
				return h
			}
			return strings.ToUpper(name)
		})
		fmt.Fprintln(out, head)
	}
	for _, r := range rows {
		if err := t.Execute(out, r); err != nil {
			return &statusError{code: 1, msg: fmt.Sprintf("moss: template: %v", err)}
		}
		fmt.Fprintln(out)
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// renderEach prints each object with a template, one per line.
func renderEach(w io.Writer, format string, objs []interface{}) error {
	t, err := parseTemplate(format)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := t.Execute(w, o); err != nil {
			return &statusError{code: 1, msg: fmt.Sprintf("moss: template: %v", err)}
		}
		fmt.Fprintln(w)
	}
	return nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// humanDuration follows docker's units.HumanDuration.
func humanDuration(d time.Duration) string {
	if s := int(d.Seconds()); s < 1 {
		return "Less than a second"
	} else if s == 1 {
		return "1 second"
	} else if s < 60 {
		return fmt.Sprintf("%d seconds", s)
	} else if m := int(d.Minutes()); m == 1 {
		return "About a minute"
	} else if m < 60 {
		return fmt.Sprintf("%d minutes", m)
	} else if h := int(d.Round(time.Hour).Hours()); h == 1 {
		return "About an hour"
	} else if h < 48 {
		return fmt.Sprintf("%d hours", h)
	} else if h < 24*7*2 {
		return fmt.Sprintf("%d days", h/24)
	} else if h < 24*30*2 {
		return fmt.Sprintf("%d weeks", h/24/7)
	} else if h < 24*365*2 {
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// humanSize follows docker's units.HumanSize (decimal units, 3 significant
// digits).
func humanSize(size float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	i := 0
	for size >= 1000 && i < len(units)-1 {
		size /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", size, units[i])
}
