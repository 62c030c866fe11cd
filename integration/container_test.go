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
	if len(pids) == 0 || len(pids) > 2 || pids[0] != "1" {
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
	layer := upper
	if filepath.Base(upper) == "diff" { // overlay: <graph root>/overlay/<layer ID>/diff
		layer = filepath.Dir(upper)
	}
	if _, err := os.Stat(layer); !os.IsNotExist(err) {
		t.Fatalf("container layer %s still there after rm: %v", layer, err)
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
	merged := strings.TrimSpace(mustMoss(t, "inspect", "--format", "{{.GraphDriver.Data.MergedDir}}", "web"))
	if merged == "" || merged == "<no value>" {
		t.Fatal("inspect shows no GraphDriver.Data.MergedDir")
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
	// httpd, PID 1 without a SIGTERM handler, ignores SIGTERM: stop ends it
	// with SIGKILL after the timeout.
	mustMoss(t, "stop", "-t", "2", "web")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop took %v with -t 2", d)
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
	// The agent's mount table (it joined the holder's mount namespace) and
	// the holder child's, where the overlay mounts live.
	checked := 0
	for _, pid := range []int{agentPID(), holderChild()} {
		if pid <= 0 {
			continue
		}
		mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		if err != nil {
			t.Fatalf("read the mount table of %d: %v", pid, err)
		}
		checked++
		if strings.Contains(string(mounts), id) || strings.Contains(string(mounts), merged) {
			t.Fatalf("a mount of container %s is left in the mount table of %d:\n%s", id, pid, mounts)
		}
	}
	if checked == 0 {
		t.Fatal("neither agent.pid nor the holder's child PID found in the runtime directory")
	}
}

// Acceptance 5: the agent is SIGKILLed while a container prints the date
// every second; the container and its supervisor go on meanwhile; the next
// command starts a new agent that finds the container running, its log has
// no gap, and stop and rm work.
func TestAgentRestart(t *testing.T) {
	id := strings.TrimSpace(mustMoss(t, "run", "-d", "--name", "ticker", image, "sh", "-c", "while true; do date; sleep 1; done"))
	rmf(t, "ticker")
	logPath := strings.TrimSpace(mustMoss(t, "inspect", "--format", "{{.LogPath}}", id))
	lines := func() int { return strings.Count(readFile(logPath), "\n") }
	waitFor(t, "two log lines", 10*time.Second, func() bool { return lines() >= 2 })
	old := agentPID()
	if old <= 0 {
		t.Fatal("no agent.pid")
	}
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(old, 5*time.Second)
	// With the agent gone the supervisor keeps writing the log file.
	n := lines()
	waitFor(t, "log lines written while no agent runs", 10*time.Second, func() bool { return lines() >= n+2 })
	if syscall.Kill(old, 0) == nil {
		t.Fatalf("agent %d survived SIGKILL", old)
	}
	ps := mustMoss(t, "ps")
	if !strings.Contains(ps, "ticker") || !strings.Contains(ps, "Up ") {
		t.Fatalf("after the agent restart ps shows:\n%s", ps)
	}
	if now := agentPID(); now == old || now <= 0 {
		t.Fatalf("no new agent: pid %d (old %d)", now, old)
	}
	// One more line, now with the new agent serving.
	n = lines()
	waitFor(t, "log lines after the restart", 10*time.Second, func() bool { return lines() >= n+1 })
	checkDateLog(t, mustMoss(t, "logs", "ticker"))
	mustMoss(t, "stop", "-t", "1", "ticker")
	if got := strings.TrimSpace(mustMoss(t, "inspect", "--format", "{{.State.Status}}", "ticker")); got != "exited" {
		t.Fatalf("status after stop: %q", got)
	}
	mustMoss(t, "rm", "ticker")
	if r := moss(t, "inspect", "ticker"); r.code == 0 {
		t.Fatal("container still there after rm")
	}
}

// checkDateLog checks the output of `while true; do date; sleep 1; done`
// for a gap: each line one second after the previous one. A loop turn takes
// a little more than a second, so now and then the printed second skips one;
// more skips than the loop's own drift explains mean lost lines.
func checkDateLog(t *testing.T, logs string) {
	t.Helper()
	var stamps []time.Time
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		ts, err := time.Parse(time.UnixDate, strings.Join(strings.Fields(l), " "))
		if err != nil {
			ts, err = time.Parse("Mon Jan 2 15:04:05 MST 2006", strings.Join(strings.Fields(l), " "))
		}
		if err != nil {
			t.Fatalf("log line %q is not a date: %v\n%s", l, err, logs)
		}
		stamps = append(stamps, ts)
	}
	if len(stamps) < 4 {
		t.Fatalf("only %d log lines:\n%s", len(stamps), logs)
	}
	skips := 0
	for i := 1; i < len(stamps); i++ {
		switch d := stamps[i].Sub(stamps[i-1]); d {
		case time.Second:
		case 2 * time.Second:
			skips++
		default:
			t.Fatalf("gap of %v in the log between lines %d and %d:\n%s", d, i-1, i, logs)
		}
	}
	elapsed := stamps[len(stamps)-1].Sub(stamps[0])
	if skips > 1+int(elapsed/(20*time.Second)) {
		t.Fatalf("%d lines over %v (%d skipped seconds): lines were lost\n%s", len(stamps), elapsed, skips, logs)
	}
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
