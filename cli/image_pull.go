package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// addRegistryCommands adds pull, push, login and logout, at the top and
// (pull, push) under image; it runs after addImageCommands.
func (a *app) addRegistryCommands(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() == "image" {
			c.AddCommand(a.pullCmd(), a.pushCmd())
		}
	}
	root.AddCommand(a.pullCmd(), a.pushCmd(), a.loginCmd(), a.logoutCmd())
}

// pullOptions are the flags of pull.
type pullOptions struct {
	allTags  bool
	quiet    bool
	platform string
	authfile string
	// forRun: the pull of run or create, whose progress goes to stderr
	// without the name at the end, as docker run's.
	forRun bool
}

func (a *app) pullCmd() *cobra.Command {
	o := &pullOptions{}
	c := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Long: "Download an image from a registry. A short name (busybox) is looked for in the registries of\n" +
			"[registries] search in moss.toml; with several, pull asks which on a terminal.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.pull(o, args[0])
		},
	}
	f := c.Flags()
	f.BoolVarP(&o.allTags, "all-tags", "a", false, "Download all tagged images in the repository")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress verbose output")
	f.StringVar(&o.platform, "platform", "", "Set platform if server is multi-platform capable (os/arch[/variant])")
	f.StringVar(&o.authfile, "authfile", "", "Path of the authentication file (default $REGISTRY_AUTH_FILE, else the user's)")
	return c
}

// authFile is the auth file to use: the flag, else $REGISTRY_AUTH_FILE,
// made absolute for the agent.
func authFile(flag string) (string, error) {
	f := flag
	if f == "" {
		f = os.Getenv("REGISTRY_AUTH_FILE")
	}
	if f == "" {
		return "", nil
	}
	abs, err := filepath.Abs(f)
	if err != nil {
		return "", &statusError{code: exitFailure, msg: "moss: authfile: " + err.Error()}
	}
	return abs, nil
}

// isShortName tells whether name names no registry (as the agent's rule):
// no "/", or a first component without "." or ":" that is not localhost.
func isShortName(name string) bool {
	first, _, ok := strings.Cut(name, "/")
	if !ok {
		return true
	}
	return !strings.ContainsAny(first, ".:") && first != "localhost" && strings.ToLower(first) == first
}

// chooseName asks, on a terminal, which search registry a short name is
// to come from when several could serve it; elsewhere the agent refuses
// the name as ambiguous.
func (a *app) chooseName(cl *client, name string) (string, error) {
	if !isShortName(name) || !isTerminal(a.in) || !isTerminal(a.errw) {
		return name, nil
	}
	var res struct{ Candidates []string }
	if err := cl.call(http.MethodGet, "/moss/v1/images/resolve", url.Values{"name": {name}}, nil, &res); err != nil || len(res.Candidates) < 2 {
		return name, nil // the pull says what is wrong
	}
	return a.promptChoice(name, res.Candidates)
}

// promptChoice lists candidates on stderr and reads a number from stdin.
func (a *app) promptChoice(name string, candidates []string) (string, error) {
	fmt.Fprintf(a.errw, "%q is a short name; pull it from:\n", name)
	for i, c := range candidates {
		fmt.Fprintf(a.errw, "  %d) %s\n", i+1, c)
	}
	br := bufio.NewReader(a.in)
	for {
		fmt.Fprintf(a.errw, "Select an image [1-%d]: ", len(candidates))
		line, err := br.ReadString('\n')
		n, perr := strconv.Atoi(strings.TrimSpace(line))
		if perr == nil && n >= 1 && n <= len(candidates) {
			return candidates[n-1], nil
		}
		if err != nil {
			return "", &statusError{code: exitFailure, msg: "moss: no image selected"}
		}
	}
}

func (a *app) pull(o *pullOptions, name string) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	af, err := authFile(o.authfile)
	if err != nil {
		return err
	}
	if name, err = a.chooseName(cl, name); err != nil {
		return err
	}
	q := url.Values{"fromImage": {name}}
	_, tag := splitRepoTag(name)
	switch {
	case o.allTags && (tag != "" || strings.Contains(name, "@")):
		return &statusError{code: exitDaemon, msg: "moss: tag can't be used with --all-tags/-a"}
	case !o.allTags && tag == "" && !strings.Contains(name, "@"):
		q.Set("tag", "latest")
		if !o.quiet {
			fmt.Fprintln(pullOut(a, o), "Using default tag: latest")
		}
	}
	if o.platform != "" {
		q.Set("platform", o.platform)
	}
	if af != "" {
		q.Set("authfile", af)
	}
	resp, err := cl.do(context.Background(), http.MethodPost, "/images/create", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	pr := a.newProgress(o.quiet)
	if o.forRun {
		pr.w = a.errw
	}
	if err := pr.stream(resp.Body); err != nil {
		return err
	}
	switch {
	case o.forRun:
	case len(pr.names) == 1:
		fmt.Fprintln(a.out, pr.names[0])
	case len(pr.names) > 1:
		repo, _ := splitRepoTag(pr.names[0])
		fmt.Fprintln(a.out, repo)
	}
	return nil
}

// progressMsg is one message of Docker's JSON progress stream.
type progressMsg struct {
	Stream         string `json:"stream"`
	Status         string `json:"status"`
	ID             string `json:"id"`
	ProgressDetail *struct {
		Current int64 `json:"current"`
		Total   int64 `json:"total"`
	} `json:"progressDetail"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// progress prints a pull's or push's message stream: on a terminal, one
// line per layer redrawn in place with a bar; elsewhere the layers' state
// changes as plain lines; quiet, nothing.
type progress struct {
	w     io.Writer
	tty   bool
	width int
	quiet bool
	// ids are the layer lines on the screen, in order (terminal only).
	ids []string
	// names are the full names the pull's aux messages gave.
	names []string
}

func (a *app) newProgress(quiet bool) *progress {
	p := &progress{w: a.out, quiet: quiet, width: 80}
	if fd, ok := terminalFd(a.out); ok {
		p.tty = true
		if w, _, err := term.GetSize(fd); err == nil && w > 0 {
			p.width = w
		}
	}
	return p
}

// stream prints every message of r and fails on an error message, which
// prints as it is (docker's way for stream errors).
func (p *progress) stream(r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m progressMsg
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read the agent's answer: %w", err)
		}
		if msg := m.Error; m.ErrorDetail != nil && m.ErrorDetail.Message != "" || msg != "" {
			if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
				msg = m.ErrorDetail.Message
			}
			return &statusError{code: exitFailure, msg: "moss: " + msg}
		}
		if len(m.Aux) > 0 {
			var aux struct{ Name string }
			if json.Unmarshal(m.Aux, &aux) == nil && aux.Name != "" {
				p.names = append(p.names, aux.Name)
			}
			continue
		}
		p.show(m)
	}
}

// layerLine is a layer message's text: "ID: Status [bar] cur/total".
func (p *progress) layerLine(m progressMsg) string {
	s := m.ID + ": " + m.Status
	if d := m.ProgressDetail; d != nil && d.Total > 0 && p.tty {
		size := func(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }
		nums := fmt.Sprintf(" %8s/%s", size(d.Current), size(d.Total))
		room := p.width - len(s) - len(nums) - 4
		bar := min(50, room)
		if bar >= 10 {
			n := int(float64(bar) * float64(d.Current) / float64(d.Total))
			n = max(0, min(n, bar))
			b := strings.Repeat("=", n)
			if n < bar {
				b += ">" + strings.Repeat(" ", bar-n-1)
			}
			s += " [" + b + "]"
		}
		s += nums
	}
	if p.tty && len(s) >= p.width {
		s = s[:max(p.width-1, 0)]
	}
	return s
}

func (p *progress) show(m progressMsg) {
	if p.quiet {
		return
	}
	if m.Stream != "" {
		fmt.Fprint(p.w, m.Stream)
		return
	}
	if m.ID == "" || m.ProgressDetail == nil {
		// A line of its own ("Pulling from", "Digest:"): layer lines above
		// stay as they are.
		p.ids = nil
		if m.ID != "" {
			fmt.Fprintf(p.w, "%s: %s\n", m.ID, m.Status)
		} else if m.Status != "" {
			fmt.Fprintln(p.w, m.Status)
		}
		return
	}
	if !p.tty {
		// Byte counts only make sense redrawn in place.
		if m.Status == "Downloading" || m.Status == "Pushing" || m.Status == "Waiting" || m.Status == "Extracting" {
			return
		}
		fmt.Fprintln(p.w, p.layerLine(m))
		return
	}
	line := p.layerLine(m)
	for i, id := range p.ids {
		if id == m.ID {
			up := len(p.ids) - i
			fmt.Fprintf(p.w, "\x1b[%dA\r\x1b[2K%s\r\x1b[%dB", up, line, up)
			return
		}
	}
	p.ids = append(p.ids, m.ID)
	fmt.Fprintf(p.w, "\r\x1b[2K%s\n", line)
}

func pullOut(a *app, o *pullOptions) io.Writer {
	if o.forRun {
		return a.errw
	}
	return a.out
}
