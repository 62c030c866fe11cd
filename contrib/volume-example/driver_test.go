package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/moss-containers/moss/plugins"
	"github.com/moss-containers/moss/plugins/volumetest"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// The tests call the driver over gRPC (plugins.TestVolumeClient), as the
// agent does, so errors cross the same boundary as in production.

func testDriver(t *testing.T) plugins.VolumeDriver {
	return plugins.TestVolumeClient(t, newDriver(hclog.NewNullLogger()))
}

func TestConformance(t *testing.T) {
	volumetest.Run(t, volumetest.Harness{
		Name: "example",
		New:  testDriver,
		Configure: func(t *testing.T) *basev1.ConfigureRequest {
			return &basev1.ConfigureRequest{StateDir: t.TempDir(), RunDir: t.TempDir()}
		},
	})
}

func TestLayout(t *testing.T) {
	c := context.Background()
	root := t.TempDir()
	d := testDriver(t)
	if err := d.Configure(c, &basev1.ConfigureRequest{StateDir: t.TempDir(), Options: map[string]string{"root": root}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create(c, &volumev1.CreateRequest{Name: "v1", Labels: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	path, err := d.Mount(c, &volumev1.MountRequest{Name: "v1", MountId: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "volumes", "v1", "data"); path != want {
		t.Errorf("Mount = %q, want %q (under the root option)", path, want)
	}
	// The mount is on disk: a restarted plugin knows it.
	data, err := os.ReadFile(filepath.Join(root, "volumes", "v1", "volume.json"))
	if err != nil || !strings.Contains(string(data), `"mounts":["m1"]`) || !strings.Contains(string(data), `"labels":{"a":"b"}`) {
		t.Errorf("volume.json = %s, %v", data, err)
	}
	v, err := d.Get(c, &volumev1.GetRequest{Name: "v1"})
	if err != nil || v.GetStatus()["mounts"] != "1" {
		t.Errorf("Get = %v, %v", v, err)
	}
	// Leftovers of a crash are not volumes.
	os.MkdirAll(filepath.Join(root, "volumes", ".v2.new", "data"), 0o755)
	if list, err := d.List(c); err != nil || len(list) != 1 {
		t.Errorf("List = %v, %v; want v1 only", list, err)
	}
}

func TestRefused(t *testing.T) {
	c := context.Background()
	d := testDriver(t)
	if _, err := d.List(c); err == nil {
		t.Error("List before Configure: no error")
	}
	for _, opts := range []map[string]string{{"size": "1g"}, {"root": "relative"}} {
		if err := d.Configure(c, &basev1.ConfigureRequest{StateDir: t.TempDir(), Options: opts}); !errors.Is(err, plugins.ErrInvalid) {
			t.Errorf("Configure with %v: %v, want Invalid", opts, err)
		}
	}
	if err := d.Configure(c, &basev1.ConfigureRequest{StateDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	_, err := d.Create(c, &volumev1.CreateRequest{Name: "v1", Options: map[string]string{"type": "nfs"}})
	if !errors.Is(err, plugins.ErrInvalid) || !strings.Contains(err.Error(), `"type"`) {
		t.Errorf("Create with an option: %v, want Invalid naming it", err)
	}
}
