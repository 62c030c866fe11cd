// Package volumetest is the conformance suite of Moss volume drivers: Run
// checks that a driver keeps the contract of plugins.VolumeDriver as the
// agent sees it, across the gRPC boundary (plugins.TestVolumeClient). Every
// volume driver — the built-in local one, a third-party plugin, an adapter
// — must pass it.
//
// # The contract
//
//   - Info names the driver (Harness.Name) with kind "volume" and a version;
//     Capabilities' scope is "local" or "global".
//   - Create returns the volume: its name, the labels and options asked
//     for, and created_at in RFC 3339. Creating an existing volume again is
//     no error and returns it as it is.
//   - Get and List see a created volume. Get, Mount and Remove of an
//     unknown volume are NotFound errors (plugins.ErrNotFound, which
//     errors.Is finds on the agent's side of the process boundary).
//   - Names that could escape a directory or that Docker refuses ("",
//     "../x", "a/b", ".x") are Invalid errors at Create; Get, Mount and
//     Remove of them are Invalid or NotFound errors, never a success.
//   - Mount returns an absolute path of an existing directory on the
//     host. What is written there is there at the next Mount, and — unless
//     the volume's data is ephemeral (Harness.Ephemeral: tmpfs) — after the
//     last Unmount and a new Mount too.
//   - Mounts are counted by mount_id: the volume is mounted while any
//     mount_id holds it; a second Mount with the same mount_id counts once;
//     Unmount of a mount_id that holds nothing is no error and releases
//     nothing.
//   - Remove of a mounted volume is an InUse error (plugins.ErrInUse) and
//     loses nothing; once the last mount_id is released, Remove deletes the
//     volume and Get says NotFound.
//   - Calls may come concurrently, for the same volume or different ones.
//   - A new instance of the driver, configured with the same request (a
//     restart of the plugin process), has the same volumes — names, labels,
//     options, created_at — and the same mounts: what was mounted before
//     stays mounted, at the same path, with the same data.
//
// The suite tests through the driver's API and the paths Mount returns;
// where and how a driver keeps its volumes is its own tests' business.
package volumetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moss-containers/moss/plugins"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// Harness is what Run needs of a driver.
type Harness struct {
	// Name is the name the driver's Info must report.
	Name string
	// New returns a new, unconfigured instance of the driver. Run serves
	// it over gRPC (plugins.TestVolumeClient) and calls Configure. If the
	// instance holds what a second one would conflict with (a listening
	// socket, a lock), it implements io.Closer: Close must release that
	// and leave everything else — mounts, files — as the death of the
	// plugin process would. Run calls it to stand in for a restart.
	New func(t *testing.T) plugins.VolumeDriver
	// Configure returns the request for Configure, called once per test:
	// fresh directories, and whatever else the driver needs. A restarted
	// instance gets the same request.
	Configure func(t *testing.T) *basev1.ConfigureRequest
	// Options are the driver options every volume of the suite is created
	// with (none by default).
	Options map[string]string
	// Ephemeral says that a volume's data lives only while it is mounted
	// (a tmpfs volume): the suite then does not expect data to outlive the
	// last Unmount.
	Ephemeral bool
}

const callTimeout = 30 * time.Second

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return c
}

// randomID is a Docker-style ID: 64 hex digits.
func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// instance is one configured driver over gRPC and the raw driver behind.
type instance struct {
	h   Harness
	d   plugins.VolumeDriver
	raw plugins.VolumeDriver
}

func (h Harness) start(t *testing.T, cfg *basev1.ConfigureRequest) *instance {
	t.Helper()
	raw := h.New(t)
	d := plugins.TestVolumeClient(t, raw)
	if err := d.Configure(ctx(t), cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	i := &instance{h: h, d: d, raw: raw}
	t.Cleanup(i.stop)
	return i
}

// stop stands in for the death of the plugin process.
func (i *instance) stop() {
	if c, ok := i.raw.(io.Closer); ok {
		_ = c.Close()
	}
}

// create creates a volume with the harness's options. The test's end
// releases the mount ids the suite used (mount) and removes it.
func (i *instance) create(t *testing.T, name string, labels map[string]string) *volumev1.Volume {
	t.Helper()
	v, err := i.d.Create(ctx(t), &volumev1.CreateRequest{Name: name, Options: i.h.Options, Labels: labels})
	if err != nil {
		t.Fatalf("Create %q: %v", name, err)
	}
	t.Cleanup(func() { _ = i.d.Remove(context.Background(), &volumev1.RemoveRequest{Name: name}) })
	return v
}

// mount mounts the volume for id and checks the path it answers; the
// test's end releases it (before the volume's removal: cleanups run last
// first).
func (i *instance) mount(t *testing.T, name, id string) string {
	t.Helper()
	path, err := i.d.Mount(ctx(t), &volumev1.MountRequest{Name: name, MountId: id})
	if err != nil {
		t.Fatalf("Mount %q (%s): %v", name, id, err)
	}
	if !filepath.IsAbs(path) {
		t.Fatalf("Mount %q answered %q, not an absolute path", name, path)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Fatalf("Mount %q answered %q, not a directory: %v", name, path, err)
	}
	t.Cleanup(func() {
		_ = i.d.Unmount(context.Background(), &volumev1.UnmountRequest{Name: name, MountId: id})
	})
	return path
}

func (i *instance) unmount(t *testing.T, name, id string) {
	t.Helper()
	if err := i.d.Unmount(ctx(t), &volumev1.UnmountRequest{Name: name, MountId: id}); err != nil {
		t.Fatalf("Unmount %q (%s): %v", name, id, err)
	}
}

// inUse checks that Remove refuses the volume as mounted.
func (i *instance) inUse(t *testing.T, name, why string) {
	t.Helper()
	err := i.d.Remove(ctx(t), &volumev1.RemoveRequest{Name: name})
	if !errors.Is(err, plugins.ErrInUse) {
		t.Fatalf("Remove of volume %q %s: %v, want an InUse error", name, why, err)
	}
}

func (i *instance) remove(t *testing.T, name, why string) {
	t.Helper()
	if err := i.d.Remove(ctx(t), &volumev1.RemoveRequest{Name: name}); err != nil {
		t.Fatalf("Remove of volume %q %s: %v", name, why, err)
	}
}

func (i *instance) notFound(t *testing.T, name, why string) {
	t.Helper()
	_, err := i.d.Get(ctx(t), &volumev1.GetRequest{Name: name})
	if !errors.Is(err, plugins.ErrNotFound) {
		t.Fatalf("Get of volume %q %s: %v, want a NotFound error", name, why, err)
	}
}

// writeFile writes a file named after the volume into its mounted path.
func writeFile(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, "volumetest-"+name)
	if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
		t.Fatalf("write into the mounted volume: %v", err)
	}
	return p
}

func checkFile(t *testing.T, dir, name, when string) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, "volumetest-"+name))
	if err != nil || string(got) != name {
		t.Fatalf("the file written into volume %q, %s: %q, %v", name, when, got, err)
	}
}

// Run runs the conformance suite against the driver of h.
func Run(t *testing.T, h Harness) {
	if h.New == nil || h.Configure == nil {
		t.Fatal("volumetest: the harness needs New and Configure")
	}
	t.Run("Info", func(t *testing.T) { h.testInfo(t) })
	t.Run("Capabilities", func(t *testing.T) { h.testCapabilities(t) })
	t.Run("Create", func(t *testing.T) { h.testCreate(t) })
	t.Run("Unknown", func(t *testing.T) { h.testUnknown(t) })
	t.Run("InvalidNames", func(t *testing.T) { h.testInvalidNames(t) })
	t.Run("MountData", func(t *testing.T) { h.testMountData(t) })
	t.Run("MountCount", func(t *testing.T) { h.testMountCount(t) })
	t.Run("RemoveInUse", func(t *testing.T) { h.testRemoveInUse(t) })
	t.Run("Concurrent", func(t *testing.T) { h.testConcurrent(t) })
	t.Run("Restart", func(t *testing.T) { h.testRestart(t) })
}

func (h Harness) testInfo(t *testing.T) {
	i := h.start(t, h.Configure(t))
	info, err := i.d.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.GetKind() != plugins.KindVolume || info.GetName() != h.Name {
		t.Errorf("Info = kind %q name %q, want %q %q", info.GetKind(), info.GetName(), plugins.KindVolume, h.Name)
	}
	if info.GetVersion() == "" {
		t.Error("Info has no version")
	}
}

func (h Harness) testCapabilities(t *testing.T) {
	i := h.start(t, h.Configure(t))
	caps, err := i.d.Capabilities(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if s := caps.GetScope(); s != "local" && s != "global" {
		t.Errorf("Capabilities: scope %q, want local or global", s)
	}
}

// checkVolume checks what the driver answers of a volume against what
// Create asked for.
func (h Harness) checkVolume(t *testing.T, what string, v *volumev1.Volume, name string, labels map[string]string) {
	t.Helper()
	if v.GetName() != name {
		t.Errorf("%s: name %q, want %q", what, v.GetName(), name)
	}
	if !sameMap(v.GetLabels(), labels) {
		t.Errorf("%s: labels %v, want %v", what, v.GetLabels(), labels)
	}
	if !sameMap(v.GetOptions(), h.Options) {
		t.Errorf("%s: options %v, want %v", what, v.GetOptions(), h.Options)
	}
	if _, err := time.Parse(time.RFC3339, v.GetCreatedAt()); err != nil {
		t.Errorf("%s: created_at %q is not RFC 3339: %v", what, v.GetCreatedAt(), err)
	}
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (h Harness) testCreate(t *testing.T) {
	i := h.start(t, h.Configure(t))
	labels := map[string]string{"com.example.purpose": "volumetest", "empty": ""}
	v := i.create(t, "vt-create", labels)
	h.checkVolume(t, "Create", v, "vt-create", labels)
	again, err := i.d.Create(ctx(t), &volumev1.CreateRequest{Name: "vt-create", Options: h.Options, Labels: labels})
	if err != nil {
		t.Fatalf("Create of an existing volume: %v", err)
	}
	if !proto.Equal(v, again) {
		t.Errorf("Create of an existing volume: %v, first %v", again, v)
	}
	got, err := i.d.Get(ctx(t), &volumev1.GetRequest{Name: "vt-create"})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	h.checkVolume(t, "Get", got, "vt-create", labels)
	if got.GetCreatedAt() != v.GetCreatedAt() {
		t.Errorf("Get: created_at %q, Create said %q", got.GetCreatedAt(), v.GetCreatedAt())
	}
	i.create(t, "vt-create.2_x-y", nil)
	list, err := i.d.List(ctx(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	seen := map[string]int{}
	for _, lv := range list {
		seen[lv.GetName()]++
		if lv.GetName() == "vt-create" {
			h.checkVolume(t, "List", lv, "vt-create", labels)
		}
	}
	for _, name := range []string{"vt-create", "vt-create.2_x-y"} {
		if seen[name] != 1 {
			t.Errorf("List has volume %q %d times, want once", name, seen[name])
		}
	}
}

func (h Harness) testUnknown(t *testing.T) {
	i := h.start(t, h.Configure(t))
	i.notFound(t, "vt-unknown", "that was never created")
	if err := i.d.Remove(ctx(t), &volumev1.RemoveRequest{Name: "vt-unknown"}); !errors.Is(err, plugins.ErrNotFound) {
		t.Errorf("Remove of an unknown volume: %v, want a NotFound error", err)
	}
	if _, err := i.d.Mount(ctx(t), &volumev1.MountRequest{Name: "vt-unknown", MountId: randomID()}); !errors.Is(err, plugins.ErrNotFound) {
		t.Errorf("Mount of an unknown volume: %v, want a NotFound error", err)
	}
	i.create(t, "vt-known", nil)
	if err := i.d.Unmount(ctx(t), &volumev1.UnmountRequest{Name: "vt-known", MountId: randomID()}); err != nil {
		t.Errorf("Unmount of an unknown mount id: %v", err)
	}
	i.remove(t, "vt-known", "after an Unmount of an unknown mount id")
}

func (h Harness) testInvalidNames(t *testing.T) {
	i := h.start(t, h.Configure(t))
	for _, name := range []string{"", "../x", "a/b", ".x", "/abs", "..", "x\x00y"} {
		_, err := i.d.Create(ctx(t), &volumev1.CreateRequest{Name: name, Options: h.Options})
		if !errors.Is(err, plugins.ErrInvalid) {
			t.Errorf("Create %q: %v, want an Invalid error", name, err)
			_ = i.d.Remove(ctx(t), &volumev1.RemoveRequest{Name: name})
		}
		invalidOrNotFound := func(op string, err error) {
			if !errors.Is(err, plugins.ErrInvalid) && !errors.Is(err, plugins.ErrNotFound) {
				t.Errorf("%s %q: %v, want an Invalid or NotFound error", op, name, err)
			}
		}
		_, err = i.d.Get(ctx(t), &volumev1.GetRequest{Name: name})
		invalidOrNotFound("Get", err)
		_, err = i.d.Mount(ctx(t), &volumev1.MountRequest{Name: name, MountId: randomID()})
		invalidOrNotFound("Mount", err)
		invalidOrNotFound("Remove", i.d.Remove(ctx(t), &volumev1.RemoveRequest{Name: name}))
	}
	list, err := i.d.List(ctx(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, v := range list {
		t.Errorf("List after Creates of invalid names has %q", v.GetName())
	}
}

func (h Harness) testMountData(t *testing.T) {
	i := h.start(t, h.Configure(t))
	i.create(t, "vt-data", nil)
	id1, id2 := randomID(), randomID()
	path := i.mount(t, "vt-data", id1)
	writeFile(t, path, "vt-data")
	if again := i.mount(t, "vt-data", id2); again != path {
		t.Errorf("a second Mount answered %q, the first %q", again, path)
	} else {
		checkFile(t, again, "vt-data", "at the next Mount")
	}
	got, err := i.d.Get(ctx(t), &volumev1.GetRequest{Name: "vt-data"})
	if err != nil {
		t.Fatalf("Get of a mounted volume: %v", err)
	}
	if mp := got.GetMountpoint(); mp != "" && mp != path {
		t.Errorf("Get of a mounted volume: mountpoint %q, Mount answered %q", mp, path)
	}
	// Released and taken again while the other mount id holds it.
	i.unmount(t, "vt-data", id1)
	path = i.mount(t, "vt-data", id1)
	checkFile(t, path, "vt-data", "after an Unmount and a Mount while mounted by another mount id")
	i.unmount(t, "vt-data", id1)
	i.unmount(t, "vt-data", id2)
	if h.Ephemeral {
		return
	}
	path = i.mount(t, "vt-data", id1)
	checkFile(t, path, "vt-data", "after the last Unmount and a new Mount")
}

func (h Harness) testMountCount(t *testing.T) {
	i := h.start(t, h.Configure(t))
	i.create(t, "vt-count", nil)
	id1, id2 := randomID(), randomID()
	i.mount(t, "vt-count", id1)
	i.mount(t, "vt-count", id2)
	i.unmount(t, "vt-count", id1)
	i.inUse(t, "vt-count", "still mounted by a second mount id")
	i.unmount(t, "vt-count", id1)
	i.inUse(t, "vt-count", "after a second Unmount of the same mount id")
	if err := i.d.Unmount(ctx(t), &volumev1.UnmountRequest{Name: "vt-count", MountId: randomID()}); err != nil {
		t.Fatalf("Unmount of an unknown mount id: %v", err)
	}
	i.inUse(t, "vt-count", "after an Unmount of an unknown mount id")
	i.unmount(t, "vt-count", id2)

	// The same mount id twice counts once.
	i.mount(t, "vt-count", id1)
	i.mount(t, "vt-count", id1)
	i.unmount(t, "vt-count", id1)
	i.remove(t, "vt-count", "after the Unmount of a mount id that had mounted it twice")
	i.notFound(t, "vt-count", "after Remove")
}

func (h Harness) testRemoveInUse(t *testing.T) {
	i := h.start(t, h.Configure(t))
	i.create(t, "vt-inuse", map[string]string{"keep": "me"})
	id := randomID()
	path := i.mount(t, "vt-inuse", id)
	writeFile(t, path, "vt-inuse")
	i.inUse(t, "vt-inuse", "while mounted")
	checkFile(t, path, "vt-inuse", "after a refused Remove")
	got, err := i.d.Get(ctx(t), &volumev1.GetRequest{Name: "vt-inuse"})
	if err != nil {
		t.Fatalf("Get after a refused Remove: %v", err)
	}
	h.checkVolume(t, "Get after a refused Remove", got, "vt-inuse", map[string]string{"keep": "me"})
	i.unmount(t, "vt-inuse", id)
	i.remove(t, "vt-inuse", "after the last Unmount")
	i.notFound(t, "vt-inuse", "after Remove")
	if err := i.d.Remove(ctx(t), &volumev1.RemoveRequest{Name: "vt-inuse"}); !errors.Is(err, plugins.ErrNotFound) {
		t.Errorf("Remove of a removed volume: %v, want a NotFound error", err)
	}
	list, err := i.d.List(ctx(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, v := range list {
		if v.GetName() == "vt-inuse" {
			t.Error("List has a removed volume")
		}
	}
	// The name can be used again, for a new volume.
	i.create(t, "vt-inuse", nil)
	i.mount(t, "vt-inuse", randomID())
}

func (h Harness) testConcurrent(t *testing.T) {
	i := h.start(t, h.Configure(t))
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for k := 0; k < n; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			errs <- i.cycle(fmt.Sprintf("vt-conc-%d", k))
		}(k)
	}
	// Mounts of one volume by many mount ids at once.
	i.create(t, "vt-shared", nil)
	ids := make([]string, n)
	for k := range ids {
		ids[k] = randomID()
	}
	for _, id := range ids {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			if _, err := i.d.Mount(context.Background(), &volumev1.MountRequest{Name: "vt-shared", MountId: id}); err != nil {
				errs <- fmt.Errorf("Mount vt-shared: %w", err)
			}
		}(id)
	}
	wg.Wait()
	for _, id := range ids[1:] {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			if err := i.d.Unmount(context.Background(), &volumev1.UnmountRequest{Name: "vt-shared", MountId: id}); err != nil {
				errs <- fmt.Errorf("Unmount vt-shared: %w", err)
			}
		}(id)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	i.inUse(t, "vt-shared", "mounted by one of the mount ids that mounted it concurrently")
	i.unmount(t, "vt-shared", ids[0])
	i.remove(t, "vt-shared", "after the Unmount of every mount id")
}

// cycle creates, mounts, writes, unmounts and removes a volume, as a
// container's life does.
func (i *instance) cycle(name string) error {
	c := context.Background()
	if _, err := i.d.Create(c, &volumev1.CreateRequest{Name: name, Options: i.h.Options}); err != nil {
		return fmt.Errorf("Create %s: %w", name, err)
	}
	id := randomID()
	path, err := i.d.Mount(c, &volumev1.MountRequest{Name: name, MountId: id})
	if err != nil {
		return fmt.Errorf("Mount %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(path, "volumetest-"+name), []byte(name), 0o644); err != nil {
		return fmt.Errorf("write into %s: %w", name, err)
	}
	if err := i.d.Unmount(c, &volumev1.UnmountRequest{Name: name, MountId: id}); err != nil {
		return fmt.Errorf("Unmount %s: %w", name, err)
	}
	if err := i.d.Remove(c, &volumev1.RemoveRequest{Name: name}); err != nil {
		return fmt.Errorf("Remove %s: %w", name, err)
	}
	return nil
}

func (h Harness) testRestart(t *testing.T) {
	cfg := h.Configure(t)
	i := h.start(t, cfg)
	labels := map[string]string{"restart": "yes"}
	kept := i.create(t, "vt-kept", labels)
	i.create(t, "vt-idle", nil)
	id1 := randomID()
	path := i.mount(t, "vt-kept", id1)
	writeFile(t, path, "vt-kept")
	if !h.Ephemeral {
		// Mounted and released before the restart: in use by nobody after.
		idleID := randomID()
		idle := i.mount(t, "vt-idle", idleID)
		writeFile(t, idle, "vt-idle")
		i.unmount(t, "vt-idle", idleID)
	}
	i.stop()

	j := h.start(t, cfg)
	got, err := j.d.Get(ctx(t), &volumev1.GetRequest{Name: "vt-kept"})
	if err != nil {
		t.Fatalf("Get after a restart: %v", err)
	}
	h.checkVolume(t, "Get after a restart", got, "vt-kept", labels)
	if got.GetCreatedAt() != kept.GetCreatedAt() {
		t.Errorf("Get after a restart: created_at %q, was %q", got.GetCreatedAt(), kept.GetCreatedAt())
	}
	list, err := j.d.List(ctx(t))
	if err != nil {
		t.Fatalf("List after a restart: %v", err)
	}
	names := map[string]bool{}
	for _, v := range list {
		names[v.GetName()] = true
	}
	if !names["vt-kept"] || !names["vt-idle"] {
		t.Errorf("List after a restart has %v, want vt-kept and vt-idle", names)
	}
	checkFile(t, path, "vt-kept", "after a restart, at the path of the Mount before")
	j.inUse(t, "vt-kept", "mounted before a restart")
	id2 := randomID()
	if again := j.mount(t, "vt-kept", id2); again != path {
		t.Errorf("Mount after a restart answered %q, before %q", again, path)
	}
	checkFile(t, path, "vt-kept", "after a restart and a new Mount")
	j.unmount(t, "vt-kept", id2)
	j.inUse(t, "vt-kept", "still mounted by the mount id from before a restart")
	j.unmount(t, "vt-kept", id1)
	j.remove(t, "vt-kept", "after a restart and the Unmount of every mount id")
	j.notFound(t, "vt-kept", "after Remove")
	if !h.Ephemeral {
		idleID := randomID()
		p := j.mount(t, "vt-idle", idleID)
		checkFile(t, p, "vt-idle", "after a restart")
		j.unmount(t, "vt-idle", idleID)
	}
	j.remove(t, "vt-idle", "after a restart, mounted by nobody")
}
