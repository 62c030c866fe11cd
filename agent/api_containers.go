package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/storage"

	"github.com/moss-containers/moss/agent/shim"
	"github.com/moss-containers/moss/internal/escape"
)

func (a *Agent) getContainers(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	for k := range f {
		switch k {
		case "status", "name", "label", "id", "ancestor", "exited", "health":
		default:
			return kindErr(errInvalid, "invalid filter '%s'", k)
		}
	}
	for _, s := range f["status"] {
		switch s {
		case "created", "restarting", "running", "removing", "paused", "exited", "dead":
		default:
			return kindErr(errInvalid, "invalid filter 'status=%s'", s)
		}
	}
	for _, h := range f["health"] {
		if container.ValidateHealthStatus(container.HealthStatus(h)) != nil {
			return kindErr(errInvalid, "Unrecognised filter value for health: %s", h)
		}
	}
	all := boolParam(r, "all")
	limit := 0
	fmt.Sscanf(r.URL.Query().Get("limit"), "%d", &limit)
	now := time.Now()
	out := []container.Summary{}
	for _, c := range a.snapshot() {
		c.mu.Lock()
		s := a.summary(c, now)
		c.mu.Unlock()
		if s.State == "removing" && c.State.Status == "gone" {
			continue
		}
		if !all && len(f["status"]) == 0 && s.State != "running" && s.State != "restarting" {
			continue
		}
		if !matchContainer(f, c, s) {
			continue
		}
		out = append(out, s)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// anyOf holds when no values are given or ok holds for one of them.
func anyOf(vals []string, ok func(string) bool) bool {
	if len(vals) == 0 {
		return true
	}
	for _, v := range vals {
		if ok(v) {
			return true
		}
	}
	return false
}

func matchContainer(f map[string][]string, c *Container, s container.Summary) bool {
	return anyOf(f["status"], func(v string) bool { return string(s.State) == v }) &&
		anyOf(f["name"], func(v string) bool { return strings.Contains(c.Name, strings.TrimPrefix(v, "/")) }) &&
		anyOf(f["id"], func(v string) bool { return strings.HasPrefix(c.ID, v) }) &&
		anyOf(f["ancestor"], func(v string) bool { return v == c.Image || strings.TrimPrefix(v, "sha256:") == c.ImageID }) &&
		anyOf(f["exited"], func(v string) bool { return s.State == "exited" && fmt.Sprint(c.State.ExitCode) == v }) &&
		anyOf(f["health"], func(v string) bool { return healthStatus(s.Health) == v }) &&
		matchLabels(f["label"], c.Config.Labels)
}

func (c *Container) command() string {
	return strings.Join(append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...), " ")
}

// summary is the docker ps view of c. Callers hold c.mu.
func (a *Agent) summary(c *Container, now time.Time) container.Summary {
	st := c.State.Status
	if st == "gone" {
		st = "removing"
	} else if c.State.Restarting {
		st = "restarting"
	}
	s := container.Summary{
		ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Image, ImageID: "sha256:" + c.ImageID,
		Command: c.command(), Created: c.Created.Unix(), Ports: portSummary(c),
		Labels: c.Config.Labels, State: container.ContainerState(st), Status: c.statusString(now),
		NetworkSettings: &container.NetworkSettingsSummary{Networks: a.networkSettings(c).Networks},
		Mounts:          c.apiMounts(), Health: healthSummary(c),
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	if s.HostConfig.NetworkMode == "" {
		s.HostConfig.NetworkMode = "bridge"
	}
	return s
}

func (a *Agent) getContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	writeJSON(w, http.StatusOK, a.inspect(c))
	return nil
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// inspect is the docker inspect view of c. Callers hold c.mu.
func (a *Agent) inspect(c *Container) container.InspectResponse {
	st := c.State
	b := a.bundle(c.ID)
	args := append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...)
	path := ""
	if len(args) > 0 {
		path, args = args[0], args[1:]
	}
	status := st.Status
	if status == "gone" {
		status = "removing"
	}
	if st.Paused && status == "running" {
		status = "paused"
	}
	resp := container.InspectResponse{
		ID: c.ID, Created: rfc3339(c.Created), Path: path, Args: args,
		State: &container.State{
			Status: container.ContainerState(status), Running: st.Status == "running", Paused: st.Paused && st.Status == "running", OOMKilled: st.OOMKilled,
			Dead: st.Status == "dead", Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error,
			StartedAt: rfc3339(st.StartedAt), FinishedAt: rfc3339(st.FinishedAt),
		},
		Image:          "sha256:" + c.ImageID,
		ResolvConfPath: filepath.Join(b, "etc", "resolv.conf"),
		HostnamePath:   filepath.Join(b, "etc", "hostname"),
		HostsPath:      filepath.Join(b, "etc", "hosts"),
		LogPath:        filepath.Join(b, shim.LogFile),
		Name:           "/" + c.Name, Driver: a.store.Driver(), Platform: "linux",
		HostConfig: c.HostConfig, Config: c.Config, Mounts: c.apiMounts(),
		NetworkSettings: a.networkSettings(c),
	}
	inspectPolicy(c, &resp)
	if data, err := a.store.ContainerLayerData(c.ID); err == nil {
		resp.GraphDriver = &storage.DriverData{Name: a.store.Driver(), Data: data}
	}
	return resp
}

// copyInput copies a client's input to dst, on a TTY through the detach
// keys; it reports whether they ended it.
func copyInput(dst io.Writer, src io.Reader, tty bool, keys []byte) (detached bool) {
	if tty {
		src = escape.NewReader(src, keys)
	}
	_, err := io.Copy(dst, src)
	return errors.Is(err, escape.ErrDetached)
}

// hijackStream takes over the connection of an attach or exec start and
// answers it: 101 UPGRADED when the client asked to upgrade to tcp
// (docker's CLI does), else 200; a raw stream for a TTY, else Docker's
// multiplexed one.
func hijackStream(w http.ResponseWriter, r *http.Request, tty bool) (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("connection cannot be hijacked")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	ct := "application/vnd.docker.multiplexed-stream"
	if tty {
		ct = "application/vnd.docker.raw-stream"
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "tcp") {
		fmt.Fprintf(buf, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", ct)
	} else {
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", ct)
	}
	if err := buf.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, buf, nil
}

// postResize sets the size of a running container's TTY.
func (a *Agent) postResize(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	h, wd, err := sizeParams(r)
	if err != nil {
		return err
	}
	if err := checkRunning(c); err != nil {
		return err
	}
	if !c.Config.Tty {
		return kindErr(errConflict, "container %s has no TTY to resize", c.ID)
	}
	if err := shim.Resize(a.socket(c.ID), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// postAttach hijacks the connection and streams the container's output with
// Docker's multiplexed framing, and the client's input to the container's
// stdin when it asks for it and the container keeps stdin open (-i).
func (a *Agent) postAttach(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	if !boolParam(r, "stream") && !boolParam(r, "logs") {
		return kindErr(errInvalid, "attach: set stream=1 or logs=1")
	}
	stdin, stdout, stderr := boolParam(r, "stdin"), boolParam(r, "stdout"), boolParam(r, "stderr")
	keys, err := escape.Parse(r.URL.Query().Get("detachKeys"))
	if err != nil {
		return kindErr(errInvalid, "%s", err.Error())
	}
	get, err := a.attach(c, stdin, stdout, stderr)
	if err != nil {
		return err
	}
	a.containerEvent(c, events.ActionAttach, nil)
	conn, buf, err := hijackStream(w, r, c.Config.Tty)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A client that half-closes its side (no stdin) still reads: the
	// stream ends when the container's output ends or a write fails.
	stream, err := get()
	if err != nil || stream == nil {
		return nil
	}
	defer stream.Close()
	if stdin && c.Config.OpenStdin {
		// The client's input, until it half-closes; buffered bytes first.
		// On a TTY the detach keys end the attach, as docker's do.
		go func() {
			if copyInput(stream, buf.Reader, c.Config.Tty, keys) {
				stream.Close()
				return
			}
			_ = stream.CloseWrite()
		}()
	}
	_, _ = io.Copy(conn, stream)
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return nil
}
