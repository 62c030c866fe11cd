package agent

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/moss-containers/moss/agent/spec"
	"github.com/moss-containers/moss/storage"
)

// APIVersion is the Docker Engine API version served; MinAPIVersion the
// oldest accepted.
const (
	APIVersion    = "1.47"
	MinAPIVersion = "1.24"
)

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+/`)

func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn func(http.ResponseWriter, *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				writeError(w, err)
			}
		})
	}
	h("GET /_ping", a.ping)
	h("HEAD /_ping", a.ping)
	h("GET /version", a.version)
	h("GET /info", a.info)
	h("GET /moss/v1/info", a.mossInfo)

	h("POST /containers/create", a.postCreate)
	h("GET /containers/json", a.getContainers)
	h("GET /events", a.getEvents)
	h("GET /containers/{id}/top", a.getTop)
	h("HEAD /containers/{id}/archive", a.headArchive)
	h("GET /containers/{id}/archive", a.getArchive)
	h("PUT /containers/{id}/archive", a.putArchive)
	h("GET /containers/{id}/export", a.getExport)
	h("GET /containers/{id}/changes", a.getChanges)
	h("GET /containers/{id}/json", a.getContainer)
	h("POST /containers/{id}/start", a.postStart)
	h("POST /containers/{id}/stop", a.postStop)
	h("POST /containers/{id}/restart", a.postRestart)
	h("POST /containers/{id}/kill", a.postKill)
	h("POST /containers/{id}/pause", a.postPause)
	h("POST /containers/{id}/unpause", a.postUnpause)
	h("POST /containers/{id}/update", a.postUpdate)
	h("GET /containers/{id}/stats", a.getStats)
	h("POST /containers/{id}/wait", a.postWait)
	h("POST /containers/{id}/rename", a.postRename)
	h("POST /containers/{id}/attach", a.postAttach)
	h("POST /containers/{id}/resize", a.postResize)
	h("GET /containers/{id}/logs", a.getLogs)
	h("DELETE /containers/{id}", a.deleteContainer)
	h("POST /containers/{id}/exec", a.postExecCreate)
	h("POST /exec/{id}/start", a.postExecStart)
	h("POST /exec/{id}/resize", a.postExecResize)
	h("GET /exec/{id}/json", a.getExecJSON)
	h("POST /containers/prune", a.postPrune)

	h("GET /networks", a.getNetworks)
	h("GET /networks/{id}", a.getNetwork)
	h("POST /networks/create", a.postNetworkCreate)
	h("DELETE /networks/{id}", a.deleteNetwork)
	h("POST /networks/prune", a.postNetworksPrune)
	h("POST /networks/{id}/connect", a.postNetworkConnect)
	h("POST /networks/{id}/disconnect", a.postNetworkDisconnect)
	h("GET /moss/v1/plugins", a.getPlugins)

	h("GET /volumes", a.getVolumes)
	h("POST /volumes/create", a.postVolumeCreate)
	h("POST /volumes/prune", a.postVolumesPrune)
	h("GET /volumes/{name}", a.getVolume)
	h("DELETE /volumes/{name}", a.deleteVolume)

	h("GET /images/json", a.getImages)
	h("GET /images/{name...}", a.getImageRoutes)
	h("POST /images/create", a.postImagesCreate)
	h("POST /images/load", a.postImagesLoad)
	h("POST /build", a.postBuild)
	h("GET /images/get", a.getImagesGet)
	h("POST /images/{name...}", a.postImageRoutes)
	h("DELETE /images/{name...}", a.deleteImage)
	h("POST /images/prune", a.postImagesPrune)
	h("POST /commit", a.postCommit)
	h("GET /system/df", a.getSystemDF)
	h("POST /auth", a.postAuth)
	h("POST /moss/v1/login", a.postMossLogin)
	h("POST /moss/v1/logout", a.postMossLogout)
	h("GET /moss/v1/images/resolve", a.getResolve)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if loc := versionPrefix.FindStringIndex(r.URL.Path); loc != nil {
			v := strings.Trim(r.URL.Path[1:loc[1]], "v/")
			if versionLess(v, MinAPIVersion) {
				writeError(w, kindErr(errInvalid, "client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, MinAPIVersion))
				return
			}
			r.URL.Path = r.URL.Path[loc[1]-1:]
			r.URL.RawPath = ""
		}
		w.Header().Set("Api-Version", APIVersion)
		w.Header().Set("Server", "Moss/"+Version+" ("+runtime.GOOS+")")
		if _, pattern := mux.Handler(r); pattern == "" {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
			return
		}
		t0 := time.Now()
		mux.ServeHTTP(w, r)
		a.log.Debug("request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery, "took", time.Since(t0))
		a.idle.Reset(idleAfter)
	})
}

// idleAfter is how long after its last request the agent gives the memory
// that serving took back to the system: Go's scavenger would keep it for
// minutes, and an idle agent should be small.
const idleAfter = 2 * time.Second

// Version is the Moss version, set at build time.
var Version = "dev"

func versionLess(a, b string) bool {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	ma, _ := strconv.Atoi(pa[0])
	mb, _ := strconv.Atoi(pb[0])
	if ma != mb {
		return ma < mb
	}
	na, nb := 0, 0
	if len(pa) > 1 {
		na, _ = strconv.Atoi(pa[1])
	}
	if len(pb) > 1 {
		nb, _ = strconv.Atoi(pb[1])
	}
	return na < nb
}

func writeJSON(w http.ResponseWriter, code int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, errNotModified):
		return http.StatusNotModified
	case errors.Is(err, errNotFound), errors.Is(err, storage.ErrNotFound), errors.Is(err, errNoCommand):
		return http.StatusNotFound
	case errors.Is(err, errInvalid), errors.Is(err, storage.ErrInvalid), errors.Is(err, spec.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, errConflict), errors.Is(err, storage.ErrInUse), errors.Is(err, storage.ErrExists):
		return http.StatusConflict
	case errors.Is(err, errCannotRun):
		return http.StatusBadRequest
	case errors.Is(err, errForbidden):
		return http.StatusForbidden
	case errors.Is(err, errUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) {
	code := statusOf(err)
	if code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, map[string]string{"message": err.Error()})
}

func decodeBody(r *http.Request, v interface{}) error {
	if r.Body == nil {
		return kindErr(errInvalid, "request body is empty")
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 8<<20))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return kindErr(errInvalid, "request body is empty")
		}
		return kindErr(errInvalid, "malformed request body: %v", err)
	}
	return nil
}

func boolParam(r *http.Request, k string) bool {
	v := strings.ToLower(r.URL.Query().Get(k))
	return v == "1" || v == "true" || v == "yes"
}

func (a *Agent) ping(w http.ResponseWriter, r *http.Request) error {
	hd := w.Header()
	hd.Set("Api-Version", APIVersion)
	hd.Set("Ostype", "linux")
	hd.Set("Docker-Experimental", "false")
	hd.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		hd.Set("Content-Length", "0")
		return nil
	}
	_, err := io.WriteString(w, "OK")
	return err
}

func (a *Agent) postCreate(w http.ResponseWriter, r *http.Request) error {
	var req container.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Config == nil {
		return kindErr(errInvalid, "config cannot be empty in order to create a container")
	}
	c, warnings, err := a.createContainer(r.URL.Query().Get("name"), req.Config, req.HostConfig, req.NetworkingConfig)
	if err != nil {
		return err
	}
	if warnings == nil {
		warnings = []string{}
	}
	writeJSON(w, http.StatusCreated, container.CreateResponse{ID: c.ID, Warnings: warnings})
	return nil
}

func (a *Agent) postStart(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.startOrRemove(c); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func stopParams(r *http.Request) (int, time.Duration, bool, error) {
	q := r.URL.Query()
	sig := 0
	if s := q.Get("signal"); s != "" {
		n, err := spec.Signal(s)
		if err != nil {
			return 0, 0, false, err
		}
		sig = int(n)
	}
	if t := q.Get("t"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return 0, 0, false, kindErr(errInvalid, "invalid value for t: %s", t)
		}
		return sig, time.Duration(n) * time.Second, true, nil
	}
	return sig, 0, false, nil
}

func (c *Container) stopTimeout() time.Duration {
	if c.Config.StopTimeout != nil {
		return time.Duration(*c.Config.StopTimeout) * time.Second
	}
	return 10 * time.Second
}

func (a *Agent) postStop(w http.ResponseWriter, r *http.Request) error {
	return a.stopOrRestart(w, r, false)
}

func (a *Agent) postRestart(w http.ResponseWriter, r *http.Request) error {
	return a.stopOrRestart(w, r, true)
}

// stopOrRestart stops the container with the request's signal and timeout
// (else the container's), and starts it again for a restart.
func (a *Agent) stopOrRestart(w http.ResponseWriter, r *http.Request, restart bool) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	sig, t, ok, err := stopParams(r)
	if err != nil {
		return err
	}
	if !ok {
		t = c.stopTimeout()
	}
	err = a.stop(c, sysSignal(sig), t)
	if restart && errors.Is(err, errNotModified) {
		err = nil
	}
	if err != nil {
		return err
	}
	if restart {
		if err := a.start(c); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *Agent) postKill(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	sig := "SIGKILL"
	if s := r.URL.Query().Get("signal"); s != "" {
		sig = s
	}
	n, err := spec.Signal(sig)
	if err != nil {
		return err
	}
	if err := a.kill(c, n); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *Agent) postWait(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	cond := r.URL.Query().Get("condition")
	switch cond {
	case "", "not-running", "next-exit", "removed":
	default:
		return kindErr(errInvalid, "invalid condition: %q", cond)
	}
	c.mu.Lock()
	gen, status := c.State.Generation, c.State.Status
	removed := c.removed
	c.mu.Unlock()
	// Answer the headers at once: clients start the container only after
	// the wait request is accepted.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	ctx := r.Context()
	switch cond {
	case "removed":
		select {
		case <-removed:
		case <-ctx.Done():
			return nil
		}
	case "next-exit":
		if status == "running" {
			a.waitUntil(ctx, c, func(st State) bool { return st.Generation != gen || st.Status != "running" })
		} else {
			a.waitUntil(ctx, c, func(st State) bool { return st.Generation > gen && st.Status != "running" })
		}
	default:
		if status == "running" {
			a.waitUntil(ctx, c, func(st State) bool { return st.Generation != gen || st.Status != "running" })
		}
	}
	c.mu.Lock()
	resp := container.WaitResponse{StatusCode: int64(c.State.ExitCode)}
	if c.State.Error != "" {
		resp.Error = &container.WaitExitError{Message: c.State.Error}
	}
	c.mu.Unlock()
	return json.NewEncoder(w).Encode(resp)
}

// waitUntil waits until done holds for the container's state, the
// container is removed, or ctx ends.
func (a *Agent) waitUntil(ctx interface{ Done() <-chan struct{} }, c *Container, done func(State) bool) {
	for {
		c.mu.Lock()
		ok := done(c.State)
		ch, removed := c.changed, c.removed
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-removed:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (a *Agent) postRename(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(r.URL.Query().Get("name"), "/")
	if !validName.MatchString(name) {
		return kindErr(errInvalid, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	a.mu.Lock()
	if other, ok := a.names[name]; ok {
		a.mu.Unlock()
		if other == c.ID {
			return kindErr(errInvalid, "Renaming a container with the same name as its current name")
		}
		return kindErr(errConflict, "Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, other)
	}
	delete(a.names, c.Name)
	a.names[name] = c.ID
	a.mu.Unlock()
	c.mu.Lock()
	oldName := c.Name
	c.Name = name
	err = a.save(c)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	a.containerEvent(c, events.ActionRename, map[string]string{"oldName": "/" + oldName})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *Agent) deleteContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.remove(c, removal{force: boolParam(r, "force"), volumes: boolParam(r, "v")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *Agent) postPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	var deleted []string
	for _, c := range a.snapshot() {
		c.mu.Lock()
		ok := c.State.Status == "exited" || c.State.Status == "created"
		labels := c.Config.Labels
		c.mu.Unlock()
		if !ok || !matchLabels(f["label"], labels) {
			continue
		}
		if err := a.remove(c, removal{}); err == nil {
			deleted = append(deleted, c.ID)
		}
	}
	if deleted == nil {
		deleted = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]interface{}{"ContainersDeleted": deleted, "SpaceReclaimed": 0})
	return nil
}

func (a *Agent) snapshot() []*Container {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*Container, 0, len(a.containers))
	for _, c := range a.containers {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// parseFilters decodes Docker's filters parameter: {"key":["v"]} or the old
// {"key":{"v":true}} form.
func parseFilters(r *http.Request) (map[string][]string, error) {
	out := map[string][]string{}
	raw := r.URL.Query().Get("filters")
	if raw == "" {
		return out, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, kindErr(errInvalid, "invalid filters: %v", err)
	}
	for k, v := range m {
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			var set map[string]bool
			if err := json.Unmarshal(v, &set); err != nil {
				return nil, kindErr(errInvalid, "invalid filter %q", k)
			}
			for s := range set {
				list = append(list, s)
			}
		}
		out[k] = list
	}
	return out, nil
}

func matchLabels(want []string, labels map[string]string) bool {
	for _, l := range want {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

func (a *Agent) getLogs(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	stdout, stderr := boolParam(r, "stdout"), boolParam(r, "stderr")
	if !stdout && !stderr {
		return kindErr(errInvalid, "Bad parameters: you must choose at least one stream")
	}
	opts := logOptions{stdout: stdout, stderr: stderr, timestamps: boolParam(r, "timestamps"), follow: boolParam(r, "follow"), tail: -1}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return kindErr(errInvalid, "invalid tail value %q", t)
		}
		opts.tail = n
	}
	if opts.since, err = parseTime(q.Get("since")); err != nil {
		return err
	}
	if opts.until, err = parseTime(q.Get("until")); err != nil {
		return err
	}
	ct := "application/vnd.docker.multiplexed-stream"
	if c.Config != nil && c.Config.Tty {
		opts.raw, ct = true, "application/vnd.docker.raw-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	// streamLogs writes in large batches of its own.
	return a.streamLogs(r.Context(), c, opts, w, func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	})
}

// parseTime accepts Docker's since/until forms: Unix seconds with optional
// fraction, or RFC 3339.
func parseTime(s string) (time.Time, error) {
	if s == "" || s == "0" {
		return time.Time{}, nil
	}
	if sec, frac, ok := strings.Cut(s, "."); ok || !strings.ContainsAny(s, "-:T") {
		n, err := strconv.ParseInt(sec, 10, 64)
		if err == nil {
			ns := int64(0)
			if ok {
				frac = (frac + "000000000")[:9]
				ns, _ = strconv.ParseInt(frac, 10, 64)
			}
			return time.Unix(n, ns), nil
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, kindErr(errInvalid, "invalid time %q: use a Unix timestamp or RFC 3339", s)
	}
	return t, nil
}

func sysSignal(n int) syscall.Signal { return syscall.Signal(n) }

func (a *Agent) getImageRoutes(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	switch {
	case strings.HasSuffix(name, "/json"):
		return a.getImage(w, r, strings.TrimSuffix(name, "/json"))
	case strings.HasSuffix(name, "/history"):
		return a.getImageHistory(w, r, strings.TrimSuffix(name, "/history"))
	case strings.HasSuffix(name, "/get"):
		return a.saveImages(w, r, []string{strings.TrimSuffix(name, "/get")})
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
	return nil
}

func (a *Agent) postImageRoutes(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if strings.HasSuffix(name, "/tag") {
		return a.postTag(w, r, strings.TrimSuffix(name, "/tag"))
	}
	if strings.HasSuffix(name, "/push") {
		return a.postPush(w, r, strings.TrimSuffix(name, "/push"))
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
	return nil
}
