package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

// psOptions are the flags of ps.
type psOptions struct {
	all, quiet, noTrunc, latest, size bool
	last                              int
	format                            string
	filters                           []string
}

const psTable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "RunningFor": "CREATED",
	"CreatedAt": "CREATED AT", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "State": "STATE",
	"Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS", "Networks": "NETWORKS", "Size": "SIZE",
	"LocalVolumes": "LOCAL VOLUMES",
}

func (a *app) psCmd(inGroup bool) *cobra.Command {
	o := &psOptions{}
	c := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.ps(o)
		},
	}
	if inGroup {
		c.Use = "ls [OPTIONS]"
		c.Aliases = []string{"list", "ps"}
	}
	f := c.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only display container IDs")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&o.latest, "latest", "l", false, "Show the latest created container (includes all states)")
	f.IntVarP(&o.last, "last", "n", -1, "Show n last created containers (includes all states)")
	f.BoolVarP(&o.size, "size", "s", false, "Display total file sizes")
	f.StringVar(&o.format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	f.StringArrayVarP(&o.filters, "filter", "f", nil, "Filter output based on conditions provided")
	return c
}

func (a *app) ps(o *psOptions) error {
	q, err := filterFlags(o.filters)
	if err != nil {
		return err
	}
	last := o.last
	if o.latest && last == -1 {
		last = 1
	}
	if o.all || last > 0 {
		q.Set("all", "1")
	}
	if last > 0 {
		q.Set("limit", strconv.Itoa(last))
	}
	format := o.format
	if o.quiet && format == "" {
		format = "{{.ID}}"
	}
	format = listFormat(format, psTable)
	if o.size && (o.format == "" || o.format == "table") {
		format += "\t{{.Size}}"
	}
	if o.size || strings.Contains(format, ".Size") {
		q.Set("size", "1")
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	var list []container.Summary
	if err := cl.call(http.MethodGet, "/containers/json", q, nil, &list); err != nil {
		return err
	}
	rows := make([]interface{}, 0, len(list))
	for _, s := range list {
		rows = append(rows, psRow{s: s, trunc: !o.noTrunc})
	}
	return render(a.out, format, rows, psHeaders)
}

// filterFlags checks --filter key=value flags and encodes them.
func filterFlags(filters []string) (url.Values, error) {
	for _, f := range filters {
		if !strings.Contains(f, "=") {
			return nil, &statusError{code: exitFailure, msg: fmt.Sprintf("moss: bad format of filter %q (expected name=value)", f)}
		}
	}
	return filterQuery(filters), nil
}

// psRow is one container as docker's ps templates see it.
type psRow struct {
	s     container.Summary
	trunc bool
}

func (r psRow) ID() string {
	if r.trunc {
		return shortID(r.s.ID)
	}
	return r.s.ID
}

// Image is the image as the container was created from it; truncated, an
// image ID is shortened and a digest dropped, like docker.
func (r psRow) Image() string {
	img := r.s.Image
	if img == "" {
		return "<no image>"
	}
	if !r.trunc {
		return img
	}
	if r.s.ImageID != "" && shortID(r.s.ImageID) == shortID(img) {
		return shortID(img)
	}
	if i := strings.Index(img, "@"); i >= 0 {
		img = img[:i]
	}
	for _, p := range []string{"docker.io/library/", "docker.io/"} {
		if rest, ok := strings.CutPrefix(img, p); ok {
			return rest
		}
	}
	return img
}

func (r psRow) Command() string {
	c := r.s.Command
	if r.trunc {
		c = ellipsis(c, 20)
	}
	return strconv.Quote(c)
}

func (r psRow) CreatedAt() string { return time.Unix(r.s.Created, 0).String() }
func (r psRow) RunningFor() string {
	return sinceUnix(r.s.Created)
}
func (r psRow) Status() string { return r.s.Status }
func (r psRow) State() string  { return string(r.s.State) }
func (r psRow) Ports() string  { return displayPorts(r.s.Ports) }

// Names are the container's names without the leading slash; truncated,
// only the first name that is not a link.
func (r psRow) Names() string {
	names := make([]string, 0, len(r.s.Names))
	for _, n := range r.s.Names {
		names = append(names, strings.TrimPrefix(n, "/"))
	}
	if r.trunc {
		for _, n := range names {
			if !strings.Contains(n, "/") {
				names = []string{n}
				break
			}
		}
	}
	return strings.Join(names, ",")
}

func (r psRow) Labels() string {
	return joinLabels(r.s.Labels)
}

// Label is the value of one label: {{.Label "com.example.key"}}.
func (r psRow) Label(k string) string { return r.s.Labels[k] }

func (r psRow) Mounts() string {
	var m []string
	for _, mp := range r.s.Mounts {
		name := mp.Name
		if name == "" {
			name = mp.Source
		}
		if r.trunc {
			name = ellipsis(name, 15)
		}
		m = append(m, name)
	}
	return strings.Join(m, ",")
}

func (r psRow) LocalVolumes() string {
	n := 0
	for _, mp := range r.s.Mounts {
		if mp.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

func (r psRow) Networks() string {
	if r.s.NetworkSettings == nil || len(r.s.NetworkSettings.Networks) == 0 {
		return r.s.HostConfig.NetworkMode
	}
	var n []string
	for k := range r.s.NetworkSettings.Networks {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ",")
}

// Size is the writable layer's size and, when known, the virtual size.
func (r psRow) Size() string {
	s := humanSize(r.s.SizeRw)
	if r.s.SizeRootFs > 0 {
		s = fmt.Sprintf("%s (virtual %s)", s, humanSize(r.s.SizeRootFs))
	}
	return s
}

// MarshalJSON gives `--format json` docker's field names.
func (r psRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"ID": r.ID(), "Image": r.Image(), "Command": r.Command(), "CreatedAt": r.CreatedAt(),
		"RunningFor": r.RunningFor(), "Ports": r.Ports(), "Status": r.Status(), "State": r.State(),
		"Names": r.Names(), "Labels": r.Labels(), "Mounts": r.Mounts(), "Networks": r.Networks(),
		"LocalVolumes": r.LocalVolumes(), "Size": r.Size(),
	})
}

// displayPorts is docker's DisplayablePorts: consecutive ports grouped into
// ranges, published ports as ip:public->private/proto.
func displayPorts(ports []container.PortSummary) string {
	type portGroup struct{ first, last uint16 }
	ports = append([]container.PortSummary(nil), ports...)
	sort.Slice(ports, func(i, j int) bool {
		a, b := ports[i], ports[j]
		if a.PrivatePort != b.PrivatePort {
			return a.PrivatePort < b.PrivatePort
		}
		if a.IP != b.IP {
			return a.IP.Less(b.IP)
		}
		if a.PublicPort != b.PublicPort {
			return a.PublicPort < b.PublicPort
		}
		return a.Type < b.Type
	})
	groups := map[string]*portGroup{}
	var keys, result, hostMappings []string
	for _, p := range ports {
		cur := p.PrivatePort
		key := p.Type
		if p.IP.IsValid() {
			if p.PublicPort != cur {
				hostMappings = append(hostMappings, fmt.Sprintf("%s->%d/%s",
					net.JoinHostPort(p.IP.String(), strconv.Itoa(int(p.PublicPort))), p.PrivatePort, p.Type))
				continue
			}
			key = p.IP.String() + "/" + p.Type
		}
		g := groups[key]
		if g == nil {
			groups[key] = &portGroup{first: cur, last: cur}
			keys = append(keys, key)
			continue
		}
		if cur == g.last+1 {
			g.last = cur
			continue
		}
		result = append(result, portRange(key, g.first, g.last))
		groups[key] = &portGroup{first: cur, last: cur}
	}
	for _, k := range keys {
		g := groups[k]
		result = append(result, portRange(k, g.first, g.last))
	}
	return strings.Join(append(result, hostMappings...), ", ")
}

func portRange(key string, first, last uint16) string {
	ip, typ, hasIP := strings.Cut(key, "/")
	if !hasIP {
		ip, typ = "", key
	}
	g := strconv.Itoa(int(first))
	if first != last {
		g += "-" + strconv.Itoa(int(last))
	}
	if ip != "" {
		g = ip + ":" + g + "->" + g
	}
	return g + "/" + typ
}
