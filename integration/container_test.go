package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Acceptance 1: PID 1, the container's hostname, an ID map whose outside ID
// is the user's, and only the container's own processes.
func TestIsolation(t *testing.T) {
	out := mustMoss(t, "run", "--rm", "--name", "iso", "-h", "box1", image, "sh", "-c", "echo $$; hostname; cat /proc/self/uid_map; ls /proc")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 || lines[0] != "1" || lines[1] != "box1" {
		t.Fatalf("want PID 1 and hostname box1, got:\n%s", out)
	}
	first := strings.Fields(lines[2])
	if len(first) != 3 || first[0] != "0" || first[1] != strconv.Itoa(os.Getuid()) {
		t.Fatalf("uid_map's first line should map 0 to uid %d: %q", os.Getuid(), lines[2])
	}
	var pids []string
	for _, l := range lines[3:] {
		if _, err := strconv.Atoi(l); err == nil {
			pids = append(pids, l)
		}
	}
	// sh (1) and ls: nothing else of the machine is visible.
	if len(pids) > 2 || pids[0] != "1" {
		t.Fatalf("container sees foreign processes: %v", pids)
	}
	// Without -h the hostname is the short container ID.
	id := strings.TrimSpace(mustMoss(t, "create", image, "hostname"))
	rmf(t, id)
	got := strings.TrimSpace(mustMoss(t, "start", "-a", id))
	if got != id[:12] {
		t.Fatalf("default hostname %q, want %q", got, id[:12])
	}
}

// Acceptance 2: the namespaces of two containers differ from each other and
// from the agent's.
func TestNamespacesDiffer(t *testing.T) {
	kinds := []string{"pid", "ipc", "uts", "mnt", "net", "cgroup"}
	// Both containers run at once: namespace inode numbers are reused
	// once a namespace is gone.
	get := func(name string) map[string]string {
		mustMoss(t, "run", "-d", "--name", name, image, "sh", "-c", nsScript(kinds)+"echo done; sleep 1000")
		rmf(t, name)
		var out string
		waitFor(t, "namespace links of "+name, 10*time.Second, func() bool {
			out = moss(t, "logs", name).stdout
			return strings.Contains(out, "done")
		})
		return parseNS(t, kinds, strings.TrimSuffix(strings.TrimSpace(out), "done"))
	}
	a, b := get("ns1"), get("ns2")
	agent := map[string]string{}
	pid := agentPID()
	for _, k := range kinds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, k))
		if err != nil {
			t.Fatal(err)
		}
		agent[k] = l
	}
	for _, k := range kinds {
		if a[k] == b[k] || a[k] == agent[k] || b[k] == agent[k] {
			t.Errorf("%s namespace shared: %s %s agent %s", k, a[k], b[k], agent[k])
		}
	}
}

func nsScript(kinds []string) string {
	s := ""
	for _, k := range kinds {
		s += "readlink /proc/self/ns/" + k + "; "
	}
	return s
}

func parseNS(t *testing.T, kinds []string, out string) map[string]string {
	t.Helper()
	lines := strings.Fields(out)
	if len(lines) != len(kinds) {
		t.Fatalf("namespace links: %q", out)
	}
	m := map[string]string{}
	for i, k := range kinds {
		m[k] = lines[i]
	}
	return m
}

// Acceptance 3: copy-on-write, and rm removes the container's layer.
func TestCopyOnWrite(t *testing.T) {
	id := strings.TrimSpace(mustMoss(t, "create", "--name", "cow", image, "sh", "-c", "echo changed > /etc/motd; cat /etc/motd"))
	rmf(t, id)
	upper := strings.TrimSpace(mustMoss(t, "inspect", "--format", "{{.GraphDriver.Data.UpperDir}}", id))
	if upper == "" || upper == "<no value>" {
		t.Fatalf("no upper dir in inspect")
	}
	if out := mustMoss(t, "start", "-a", "cow"); strings.TrimSpace(out) != "changed" {
		t.Fatalf("write in container: %q", out)
	}
	if _, err := os.Stat(filepath.Join(upper, "etc", "motd")); err != nil {
		t.Fatalf("the write is not in the container's layer: %v", err)
	}
	r := moss(t, "run", "--rm", image, "cat", "/etc/motd")
	if r.code == 0 || strings.Contains(r.stdout, "changed") {
		t.Fatalf("the next container sees the first one's write: %+v", r)
	}
	mustMoss(t, "rm", "cow")
	if _, err := os.Stat(upper); !os.IsNotExist(err) {
		t.Fatalf("container layer %s still there after rm: %v", upper, err)
	}
}

// Acceptance 4: a detached server, listed by ps, stopped within the timeout,
// removed, with no mount left behind.
func TestDetachedLifecycle(t *testing.T) {
	id := strings.TrimSpace(mustMoss(t, "run", "-d", "--name", "web", image, "httpd", "-f", "-p", "8080"))
	rmf(t, "web")
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a container ID", id)
	}
	ps := mustMoss(t, "ps")
	if !strings.Contains(ps, "web") || !strings.Contains(ps, id[:12]) || !strings.Contains(ps, "Up ") {
		t.Fatalf("ps does not list the running container:\n%s", ps)
	}
	if got := strings.TrimSpace(mustMoss(t, "ps", "-q", "--filter", "name=web")); got != id[:12] {
		t.Fatalf("ps -q --filter name=web: %q", got)
	}
	if got := strings.TrimSpace(mustMoss(t, "inspect", "--format", "{{.State.Status}} {{.Name}}", "web")); got != "running /web" {
		t.Fatalf("inspect: %q", got)
	}
	start := time.Now()
	mustMoss(t, "stop", "-t", "5", "web")
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("stop took %v with -t 5", d)
	}
	if got := strings.TrimSpace(mustMoss(t, "inspect", "--format", "{{.State.Status}}", "web")); got != "exited" {
		t.Fatalf("status after stop: %q", got)
	}
	if strings.Contains(mustMoss(t, "ps"), "web") {
		t.Fatal("ps (without -a) still lists the stopped container")
	}
	mustMoss(t, "rm", "web")
	if r := moss(t, "inspect", "web"); r.code == 0 {
		t.Fatal("container still there after rm")
	}
	mounts := readFile(fmt.Sprintf("/proc/%d/mountinfo", holderChild()))
	if mounts == "" {
		mounts = readFile("/proc/self/mountinfo")
	}
	if strings.Contains(mounts, id) {
		t.Fatalf("a mount of container %s is left:\n%s", id, mounts)
	}
}

// Acceptance 5: the agent is SIGKILLed while a container runs; the next
// command starts a new agent that finds the container running, with no gap
// in its log, and stop and rm work.
func TestAgentRestart(t *testing.T) {
	mustMoss(t, "run", "-d", "--name", "ticker", image, "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done")
	rmf(t, "ticker")
	waitFor(t, "first log lines", 10*time.Second, func() bool { return strings.Count(moss(t, "logs", "ticker").stdout, "tick") >= 3 })
	old := agentPID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(old, 5*time.Second)
	time.Sleep(600 * time.Millisecond) // the container keeps logging meanwhile
	ps := mustMoss(t, "ps")
	if !strings.Contains(ps, "ticker") || !strings.Contains(ps, "Up ") {
		t.Fatalf("after the agent restart ps shows:\n%s", ps)
	}
	if now := agentPID(); now == old || now == 0 {
		t.Fatalf("no new agent: pid %d (old %d)", now, old)
	}
	logs := mustMoss(t, "logs", "ticker")
	var n []int
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var i int
		if _, err := fmt.Sscanf(l, "tick %d", &i); err == nil {
			n = append(n, i)
		}
	}
	for i := range n {
		if n[i] != i {
			t.Fatalf("gap in the log at line %d: %v", i, n)
		}
	}
	mustMoss(t, "stop", "-t", "1", "ticker")
	mustMoss(t, "rm", "ticker")
}

// Exit codes as docker's.
func TestExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"container status", []string{"run", "--rm", image, "sh", "-c", "exit 3"}, 3},
		{"not found", []string{"run", "--rm", image, "no-such-command"}, 127},
		{"not executable", []string{"run", "--rm", image, "/etc/passwd"}, 126},
		{"moss error", []string{"run", "--rm", "--no-such-flag", image}, 125},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if r := moss(t, tc.args...); r.code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
		})
	}
}

// A killed container reports 137, and kill of a stopped one fails.
func TestKill(t *testing.T) {
	mustMoss(t, "run", "-d", "--name", "victim", image, "sleep", "1000")
	rmf(t, "victim")
	mustMoss(t, "kill", "victim")
	if out := strings.TrimSpace(mustMoss(t, "wait", "victim")); out != "137" {
		t.Fatalf("wait after kill: %q", out)
	}
	if r := moss(t, "kill", "victim"); r.code == 0 || !strings.Contains(r.stderr, "is not running") {
		t.Fatalf("kill of a stopped container: %+v", r)
	}
	// A signal the init handles: sh traps HUP and exits 5.
	mustMoss(t, "run", "-d", "--name", "trapper", image, "sh", "-c", "trap 'exit 5' HUP; while true; do sleep 0.1; done")
	rmf(t, "trapper")
	mustMoss(t, "kill", "-s", "HUP", "trapper")
	if out := strings.TrimSpace(mustMoss(t, "wait", "trapper")); out != "5" {
		t.Fatalf("wait after HUP: %q", out)
	}
}

// Output streams and the environment reach the right places.
func TestRunOptions(t *testing.T) {
	r := moss(t, "run", "--rm", "-e", "A=1", "-e", "B", "-w", "/tmp", "-u", "www", image, "sh", "-c", "echo $A-$B; pwd; id -u; echo oops >&2")
	if r.code != 0 || r.stdout != "1-\n/tmp\n33\n" || r.stderr != "oops\n" {
		t.Fatalf("got %+v", r)
	}
	out := mustMoss(t, "run", "--rm", "--entrypoint", "/bin/echo", image, "x", "y")
	if out != "x y\n" {
		t.Fatalf("entrypoint: %q", out)
	}
	out = mustMoss(t, "run", "--rm", "--read-only", image, "sh", "-c", "touch /x 2>&1; echo $?")
	if !strings.Contains(out, "Read-only") {
		t.Fatalf("--read-only: %q", out)
	}
	out = mustMoss(t, "run", "--rm", "--cap-drop", "ALL", image, "grep", "CapEff", "/proc/self/status")
	if !strings.Contains(out, "0000000000000000") {
		t.Fatalf("--cap-drop ALL: %q", out)
	}
}

// Acceptance 7: the docker CLI against the Moss socket.
func TestDockerCLI(t *testing.T) {
	if r := docker(t, "import", rootfs, "dtest:1"); r.code != 0 {
		t.Fatalf("docker import: %+v", r)
	}
	r := docker(t, "run", "-d", "--name", "dweb", "dtest:1", "sh", "-c", "echo hello from docker; sleep 1000")
	rmf(t, "dweb")
	if r.code != 0 {
		t.Fatalf("docker run -d: %+v", r)
	}
	if r := docker(t, "ps"); !strings.Contains(r.stdout, "dweb") {
		t.Fatalf("docker ps: %+v", r)
	}
	waitFor(t, "docker logs", 10*time.Second, func() bool {
		return strings.Contains(docker(t, "logs", "dweb").stdout, "hello from docker")
	})
	r = docker(t, "inspect", "--format", "{{.State.Pid}}", "dweb")
	if pid, err := strconv.Atoi(strings.TrimSpace(r.stdout)); err != nil || pid <= 0 {
		t.Fatalf("docker inspect pid: %+v", r)
	}
	if r := docker(t, "stop", "-t", "1", "dweb"); r.code != 0 {
		t.Fatalf("docker stop: %+v", r)
	}
	if r := docker(t, "rm", "dweb"); r.code != 0 {
		t.Fatalf("docker rm: %+v", r)
	}
	if r := docker(t, "images"); !strings.Contains(r.stdout, "dtest") {
		t.Fatalf("docker images: %+v", r)
	}
	if r := docker(t, "run", "--rm", "dtest:1", "sh", "-c", "echo attached; exit 4"); r.code != 4 || r.stdout != "attached\n" {
		t.Fatalf("docker run (attached): %+v", r)
	}
	mustMoss(t, "rmi", "dtest:1")
}
