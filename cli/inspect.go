package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

// inspectOptions are the flags of inspect.
type inspectOptions struct {
	format, typ string
	size        bool
}

// inspectCmd is `inspect` (kind "": containers, then images) or
// `container inspect` / `image inspect` (kind fixed).
func (a *app) inspectCmd(kind string) *cobra.Command {
	o := &inspectOptions{typ: kind}
	c := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on Moss objects",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.inspect(o, args)
		},
	}
	switch kind {
	case "container":
		c.Short = "Display detailed information on one or more containers"
		c.Use = "inspect [OPTIONS] CONTAINER [CONTAINER...]"
	case "image":
		c.Short = "Display detailed information on one or more images"
		c.Use = "inspect [OPTIONS] IMAGE [IMAGE...]"
	}
	c.Flags().StringVarP(&o.format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	if kind != "image" {
		c.Flags().BoolVarP(&o.size, "size", "s", false, "Display total file sizes if the type is container")
	}
	if kind == "" {
		c.Flags().StringVar(&o.typ, "type", "", "Return JSON for specified type (container, image)")
	}
	return c
}

func (a *app) inspect(o *inspectOptions, args []string) error {
	switch o.typ {
	case "", "container", "image":
	default:
		return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: %q is not a valid value for --type", o.typ)}
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	get := func(path string, q url.Values) (json.RawMessage, error) {
		var raw json.RawMessage
		err := cl.call(http.MethodGet, path, q, nil, &raw)
		return raw, err
	}
	var objs []json.RawMessage
	failed := false
	for _, name := range args {
		var raw json.RawMessage
		var err error
		if o.typ == "" || o.typ == "container" {
			q := url.Values{}
			if o.size {
				q.Set("size", "1")
			}
			raw, err = get("/containers/"+url.PathEscape(name)+"/json", q)
		}
		if o.typ == "image" || (o.typ == "" && isNotFound(err)) {
			raw, err = get("/images/"+url.PathEscape(name)+"/json", nil)
		}
		if err != nil {
			var se *statusError
			if errors.As(err, &se) {
				return err
			}
			failed = true
			if isNotFound(err) {
				what := "object"
				if o.typ != "" {
					what = o.typ
				}
				fmt.Fprintf(a.errw, "Error: No such %s: %s\n", what, name)
				continue
			}
			fmt.Fprintln(a.errw, err)
			continue
		}
		objs = append(objs, raw)
	}
	if err := a.printObjects(o.format, objs); err != nil {
		return err
	}
	if failed {
		return &statusError{code: exitFailure}
	}
	return nil
}

func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.status == http.StatusNotFound
}

// writeJSONArray prints the agent's objects as they came, in an indented
// array like docker inspect: no field is lost or reordered.
func writeJSONArray(a *app, objs []json.RawMessage) error {
	if len(objs) == 0 {
		_, err := fmt.Fprintln(a.out, "[]")
		return err
	}
	var all bytes.Buffer
	all.WriteByte('[')
	for i, o := range objs {
		if i > 0 {
			all.WriteByte(',')
		}
		all.Write(o)
	}
	all.WriteByte(']')
	var out bytes.Buffer
	if err := json.Indent(&out, all.Bytes(), "", "    "); err != nil {
		return fmt.Errorf("the agent's answer is not JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err := a.out.Write(out.Bytes())
	return err
}

// decodeGeneric decodes JSON for templates: objects as maps (so unknown
// fields stay reachable), integers as int64 (so {{.State.Pid}} prints
// 1234, not 1.234e+03, and eq compares with integer constants).
func decodeGeneric(raw []byte) (interface{}, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("the agent's answer is not JSON: %w", err)
	}
	return convertNumbers(v), nil
}

func convertNumbers(v interface{}) interface{} {
	switch x := v.(type) {
	case map[string]interface{}:
		for k, e := range x {
			x[k] = convertNumbers(e)
		}
	case []interface{}:
		for i, e := range x {
			x[i] = convertNumbers(e)
		}
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return string(x)
	}
	return v
}

// printObjects prints inspect answers: with a template each object on its
// own, else docker's indented JSON array.
func (a *app) printObjects(format string, objs []json.RawMessage) error {
	if format == "" {
		return writeJSONArray(a, objs)
	}
	vals := make([]interface{}, 0, len(objs))
	for _, raw := range objs {
		v, err := decodeGeneric(raw)
		if err != nil {
			return err
		}
		vals = append(vals, v)
	}
	return renderEach(a.out, format, vals)
}

// inspectEach is the inspect verb of one kind of object (network,
// volume): a GET of path(name) for each argument, the answers printed
// like docker inspect, each failure on stderr and exit 1 when any failed.
func (a *app) inspectEach(format string, args []string, path func(string) string, q url.Values) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	var objs []json.RawMessage
	err = a.eachArg(args, func(name string) error {
		var raw json.RawMessage
		if err := cl.call(http.MethodGet, path(name), q, nil, &raw); err != nil {
			return err
		}
		objs = append(objs, raw)
		return nil
	})
	var se *statusError
	if err != nil && (!errors.As(err, &se) || se.msg != "") {
		return err // the agent is unreachable
	}
	if perr := a.printObjects(format, objs); perr != nil {
		return perr
	}
	return err
}
