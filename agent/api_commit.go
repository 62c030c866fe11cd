package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/moss-containers/moss/agent/cgroup"
	"github.com/moss-containers/moss/agent/spec"
	"github.com/moss-containers/moss/storage"
)

// commitResponse is Docker's answer to /commit, with the warnings Moss
// adds (a commit that could not pause the container).
type commitResponse struct {
	ID       string   `json:"Id"`
	Warnings []string `json:"Warnings,omitempty"`
}

// postCommit is docker commit: an image of the container's changes, its
// configuration the container's (or the request body's) with the
// changes applied. The container is paused meanwhile, as docker does,
// when its cgroup has a freezer; rootless containers on hosts that do not
// delegate cgroups have none, and are committed running, with a warning.
func (a *Agent) postCommit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	name := q.Get("container")
	if name == "" {
		return kindErr(errInvalid, "no container given: commit needs the container parameter")
	}
	c, err := a.lookup(name)
	if err != nil {
		return err
	}
	ref := ""
	if repo := q.Get("repo"); repo != "" {
		ref = repo
		if tag := q.Get("tag"); tag != "" {
			ref += ":" + tag
		}
	} else if q.Get("tag") != "" {
		return kindErr(errInvalid, "tag %q given without a repository", q.Get("tag"))
	}
	body, err := commitBody(r)
	if err != nil {
		return err
	}
	pause := q.Get("pause") == "" || boolParam(r, "pause")

	c.mu.Lock()
	status := c.State.Status
	ctrCfg := cloneConfig(c.Config)
	imageID := c.ImageID
	c.mu.Unlock()
	switch status {
	case "removing", "gone", "dead":
		return kindErr(errConflict, "cannot commit container %s: it is %s", shortID(c.ID), status)
	}
	parent, err := a.store.ImageConfig(imageID)
	if err != nil {
		return imageErr(err, imageID)
	}
	cfg, err := commitConfig(ctrCfg, body, q["changes"], parent.Config)
	if err != nil {
		return err
	}

	var warnings []string
	if pause && status == "running" {
		thaw, err := cgroup.Freeze(a.cgroupPaths(c.ID), 5*time.Second)
		if err != nil {
			msg := fmt.Sprintf("container %s was committed without pausing it: %v", shortID(c.ID), err)
			a.log.Warn(msg)
			warnings = append(warnings, msg)
		} else {
			a.emit(events.ContainerEventType, events.ActionPause, c.ID, map[string]string{"name": c.Name, "image": c.Image})
			defer func() {
				if err := thaw(); err != nil {
					a.log.Error("thaw container after commit", "id", c.ID, "error", err)
				}
				a.emit(events.ContainerEventType, events.ActionUnPause, c.ID, map[string]string{"name": c.Name, "image": c.Image})
			}()
		}
	}
	chs, err := a.store.Changes(c.ID)
	if err != nil {
		return err
	}
	img, err := a.store.Commit(r.Context(), c.ID, storage.CommitOptions{
		Ref: ref, Config: cfg, Author: q.Get("author"), Comment: q.Get("comment"),
		CreatedBy: strings.Join(ctrCfg.Cmd, " "), Exclude: mossMountPoints(chs),
	})
	if err != nil {
		return err
	}
	id := "sha256:" + img.ID
	a.containerEvent(c, events.ActionCommit, map[string]string{"comment": q.Get("comment"), "imageID": id, "imageRef": ref})
	writeJSON(w, http.StatusCreated, commitResponse{ID: id, Warnings: warnings})
	return nil
}

// commitBody reads the optional container configuration of a commit
// request: an empty body or JSON null means none.
func commitBody(r *http.Request) (*container.Config, error) {
	if r.Body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if s := strings.TrimSpace(string(data)); s == "" || s == "null" {
		return nil, nil
	}
	var cfg container.Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, kindErr(errInvalid, "malformed request body: %v", err)
	}
	return &cfg, nil
}

// mossMountPoints are the paths of a container's changes that only the
// mount points Moss makes (/etc/hostname, hosts, resolv.conf, the init)
// account for, with their directories when nothing else changed below
// them: docker keeps those in an init layer, neither diff nor commit show
// them. (agent/archive.go's getChanges hides the same.)
func mossMountPoints(chs []storage.Change) map[string]bool {
	hidden := map[string]bool{"/etc/hostname": true, "/etc/hosts": true, "/etc/resolv.conf": true, spec.InitPath: true}
	parents := map[string]bool{}
	for p := range hidden {
		parents[filepath.Dir(p)] = true
	}
	busy := map[string]bool{}
	for _, ch := range chs {
		if !hidden[ch.Path] {
			for d := filepath.Dir(ch.Path); d != "/"; d = filepath.Dir(d) {
				busy[d] = true
			}
		}
	}
	out := map[string]bool{}
	for _, ch := range chs {
		if (hidden[ch.Path] && ch.Kind == 1) || (parents[ch.Path] && !busy[ch.Path]) {
			out[ch.Path] = true
		}
	}
	return out
}

// cloneConfig deep-copies a container configuration.
func cloneConfig(c *container.Config) *container.Config {
	out := &container.Config{}
	if c == nil {
		return out
	}
	b, err := json.Marshal(c)
	if err == nil {
		err = json.Unmarshal(b, out)
	}
	if err != nil {
		// Every field of the type survives JSON; keep a shallow copy
		// should that ever change.
		cp := *c
		return &cp
	}
	return out
}

// commitConfig is the configuration of an image committed from a
// container, made as docker makes it: the request's configuration (else
// the container's), the changes applied, and the container's filling
// what that leaves empty. Moss merges the image's exposed ports, volumes,
// healthcheck, ONBUILD triggers and shell into no container's
// configuration, so the image's fill those in first.
func commitConfig(ctr, req *container.Config, changes []string, img dockerspec.DockerOCIImageConfig) (dockerspec.DockerOCIImageConfig, error) {
	full := cloneConfig(ctr)
	for p := range img.ExposedPorts {
		if port, err := network.ParsePort(p); err == nil {
			if full.ExposedPorts == nil {
				full.ExposedPorts = network.PortSet{}
			}
			full.ExposedPorts[port] = struct{}{}
		}
	}
	for v := range img.Volumes {
		if full.Volumes == nil {
			full.Volumes = map[string]struct{}{}
		}
		full.Volumes[v] = struct{}{}
	}
	if full.Healthcheck == nil {
		full.Healthcheck = img.Healthcheck
	}
	if full.OnBuild == nil {
		full.OnBuild = img.OnBuild
	}
	if full.Shell == nil {
		full.Shell = img.Shell
	}
	cfg := full
	if req != nil {
		cfg = cloneConfig(req)
	}
	if err := applyChanges(cfg, changes); err != nil {
		return dockerspec.DockerOCIImageConfig{}, err
	}
	mergeConfig(cfg, full)
	return imageConfigOf(cfg), nil
}

// mergeConfig fills what user leaves empty from the container's
// configuration, as docker's commit merge does.
func mergeConfig(user, ctr *container.Config) {
	if user.User == "" {
		user.User = ctr.User
	}
	if len(user.ExposedPorts) == 0 {
		user.ExposedPorts = ctr.ExposedPorts
	} else {
		for p := range ctr.ExposedPorts {
			user.ExposedPorts[p] = struct{}{}
		}
	}
	if len(user.Env) == 0 {
		user.Env = ctr.Env
	} else {
		have := map[string]bool{}
		for _, e := range user.Env {
			k, _, _ := strings.Cut(e, "=")
			have[k] = true
		}
		for _, e := range ctr.Env {
			if k, _, _ := strings.Cut(e, "="); !have[k] {
				user.Env = append(user.Env, e)
			}
		}
	}
	if user.Labels == nil {
		user.Labels = map[string]string{}
	}
	for k, v := range ctr.Labels {
		if _, ok := user.Labels[k]; !ok {
			user.Labels[k] = v
		}
	}
	if len(user.Entrypoint) == 0 {
		if len(user.Cmd) == 0 {
			user.Cmd = ctr.Cmd
		}
		if user.Entrypoint == nil {
			user.Entrypoint = ctr.Entrypoint
		}
	}
	if user.Healthcheck == nil {
		user.Healthcheck = ctr.Healthcheck
	} else if ctr.Healthcheck != nil {
		if len(user.Healthcheck.Test) == 0 {
			user.Healthcheck.Test = ctr.Healthcheck.Test
		}
		if user.Healthcheck.Interval == 0 {
			user.Healthcheck.Interval = ctr.Healthcheck.Interval
		}
		if user.Healthcheck.Timeout == 0 {
			user.Healthcheck.Timeout = ctr.Healthcheck.Timeout
		}
		if user.Healthcheck.StartPeriod == 0 {
			user.Healthcheck.StartPeriod = ctr.Healthcheck.StartPeriod
		}
		if user.Healthcheck.Retries == 0 {
			user.Healthcheck.Retries = ctr.Healthcheck.Retries
		}
	}
	if user.WorkingDir == "" {
		user.WorkingDir = ctr.WorkingDir
	}
	if len(user.Volumes) == 0 {
		user.Volumes = ctr.Volumes
	} else {
		for v := range ctr.Volumes {
			user.Volumes[v] = struct{}{}
		}
	}
	if user.StopSignal == "" {
		user.StopSignal = ctr.StopSignal
	}
	if user.OnBuild == nil {
		user.OnBuild = ctr.OnBuild
	}
	if user.Shell == nil {
		user.Shell = ctr.Shell
	}
}

// imageConfigOf is the image configuration of a container configuration.
func imageConfigOf(c *container.Config) dockerspec.DockerOCIImageConfig {
	var out dockerspec.DockerOCIImageConfig
	out.User, out.Env, out.Entrypoint, out.Cmd = c.User, c.Env, c.Entrypoint, c.Cmd
	out.WorkingDir, out.StopSignal, out.ArgsEscaped = c.WorkingDir, c.StopSignal, c.ArgsEscaped
	if len(c.Labels) > 0 {
		out.Labels = c.Labels
	}
	if len(c.ExposedPorts) > 0 {
		out.ExposedPorts = map[string]struct{}{}
		for p := range c.ExposedPorts {
			out.ExposedPorts[p.String()] = struct{}{}
		}
	}
	if len(c.Volumes) > 0 {
		out.Volumes = c.Volumes
	}
	out.Healthcheck, out.OnBuild, out.Shell = c.Healthcheck, c.OnBuild, c.Shell
	return out
}

// applyChanges applies Dockerfile instructions (import's and commit's
// --change, one or more lines each) to cfg as docker's BuildFromConfig
// does: CMD, ENTRYPOINT (which clears a CMD not given with it), ENV,
// LABEL, EXPOSE, VOLUME, USER, WORKDIR (relative to the previous one),
// STOPSIGNAL, HEALTHCHECK and ONBUILD.
func applyChanges(cfg *container.Config, changes []string) error {
	cmdSet := false
	for _, chs := range changes {
		for _, line := range strings.Split(chs, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			instr, rest, _ := strings.Cut(line, " ")
			rest = strings.TrimSpace(rest)
			instr = strings.ToUpper(instr)
			switch instr {
			case "CMD", "ENTRYPOINT":
			case "ENV", "LABEL", "EXPOSE", "VOLUME", "USER", "WORKDIR", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD":
				if rest == "" {
					return kindErr(errInvalid, "%s requires at least one argument", instr)
				}
			default:
				return kindErr(errInvalid, "%s is not a valid change command", instr)
			}
			if err := applyChange(cfg, instr, rest, &cmdSet); err != nil {
				return err
			}
		}
	}
	return nil
}

func applyChange(cfg *container.Config, instr, rest string, cmdSet *bool) error {
	switch instr {
	case "CMD":
		cfg.Cmd = commandList(rest)
		*cmdSet = true
	case "ENTRYPOINT":
		cfg.Entrypoint = commandList(rest)
		if !*cmdSet {
			cfg.Cmd = nil
		}
	case "ENV":
		pairs, err := keyValues(instr, rest)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			cfg.Env = spec.MergeEnv(cfg.Env, []string{kv[0] + "=" + kv[1]})
		}
	case "LABEL":
		pairs, err := keyValues(instr, rest)
		if err != nil {
			return err
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		for _, p := range strings.Fields(rest) {
			pr, err := network.ParsePortRange(p)
			if err != nil {
				return kindErr(errInvalid, "EXPOSE %s: %v", p, err)
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = network.PortSet{}
			}
			for port := range pr.All() {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
	case "VOLUME":
		var vs []string
		if !strings.HasPrefix(rest, "[") || json.Unmarshal([]byte(rest), &vs) != nil {
			vs = strings.Fields(rest)
		}
		for _, v := range vs {
			if !strings.HasPrefix(v, "/") {
				return kindErr(errInvalid, "VOLUME %s: the path must be absolute", v)
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
		}
	case "USER":
		cfg.User = rest
	case "WORKDIR":
		if !path.IsAbs(rest) {
			rest = path.Join("/", cfg.WorkingDir, rest)
		}
		cfg.WorkingDir = path.Clean(rest)
	case "STOPSIGNAL":
		if _, err := spec.Signal(rest); err != nil {
			return kindErr(errInvalid, "STOPSIGNAL %s: invalid signal", rest)
		}
		cfg.StopSignal = rest
	case "HEALTHCHECK":
		hc, err := parseHealthcheck(rest)
		if err != nil {
			return err
		}
		cfg.Healthcheck = hc
	case "ONBUILD":
		trigger, _, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(trigger) {
		case "ONBUILD", "FROM", "MAINTAINER":
			return kindErr(errInvalid, "%s isn't allowed as an ONBUILD trigger", strings.ToUpper(trigger))
		}
		cfg.OnBuild = append(cfg.OnBuild, rest)
	}
	return nil
}

// commandList is a CMD or ENTRYPOINT: a JSON array (exec form), else the
// shell form.
func commandList(rest string) []string {
	var l []string
	if strings.HasPrefix(rest, "[") && json.Unmarshal([]byte(rest), &l) == nil {
		return l
	}
	if rest == "" {
		return nil
	}
	return []string{"/bin/sh", "-c", rest}
}

// keyValues parses ENV and LABEL arguments: key=value words (quotes and
// backslashes as a shell reads them), or the old single "key value" form.
func keyValues(instr, rest string) ([][2]string, error) {
	words, err := shellWords(rest)
	if err != nil {
		return nil, kindErr(errInvalid, "%s %s: %v", instr, rest, err)
	}
	if len(words) == 0 {
		return nil, kindErr(errInvalid, "%s requires at least one argument", instr)
	}
	if !strings.Contains(words[0], "=") {
		// ENV key value with spaces
		_, v, _ := strings.Cut(rest, " ")
		if len(words) < 2 {
			return nil, kindErr(errInvalid, "%s %s: must have two arguments (name value) or be name=value", instr, rest)
		}
		v = strings.TrimSpace(v)
		if vw, err := shellWords(v); err == nil && len(vw) == 1 {
			v = vw[0]
		}
		return [][2]string{{words[0], v}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return nil, kindErr(errInvalid, "%s %s: syntax error - can't find = in %q. Must be of the form: name=value", instr, rest, w)
		}
		if k == "" {
			return nil, kindErr(errInvalid, "%s names can not be blank", instr)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// shellWords splits s into words at unquoted blanks, removing the quotes
// and backslash escapes.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			if r == '"' {
				quote = 0
			} else if r == '\\' && i+1 < len(rs) && strings.ContainsRune(`"\$`+"`", rs[i+1]) {
				i++
				cur.WriteRune(rs[i])
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			inWord = true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// parseHealthcheck reads HEALTHCHECK NONE or HEALTHCHECK [--interval=…
// --timeout=… --start-period=… --start-interval=… --retries=…] CMD ….
func parseHealthcheck(rest string) (*container.HealthConfig, error) {
	if strings.EqualFold(strings.TrimSpace(rest), "NONE") {
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	hc := &container.HealthConfig{}
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		rest = strings.TrimSpace(after)
		k, v, ok := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		if !ok {
			return nil, kindErr(errInvalid, "HEALTHCHECK: flag %s needs a value", flag)
		}
		var d time.Duration
		var err error
		switch k {
		case "interval", "timeout", "start-period", "start-interval":
			d, err = time.ParseDuration(v)
		case "retries":
			var n int
			n, err = strconv.Atoi(v)
			hc.Retries = n
		default:
			return nil, kindErr(errInvalid, "HEALTHCHECK: unknown flag %s", flag)
		}
		if err != nil {
			return nil, kindErr(errInvalid, "HEALTHCHECK: bad value for %s: %v", flag, err)
		}
		switch k {
		case "interval":
			hc.Interval = d
		case "timeout":
			hc.Timeout = d
		case "start-period":
			hc.StartPeriod = d
		case "start-interval":
			hc.StartInterval = d
		}
	}
	instr, cmd, _ := strings.Cut(rest, " ")
	if !strings.EqualFold(instr, "CMD") || strings.TrimSpace(cmd) == "" {
		return nil, kindErr(errInvalid, "HEALTHCHECK: want NONE or CMD and a command, got %q", rest)
	}
	cmd = strings.TrimSpace(cmd)
	var l []string
	if strings.HasPrefix(cmd, "[") && json.Unmarshal([]byte(cmd), &l) == nil {
		hc.Test = append([]string{"CMD"}, l...)
	} else {
		hc.Test = []string{"CMD-SHELL", cmd}
	}
	return hc, nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
