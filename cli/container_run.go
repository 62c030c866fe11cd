package cli

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// runOptions are the flags of run and create.
type runOptions struct {
	detach, rm, interactive, tty, privileged, readOnly, init bool
	name, workdir, user, hostname, entrypoint, network       string
	stopSignal, pull                                         string
	stopTimeout                                              int
	env, envFile, labels, labelFile, capAdd, capDrop         []string
	securityOpt, attach, dns, dnsSearch, dnsOption, addHost  []string
	logOpt                                                   []string
	logDriver                                                string
}

func (o *runOptions) flags(fs *pflag.FlagSet, withRun bool) {
	fs.SetInterspersed(false)
	if withRun {
		fs.BoolVarP(&o.detach, "detach", "d", false, "Run container in background and print container ID")
		fs.StringArrayVarP(&o.attach, "attach", "a", nil, "Attach to STDIN, STDOUT or STDERR")
	}
	fs.BoolVar(&o.rm, "rm", false, "Automatically remove the container when it exits")
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fs.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container")
	fs.StringVar(&o.name, "name", "", "Assign a name to the container")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.StringVar(&o.network, "network", "", "Connect a container to a network (none)")
	fs.StringVar(&o.network, "net", "", "Connect a container to a network")
	_ = fs.MarkHidden("net")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.stopTimeout, "stop-timeout", -1, "Timeout (in seconds) to stop a container")
	fs.StringVar(&o.pull, "pull", "missing", "Pull image before running (\"always\", \"missing\", \"never\")")
	fs.StringArrayVarP(&o.env, "env", "e", nil, "Set environment variables")
	fs.StringArrayVar(&o.envFile, "env-file", nil, "Read in a file of environment variables")
	fs.StringArrayVarP(&o.labels, "label", "l", nil, "Set meta data on a container")
	fs.StringArrayVar(&o.labelFile, "label-file", nil, "Read in a line delimited file of labels")
	fs.StringArrayVar(&o.capAdd, "cap-add", nil, "Add Linux capabilities")
	fs.StringArrayVar(&o.capDrop, "cap-drop", nil, "Drop Linux capabilities")
	fs.StringArrayVar(&o.securityOpt, "security-opt", nil, "Security Options")
	fs.StringArrayVar(&o.dns, "dns", nil, "Set custom DNS servers")
	fs.StringArrayVar(&o.dnsSearch, "dns-search", nil, "Set custom DNS search domains")
	fs.StringArrayVar(&o.dnsOption, "dns-option", nil, "Set DNS options")
	fs.StringArrayVar(&o.addHost, "add-host", nil, "Add a custom host-to-IP mapping (host:ip)")
	fs.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container (json-file)")
	fs.StringArrayVar(&o.logOpt, "log-opt", nil, "Log driver options (max-size, max-file)")
	fs.BoolP("help", "", false, "Print usage")
}

// request builds the create request from the flags, the image and the
// command.
func (o *runOptions) request(image string, cmd []string) (*container.CreateRequest, error) {
	env, err := parseEnv(o.env, o.envFile)
	if err != nil {
		return nil, err
	}
	labels, err := parseLabels(o.labels, o.labelFile)
	if err != nil {
		return nil, err
	}
	attachOut, attachErr := true, true
	if len(o.attach) > 0 {
		attachOut, attachErr = false, false
		for _, s := range o.attach {
			switch strings.ToLower(s) {
			case "stdout":
				attachOut = true
			case "stderr":
				attachErr = true
			case "stdin":
			default:
				return nil, fmt.Errorf("invalid argument %q for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR", s)
			}
		}
	}
	cfg := &container.Config{
		Image: image, Cmd: cmd, Env: env, Labels: labels, WorkingDir: o.workdir, User: o.user,
		Hostname: o.hostname, Tty: o.tty, OpenStdin: o.interactive, StopSignal: o.stopSignal,
		AttachStdout: !o.detach && attachOut, AttachStderr: !o.detach && attachErr,
	}
	if o.entrypoint != "" {
		cfg.Entrypoint = []string{o.entrypoint}
	}
	if o.stopTimeout >= 0 {
		t := o.stopTimeout
		cfg.StopTimeout = &t
	}
	host := &container.HostConfig{
		AutoRemove: o.rm, Privileged: o.privileged, ReadonlyRootfs: o.readOnly,
		CapAdd: o.capAdd, CapDrop: o.capDrop, SecurityOpt: o.securityOpt,
		NetworkMode: container.NetworkMode(o.network), DNSSearch: o.dnsSearch, DNSOptions: o.dnsOption,
		ExtraHosts: o.addHost,
	}
	if o.init {
		host.Init = &o.init
	}
	for _, d := range o.dns {
		ip, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--dns\" flag: %v", d, err)
		}
		host.DNS = append(host.DNS, ip)
	}
	if o.logDriver != "" && o.logDriver != "json-file" {
		return nil, fmt.Errorf("log driver %q is not supported: use json-file", o.logDriver)
	}
	host.LogConfig.Type = "json-file"
	for _, kv := range o.logOpt {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("invalid argument %q for \"--log-opt\" flag: want key=value", kv)
		}
		if host.LogConfig.Config == nil {
			host.LogConfig.Config = map[string]string{}
		}
		host.LogConfig.Config[k] = v
	}
	return &container.CreateRequest{Config: cfg, HostConfig: host}, nil
}

func parseEnv(flags, files []string) ([]string, error) {
	var out []string
	add := func(kv, where string) error {
		k, _, hasValue := strings.Cut(kv, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return fmt.Errorf("invalid environment variable %q%s: variable name must not be empty or contain whitespace", kv, where)
		}
		if !hasValue {
			if v, ok := os.LookupEnv(k); ok {
				out = append(out, k+"="+v)
			}
			return nil
		}
		out = append(out, kv)
		return nil
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("open env file: %w", err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if err := add(line, fmt.Sprintf(" in %s line %d", f, i+1)); err != nil {
				return nil, err
			}
		}
	}
	for _, e := range flags {
		if err := add(e, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func parseLabels(flags, files []string) (map[string]string, error) {
	out := map[string]string{}
	all := append([]string{}, flags...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("open label file: %w", err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				all = append(all, line)
			}
		}
	}
	for _, l := range all {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid label %q: empty name", l)
		}
		out[k] = v
	}
	return out, nil
}

func (a *app) create(o *runOptions, args []string) (string, error) {
	req, err := o.request(args[0], args[1:])
	if err != nil {
		return "", &statusError{code: exitDaemon, msg: "moss: " + err.Error()}
	}
	q := url.Values{}
	if o.name != "" {
		q.Set("name", o.name)
	}
	var resp container.CreateResponse
	if err := a.call(http.MethodPost, "/containers/create", q, req, &resp); err != nil {
		return "", runFailure(err)
	}
	for _, w := range resp.Warnings {
		fmt.Fprintf(a.errw, "WARNING: %s\n", w)
	}
	return resp.ID, nil
}

// runFailure maps an error of create/start to docker run's exit codes.
func runFailure(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	code := exitDaemon
	switch {
	case strings.Contains(ae.msg, "executable file not found") || strings.Contains(ae.msg, "no such file or directory"):
		code = 127
	case strings.Contains(ae.msg, "permission denied") || strings.Contains(ae.msg, "exec format error"):
		code = 126
	}
	return &statusError{code: code, msg: "moss: " + ae.Error() + "."}
}

func (a *app) addRunCommands(root *cobra.Command) {
	ro := &runOptions{}
	run := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  cobra.MinimumNArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return a.run(ro, args) },
	}
	ro.flags(run.Flags(), true)
	co := &runOptions{}
	create := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := a.create(co, args)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out, id)
			return nil
		},
	}
	co.flags(create.Flags(), false)
	root.AddCommand(run, create)
}

func (a *app) run(o *runOptions, args []string) error {
	id, err := a.create(o, args)
	if err != nil {
		return err
	}
	if o.detach {
		if err := a.call(http.MethodPost, "/containers/"+id+"/start", nil, nil, nil); err != nil {
			return runFailure(err)
		}
		fmt.Fprintln(a.out, id)
		return nil
	}
	req, _ := o.request(args[0], args[1:])
	code, err := a.attachStartWait(id, req.Config.AttachStdout, req.Config.AttachStderr, o.rm)
	if err != nil {
		return err
	}
	if code != 0 {
		return &statusError{code: code}
	}
	return nil
}

// attachStartWait attaches to a created container's output, starts it,
// copies the output until it ends and returns the exit status.
func (a *app) attachStartWait(id string, stdout, stderr, removed bool) (int, error) {
	conn, br, err := a.hijack("/containers/"+id+"/attach", url.Values{"stream": {"1"}, "stdout": {b(stdout)}, "stderr": {b(stderr)}})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	cond := "next-exit"
	if removed {
		cond = "removed"
	}
	waitResp, err := a.do(context.Background(), http.MethodPost, "/containers/"+id+"/wait", url.Values{"condition": {cond}}, nil, "")
	if err != nil {
		return 0, err
	}
	defer waitResp.Body.Close()
	if err := a.call(http.MethodPost, "/containers/"+id+"/start", nil, nil, nil); err != nil {
		return 0, runFailure(err)
	}
	copied := make(chan error, 1)
	go func() { copied <- demux(br, a.out, a.errw) }()
	var w container.WaitResponse
	if err := json.NewDecoder(waitResp.Body).Decode(&w); err != nil {
		return 0, fmt.Errorf("wait for container: %w", err)
	}
	<-copied
	if w.Error != nil && w.Error.Message != "" {
		fmt.Fprintln(a.errw, "moss:", w.Error.Message)
	}
	return int(w.StatusCode), nil
}

func b(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

// hijack opens an upgraded connection for a streaming endpoint.
func (a *app) hijack(path string, q url.Values) (net.Conn, *bufio.Reader, error) {
	if err := a.ensureAgent(); err != nil {
		return nil, nil, err
	}
	tr := a.client.Transport.(*http.Transport)
	conn, err := tr.DialContext(context.Background(), "unix", "")
	if err != nil {
		return nil, nil, err
	}
	req, _ := http.NewRequest(http.MethodPost, "http://moss"+apiPrefix+path+"?"+q.Encode(), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		defer conn.Close()
		return nil, nil, readAPIError(resp)
	}
	return conn, br, nil
}

// demux copies Docker's multiplexed stream to stdout and stderr.
func demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		w := stdout
		if hdr[0] == 2 {
			w = stderr
		}
		if _, err := io.CopyN(w, r, n); err != nil {
			return err
		}
	}
}
