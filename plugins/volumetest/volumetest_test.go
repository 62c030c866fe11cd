package volumetest_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/moss-containers/moss/plugins"
	"github.com/moss-containers/moss/plugins/volumetest"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// dirDriver is the smallest driver that keeps the contract: a directory
// per volume under StateDir, and all its state in StateDir/state.json.
type dirDriver struct {
	mu    sync.Mutex
	dir   string
	state map[string]*dirVolume
}

type dirVolume struct {
	V      *volumev1.Volume `json:"v"`
	Mounts map[string]bool  `json:"mounts"`
}

var dirName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func (d *dirDriver) Info(context.Context) (*basev1.InfoResponse, error) {
	return &basev1.InfoResponse{Name: "dir", Kind: plugins.KindVolume, Version: "test"}, nil
}

func (d *dirDriver) Configure(_ context.Context, req *basev1.ConfigureRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dir, d.state = req.GetStateDir(), map[string]*dirVolume{}
	data, err := os.ReadFile(filepath.Join(d.dir, "state.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(data, &d.state)
}

func (d *dirDriver) save() error {
	data, err := json.Marshal(d.state)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d.dir, "state.json"), data, 0o600)
}

func (d *dirDriver) Capabilities(context.Context) (*volumev1.CapabilitiesResponse, error) {
	return &volumev1.CapabilitiesResponse{Scope: "local"}, nil
}

func (d *dirDriver) Create(_ context.Context, req *volumev1.CreateRequest) (*volumev1.Volume, error) {
	if !dirName.MatchString(req.GetName()) {
		return nil, plugins.Invalid("bad name %q", req.GetName())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.state[req.GetName()]; ok {
		return v.V, nil
	}
	path := filepath.Join(d.dir, req.GetName())
	if err := os.Mkdir(path, 0o755); err != nil {
		return nil, err
	}
	v := &volumev1.Volume{Name: req.GetName(), Mountpoint: path, CreatedAt: time.Now().Format(time.RFC3339), Labels: req.GetLabels(), Options: req.GetOptions()}
	d.state[req.GetName()] = &dirVolume{V: v, Mounts: map[string]bool{}}
	return v, d.save()
}

func (d *dirDriver) get(name string) (*dirVolume, error) {
	v, ok := d.state[name]
	if !ok {
		return nil, plugins.NotFound("no volume %q", name)
	}
	return v, nil
}

func (d *dirDriver) Remove(_ context.Context, req *volumev1.RemoveRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(req.GetName())
	if err != nil {
		return err
	}
	if len(v.Mounts) > 0 {
		return plugins.InUse("volume %q is mounted", req.GetName())
	}
	delete(d.state, req.GetName())
	if err := os.RemoveAll(v.V.Mountpoint); err != nil {
		return err
	}
	return d.save()
}

func (d *dirDriver) Mount(_ context.Context, req *volumev1.MountRequest) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(req.GetName())
	if err != nil {
		return "", err
	}
	v.Mounts[req.GetMountId()] = true
	return v.V.Mountpoint, d.save()
}

func (d *dirDriver) Unmount(_ context.Context, req *volumev1.UnmountRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(req.GetName())
	if err != nil {
		return err
	}
	delete(v.Mounts, req.GetMountId())
	return d.save()
}

func (d *dirDriver) Get(_ context.Context, req *volumev1.GetRequest) (*volumev1.Volume, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(req.GetName())
	if err != nil {
		return nil, err
	}
	return v.V, nil
}

func (d *dirDriver) List(context.Context) ([]*volumev1.Volume, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*volumev1.Volume
	for _, v := range d.state {
		out = append(out, v.V)
	}
	return out, nil
}

// TestRun: the suite passes a driver that keeps the contract.
func TestRun(t *testing.T) {
	volumetest.Run(t, volumetest.Harness{
		Name:      "dir",
		New:       func(t *testing.T) plugins.VolumeDriver { return &dirDriver{} },
		Configure: func(t *testing.T) *basev1.ConfigureRequest { return &basev1.ConfigureRequest{StateDir: t.TempDir()} },
	})
}
