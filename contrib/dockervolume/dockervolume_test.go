package dockervolume

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/moss-containers/moss/contrib/dockervolume/dockertest"
	"github.com/moss-containers/moss/plugins"
	"github.com/moss-containers/moss/plugins/volumetest"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// The tests run the adapter over gRPC (plugins.TestVolumeClient), as the
// agent sees it, against dockertest's plugin served in-process on a
// unix socket.

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// sockDir is a directory for sockets, short enough for sun_path.
func sockDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "dv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// serve serves p on the unix socket sock until the test ends, or until
// the returned stop is called, which removes the socket as a plugin that
// exits does.
func serve(t *testing.T, p *dockertest.Plugin, sock string) (stop func()) {
	t.Helper()
	l, err := dockertest.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = srv.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// newPlugin serves a fresh plugin with its volumes in a temporary
// directory and returns it and its socket.
func newPlugin(t *testing.T) (*dockertest.Plugin, string) {
	t.Helper()
	p := &dockertest.Plugin{Root: t.TempDir(), Scope: "local"}
	sock := filepath.Join(sockDir(t), "dtest.sock")
	serve(t, p, sock)
	return p, sock
}

// newDriver is an unconfigured adapter logging into the test, quick to
// give up on a plugin that is not there.
func newDriver(t *testing.T, addr string) *Driver {
	d := New("dtest", addr)
	d.log = hclog.New(&hclog.LoggerOptions{Name: "dtest", Level: hclog.Debug, Output: logWriter{t}})
	d.activateWait, d.dialRetry = 1500*time.Millisecond, 200*time.Millisecond
	return d
}

// start configures an adapter for addr over gRPC, with state in state.
func start(t *testing.T, addr, state string) plugins.VolumeDriver {
	t.Helper()
	d := plugins.TestVolumeClient(t, newDriver(t, addr))
	if err := d.Configure(ctx(t), &basev1.ConfigureRequest{StateDir: state, RunDir: t.TempDir()}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return d
}

func TestConformance(t *testing.T) {
	volumetest.Run(t, volumetest.Harness{
		Name: "dtest",
		New: func(t *testing.T) plugins.VolumeDriver {
			// The Docker plugin outlives the adapter: one per test, made
			// by Configure below, whichever instance comes first.
			return newDriver(t, filepath.Join(confSock(t), "dtest.sock"))
		},
		Configure: func(t *testing.T) *basev1.ConfigureRequest {
			return &basev1.ConfigureRequest{StateDir: t.TempDir(), RunDir: t.TempDir()}
		},
	})
}

// confSocks are the socket directories of TestConformance's tests, each
// with its plugin.
var confSocks = map[*testing.T]string{}

func confSock(t *testing.T) string {
	if d, ok := confSocks[t]; ok {
		return d
	}
	d := sockDir(t)
	t.Cleanup(func() { delete(confSocks, t) })
	serve(t, &dockertest.Plugin{Root: t.TempDir(), Scope: "local"}, filepath.Join(d, "dtest.sock"))
	confSocks[t] = d
	return d
}

func TestLifecycle(t *testing.T) {
	p, sock := newPlugin(t)
	d := start(t, "unix://"+sock, t.TempDir())

	info, err := d.Info(ctx(t))
	if err != nil || info.GetName() != "dtest" || info.GetKind() != plugins.KindVolume {
		t.Fatalf("Info = %v, %v", info, err)
	}
	labels := map[string]string{"a": "b"}
	opts := map[string]string{"mode": "x"}
	v, err := d.Create(ctx(t), &volumev1.CreateRequest{Name: "v1", Options: opts, Labels: labels})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if v.GetName() != "v1" || v.GetLabels()["a"] != "b" || v.GetOptions()["mode"] != "x" || v.GetCreatedAt() == "" {
		t.Errorf("Create = %v", v)
	}
	if v.GetStatus()["mounts"] != "0" {
		t.Errorf("Create: status %v, want mounts 0 (a number, as JSON)", v.GetStatus())
	}
	// The plugin refuses a second Create: the adapter does not send it.
	if _, err := d.Create(ctx(t), &volumev1.CreateRequest{Name: "v1"}); err != nil {
		t.Errorf("Create again: %v", err)
	}
	if n := count(p.Calls(), "VolumeDriver.Create"); n != 1 {
		t.Errorf("the plugin got %d Creates, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(p.Root, "v1")); err != nil {
		t.Errorf("the plugin has no directory for the volume: %v", err)
	}
	list, err := d.List(ctx(t))
	if err != nil || len(list) != 1 || list[0].GetName() != "v1" || list[0].GetLabels()["a"] != "b" {
		t.Errorf("List = %v, %v", list, err)
	}

	path, err := d.Mount(ctx(t), &volumev1.MountRequest{Name: "v1", MountId: "m1"})
	if err != nil || path != filepath.Join(p.Root, "v1") {
		t.Fatalf("Mount = %q, %v", path, err)
	}
	if again, err := d.Mount(ctx(t), &volumev1.MountRequest{Name: "v1", MountId: "m1"}); err != nil || again != path {
		t.Errorf("Mount of the same ID again = %q, %v", again, err)
	}
	if n := count(p.Calls(), "VolumeDriver.Mount"); n != 1 {
		t.Errorf("the plugin got %d Mounts for one mount ID, want 1", n)
	}
	if _, err := d.Mount(ctx(t), &volumev1.MountRequest{Name: "v1", MountId: "m2"}); err != nil {
		t.Fatal(err)
	}
	if n := p.MountCount("v1"); n != 2 {
		t.Errorf("the plugin counts %d mounts, want 2", n)
	}
	got, err := d.Get(ctx(t), &volumev1.GetRequest{Name: "v1"})
	if err != nil || got.GetMountpoint() != path || got.GetStatus()["mounts"] != "2" {
		t.Errorf("Get of a mounted volume = %v, %v", got, err)
	}
	if err := d.Remove(ctx(t), &volumev1.RemoveRequest{Name: "v1"}); !errors.Is(err, plugins.ErrInUse) {
		t.Errorf("Remove while mounted: %v, want InUse", err)
	}
	for _, id := range []string{"m1", "m1", "m2", "never"} {
		if err := d.Unmount(ctx(t), &volumev1.UnmountRequest{Name: "v1", MountId: id}); err != nil {
			t.Errorf("Unmount %s: %v", id, err)
		}
	}
	if n := count(p.Calls(), "VolumeDriver.Unmount"); n != 2 {
		t.Errorf("the plugin got %d Unmounts, want 2 (one per mount ID that held the volume)", n)
	}
	if err := d.Remove(ctx(t), &volumev1.RemoveRequest{Name: "v1"}); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := d.Get(ctx(t), &volumev1.GetRequest{Name: "v1"}); !errors.Is(err, plugins.ErrNotFound) {
		t.Errorf("Get after Remove: %v, want NotFound", err)
	}
	if err := d.Remove(ctx(t), &volumev1.RemoveRequest{Name: "v1"}); !errors.Is(err, plugins.ErrNotFound) {
		t.Errorf("Remove again: %v, want NotFound", err)
	}
	if _, err := d.Mount(ctx(t), &volumev1.MountRequest{Name: "v1", MountId: "m3"}); !errors.Is(err, plugins.ErrNotFound) {
		t.Errorf("Mount of a removed volume: %v, want NotFound", err)
	}
	// What Docker sends first, and what every call carried (the plugin
	// answers 400 without Docker's Accept header).
	if calls := p.Calls(); len(calls) == 0 || calls[0] != "Plugin.Activate" {
		t.Errorf("calls %v, want Plugin.Activate first", calls)
	}
}

func count(calls []string, method string) int {
	n := 0
	for _, c := range calls {
		if c == method {
			n++
		}
	}
	return n
}

func TestErrors(t *testing.T) {
	_, sock := newPlugin(t)
	d := start(t, sock, t.TempDir()) // a bare socket path
	_, err := d.Create(ctx(t), &volumev1.CreateRequest{Name: "v1", Options: map[string]string{"error": "the disk is on fire"}})
	if err == nil || err.Error() != "dtest: the disk is on fire" {
		t.Errorf("Create failing in the plugin: %v, want the plugin's message after the driver's name", err)
	}
	for _, kind := range []error{plugins.ErrNotFound, plugins.ErrInUse, plugins.ErrInvalid, plugins.ErrUnavailable, plugins.ErrUnsupported} {
		if errors.Is(err, kind) {
			t.Errorf("a plain error of the plugin is %v", kind)
		}
	}
	if _, err := d.Create(ctx(t), &volumev1.CreateRequest{Name: "v1", Options: map[string]string{"size": "1"}}); err == nil || !strings.Contains(err.Error(), `unknown option "size"`) {
		t.Errorf("Create with an option the plugin refuses: %v", err)
	}
	for _, name := range []string{"", "x", "../x", "a/b", ".x"} {
		if _, err := d.Create(ctx(t), &volumev1.CreateRequest{Name: name}); !errors.Is(err, plugins.ErrInvalid) {
			t.Errorf("Create %q: %v, want Invalid", name, err)
		}
	}
	if _, err := d.Get(ctx(t), &volumev1.GetRequest{Name: "nope"}); !errors.Is(err, plugins.ErrNotFound) || !strings.Contains(err.Error(), "no such volume") {
		t.Errorf("Get of an unknown volume: %v, want NotFound with the plugin's message", err)
	}
}

// TestAnswers feeds the adapter answers that plugins give besides the
// well-formed ones.
func TestAnswers(t *testing.T) {
	answers := map[string]func(w http.ResponseWriter){
		"/Plugin.Activate": func(w http.ResponseWriter) { io.WriteString(w, `{"Implements":["NetworkDriver","VolumeDriver"]}`) },
		// An error in a 200 answer, in rclone's words.
		"/VolumeDriver.Get": func(w http.ResponseWriter) { io.WriteString(w, `{"Err":"volume not found"}`) },
		// No JSON at all.
		"/VolumeDriver.List": func(w http.ResponseWriter) { io.WriteString(w, `<html>hello</html>`) },
		// An error status with a text body.
		"/VolumeDriver.Remove": func(w http.ResponseWriter) { http.Error(w, "permission denied", http.StatusInternalServerError) },
		// An error status with Err.
		"/VolumeDriver.Mount": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"Err":"device or resource busy"}`)
		},
		"/VolumeDriver.Capabilities": func(w http.ResponseWriter) {
			io.WriteString(w, `{"Capabilities":{"Scope":"global"}}`)
		},
	}
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.URL.Path+" "+strings.TrimSpace(string(b)))
		mu.Unlock()
		if a, ok := answers[r.URL.Path]; ok && r.Method == http.MethodPost && r.Header.Get("Accept") == Mimetype {
			a(w)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	d := start(t, "tcp://"+srv.Listener.Addr().String(), t.TempDir())

	if _, err := d.Get(ctx(t), &volumev1.GetRequest{Name: "v1"}); !errors.Is(err, plugins.ErrNotFound) {
		t.Errorf("Get: %v, want NotFound", err)
	}
	if _, err := d.List(ctx(t)); err == nil || !strings.Contains(err.Error(), "not the protocol's JSON") {
		t.Errorf("List: %v", err)
	}
	// Remove is sent (nothing holds the volume here) and fails.
	if err := d.Remove(ctx(t), &volumev1.RemoveRequest{Name: "v1"}); err == nil || err.Error() != "dtest: permission denied" {
		t.Errorf("Remove: %v", err)
	}
	if _, err := d.Mount(ctx(t), &volumev1.MountRequest{Name: "v1", MountId: "m"}); !errors.Is(err, plugins.ErrInUse) {
		t.Errorf("Mount: %v, want InUse", err)
	}
	if caps, err := d.Capabilities(ctx(t)); err != nil || caps.GetScope() != "global" {
		t.Errorf("Capabilities = %v, %v", caps, err)
	}
	// Path is not implemented (404): an Unsupported error.
	raw := newDriver(t, "tcp://"+srv.Listener.Addr().String())
	if err := raw.Configure(ctx(t), &basev1.ConfigureRequest{}); err != nil {
		t.Fatal(err)
	}
	var r errResponse
	if err := raw.call(ctx(t), "VolumeDriver.Path", struct{ Name string }{"v1"}, &r, time.Second); !errors.Is(err, plugins.ErrUnsupported) {
		t.Errorf("a method that answers 404: %v, want Unsupported", err)
	}
	want := []string{
		"/Plugin.Activate ",
		`/VolumeDriver.Get {"Name":"v1"}`,
		"/VolumeDriver.List {}",
		`/VolumeDriver.Remove {"Name":"v1"}`,
		`/VolumeDriver.Mount {"Name":"v1","ID":"m"}`,
		"/VolumeDriver.Capabilities {}",
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) < len(want) || !slices.Equal(bodies[:len(want)], want) {
		t.Errorf("the plugin got\n%s\nwant first\n%s", strings.Join(bodies, "\n"), strings.Join(want, "\n"))
	}
}

func TestCapabilitiesMissing(t *testing.T) {
	p := &dockertest.Plugin{Root: t.TempDir()} // no Capabilities: 404
	sock := filepath.Join(sockDir(t), "old.sock")
	serve(t, p, sock)
	d := start(t, "unix://"+sock, t.TempDir())
	caps, err := d.Capabilities(ctx(t))
	if err != nil || caps.GetScope() != "local" {
		t.Errorf("Capabilities of a plugin without them = %v, %v; want local", caps, err)
	}
}

// TestActivateRetry starts the plugin after the adapter: Configure waits
// for it, as Docker waits for a plugin that is coming up.
func TestActivateRetry(t *testing.T) {
	sock := filepath.Join(sockDir(t), "late.sock")
	p := &dockertest.Plugin{Root: t.TempDir(), Scope: "local"}
	late := time.AfterFunc(300*time.Millisecond, func() { serve(t, p, sock) })
	t.Cleanup(func() { late.Stop() })
	d := start(t, "unix://"+sock, t.TempDir())
	if _, err := d.Create(ctx(t), &volumev1.CreateRequest{Name: "v1"}); err != nil {
		t.Fatal(err)
	}
}

func TestNotAVolumePlugin(t *testing.T) {
	p := &dockertest.Plugin{Root: t.TempDir(), Implements: []string{"NetworkDriver", "IpamDriver"}}
	sock := filepath.Join(sockDir(t), "net.sock")
	serve(t, p, sock)
	d := plugins.TestVolumeClient(t, newDriver(t, "unix://"+sock))
	err := d.Configure(ctx(t), &basev1.ConfigureRequest{StateDir: t.TempDir()})
	if !errors.Is(err, plugins.ErrUnsupported) || !strings.Contains(err.Error(), "not a volume plugin") || !strings.Contains(err.Error(), "NetworkDriver, IpamDriver") {
		t.Errorf("Configure of a network plugin: %v", err)
	}
}

func TestNobodyListens(t *testing.T) {
	dir := sockDir(t)
	// A socket file left behind by a plugin that is gone: connections
	// are refused.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	for _, addr := range []string{"unix://" + stale, filepath.Join(dir, "missing.sock")} {
		d := plugins.TestVolumeClient(t, newDriver(t, addr))
		began := time.Now()
		err := d.Configure(ctx(t), &basev1.ConfigureRequest{StateDir: t.TempDir()})
		if !errors.Is(err, plugins.ErrUnavailable) || !strings.Contains(err.Error(), "does not answer") {
			t.Errorf("Configure with nobody at %s: %v, want unavailable", addr, err)
		}
		if took := time.Since(began); took < time.Second {
			t.Errorf("Configure gave up after %v, before waiting for the plugin", took)
		}
		// And the calls before a successful Configure.
		if _, err := d.List(ctx(t)); !errors.Is(err, plugins.ErrUnavailable) {
			t.Errorf("List of an unconfigured adapter: %v", err)
		}
	}
}

// TestPluginGoesAway: calls to a plugin that has stopped are
// unavailable errors; one that comes back is called again.
func TestPluginGoesAway(t *testing.T) {
	p := &dockertest.Plugin{Root: t.TempDir()}
	sock := filepath.Join(sockDir(t), "dtest.sock")
	stop := serve(t, p, sock)
	d := start(t, sock, t.TempDir())
	stop()
	if _, err := d.List(ctx(t)); !errors.Is(err, plugins.ErrUnavailable) || !strings.Contains(err.Error(), "not running") {
		t.Errorf("List with the plugin gone: %v, want unavailable", err)
	}
	serve(t, p, sock)
	if _, err := d.List(ctx(t)); err != nil {
		t.Errorf("List with the plugin back: %v", err)
	}
}

// TestCrashDuringMount: the plugin drops the connection in Mount, as a
// plugin that dies there. The agent gets an unavailable error and the
// volume is not held by the mount ID.
func TestCrashDuringMount(t *testing.T) {
	p, sock := newPlugin(t)
	d := start(t, sock, t.TempDir())
	if _, err := d.Create(ctx(t), &volumev1.CreateRequest{Name: "v1"}); err != nil {
		t.Fatal(err)
	}
	p.OnMount = func(w http.ResponseWriter) bool {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return false
	}
	_, err := d.Mount(ctx(t), &volumev1.MountRequest{Name: "v1", MountId: "m1"})
	if !errors.Is(err, plugins.ErrUnavailable) || !strings.Contains(err.Error(), "went away during the call") {
		t.Errorf("Mount with a plugin that crashes: %v, want unavailable", err)
	}
	if err := d.Remove(ctx(t), &volumev1.RemoveRequest{Name: "v1"}); err != nil {
		t.Errorf("Remove after a failed Mount: %v", err)
	}
}

// TestRestart: a new adapter on the same state knows what the old one
// had mounted; a restarted plugin that has forgotten it is asked again.
func TestRestart(t *testing.T) {
	p := &dockertest.Plugin{Root: t.TempDir(), Scope: "local"}
	sock := filepath.Join(sockDir(t), "dtest.sock")
	stop := serve(t, p, sock)
	state := t.TempDir()
	d := start(t, sock, state)
	if _, err := d.Create(ctx(t), &volumev1.CreateRequest{Name: "v1", Labels: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	path, err := d.Mount(ctx(t), &volumev1.MountRequest{Name: "v1", MountId: "m1"})
	if err != nil {
		t.Fatal(err)
	}

	d2 := start(t, sock, state)
	if err := d2.Remove(ctx(t), &volumev1.RemoveRequest{Name: "v1"}); !errors.Is(err, plugins.ErrInUse) {
		t.Errorf("Remove after an adapter restart: %v, want InUse", err)
	}
	if v, err := d2.Get(ctx(t), &volumev1.GetRequest{Name: "v1"}); err != nil || v.GetLabels()["k"] != "v" {
		t.Errorf("Get after an adapter restart = %v, %v", v, err)
	}
	if again, err := d2.Mount(ctx(t), &volumev1.MountRequest{Name: "v1", MountId: "m1"}); err != nil || again != path {
		t.Errorf("Mount of the held ID after a restart = %q, %v", again, err)
	}
	if n := count(p.Calls(), "VolumeDriver.Mount"); n != 1 {
		t.Errorf("the plugin got %d Mounts, want 1", n)
	}

	// The plugin restarts and has no mounts any more.
	stop()
	p2 := &dockertest.Plugin{Root: p.Root, Scope: "local"}
	serve(t, p2, sock)
	if again, err := d2.Mount(ctx(t), &volumev1.MountRequest{Name: "v1", MountId: "m1"}); err != nil || again != path {
		t.Errorf("Mount of the held ID after a plugin restart = %q, %v", again, err)
	}
	if n := p2.MountCount("v1"); n != 1 {
		t.Errorf("the restarted plugin counts %d mounts, want 1", n)
	}
	if err := d2.Unmount(ctx(t), &volumev1.UnmountRequest{Name: "v1", MountId: "m1"}); err != nil {
		t.Fatal(err)
	}
	if err := d2.Remove(ctx(t), &volumev1.RemoveRequest{Name: "v1"}); err != nil {
		t.Fatal(err)
	}
	// The records are gone with the volume.
	data, err := os.ReadFile(filepath.Join(state, "volumes.json"))
	if err != nil || strings.TrimSpace(string(data)) != "{}" {
		t.Errorf("records after Remove: %s, %v", data, err)
	}
}

// TestAddresses: what New accepts, and the spec files.
func TestAddresses(t *testing.T) {
	for _, bad := range []string{"x.sock", "unix://x.sock", "unix://host/x.sock", "ftp://h:1", "tcp://", "http://", "%"} {
		if _, err := newClient(bad); !errors.Is(err, plugins.ErrInvalid) {
			t.Errorf("address %q: %v, want Invalid", bad, err)
		}
	}
	for _, good := range []string{"/run/x.sock", "unix:///run/x.sock", "tcp://127.0.0.1:8080", "http://localhost:1/ignored/path", "https://[::1]:2"} {
		if _, err := newClient(good); err != nil {
			t.Errorf("address %q: %v", good, err)
		}
	}

	_, sock := newPlugin(t)
	dir := t.TempDir()
	spec := filepath.Join(dir, "dtest.spec")
	if err := os.WriteFile(spec, []byte("unix://"+sock+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := start(t, spec, t.TempDir())
	if _, err := d.Create(ctx(t), &volumev1.CreateRequest{Name: "v1"}); err != nil {
		t.Errorf("through a .spec file: %v", err)
	}
	empty := filepath.Join(dir, "empty.spec")
	os.WriteFile(empty, []byte("\n"), 0o644)
	if _, err := newClient(empty); !errors.Is(err, plugins.ErrInvalid) {
		t.Errorf("an empty .spec: %v", err)
	}
}

// TestTLS: a .json spec of an https plugin, with and without its CA.
func TestTLS(t *testing.T) {
	p := &dockertest.Plugin{Root: t.TempDir(), Scope: "global"}
	srv := httptest.NewTLSServer(p)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	otherCA := filepath.Join(dir, "other.pem")
	if err := os.WriteFile(otherCA, selfSigned(t), 0o644); err != nil {
		t.Fatal(err)
	}

	writeSpec := func(name string, s Spec) string {
		b, _ := json.Marshal(s)
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	addr := srv.URL // https://127.0.0.1:PORT
	for _, spec := range []string{
		writeSpec("verified", Spec{Name: "dtest", Addr: addr, TLSConfig: &TLSConfig{CAFile: ca}}),
		writeSpec("unverified", Spec{Name: "dtest", Addr: addr, TLSConfig: &TLSConfig{}}),
		writeSpec("plain", Spec{Name: "dtest", Addr: addr}),
	} {
		d := start(t, spec, t.TempDir())
		if caps, err := d.Capabilities(ctx(t)); err != nil || caps.GetScope() != "global" {
			t.Errorf("%s: Capabilities = %v, %v", filepath.Base(spec), caps, err)
		}
	}
	wrong := writeSpec("wrong", Spec{Name: "dtest", Addr: addr, TLSConfig: &TLSConfig{CAFile: otherCA}})
	d := plugins.TestVolumeClient(t, newDriver(t, wrong))
	if err := d.Configure(ctx(t), &basev1.ConfigureRequest{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a plugin whose certificate the CA did not sign: %v", err)
	}
}

// selfSigned is the PEM of a CA certificate of its own.
func selfSigned(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestConfigureOptions(t *testing.T) {
	_, sock := newPlugin(t)
	d := plugins.TestVolumeClient(t, newDriver(t, sock))
	err := d.Configure(ctx(t), &basev1.ConfigureRequest{Options: map[string]string{"root": "/x"}})
	if !errors.Is(err, plugins.ErrInvalid) {
		t.Errorf("Configure with an option: %v, want Invalid", err)
	}
}

func TestMainUsage(t *testing.T) {
	if rc := Main([]string{"only-a-name"}); rc != 2 {
		t.Errorf("Main with one argument = %d, want 2", rc)
	}
}
