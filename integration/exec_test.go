package integration

import (
	"crypto/sha256"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// exec into a running container: its namespaces, the exit code, stdout and
// stderr apart, stdin with -i, -u/-w/-e, -d in the background, and a
// missing command; the same through the docker CLI.
func TestExec(t *testing.T) {
	mustMoss(t, "run", "-d", "--name", "exc", "-w", "/etc", "-e", "FROM_RUN=1", image, "sleep", "1000")
	rmf(t, "exc")
	r := moss(t, "exec", "exc", "sh", "-c", "echo out; echo err >&2; exit 7")
	if r.code != 7 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Fatalf("exec exit 7: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// The exec joins the container's namespaces, those of its PID 1.
	kinds := []string{"pid", "ipc", "uts", "mnt", "net", "cgroup"}
	inExec := parseNS(t, kinds, mustMoss(t, "exec", "exc", "sh", "-c", nsScript(kinds)))
	script := ""
	for _, k := range kinds {
		script += fmt.Sprintf("readlink /proc/1/ns/%s; ", k)
	}
	ofInit := parseNS(t, kinds, mustMoss(t, "exec", "exc", "sh", "-c", script))
	for _, k := range kinds {
		if inExec[k] != ofInit[k] {
			t.Errorf("exec's %s namespace %s is not the container's %s", k, inExec[k], ofInit[k])
		}
	}
	// The container's working directory and environment, unless -w/-e/-u.
	if out := mustMoss(t, "exec", "exc", "sh", "-c", "pwd; echo $FROM_RUN"); out != "/etc\n1\n" {
		t.Errorf("exec inherits %q, want the container's /etc and FROM_RUN=1", out)
	}
	if out := mustMoss(t, "exec", "-u", "nobody", "-w", "/tmp", "-e", "FROM_RUN=2", "exc", "sh", "-c", "id -u; pwd; echo $FROM_RUN"); out != "65534\n/tmp\n2\n" {
		t.Errorf("exec -u nobody -w /tmp -e: %q", out)
	}
	// -i: stdin reaches the process; 2 MB arrive intact.
	data := strings.Repeat("0123456789abcdef", 128<<10)
	r = runCmd(t, data, mossBin, "exec", "-i", "exc", "sh", "-c", "cat | sha256sum")
	if want := fmt.Sprintf("%x", sha256.Sum256([]byte(data))); r.code != 0 || !strings.HasPrefix(r.stdout, want) {
		t.Fatalf("exec -i: code %d, %q, want %s", r.code, r.stdout, want)
	}
	// -d: started in the background, seen by top (and by ps inside).
	if out := mustMoss(t, "exec", "-d", "exc", "sleep", "4242"); out != "" {
		t.Errorf("exec -d printed %q", out)
	}
	waitFor(t, "the detached exec's process in top", 5*time.Second, func() bool {
		return strings.Contains(mustMoss(t, "top", "exc"), "sleep 4242")
	})
	if out := mustMoss(t, "exec", "exc", "ps"); !strings.Contains(out, "sleep 4242") {
		t.Errorf("ps in the container does not show the detached exec:\n%s", out)
	}
	// top lists only the container's processes, with ps's options.
	top := mustMoss(t, "top", "exc", "-o", "pid,args")
	if lines := strings.Split(strings.TrimSpace(top), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "PID") || !strings.Contains(top, "sleep 1000") {
		t.Errorf("top -o pid,args:\n%s", top)
	}
	if r := moss(t, "top", "exc", "-o", "args"); r.code == 0 || !strings.Contains(r.stderr, "PID") {
		t.Errorf("top without a PID column: %d %q", r.code, r.stderr)
	}
	// A command that does not exist: docker's 127 and message.
	r = moss(t, "exec", "exc", "no-such-command")
	if r.code != 127 || !strings.Contains(r.stdout+r.stderr, "executable file not found") {
		t.Errorf("exec of a missing command: code %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if _, err := exec.LookPath("docker"); err == nil {
		if d := docker(t, "exec", "exc", "sh", "-c", "exit 7"); d.code != 7 {
			t.Errorf("docker exec exit 7: %d %q", d.code, d.stderr)
		}
		d := runEnv(t, []string{"DOCKER_HOST=unix://" + socketPath()}, "piped\n", "docker", "exec", "-i", "exc", "cat")
		if d.code != 0 || d.stdout != "piped\n" {
			t.Errorf("docker exec -i: %d %q %q", d.code, d.stdout, d.stderr)
		}
		if d := docker(t, "exec", "-d", "exc", "sleep", "4343"); d.code != 0 {
			t.Errorf("docker exec -d: %d %q", d.code, d.stderr)
		}
		waitFor(t, "docker top to show the detached exec", 5*time.Second, func() bool {
			return strings.Contains(docker(t, "top", "exc").stdout, "sleep 4343")
		})
	}
}

// Acceptance 8: exec into a missing or stopped container, attach to a
// stopped one, invalid detach keys: clear errors, and nothing changes.
func TestExecBadInput(t *testing.T) {
	r := moss(t, "exec", "no-such-ctr", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "No such container") {
		t.Errorf("exec into a missing container: %d %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(mustMoss(t, "create", "--name", "exstopped", image, "true"))
	rmf(t, "exstopped")
	r = moss(t, "exec", "exstopped", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "is not running") {
		t.Errorf("exec into a created container: %d %q", r.code, r.stderr)
	}
	if st := strings.TrimSpace(mustMoss(t, "inspect", "--format", "{{.State.Status}}", id)); st != "created" {
		t.Errorf("the container changed: %s", st)
	}
	// Attach to a stopped container.
	r = moss(t, "attach", "exstopped")
	if r.code == 0 || !strings.Contains(r.stderr, "cannot attach to a stopped container") {
		t.Errorf("attach to a created container: %d %q", r.code, r.stderr)
	}
	mustMoss(t, "run", "-d", "--name", "extty", image, "sleep", "1000")
	rmf(t, "extty")
	if r := moss(t, "exec", "extty"); r.code == 0 {
		t.Error("exec without a command succeeded")
	}
	// Invalid detach keys, for exec, run and attach: refused before anything runs.
	before := mustMoss(t, "ps", "-a", "-q")
	for _, args := range [][]string{
		{"exec", "-it", "--detach-keys", "ctrl-1", "extty", "true"},
		{"run", "-it", "--rm", "--detach-keys", "nonsense", image, "true"},
		{"attach", "--detach-keys", "ctrl-", "extty"},
	} {
		r := moss(t, args...)
		if r.code == 0 || !strings.Contains(r.stderr, "Invalid detach keys") {
			t.Errorf("moss %v: %d %q", args, r.code, r.stderr)
		}
	}
	if after := mustMoss(t, "ps", "-a", "-q"); after != before {
		t.Errorf("bad input changed the containers:\n%s\nnow:\n%s", before, after)
	}
}

// TestExecAfterRestart: the exec helper started after an exec preloads
// that container; a restart in between (a new init, its state rewritten)
// must not send the next exec to the old one, nor a stop let it through.
func TestExecAfterRestart(t *testing.T) {
	rmf(t, "execrs")
	mustMoss(t, "run", "-d", "--name", "execrs", "--network", "none", image, "sleep", "1000")
	first := mustMoss(t, "exec", "execrs", "sh", "-c", "cat /proc/1/stat | cut -d' ' -f22")
	mustMoss(t, "restart", "-t", "0", "execrs")
	second := mustMoss(t, "exec", "execrs", "sh", "-c", "cat /proc/1/stat | cut -d' ' -f22")
	if first == second {
		t.Fatalf("the exec after a restart ran beside the old init (start time %s)", first)
	}
	mustMoss(t, "stop", "-t", "0", "execrs")
	if r := moss(t, "exec", "execrs", "true"); r.code == 0 || !strings.Contains(r.stderr, "is not running") {
		t.Fatalf("exec into the stopped container: %+v", r)
	}
}
