package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/moss-containers/moss/contrib/dockervolume"
	"github.com/moss-containers/moss/plugins"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// The test binary is the program too: with TESTPLUGIN_MAIN set it runs
// main with its arguments, so the tests drive a real process.
func TestMain(m *testing.M) {
	if os.Getenv("TESTPLUGIN_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// startPlugin runs the program with args and returns its socket; the
// process is ended with the test (or it ended by itself: wait says).
func startPlugin(t *testing.T, args ...string) (sock string, wait func() error) {
	t.Helper()
	dir, err := os.MkdirTemp("", "dvtp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock = filepath.Join(dir, "tp.sock")
	cmd := exec.Command(os.Args[0], append([]string{"-sock", sock, "-root", filepath.Join(dir, "root")}, args...)...)
	cmd.Env = append(os.Environ(), "TESTPLUGIN_MAIN=1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return sock, func() error {
		select {
		case err := <-done:
			done <- err
			return err
		case <-time.After(10 * time.Second):
			return errors.New("the plugin is still running")
		}
	}
}

func adapter(t *testing.T, sock string) plugins.VolumeDriver {
	t.Helper()
	d := plugins.TestVolumeClient(t, dockervolume.New("tp", "unix://"+sock))
	// Configure waits for the socket to appear.
	if err := d.Configure(context.Background(), &basev1.ConfigureRequest{StateDir: t.TempDir()}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return d
}

func TestProgram(t *testing.T) {
	sock, _ := startPlugin(t)
	d := adapter(t, sock)
	c := context.Background()
	if _, err := d.Create(c, &volumev1.CreateRequest{Name: "v1"}); err != nil {
		t.Fatal(err)
	}
	path, err := d.Mount(c, &volumev1.MountRequest{Name: "v1", MountId: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Unmount(c, &volumev1.UnmountRequest{Name: "v1", MountId: "m1"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(c, &volumev1.RemoveRequest{Name: "v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the volume's directory after Remove: %v", err)
	}
}

func TestCrashOnMount(t *testing.T) {
	sock, wait := startPlugin(t, "-crash-on-mount")
	d := adapter(t, sock)
	c := context.Background()
	if _, err := d.Create(c, &volumev1.CreateRequest{Name: "v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Mount(c, &volumev1.MountRequest{Name: "v1", MountId: "m1"}); !errors.Is(err, plugins.ErrUnavailable) {
		t.Errorf("Mount: %v, want an unavailable error", err)
	}
	var exit *exec.ExitError
	if err := wait(); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("the plugin ended with %v, want exit status 3", err)
	}
}

func TestUsage(t *testing.T) {
	if rc := run([]string{"-root", "/x"}); rc != 2 {
		t.Errorf("run without -sock = %d, want 2", rc)
	}
}
