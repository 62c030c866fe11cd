// Package dockertest is a small Docker volume plugin for tests: it speaks
// Docker's volume-plugin HTTP protocol (/Plugin.Activate,
// /VolumeDriver.*) and keeps each volume as a directory under a root. It
// behaves like the strict plugins found in the wild (rclone's among them):
// creating an existing volume is an error, a mounted volume cannot be
// removed, a volume has a mountpoint only while it is mounted, mounts are
// counted by the caller's ID. The adapter's tests serve it in-process;
// contrib/dockervolume/testplugin is the same plugin as a program.
//
// It owns its root directory and nothing else.
package dockertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"
)

// Mimetype is what Docker sends in the Accept header of every call.
const Mimetype = "application/vnd.docker.plugins.v1.2+json"

// Plugin is a Docker volume plugin whose volumes are directories under
// Root (and its creation time beside it, in .NAME.created). Its zero
// value but Root is a plugin that implements
// VolumeDriver with local scope. Mounts are counted in memory, as most
// Docker plugins do: a restarted plugin has none.
type Plugin struct {
	// Root holds the volumes, one directory each.
	Root string
	// Implements is what /Plugin.Activate answers; nil is ["VolumeDriver"].
	Implements []string
	// Scope is what /VolumeDriver.Capabilities answers; "" answers 404,
	// as plugins older than Docker 1.12 do.
	Scope string
	// OnMount, if set, is called at the start of every Mount with the
	// response writer, and the Mount goes on if it returns true: a test
	// can hijack the connection and drop it, a program exit, to play a
	// plugin that crashes while mounting.
	OnMount func(w http.ResponseWriter) bool

	mu     sync.Mutex
	mounts map[string]map[string]bool // volume → IDs mounted
	calls  []string
}

// Volume is a volume as the protocol carries it.
type Volume struct {
	Name       string
	Mountpoint string         `json:",omitempty"`
	CreatedAt  string         `json:",omitempty"`
	Status     map[string]any `json:",omitempty"`
}

// request is the union of the protocol's request bodies.
type request struct {
	Name string
	ID   string
	Opts map[string]string
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Calls returns the methods called so far ("VolumeDriver.Mount"…), in
// order.
func (p *Plugin) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

// MountCount returns how many mount IDs hold the volume name.
func (p *Plugin) MountCount(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.mounts[name])
}

// ServeHTTP answers one call of the protocol.
func (p *Plugin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method := r.URL.Path[1:]
	p.mu.Lock()
	p.calls = append(p.calls, method)
	p.mu.Unlock()
	if r.Method != http.MethodPost {
		reply(w, http.StatusMethodNotAllowed, map[string]string{"Err": "POST only"})
		return
	}
	if r.Header.Get("Accept") != Mimetype {
		reply(w, http.StatusBadRequest, map[string]string{"Err": "Accept is not " + Mimetype})
		return
	}
	var req request
	if method != "Plugin.Activate" {
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"Err": "bad request body: " + err.Error()})
			return
		}
	}
	if method == "VolumeDriver.Mount" && p.OnMount != nil && !p.OnMount(w) {
		return
	}
	resp, err := p.handle(method, &req)
	switch {
	case errors.Is(err, errNoMethod):
		http.NotFound(w, r)
	case err != nil:
		// Docker plugins answer errors with status 500 and the message in
		// Err; some with 200, which the adapter takes as well.
		reply(w, http.StatusInternalServerError, map[string]string{"Err": err.Error()})
	default:
		reply(w, http.StatusOK, resp)
	}
}

var errNoMethod = errors.New("no such method")

func (p *Plugin) handle(method string, req *request) (any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mounts == nil {
		p.mounts = map[string]map[string]bool{}
	}
	if method != "Plugin.Activate" && method != "VolumeDriver.Capabilities" && method != "VolumeDriver.List" {
		if !validName.MatchString(req.Name) {
			return nil, fmt.Errorf("invalid volume name %q", req.Name)
		}
	}
	dir := filepath.Join(p.Root, req.Name)
	switch method {
	case "Plugin.Activate":
		impl := p.Implements
		if impl == nil {
			impl = []string{"VolumeDriver"}
		}
		return map[string][]string{"Implements": impl}, nil
	case "VolumeDriver.Capabilities":
		if p.Scope == "" {
			return nil, errNoMethod
		}
		return map[string]any{"Capabilities": map[string]string{"Scope": p.Scope}}, nil
	case "VolumeDriver.Create":
		if msg, ok := req.Opts["error"]; ok {
			return nil, errors.New(msg)
		}
		for k := range req.Opts {
			if k != "mode" {
				return nil, fmt.Errorf("unknown option %q", k)
			}
		}
		if err := os.Mkdir(dir, 0o755); errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("volume %s already exists", req.Name)
		} else if err != nil {
			return nil, err
		}
		now := time.Now().UTC().Format(time.RFC3339)
		return struct{}{}, os.WriteFile(createdFile(p.Root, req.Name), []byte(now), 0o644)
	case "VolumeDriver.Remove":
		if _, err := p.volume(req.Name); err != nil {
			return nil, err
		}
		if len(p.mounts[req.Name]) > 0 {
			return nil, fmt.Errorf("volume %s is in use", req.Name)
		}
		_ = os.Remove(createdFile(p.Root, req.Name))
		return struct{}{}, os.RemoveAll(dir)
	case "VolumeDriver.Mount":
		if _, err := p.volume(req.Name); err != nil {
			return nil, err
		}
		if req.ID == "" {
			return nil, errors.New("mount without an ID")
		}
		if p.mounts[req.Name] == nil {
			p.mounts[req.Name] = map[string]bool{}
		}
		p.mounts[req.Name][req.ID] = true
		return map[string]string{"Mountpoint": dir}, nil
	case "VolumeDriver.Unmount":
		if _, err := p.volume(req.Name); err != nil {
			return nil, err
		}
		if !p.mounts[req.Name][req.ID] {
			return nil, fmt.Errorf("volume %s is not mounted by %s", req.Name, req.ID)
		}
		delete(p.mounts[req.Name], req.ID)
		return struct{}{}, nil
	case "VolumeDriver.Path":
		v, err := p.volume(req.Name)
		if err != nil {
			return nil, err
		}
		return map[string]string{"Mountpoint": v.Mountpoint}, nil
	case "VolumeDriver.Get":
		v, err := p.volume(req.Name)
		if err != nil {
			return nil, err
		}
		return map[string]any{"Volume": v}, nil
	case "VolumeDriver.List":
		entries, err := os.ReadDir(p.Root)
		if err != nil {
			return nil, err
		}
		vs := []*Volume{}
		for _, e := range entries {
			if v, err := p.volume(e.Name()); err == nil {
				vs = append(vs, v)
			}
		}
		sort.Slice(vs, func(i, j int) bool { return vs[i].Name < vs[j].Name })
		return map[string]any{"Volumes": vs}, nil
	}
	return nil, errNoMethod
}

// volume describes the volume name; p.mu is held.
func (p *Plugin) volume(name string) (*Volume, error) {
	fi, err := os.Stat(filepath.Join(p.Root, name))
	if err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("no such volume: %s", name)
	}
	created, _ := os.ReadFile(createdFile(p.Root, name))
	v := &Volume{
		Name:      name,
		CreatedAt: string(created),
		// A number, as plugins put anything in Status.
		Status: map[string]any{"mounts": len(p.mounts[name])},
	}
	if len(p.mounts[name]) > 0 {
		v.Mountpoint = filepath.Join(p.Root, name)
	}
	return v, nil
}

// createdFile holds a volume's creation time (a directory's own times
// change with its content).
func createdFile(root, name string) string { return filepath.Join(root, "."+name+".created") }

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", Mimetype)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// Listen listens on the unix socket path, replacing a stale socket file
// left by an earlier run.
func Listen(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	return net.Listen("unix", path)
}
