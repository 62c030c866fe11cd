package rootless

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

func TestHelperGetsubids(t *testing.T) {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// Run the test binary itself under the helper's name, as rootlesskit
	// runs the installed link.
	dir := t.TempDir()
	link := filepath.Join(dir, helperGetsubids)
	self, _ := os.Executable()
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{u.Username}, {"-g", u.Username}} {
		cmd := exec.Command(link, args...)
		cmd.Env = append(os.Environ(), envHelpers+"=1", "MOSS_TEST_HELPER=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		id := u.Uid
		if args[0] == "-g" {
			id = u.Gid
		}
		if want := "0: " + u.Username + " " + id + " 1\n"; string(out) != want {
			t.Fatalf("%v: %q, want %q", args, out, want)
		}
	}
}

func TestMain(m *testing.M) {
	if os.Getenv("MOSS_TEST_HELPER") != "" && IsHelper(os.Args[0]) {
		os.Exit(RunHelper(os.Args))
	}
	os.Exit(m.Run())
}

func TestNewuidmapHelperRefusesRanges(t *testing.T) {
	err := runHelper([]string{helperNewuidmap, "1", "0", "100000", "65536"})
	if err == nil || !strings.Contains(err.Error(), "single mapping") {
		t.Fatalf("error %v", err)
	}
	if err := runHelper([]string{helperNewgidmap}); err == nil {
		t.Fatal("missing pid accepted")
	}
}

func TestResolveNetworkDriver(t *testing.T) {
	for _, name := range []string{"none", "slirp4netns", "pasta"} {
		if got, err := ResolveNetworkDriver(name); err != nil || got != name {
			t.Errorf("%s: %s %v", name, got, err)
		}
	}
	got, err := ResolveNetworkDriver("auto")
	if err != nil {
		t.Fatal(err)
	}
	if _, lerr := exec.LookPath("slirp4netns"); lerr == nil && got != "slirp4netns" && got != "pasta" {
		t.Errorf("auto with slirp4netns installed chose %s", got)
	}
}

func TestIsUnshare(t *testing.T) {
	if !IsUnshare("/proc/self/exe/../unshare") || !IsUnshare("unshare") || IsUnshare("moss") {
		t.Fatal("IsUnshare")
	}
	if code := RunUnshare([]string{"unshare"}); code == 0 {
		t.Fatal("unshare without a command succeeded")
	}
	if code := RunUnshare([]string{"unshare", "sh", "-c", "exit 3"}); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
}
