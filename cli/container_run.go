package cli

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moss-containers/moss/internal/escape"
)

// runOptions are the flags of run and create.
type runOptions struct {
	detach, rm, interactive, tty, privileged, readOnly, init, sigProxy bool
	publishAll                                                         bool
	name, workdir, user, hostname, entrypoint, stopSignal              string
	pull, logDriver, detachKeys                                        string
	stopTimeout                                                        int
	env, envFile, labels, labelFile, capAdd, capDrop, securityOpt      []string
	attach, dns, dnsSearch, dnsOption, logOpt                          []string
	networks                                                           networkOpt
	ip, ip6                                                            ipOpt
	mac                                                                string
	publish, expose, aliases, addHost                                  listOpt
	volumes, tmpfs, volumesFrom                                        listOpt
	volumeDriver                                                       string
	mounts                                                             mountOpt
	policy                                                             policyOptions
	resources                                                          resourceOptions

	// Set from the flag set: an empty --entrypoint resets the image's, and
	// --stop-timeout is only sent when given.
	entrypointSet, stopTimeoutSet, initSet bool
}

func (o *runOptions) addFlags(fs *pflag.FlagSet, run bool) {
	fs.SetInterspersed(false)
	if run {
		fs.BoolVarP(&o.detach, "detach", "d", false, "Run container in background and print container ID")
		fs.BoolVar(&o.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
		fs.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	}
	fs.StringArrayVarP(&o.attach, "attach", "a", nil, "Attach to STDIN, STDOUT or STDERR")
	fs.BoolVar(&o.rm, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fs.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.StringVar(&o.name, "name", "", "Assign a name to the container")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.Var(&o.networks, "network", "Connect a container to a network (none, host, a network's name, container:<name|id>)")
	fs.Var(&o.networks, "net", "Connect a container to a network")
	_ = fs.MarkHidden("net")
	fs.Var(&o.aliases, "network-alias", "Add network-scoped alias for the container")
	fs.Var(&o.aliases, "net-alias", "Add network-scoped alias for the container")
	_ = fs.MarkHidden("net-alias")
	o.ip.family, o.ip6.family = 4, 6
	fs.Var(&o.ip, "ip", "IPv4 address (e.g., 172.30.100.104)")
	fs.Var(&o.ip6, "ip6", "IPv6 address (e.g., 2001:db8::33)")
	fs.StringVar(&o.mac, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fs.VarP(&o.publish, "publish", "p", "Publish a container's port(s) to the host")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fs.Var(&o.expose, "expose", "Expose a port or a range of ports")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.StringVar(&o.pull, "pull", "missing", `Pull image before running ("always", "missing", "never")`)
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
	o.addHost.validate = validateExtraHost
	fs.Var(&o.addHost, "add-host", "Add a custom host-to-IP mapping (host:ip, or host:host-gateway for the host)")
	fs.VarP(&o.volumes, "volume", "v", "Bind mount a volume")
	fs.Var(&o.mounts, "mount", "Attach a filesystem mount to the container")
	fs.Var(&o.tmpfs, "tmpfs", "Mount a tmpfs directory")
	fs.Var(&o.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	fs.StringVar(&o.volumeDriver, "volume-driver", "", "Optional volume driver for the container")
	fs.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container (json-file)")
	fs.StringArrayVar(&o.logOpt, "log-opt", nil, "Log driver options (max-size, max-file)")
	o.policy.addFlags(fs)
	o.resources.addFlags(fs, false)
	// -h is the host name, as in docker: help is --help only.
	fs.Bool("help", false, "Print usage")
}

// fromFlags records which flags were given where their zero value means
// something.
func (o *runOptions) fromFlags(fs *pflag.FlagSet) {
	o.entrypointSet = fs.Changed("entrypoint")
	o.stopTimeoutSet = fs.Changed("stop-timeout")
	o.initSet = fs.Changed("init")
}

// streams resolves -a: which of stdin, stdout and stderr to attach.
func (o *runOptions) streams() (stdin, stdout, stderr bool, err error) {
	if len(o.attach) == 0 {
		return o.interactive, true, true, nil
	}
	if o.detach {
		return false, false, false, errors.New("conflicting options: cannot specify both --attach and --detach")
	}
	for _, s := range o.attach {
		switch strings.ToLower(s) {
		case "stdin":
			stdin = true
		case "stdout":
			stdout = true
		case "stderr":
			stderr = true
		default:
			return false, false, false, fmt.Errorf(`invalid argument %q for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`, s)
		}
	}
	return stdin, stdout, stderr, nil
}

// request builds the create request from the flags, the image and the
// command; it fails on malformed flags before anything is sent.
func (o *runOptions) request(image string, cmd []string) (*container.CreateRequest, error) {
	switch o.pull {
	case "missing", "never", "always":
	default:
		return nil, fmt.Errorf(`invalid pull option: %q: must be one of "always", "missing" or "never"`, o.pull)
	}
	env, err := parseEnv(o.env, o.envFile)
	if err != nil {
		return nil, err
	}
	labels, err := parseLabels(o.labels, o.labelFile)
	if err != nil {
		return nil, err
	}
	stdin, stdout, stderr, err := o.streams()
	if err != nil {
		return nil, err
	}
	attached := !o.detach
	cfg := &container.Config{
		Image: image, Cmd: cmd, Env: env, Labels: labels, WorkingDir: o.workdir, User: o.user,
		Hostname: o.hostname, Tty: o.tty, OpenStdin: o.interactive, StopSignal: o.stopSignal,
		AttachStdin: attached && stdin, AttachStdout: attached && stdout, AttachStderr: attached && stderr,
	}
	cfg.StdinOnce = cfg.AttachStdin
	if o.entrypoint != "" {
		cfg.Entrypoint = []string{o.entrypoint}
	} else if o.entrypointSet {
		cfg.Entrypoint = []string{""}
	}
	if o.stopTimeoutSet {
		t := o.stopTimeout
		cfg.StopTimeout = &t
	}
	host := &container.HostConfig{
		AutoRemove: o.rm, Privileged: o.privileged, ReadonlyRootfs: o.readOnly,
		CapAdd: o.capAdd, CapDrop: o.capDrop, SecurityOpt: o.securityOpt,
		DNSSearch: o.dnsSearch, DNSOptions: o.dnsOption, ExtraHosts: o.addHost.vals,
		PublishAllPorts: o.publishAll, Mounts: o.mounts.values, Tmpfs: parseTmpfs(o.tmpfs.vals),
		VolumesFrom: o.volumesFrom.vals, VolumeDriver: o.volumeDriver,
	}
	if err := o.policy.apply(cfg, host); err != nil {
		return nil, err
	}
	if err := o.resources.apply(&host.Resources, host); err != nil {
		return nil, err
	}
	if host.Binds, cfg.Volumes, err = parseVolumes(o.volumes.vals); err != nil {
		return nil, err
	}
	if cfg.ExposedPorts, host.PortBindings, err = parsePorts(o.publish.vals, o.expose.vals); err != nil {
		return nil, err
	}
	mode, endpoints, err := o.endpoints()
	if err != nil {
		return nil, err
	}
	host.NetworkMode = mode
	if o.initSet {
		v := o.init
		host.Init = &v
	}
	for _, d := range o.dns {
		ip, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf(`invalid argument %q for "--dns" flag: %q is not an IP address`, d, d)
		}
		host.DNS = append(host.DNS, ip)
	}
	if o.logDriver != "" && o.logDriver != "json-file" {
		return nil, fmt.Errorf("log driver %q is not supported: use json-file", o.logDriver)
	}
	host.LogConfig.Type = "json-file"
	for _, kv := range o.logOpt {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf(`invalid argument %q for "--log-opt" flag: want key=value`, kv)
		}
		if host.LogConfig.Config == nil {
			host.LogConfig.Config = map[string]string{}
		}
		host.LogConfig.Config[k] = v
	}
	return &container.CreateRequest{Config: cfg, HostConfig: host,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: endpoints}}, nil
}

// parseEnv reads --env-file files, then -e flags: KEY=VALUE as it is, KEY
// alone from the caller's environment (dropped when unset there).
func parseEnv(flags, files []string) ([]string, error) {
	var out []string
	add := func(kv string) {
		if k, _, hasValue := strings.Cut(kv, "="); !hasValue {
			if v, ok := os.LookupEnv(k); ok {
				out = append(out, k+"="+v)
			}
			return
		}
		out = append(out, kv)
	}
	for _, f := range files {
		lines, err := readKVFile(f)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			if k, _, _ := strings.Cut(l.text, "="); k == "" || strings.ContainsAny(k, " \t") {
				return nil, fmt.Errorf("invalid environment variable %q in %s line %d: the name must not be empty or contain whitespace", l.text, f, l.n)
			}
			add(l.text)
		}
	}
	for _, e := range flags {
		if k, _, _ := strings.Cut(e, "="); k == "" {
			return nil, fmt.Errorf(`invalid argument %q for "-e, --env" flag: invalid environment variable: %s`, e, e)
		}
		add(e)
	}
	return out, nil
}

type kvLine struct {
	text string
	n    int
}

// readKVFile reads docker's env/label file format: one entry a line,
// leading whitespace and blank lines ignored, # starts a comment line.
func readKVFile(path string) ([]kvLine, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []kvLine
	text := strings.TrimPrefix(string(data), "\ufeff")
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimLeft(strings.TrimRight(line, "\r"), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, kvLine{text: line, n: i + 1})
	}
	return out, nil
}

// parseLabels reads --label-file files, then -l flags (KEY=VALUE or KEY).
func parseLabels(flags, files []string) (map[string]string, error) {
	out := map[string]string{}
	var all []string
	for _, f := range files {
		lines, err := readKVFile(f)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			all = append(all, l.text)
		}
	}
	all = append(all, flags...)
	for _, l := range all {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, fmt.Errorf(`invalid argument %q for "-l, --label" flag: empty label name`, l)
		}
		out[k] = v
	}
	return out, nil
}

// create sends the create request and returns the new container's ID.
func (a *app) create(o *runOptions, args []string) (string, error) {
	req, err := o.request(args[0], args[1:])
	if err != nil {
		return "", &statusError{code: exitDaemon, msg: "moss: " + err.Error()}
	}
	for _, w := range o.mounts.warnings {
		fmt.Fprintf(a.errw, "WARNING: %s\n", w)
	}
	if o.tty {
		if size := a.consoleSize(); size != nil {
			req.HostConfig.ConsoleSize = *size
		}
	}
	cl, err := a.client()
	if err != nil {
		return "", err
	}
	q := url.Values{}
	if o.name != "" {
		q.Set("name", o.name)
	}
	if o.pull == "always" {
		if err := a.pull(&pullOptions{forRun: true}, args[0]); err != nil {
			return "", runFailure(err)
		}
	}
	var resp container.CreateResponse
	err = cl.call(http.MethodPost, "/containers/create", q, req, &resp)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusNotFound && strings.HasPrefix(ae.msg, "No such image") && o.pull == "missing" {
		// As docker run: pull the missing image, then create again.
		fmt.Fprintf(a.errw, "Unable to find image '%s' locally\n", args[0])
		if perr := a.pull(&pullOptions{forRun: true}, args[0]); perr != nil {
			return "", runFailure(perr)
		}
		err = cl.call(http.MethodPost, "/containers/create", q, req, &resp)
	}
	if err != nil {
		return "", runFailure(err)
	}
	for _, w := range resp.Warnings {
		fmt.Fprintf(a.errw, "WARNING: %s\n", w)
	}
	return resp.ID, nil
}

// runFailure maps an error of create or start to docker run's exit codes:
// 127 when the command was not found, 126 when it cannot be invoked, 125
// otherwise.
func runFailure(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	code := exitDaemon
	switch m := ae.msg; {
	case strings.Contains(m, "executable file not found"), strings.Contains(m, "no such file or directory"):
		code = exitNoCmd
	case strings.Contains(m, "permission denied"), strings.Contains(m, "exec format error"):
		code = exitCannot
	}
	msg := "moss: " + ae.Error()
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return &statusError{code: code, msg: msg}
}

func (a *app) runCmd() *cobra.Command {
	o := &runOptions{}
	c := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.fromFlags(cmd.Flags())
			return a.run(o, args)
		},
	}
	a.deferFlags(c, func() { o.addFlags(c.Flags(), true) })
	return c
}

func (a *app) createCmd() *cobra.Command {
	o := &runOptions{}
	c := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.fromFlags(cmd.Flags())
			id, err := a.create(o, args)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out, id)
			return nil
		},
	}
	a.deferFlags(c, func() { o.addFlags(c.Flags(), false) })
	return c
}

// run is docker run: create, then either start and print the ID (-d) or
// attach, wait, start and copy the output until the container ends, exiting
// with its status.
func (a *app) run(o *runOptions, args []string) error {
	if _, err := escape.Parse(o.detachKeys); err != nil {
		return &statusError{code: exitDaemon, msg: "moss: " + err.Error()}
	}
	id, err := a.create(o, args)
	if err != nil {
		return err
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	if o.detach {
		if err := cl.call(http.MethodPost, "/containers/"+id+"/start", nil, nil, nil); err != nil {
			return runFailure(err)
		}
		fmt.Fprintln(a.out, id)
		return nil
	}
	stdin, stdout, stderr, _ := o.streams()
	code, _, err := a.attachWait(id, attachOptions{
		stdin: stdin, stdout: stdout, stderr: stderr, tty: o.tty,
		removed: o.rm, sigProxy: o.sigProxy, start: true, detachKeys: o.detachKeys,
	})
	if err != nil {
		return err
	}
	if code != 0 {
		return &statusError{code: code}
	}
	return nil
}

// endpoints resolves --network, --network-alias, --ip and --ip6 into the
// network mode and the endpoints to create, as docker does: the first
// network takes the endpoint flags; a single network without options gets
// no endpoint configuration (the agent creates the endpoint); endpoint
// flags without --network apply to the default network.
func (o *runOptions) endpoints() (container.NetworkMode, map[string]*network.EndpointSettings, error) {
	eps := map[string]*network.EndpointSettings{}
	nets := o.networks.list
	given := len(nets)
	var mac net.HardwareAddr
	if o.mac != "" {
		m, err := net.ParseMAC(o.mac)
		if err != nil || len(m) != 6 {
			return "", nil, fmt.Errorf("invalid argument %q for \"--mac-address\" flag: %s is not a valid mac address", o.mac, o.mac)
		}
		mac = m
	}
	if given == 0 {
		if len(o.aliases.vals) == 0 && !o.ip.addr.IsValid() && !o.ip6.addr.IsValid() && mac == nil {
			return "", eps, nil
		}
		nets = []netAttach{{target: network.NetworkDefault}}
	}
	var named, other bool
	for i, n := range nets {
		if userDefined(n.target) {
			named = true
		} else {
			other = true
		}
		if i == 0 {
			switch {
			case len(n.aliases) > 0 && len(o.aliases.vals) > 0:
				return "", nil, errors.New("conflicting options: cannot specify both --network-alias and per-network alias")
			case n.ipv4.IsValid() && o.ip.addr.IsValid():
				return "", nil, errors.New("conflicting options: cannot specify both --ip and per-network IPv4 address")
			case n.ipv6.IsValid() && o.ip6.addr.IsValid():
				return "", nil, errors.New("conflicting options: cannot specify both --ip6 and per-network IPv6 address")
			}
			if len(o.aliases.vals) > 0 {
				n.aliases = o.aliases.vals
			}
			if o.ip.addr.IsValid() {
				n.ipv4 = o.ip.addr
			}
			if o.ip6.addr.IsValid() {
				n.ipv6 = o.ip6.addr
			}
		}
		ep, err := n.endpoint()
		if err != nil {
			return "", nil, err
		}
		if i == 0 && mac != nil {
			ep.MacAddress = network.HardwareAddr(mac)
		}
		if _, dup := eps[n.target]; dup {
			return "", nil, fmt.Errorf("network %q is specified multiple times", n.target)
		}
		if given == 1 && reflect.ValueOf(*ep).IsZero() {
			continue
		}
		eps[n.target] = ep
	}
	if named && other {
		return "", nil, errors.New("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	return container.NetworkMode(nets[0].target), eps, nil
}
