package localvol_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/moss-containers/moss/plugins"
	"github.com/moss-containers/moss/plugins/volumetest"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
	"github.com/moss-containers/moss/storage/localvol"
)

func testLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn})
}

// configure is what the agent passes: a state directory and the volumes'
// root apart.
func configure(t *testing.T) *basev1.ConfigureRequest {
	root := filepath.Join(t.TempDir(), "volumes")
	// A failed test may leave volumes mounted (in the host's mount
	// namespace when run as root): undo them before the directories go.
	t.Cleanup(func() { unmountAll(t, root) })
	return &basev1.ConfigureRequest{
		StateDir: t.TempDir(), RunDir: t.TempDir(),
		Options: map[string]string{localvol.OptionRoot: root},
	}
}

func harness(opts map[string]string, ephemeral bool) volumetest.Harness {
	return volumetest.Harness{
		Name:      localvol.Name,
		New:       func(t *testing.T) plugins.VolumeDriver { return localvol.New("test", testLogger()) },
		Configure: configure,
		Options:   opts,
		Ephemeral: ephemeral,
	}
}

// TestConformance runs the suite for plain-directory volumes.
func TestConformance(t *testing.T) {
	volumetest.Run(t, harness(nil, false))
}

// TestConformanceStateDir runs it without the root option: the volumes
// live in the state directory.
func TestConformanceStateDir(t *testing.T) {
	h := harness(nil, false)
	h.Configure = func(t *testing.T) *basev1.ConfigureRequest {
		return &basev1.ConfigureRequest{StateDir: t.TempDir()}
	}
	volumetest.Run(t, h)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// env is one driver over gRPC on the directories of cfg.
type env struct {
	t   *testing.T
	cfg *basev1.ConfigureRequest
	d   plugins.VolumeDriver
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, cfg: configure(t)}
	e.start()
	return e
}

// start stands in for a (re)start of the plugin process.
func (e *env) start() {
	e.t.Helper()
	e.d = plugins.TestVolumeClient(e.t, localvol.New("test", testLogger()))
	if err := e.d.Configure(ctx(e.t), e.cfg); err != nil {
		e.t.Fatalf("Configure: %v", err)
	}
}

func (e *env) root() string { return e.cfg.Options[localvol.OptionRoot] }

func (e *env) create(name string, opts map[string]string) *volumev1.Volume {
	e.t.Helper()
	v, err := e.d.Create(ctx(e.t), &volumev1.CreateRequest{Name: name, Options: opts})
	if err != nil {
		e.t.Fatalf("Create %s %v: %v", name, opts, err)
	}
	return v
}

func (e *env) mount(name, id string) string {
	e.t.Helper()
	p, err := e.d.Mount(ctx(e.t), &volumev1.MountRequest{Name: name, MountId: id})
	if err != nil {
		e.t.Fatalf("Mount %s: %v", name, err)
	}
	return p
}

func (e *env) unmount(name, id string) {
	e.t.Helper()
	if err := e.d.Unmount(ctx(e.t), &volumev1.UnmountRequest{Name: name, MountId: id}); err != nil {
		e.t.Fatalf("Unmount %s: %v", name, err)
	}
}

func (e *env) remove(name string) {
	e.t.Helper()
	if err := e.d.Remove(ctx(e.t), &volumev1.RemoveRequest{Name: name}); err != nil {
		e.t.Fatalf("Remove %s: %v", name, err)
	}
}

// entries lists the volumes' root.
func (e *env) entries() []string {
	e.t.Helper()
	des, err := os.ReadDir(e.root())
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// TestLayout: ROOT/NAME/_data is the data and the mount path, opts.json
// holds options, labels and the creation time; Remove leaves nothing.
func TestLayout(t *testing.T) {
	e := newEnv(t)
	v, err := e.d.Create(ctx(t), &volumev1.CreateRequest{Name: "vol1", Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(e.root(), "vol1", "_data")
	if v.GetMountpoint() != data {
		t.Errorf("mountpoint %q, want %q", v.GetMountpoint(), data)
	}
	if p := e.mount("vol1", "c1"); p != data {
		t.Errorf("Mount answered %q, want %q", p, data)
	}
	raw, err := os.ReadFile(filepath.Join(e.root(), "vol1", "opts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		CreatedAt string            `json:"created_at"`
		Labels    map[string]string `json:"labels"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil || meta.CreatedAt != v.GetCreatedAt() || meta.Labels["a"] != "b" {
		t.Errorf("opts.json = %s (%v)", raw, err)
	}
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(data, "d", "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.unmount("vol1", "c1")
	e.remove("vol1")
	if names := e.entries(); len(names) != 0 {
		t.Errorf("after Remove the root has %v", names)
	}
	// The same name again is a new, empty volume.
	e.create("vol1", nil)
	if _, err := os.Stat(filepath.Join(data, "f")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a new volume of a removed one's name has its data: %v", err)
	}
}

// TestStateDir: without the root option the volumes are in StateDir.
func TestStateDir(t *testing.T) {
	state := t.TempDir()
	d := plugins.TestVolumeClient(t, localvol.New("test", testLogger()))
	if err := d.Configure(ctx(t), &basev1.ConfigureRequest{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	v, err := d.Create(ctx(t), &volumev1.CreateRequest{Name: "vol1"})
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(state)
	if want := filepath.Join(real, "vol1", "_data"); v.GetMountpoint() != want {
		t.Errorf("mountpoint %q, want %q", v.GetMountpoint(), want)
	}
	if err := d.Configure(ctx(t), &basev1.ConfigureRequest{}); !errors.Is(err, plugins.ErrInvalid) {
		t.Errorf("Configure without directories: %v, want an Invalid error", err)
	}
	if err := d.Configure(ctx(t), &basev1.ConfigureRequest{StateDir: state, Options: map[string]string{"root": "rel/dir"}}); !errors.Is(err, plugins.ErrInvalid) {
		t.Errorf("Configure with a relative root: %v, want an Invalid error", err)
	}
}

// TestNames: Docker's rule and message.
func TestNames(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"ab", "a1", "A.b_c-d", "0.0"} {
		e.create(name, nil)
	}
	for _, name := range []string{"a", "-ab", "_ab", ".ab", "a b", "a/b", "../x", "a:b", "é1"} {
		_, err := e.d.Create(ctx(t), &volumev1.CreateRequest{Name: name})
		if !errors.Is(err, plugins.ErrInvalid) {
			t.Errorf("Create %q: %v, want an Invalid error", name, err)
			continue
		}
		want := `"` + name + `" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`
		if strings.ContainsRune(name, 'é') {
			continue // %q escapes it
		}
		if err.Error() != want {
			t.Errorf("Create %q: %q, want %q", name, err, want)
		}
	}
}

// TestCreateExisting: Create of an existing name returns it, whatever the
// options and labels asked for now, as Docker does.
func TestCreateExisting(t *testing.T) {
	e := newEnv(t)
	first := e.create("vol1", nil)
	again, err := e.d.Create(ctx(t), &volumev1.CreateRequest{Name: "vol1", Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}, Labels: map[string]string{"x": "y"}})
	if err != nil {
		t.Fatalf("Create with other options: %v", err)
	}
	if len(again.GetOptions()) != 0 || len(again.GetLabels()) != 0 || again.GetCreatedAt() != first.GetCreatedAt() {
		t.Errorf("Create with other options: %v, want the existing %v", again, first)
	}
	// Even options that would be refused for a new volume.
	if _, err := e.d.Create(ctx(t), &volumev1.CreateRequest{Name: "vol1", Options: map[string]string{"bogus": "1"}}); err != nil {
		t.Errorf("Create of an existing volume with bad options: %v", err)
	}
}

// TestBadOptions: refused at Create with the kind and a message that
// says why; nothing is left in the root.
func TestBadOptions(t *testing.T) {
	e := newEnv(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		opts map[string]string
		kind error
		msg  string
	}{
		{map[string]string{"bogus": "1"}, plugins.ErrInvalid, `invalid option "bogus" for the local volume driver: its options are type, device and o`},
		{map[string]string{"size": "10m"}, plugins.ErrUnsupported, `option "size" is not supported`},
		{map[string]string{"type": "tmpfs"}, plugins.ErrInvalid, `missing required option: "device"`},
		{map[string]string{"device": "tmpfs"}, plugins.ErrInvalid, `missing required option: "type"`},
		{map[string]string{"o": "size=1m"}, plugins.ErrInvalid, `missing required option: "device"`},
		{map[string]string{"type": "tmpfs", "device": ""}, plugins.ErrInvalid, "may not be empty"},
		{map[string]string{"type": "none", "device": "/tmp"}, plugins.ErrInvalid, "needs o=bind"},
		{map[string]string{"type": "none", "device": "/tmp", "o": "ro"}, plugins.ErrInvalid, "needs o=bind"},
		{map[string]string{"type": "none", "device": "rel/dir", "o": "bind"}, plugins.ErrInvalid, "absolute path"},
		{map[string]string{"type": "none", "device": "/nonexistent/dir", "o": "bind"}, plugins.ErrInvalid, "no such file or directory"},
		{map[string]string{"type": "none", "device": file, "o": "bind"}, plugins.ErrInvalid, "not a directory"},
		{map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "remount"}, plugins.ErrInvalid, `"remount" is not allowed`},
	} {
		_, err := e.d.Create(ctx(t), &volumev1.CreateRequest{Name: "bad", Options: c.opts})
		if !errors.Is(err, c.kind) || err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Create with %v: %v, want a %v error saying %q", c.opts, err, c.kind, c.msg)
		}
	}
	if names := e.entries(); len(names) != 0 {
		t.Errorf("refused Creates left %v", names)
	}
	if _, err := e.d.Get(ctx(t), &volumev1.GetRequest{Name: "bad"}); !errors.Is(err, plugins.ErrNotFound) {
		t.Errorf("Get of a refused volume: %v", err)
	}
}

// TestRestartLeftovers: a new instance clears what an interrupted Create
// or Remove left, ignores directories that are not volumes and keeps
// the others when one is broken.
func TestRestartLeftovers(t *testing.T) {
	e := newEnv(t)
	e.create("good", nil)
	e.create("broken", nil)
	e.create("lostmounts", nil)
	e.mount("lostmounts", "c1")
	root := e.root()
	for _, dir := range []string{".create-x-0123", ".remove-y-4567/_data/sub", "notavolume/_data"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "broken", "opts.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "lostmounts", "mounts")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "lostmounts", "mounts"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.start()
	got := strings.Join(e.entries(), " ")
	if got != "broken good lostmounts notavolume" {
		t.Errorf("root after a restart: %s", got)
	}
	list, err := e.d.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range list {
		names = append(names, v.GetName())
	}
	if strings.Join(names, " ") != "good lostmounts" {
		t.Errorf("List after a restart: %v, want good and lostmounts", names)
	}
	// Unreadable mount ids count none.
	e.remove("lostmounts")
	// A broken volume's name is not taken over.
	if _, err := e.d.Create(ctx(t), &volumev1.CreateRequest{Name: "broken"}); err == nil || !strings.Contains(err.Error(), "not a volume") {
		t.Errorf("Create over a broken volume: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "broken", "_data")); err != nil {
		t.Errorf("the broken volume's data: %v", err)
	}
}

// TestMountID: Mount needs a mount id; Unmount of an unknown volume is
// NotFound.
func TestMountID(t *testing.T) {
	e := newEnv(t)
	e.create("vol1", nil)
	if _, err := e.d.Mount(ctx(t), &volumev1.MountRequest{Name: "vol1"}); !errors.Is(err, plugins.ErrInvalid) {
		t.Errorf("Mount without a mount id: %v, want an Invalid error", err)
	}
	if err := e.d.Unmount(ctx(t), &volumev1.UnmountRequest{Name: "nope", MountId: "c1"}); !errors.Is(err, plugins.ErrNotFound) {
		t.Errorf("Unmount of an unknown volume: %v, want a NotFound error", err)
	}
}

// TestUnconfigured: calls before Configure are errors, not panics.
func TestUnconfigured(t *testing.T) {
	d := plugins.TestVolumeClient(t, localvol.New("test", nil))
	if _, err := d.Create(ctx(t), &volumev1.CreateRequest{Name: "vol1"}); err == nil {
		t.Error("Create before Configure succeeded")
	}
	if _, err := d.List(ctx(t)); err == nil {
		t.Error("List before Configure succeeded")
	}
	if _, err := d.Mount(ctx(t), &volumev1.MountRequest{Name: "vol1", MountId: "c1"}); err == nil {
		t.Error("Mount before Configure succeeded")
	}
}

// TestMainArgs: Main serves only "local".
func TestMainArgs(t *testing.T) {
	for _, args := range [][]string{nil, {"nfs"}, {"local", "x"}} {
		if code := localvol.Main(args); code != 2 {
			t.Errorf("Main(%q) = %d, want 2", args, code)
		}
	}
}
