package agent

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/moss-containers/moss/agent/shim"
	"github.com/moss-containers/moss/internal/atomicfile"
)

// Container is the agent's record of one container, persisted as
// container.json in its bundle directory.
type Container struct {
	ID         string                `json:"id"`
	Name       string                `json:"name"`
	Created    time.Time             `json:"created"`
	Image      string                `json:"image"` // as the user named it
	ImageID    string                `json:"image_id"`
	Config     *container.Config     `json:"config"`
	HostConfig *container.HostConfig `json:"host_config"`
	State      State                 `json:"state"`
	Rootfs     string                `json:"rootfs,omitempty"`
	// Networks are the container's endpoints by network name: what the
	// user asked for (aliases, a static address) and, while it runs, what
	// the driver gave (address, gateway, MAC, endpoint ID).
	Networks map[string]*network.EndpointSettings `json:"networks,omitempty"`
	// NetNS is the bind mount of its network namespace while it runs, for
	// drivers of isolated namespaces.
	NetNS string `json:"netns,omitempty"`
	// Interfaces name each endpoint's interface (network → eth0…) while
	// it runs.
	Interfaces map[string]string `json:"interfaces,omitempty"`
	// Ports are its published ports while it runs.
	Ports []publishedPort `json:"ports,omitempty"`
	// Mounts are its volumes, bind mounts and tmpfs mounts
	// (container_mounts.go).
	Mounts []mountPoint `json:"mounts,omitempty"`

	// waiters are woken at every state change.
	changed chan struct{}
	// attachers are pending attach streams waiting for the start.
	attachers []*pendingAttach
	// warm is the warm container it claimed at its creation, until its
	// first start (warm.go); noWarm keeps its starts from making one.
	warm   *warmContainer
	noWarm bool
	// removed is closed when the container is gone.
	removed chan struct{}
	// restart is the restart policy's backoff and cancellation
	// (restart.go); health runs the health check (health.go).
	restart restartState
	health  *healthRun
	mu      sync.Mutex
}

// State is the container's run state.
type State struct {
	Status    string `json:"status"` // created, running, exited, removing, dead
	Pid       int    `json:"pid,omitempty"`
	ExitCode  int    `json:"exit_code"`
	Error     string `json:"error,omitempty"`
	OOMKilled bool   `json:"oom_killed,omitempty"`
	// Paused is set while its cgroup is frozen (pause).
	Paused     bool      `json:"paused,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Generation counts starts, so waiters can tell a new exit from an old.
	Generation int `json:"generation"`
	// RestartCount counts the restarts by the restart policy since the
	// user last started it; Restarting says one is pending; ManuallyStopped
	// that the user stopped it (restart.go).
	RestartCount    int  `json:"restart_count,omitempty"`
	Restarting      bool `json:"restarting,omitempty"`
	ManuallyStopped bool `json:"manually_stopped,omitempty"`
	// Health is the health check's status and last results (health.go).
	Health *container.Health `json:"health,omitempty"`
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func newID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func (a *Agent) bundle(id string) string { return filepath.Join(a.dirs.Containers(), id) }

// containerFiles are the directories and files of container id that go
// with it: its bundle, its libcontainer state, and the fast exec's files
// (shim.FilterCache, shim.PtraceMarker).
func (a *Agent) containerFiles(id string) []string {
	root := a.dirs.RuncRoot()
	return []string{a.bundle(id), filepath.Join(root, id), shim.FilterCache(root, id), shim.PtraceMarker(root, id)}
}

// socket keeps the path short: unix socket paths are limited to 107 bytes.
func (a *Agent) socket(id string) string {
	return filepath.Join(a.dirs.Runtime, "s", id[:16])
}

func (a *Agent) save(c *Container) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	path := filepath.Join(a.bundle(c.ID), "container.json")
	if c.HostConfig != nil && c.HostConfig.AutoRemove {
		// Removed when it exits: nothing to keep across a machine crash.
		return atomicfile.WriteUnsynced(path, b)
	}
	return atomicfile.Write(path, b)
}

// notify wakes everybody waiting for a state change. Callers hold c.mu.
func (c *Container) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// lookup finds a container by full ID, name, or unique ID prefix.
func (a *Agent) lookup(ref string) (*Container, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ref = strings.TrimPrefix(ref, "/")
	if c, ok := a.containers[ref]; ok {
		return c, nil
	}
	if id, ok := a.names[ref]; ok {
		return a.containers[id], nil
	}
	var found *Container
	if len(ref) > 0 {
		for id, c := range a.containers {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, kindErr(errInvalid, "multiple IDs found with provided prefix: %s", ref)
				}
				found = c
			}
		}
	}
	if found == nil {
		return nil, kindErr(errNotFound, "No such container: %s", ref)
	}
	return found, nil
}

// statusString is the human status of docker ps.
func (c *Container) statusString(now time.Time) string {
	s := c.State
	switch s.Status {
	case "running":
		up := "Up " + units.HumanDuration(now.Sub(s.StartedAt))
		if s.Paused {
			up += " (Paused)"
		}
		if h := s.Health; h != nil && h.Status == container.Starting {
			return up + " (health: starting)"
		} else if h != nil && h.Status != "" {
			return up + " (" + string(h.Status) + ")"
		}
		return up
	case "exited":
		if s.Restarting {
			return fmt.Sprintf("Restarting (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
		}
		if s.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", s.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
	case "created":
		return "Created"
	case "removing":
		return "Removal In Progress"
	case "dead":
		return "Dead"
	}
	return s.Status
}

// kindError carries a message for the user and a kind for the status code.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func kindErr(kind error, format string, args ...interface{}) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

var (
	errNotFound    = errors.New("not found")
	errInvalid     = errors.New("invalid argument")
	errConflict    = errors.New("conflict")
	errNotModified = errors.New("not modified")
	errCannotRun   = errors.New("cannot invoke")
	errNoCommand   = errors.New("command not found")
	errForbidden   = errors.New("forbidden")
	errUnavailable = errors.New("unavailable")
)
