package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moss-containers/moss/internal/logfile"
	"github.com/moss-containers/moss/internal/paths"
)

// autoStartApp is an app whose client starts argv as the agent, with the
// per-user directories in a fresh temporary directory.
func autoStartApp(t *testing.T, argv []string) (*app, *bytes.Buffer, *bytes.Buffer, paths.Dirs) {
	t.Helper()
	dir := shortTempDir(t)
	t.Setenv("MOSS_RUNTIME_DIR", filepath.Join(dir, "run"))
	t.Setenv("MOSS_DATA_DIR", filepath.Join(dir, "data"))
	t.Setenv("MOSS_HOST", "")
	d, err := paths.Default()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	a := &app{out: &out, errw: &errb, in: strings.NewReader("")}
	a.cl = newClient(d.Socket(), d, &errb)
	a.cl.agentArgs = func() ([]string, error) { return argv, nil }
	return a, &out, &errb, d
}

func TestAutoStartAgentExitsEarly(t *testing.T) {
	script := filepath.Join(t.TempDir(), "agent")
	os.WriteFile(script, []byte("#!/bin/sh\necho starting\necho 'error: the configuration is broken' >&2\nexit 3\n"), 0o755)
	a, _, errb, d := autoStartApp(t, []string{script, "agent"})
	start := time.Now()
	code := a.main([]string{"ps"})
	if code != exitDaemon {
		t.Fatalf("exit %d, want 125; stderr %q", code, errb.String())
	}
	msg := errb.String()
	for _, want := range []string{"moss: the agent did not start: see " + d.AgentLog(), "starting", "error: the configuration is broken"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr %q lacks %q", msg, want)
		}
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("noticing the early exit took %v", time.Since(start))
	}
}

func TestAutoStartAgentMissing(t *testing.T) {
	a, _, errb, d := autoStartApp(t, []string{"/nonexistent/moss", "agent"})
	if code := a.main([]string{"ps"}); code != exitDaemon || !strings.Contains(errb.String(), "the agent did not start: see "+d.AgentLog()) {
		t.Fatalf("exit %d stderr %q", code, errb.String())
	}
}

// The test binary plays the agent (TestMain): the CLI starts it in the
// background, waits for its socket and shows its warnings.
func TestAutoStartSuccess(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	a, out, errb, d := autoStartApp(t, []string{self})
	t.Setenv("MOSS_CLI_TEST_AGENT", d.Socket())
	t.Cleanup(func() {
		if b, err := os.ReadFile(d.Socket() + ".pid"); err == nil {
			if pid, err := strconv.Atoi(string(b)); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	code := a.main([]string{"ps", "-q"})
	if code != 0 {
		t.Fatalf("exit %d stderr %q log %q", code, errb.String(), logfile.Tail(d.AgentLog(), 10))
	}
	if out.String() != "" || !strings.Contains(errb.String(), "WARNING: single-ID mapping") {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
	b, err := os.ReadFile(d.Socket() + ".pid")
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(b))
	// The agent runs in its own session.
	if sid, err := getsid(pid); err != nil || sid != pid {
		t.Fatalf("agent session %d (%v), want %d", sid, err, pid)
	}
}

func getsid(pid int) (int, error) {
	sid, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(sid), nil
}

func TestUnreachableForeignSocket(t *testing.T) {
	dir := shortTempDir(t)
	t.Setenv("MOSS_RUNTIME_DIR", filepath.Join(dir, "run"))
	sock := filepath.Join(dir, "other.sock")
	for _, args := range [][]string{{"-H", "unix://" + sock, "ps"}, {"ps"}} {
		t.Setenv("MOSS_HOST", "")
		if len(args) == 1 {
			t.Setenv("MOSS_HOST", "unix://"+sock)
		}
		r := moss("", args...)
		if r.code != exitDaemon || !strings.Contains(r.stderr, "cannot reach the agent at unix://"+sock) {
			t.Fatalf("%v: %+v", args, r)
		}
		if _, err := os.Stat(filepath.Join(dir, "run", "agent.log")); err == nil {
			t.Fatal("an agent was started for a foreign socket")
		}
	}
}

// version --client and help never contact (or start) the agent.
func TestNoAgentNeeded(t *testing.T) {
	t.Setenv("MOSS_HOST", "unix:///nonexistent/moss.sock")
	for _, args := range [][]string{{"version", "--client"}, {"--help"}, {"run", "--help"}, {}, {"container"}} {
		r := moss("", args...)
		if r.code != 0 || r.stdout == "" {
			t.Errorf("%v: %+v", args, r)
		}
	}
	r := moss("", "version", "--client", "--format", "{{.Client.APIVersion}} {{.Server}}")
	if r.stdout != apiVersion+" <nil>\n" {
		t.Errorf("version --client --format: %+v", r)
	}
}

func TestAgentCommand(t *testing.T) {
	var got []string
	old := AgentCommand
	AgentCommand = func(args []string) int { got = args; return 7 }
	defer func() { AgentCommand = old }()
	if r := moss("", "agent", "--debug", "-x"); r.code != 7 || strings.Join(got, " ") != "--debug -x" {
		t.Fatalf("exit %d args %q", r.code, got)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"stop"}, 1, "\"moss stop\" requires at least 1 argument.\nSee 'moss stop --help'."},
		{[]string{"ps", "--bogus"}, 125, "moss: unknown flag: --bogus\nSee 'moss ps --help'."},
		{[]string{"container", "run", "--bogus"}, 125, "See 'moss container run --help'."},
		{[]string{"frobnicate"}, 1, "moss: 'frobnicate' is not a moss command."},
		{[]string{"container", "frobnicate"}, 1, "'container frobnicate' is not a moss command"},
		{[]string{"rename", "a"}, 1, `"moss rename" requires exactly 2 arguments.`},
		{[]string{"ps", "x"}, 1, `"moss ps" accepts no arguments.`},
		{[]string{"images", "a", "b"}, 1, `"moss images" requires at most 1 argument.`},
	}
	t.Setenv("MOSS_HOST", "unix:///nonexistent/moss.sock")
	for _, tc := range cases {
		r := moss("", tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("%v: exit %d stderr %q, want %d %q", tc.args, r.code, r.stderr, tc.code, tc.stderr)
		}
	}
}
