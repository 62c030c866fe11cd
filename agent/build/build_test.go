package build

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func TestWithTag(t *testing.T) {
	for in, want := range map[string]string{
		"app": "app:latest", "app:1": "app:1", "localhost:5000/app": "localhost:5000/app:latest",
		"localhost:5000/app:2": "localhost:5000/app:2", "app@sha256:abc": "app@sha256:abc",
	} {
		if got := withTag(in); got != want {
			t.Errorf("withTag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	st := &stageState{}
	got := st.commandLine(instructions.ShellDependantCmdLine{CmdLine: []string{"echo", "hi"}, PrependShell: true})
	if strings.Join(got, "|") != "/bin/sh|-c|echo hi" {
		t.Errorf("shell form: %q", got)
	}
	st.cfg.Shell = []string{"/bin/bash", "-ec"}
	got = st.commandLine(instructions.ShellDependantCmdLine{CmdLine: []string{"echo hi"}, PrependShell: true})
	if strings.Join(got, "|") != "/bin/bash|-ec|echo hi" {
		t.Errorf("SHELL: %q", got)
	}
	got = st.commandLine(instructions.ShellDependantCmdLine{CmdLine: []string{"echo", "hi"}})
	if strings.Join(got, "|") != "echo|hi" {
		t.Errorf("exec form: %q", got)
	}
}

func TestSetEnvAndExpansionEnv(t *testing.T) {
	env := setEnv([]string{"A=1", "B=2"}, "A", "3")
	if strings.Join(env, " ") != "A=3 B=2" {
		t.Errorf("setEnv: %v", env)
	}
	st := &stageState{args: []string{"A=arg", "C=c"}}
	st.cfg.Env = []string{"A=env"}
	if got := strings.Join(st.expansionEnv(), " "); got != "A=env C=c" {
		t.Errorf("ENV must win over ARG: %s", got)
	}
}

func TestExitError(t *testing.T) {
	err := error(&ExitError{Code: 2, Cmd: []string{"/bin/sh", "-c", "false"}})
	if err.Error() != "The command '/bin/sh -c false' returned a non-zero code: 2" {
		t.Errorf("%v", err)
	}
	var ee *ExitError
	if !errors.As(&Error{Line: 3, Err: err}, &ee) || ee.Code != 2 {
		t.Error("the exit code is lost in a line error")
	}
	if !errors.Is(invalid("x"), ErrInvalid) || invalid("bad %d", 1).Error() != "bad 1" {
		t.Error("invalid errors")
	}
}

// TestGlobAndIgnore: sources are matched in the context, less what
// .dockerignore leaves out, and cannot leave it.
func TestGlobAndIgnore(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.txt", "b.txt", "skip.txt", "sub/c.txt"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("skip.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pm, err := readIgnore(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := glob(dir, "*.txt", pm, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.rel)
	}
	if strings.Join(names, " ") != "a.txt b.txt" {
		t.Errorf("glob *.txt: %v", names)
	}
	got, err = glob(dir, "../../etc/passwd", pm, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("a source outside the context: %v %v", got, err)
	}
	if got, _ := glob(dir, "sub", pm, nil); len(got) != 1 || !got[0].dir {
		t.Errorf("a directory source: %+v", got)
	}
}
