package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/moss-containers/moss/plugins"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// Version is the plugin's version (go build -ldflags "-X main.Version=…").
var Version = "dev"

// validName is Docker's rule for volume names. It also keeps names from
// escaping the root directory ("..", "a/b").
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// driver is a plugins.VolumeDriver. Each volume is a directory,
// ROOT/volumes/NAME, holding the volume's data in data/ and what the
// driver knows of it in volume.json — including the mount IDs that hold
// it, so that a restarted plugin still knows which volumes are in use.
type driver struct {
	log hclog.Logger
	// mu makes the calls one at a time: simple, and quick enough for
	// volumes that are plain directories.
	mu   sync.Mutex
	root string // set by Configure
}

// meta is a volume's volume.json.
type meta struct {
	CreatedAt string            `json:"created_at"`
	Labels    map[string]string `json:"labels,omitempty"`
	Mounts    []string          `json:"mounts,omitempty"` // mount IDs that hold the volume
}

func newDriver(log hclog.Logger) *driver { return &driver{log: log} }

func (d *driver) Info(context.Context) (*basev1.InfoResponse, error) {
	return &basev1.InfoResponse{Name: "example", Kind: plugins.KindVolume, Version: Version}, nil
}

// Configure is called after every start of the plugin. The agent gives
// each plugin a state directory of its own that survives restarts; the
// option "root" (in moss.toml: [plugins.options.example] root = "…")
// puts the volumes elsewhere.
func (d *driver) Configure(_ context.Context, req *basev1.ConfigureRequest) error {
	root := req.GetStateDir()
	for k, v := range req.GetOptions() {
		if k != "root" {
			return plugins.Invalid("example: unknown option %q (the only option is root)", k)
		}
		if !filepath.IsAbs(v) {
			return plugins.Invalid("example: root %q is not an absolute path", v)
		}
		root = v
	}
	if root == "" {
		return plugins.Invalid("example: no state directory and no root option")
	}
	if err := os.MkdirAll(filepath.Join(root, "volumes"), 0o700); err != nil {
		return err
	}
	d.mu.Lock()
	d.root = root
	d.mu.Unlock()
	d.log.Info("configured", "root", root)
	return nil
}

func (d *driver) Capabilities(context.Context) (*volumev1.CapabilitiesResponse, error) {
	// "local": the volumes exist on this host only.
	return &volumev1.CapabilitiesResponse{Scope: "local"}, nil
}

// dir is the volume's directory. d.mu is held.
func (d *driver) dir(name string) (string, error) {
	if !validName.MatchString(name) {
		return "", plugins.Invalid("invalid volume name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed", name)
	}
	if d.root == "" {
		return "", errors.New("example: not configured")
	}
	return filepath.Join(d.root, "volumes", name), nil
}

// load reads a volume's volume.json; a volume that is not there is a
// NotFound error, which the agent can tell from other errors.
func (d *driver) load(name string) (string, *meta, error) {
	dir, err := d.dir(name)
	if err != nil {
		return "", nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "volume.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, plugins.NotFound("volume %q not found", name)
	}
	if err != nil {
		return "", nil, err
	}
	var m meta
	if err := json.Unmarshal(data, &m); err != nil {
		return "", nil, fmt.Errorf("volume %q: %w", name, err)
	}
	return dir, &m, nil
}

// save writes volume.json so that a crash leaves the old or the new one:
// a temporary file, synced, renamed over it.
func save(dir string, m *meta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "volume.json.tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "volume.json"))
}

func volume(name, dir string, m *meta) *volumev1.Volume {
	return &volumev1.Volume{
		Name:       name,
		Mountpoint: filepath.Join(dir, "data"),
		CreatedAt:  m.CreatedAt,
		Labels:     m.Labels,
		Status:     map[string]string{"mounts": fmt.Sprint(len(m.Mounts))},
	}
}

// Create makes the volume; an existing one is returned as it is. It is
// built beside its final place and renamed there, so that a crash never
// leaves half a volume under its name.
func (d *driver) Create(_ context.Context, req *volumev1.CreateRequest) (*volumev1.Volume, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := req.GetName()
	if dir, m, err := d.load(name); err == nil {
		return volume(name, dir, m), nil
	} else if !errors.Is(err, plugins.ErrNotFound) {
		return nil, err
	}
	for k := range req.GetOptions() {
		return nil, plugins.Invalid("example: unknown volume option %q (the example driver takes none)", k)
	}
	dir, _ := d.dir(name)
	tmp := filepath.Join(d.root, "volumes", "."+name+".new")
	_ = os.RemoveAll(tmp) // left by a crash
	m := &meta{CreatedAt: time.Now().UTC().Format(time.RFC3339), Labels: req.GetLabels()}
	if err := os.MkdirAll(filepath.Join(tmp, "data"), 0o755); err != nil {
		return nil, err
	}
	if err := save(tmp, m); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	d.log.Info("created", "volume", name)
	return volume(name, dir, m), nil
}

// Remove deletes the volume and its data, unless a mount ID holds it.
func (d *driver) Remove(_ context.Context, req *volumev1.RemoveRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := req.GetName()
	dir, m, err := d.load(name)
	if err != nil {
		return err
	}
	if len(m.Mounts) > 0 {
		return plugins.InUse("volume %q is in use (mounted %d times)", name, len(m.Mounts))
	}
	// Out of its name first: a crash while deleting leaves no volume
	// with half its data, only a directory that List does not show.
	gone := filepath.Join(d.root, "volumes", "."+name+".removed")
	_ = os.RemoveAll(gone)
	if err := os.Rename(dir, gone); err != nil {
		return err
	}
	d.log.Info("removed", "volume", name)
	return os.RemoveAll(gone)
}

// Mount returns the directory the agent bind-mounts into the container.
// A mount ID counts once however often it mounts.
func (d *driver) Mount(_ context.Context, req *volumev1.MountRequest) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dir, m, err := d.load(req.GetName())
	if err != nil {
		return "", err
	}
	if !slices.Contains(m.Mounts, req.GetMountId()) {
		m.Mounts = append(m.Mounts, req.GetMountId())
		if err := save(dir, m); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "data"), nil
}

// Unmount releases one mount ID. An ID (or a volume) that holds nothing
// is not an error: the agent may ask again after a crash.
func (d *driver) Unmount(_ context.Context, req *volumev1.UnmountRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	dir, m, err := d.load(req.GetName())
	if errors.Is(err, plugins.ErrNotFound) || errors.Is(err, plugins.ErrInvalid) {
		return nil
	}
	if err != nil {
		return err
	}
	if i := slices.Index(m.Mounts, req.GetMountId()); i >= 0 {
		m.Mounts = slices.Delete(m.Mounts, i, i+1)
		return save(dir, m)
	}
	return nil
}

func (d *driver) Get(_ context.Context, req *volumev1.GetRequest) (*volumev1.Volume, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dir, m, err := d.load(req.GetName())
	if err != nil {
		return nil, err
	}
	return volume(req.GetName(), dir, m), nil
}

func (d *driver) List(context.Context) ([]*volumev1.Volume, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.root == "" {
		return nil, errors.New("example: not configured")
	}
	entries, err := os.ReadDir(filepath.Join(d.root, "volumes"))
	if err != nil {
		return nil, err
	}
	var out []*volumev1.Volume
	for _, e := range entries {
		// Skips what is not a volume: .NAME.new, .NAME.removed.
		if dir, m, err := d.load(e.Name()); err == nil {
			out = append(out, volume(e.Name(), dir, m))
		}
	}
	return out, nil
}
