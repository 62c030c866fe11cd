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

// statFields are the fields of /proc/PID/stat after the command name
// (which is in parentheses): the state is [0], field 4 of proc(5) [1].
func statFields(pid string) []string {
	st := readFile(filepath.Join("/proc", pid, "stat"))
	i := strings.LastIndexByte(st, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(st[i+1:])
}

// procStart is when process pid started, in clock ticks since boot.
func procStart(t *testing.T, pid int) int64 {
	t.Helper()
	f := statFields(strconv.Itoa(pid))
	if len(f) < 20 {
		t.Fatalf("/proc/%d/stat: %v", pid, f)
	}
	n, err := strconv.ParseInt(f[19], 10, 64) // field 22, starttime
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// uptimeTicks is the time since boot in clock ticks (USER_HZ, 100 on
// Linux).
func uptimeTicks(t *testing.T) int64 {
	t.Helper()
	var up float64
	if _, err := fmt.Sscan(readFile("/proc/uptime"), &up); err != nil {
		t.Fatal(err)
	}
	return int64(up * 100)
}

// warmStubs counts this suite's warm containers' stubs waiting for a
// command: their PID 1 is this binary, executed as /proc/self/fd/3, whose
// parent is a supervisor of a bundle in the suite's data directory.
func warmStubs() int {
	n := 0
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil || string(b) != "/proc/self/fd/3\x00" {
			continue
		}
		if f := statFields(p.Name()); len(f) > 1 && strings.Contains(readFile(filepath.Join("/proc", f[1], "environ")), "MOSS_SV_BUNDLE="+dataDir+"/") {
			n++
		}
	}
	return n
}

// waitWarm waits until a warm container is ready: a stub waits.
func waitWarm(t *testing.T) {
	t.Helper()
	waitFor(t, "a warm container", 20*time.Second, func() bool { return warmStubs() == 1 })
}

// TestWarmStarts (issue 2, start latency): after a start, the next
// container of the same image and options is made in advance; a container
// created then takes it, and it is indistinguishable from one started cold
// (its command is PID 1, with the same capabilities, seccomp filter,
// descriptors, user, environment, hostname and files). Another
// configuration starts cold and gets what it asked for; a claimed one that
// is removed, or an agent killed with one ready, leaves nothing behind.
func TestWarmStarts(t *testing.T) {
	probe := `hostname; grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status; ls /proc/self/fd; id; pwd; ulimit -n; cat /etc/hostname; grep -c . /etc/hosts; env | grep -v '^HOSTNAME=' | sort; cat /proc/1/cmdline | tr '\0' ' '`
	out := func(r result) string {
		host := strings.TrimSpace(strings.SplitN(r.stdout, "\n", 2)[0])
		return strings.ReplaceAll(r.stdout, host, "HOST")
	}
	// The first start is cold; a container made then is warm (a layer for
	// a container without --rm: those of --rm ones skip syncing).
	rmf(t, "warm0")
	mustMoss(t, "run", "--name", "warm0", "--network", "none", image, "true")
	waitWarm(t)
	rmf(t, "warm1")
	mustMoss(t, "create", "--name", "warm1", "--network", "none", "-e", "FOO=bar", image, "sleep", "100")
	t0 := uptimeTicks(t)
	time.Sleep(200 * time.Millisecond)
	mustMoss(t, "start", "warm1")
	pid := inspectState(t, "warm1").State.Pid
	if started := procStart(t, pid); started >= t0 {
		t.Fatalf("PID 1 of the container started %d ticks after the create: not a warm start", started-t0)
	}
	if cmd := readFile(fmt.Sprintf("/proc/%d/cmdline", pid)); cmd != "sleep\x00100\x00" {
		t.Fatalf("the warm container's PID 1 runs %q", cmd)
	}
	if env := readFile(fmt.Sprintf("/proc/%d/environ", pid)); !strings.Contains(env, "FOO=bar\x00") || strings.Contains(env, "_MOSS") {
		t.Fatalf("the warm container's environment: %q", env)
	}
	id := containerID(t, "warm1")
	if h := mustMoss(t, "exec", "warm1", "hostname"); h != id[:12]+"\n" {
		t.Fatalf("hostname %q, want %s", h, id[:12])
	}
	mustMoss(t, "rm", "-f", "warm1", "warm0")

	// Cold and warm runs of the same command see the same container.
	waitWarm(t) // (for containers without --rm: this run is cold)
	cold := moss(t, "run", "--rm", "--network", "none", "-e", "X=1", "--name", "probe-cold", image, "sh", "-c", probe)
	waitWarm(t)
	warm := moss(t, "run", "--rm", "--network", "none", "-e", "X=1", "--name", "probe-warm", image, "sh", "-c", probe)
	if cold.code != 0 || warm.code != 0 || out(cold) != out(warm) {
		t.Fatalf("cold and warm containers differ:\ncold %+v\nwarm %+v", cold, warm)
	}
	if !strings.Contains(warm.stdout, "Seccomp:\t2") || !strings.Contains(warm.stdout, "0\n1\n2\n3\n") {
		t.Fatalf("warm container: %q", warm.stdout)
	}

	// Failures to run the command, as at a cold start.
	waitWarm(t)
	if r := moss(t, "run", "--rm", "--network", "none", image, "/nonexistent"); r.code != 127 || !strings.Contains(r.stderr, `exec: "/nonexistent": stat /nonexistent: no such file or directory`) {
		t.Fatalf("warm run of a missing command: %+v", r)
	}
	waitWarm(t)
	if r := moss(t, "run", "--rm", "--network", "none", image, "nonexistent"); r.code != 127 || !strings.Contains(r.stderr, `exec: "nonexistent": executable file not found in $PATH`) {
		t.Fatalf("warm run of a command not in PATH: %+v", r)
	}

	// Other options start cold, with what they ask for.
	for _, c := range []struct {
		args []string
		cmd  string
		want string
	}{
		{[]string{"--cap-add", "NET_ADMIN"}, "grep CapEff /proc/self/status", "CapEff:\t00000000a80435fb"},
		{[]string{"-u", "1000:1000"}, "id -u; id -g", "1000\n1000\n"},
		{[]string{"-w", "/tmp"}, "pwd", "/tmp\n"},
		{[]string{"-h", "otherhost"}, "hostname", "otherhost\n"},
		{[]string{"--ulimit", "nofile=100:200"}, "ulimit -n", "100\n"},
		{[]string{"--read-only"}, "touch /x 2>&1; echo $?", "1\n"},
	} {
		waitWarm(t)
		args := append(append([]string{"run", "--rm", "--network", "none"}, c.args...), image, "sh", "-c", c.cmd)
		if got := mustMoss(t, args...); !strings.Contains(got, c.want) {
			t.Errorf("run %v: %q, want %q", c.args, got, c.want)
		}
	}
	// The default network, warm too: its endpoint is made with the warm
	// container, and becomes the container's.
	mustMoss(t, "run", "--rm", image, "true")
	waitWarm(t)
	if got := mustMoss(t, "run", "--rm", image, "sh", "-c", "ip -4 addr show eth0 | grep -c inet; cat /proc/1/cmdline | tr '\\0' ' '"); got != "1\nsh -c ip -4 addr show eth0 | grep -c inet; cat /proc/1/cmdline | tr '\\0' ' ' " {
		t.Fatalf("warm run on the default network: %q", got)
	}
	rmf(t, "warmdef")
	waitWarm(t)
	mustMoss(t, "run", "-d", "--rm", "--name", "warmdef", image, "sleep", "100")
	ip := strings.TrimSpace(mustMoss(t, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "warmdef"))
	if hosts := mustMoss(t, "exec", "warmdef", "cat", "/etc/hosts"); !strings.Contains(hosts, ip+"\t"+containerID(t, "warmdef")[:12]) {
		t.Fatalf("/etc/hosts of a warm container on the default network (%s):\n%s", ip, hosts)
	}
	if got := mustMoss(t, "exec", "warmdef", "sh", "-c", "ip -4 addr show eth0 | grep -o 'inet [0-9.]*'"); got != "inet "+ip+"\n" {
		t.Fatalf("eth0 of the warm container: %q, inspect says %s", got, ip)
	}
	if got := mustMoss(t, "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", "bridge"); !strings.Contains(got, "warmdef") {
		t.Fatalf("network inspect bridge: %q", got)
	}
	mustMoss(t, "rm", "-f", "warmdef")

	// A container started warm on a bridge network keeps its namespace
	// (made in advance, among the spares) across an agent restart.
	rmf(t, "warmnet0", "warmnet")
	mustMoss(t, "run", "--name", "warmnet0", image, "true")
	waitWarm(t)
	mustMoss(t, "run", "-d", "--name", "warmnet", image, "sleep", "100")
	sandbox := strings.TrimSpace(mustMoss(t, "inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "warmnet"))
	restartAgent(t)
	if _, err := os.Stat(sandbox); err != nil {
		t.Fatalf("the running container's network namespace after an agent restart: %v", err)
	}
	mustMoss(t, "network", "disconnect", "bridge", "warmnet")
	mustMoss(t, "network", "connect", "bridge", "warmnet")
	if got := mustMoss(t, "exec", "warmnet", "sh", "-c", "ip -4 addr show eth0 | grep -c inet"); got != "1\n" {
		t.Fatalf("after reconnecting: %q", got)
	}
	mustMoss(t, "rm", "-f", "warmnet", "warmnet0")

	// A claimed container that is removed unstarted takes its warm
	// container along; so does an agent that is killed.
	mustMoss(t, "run", "--name", "warm2", image, "true")
	waitWarm(t)
	mustMoss(t, "create", "--name", "warm3", image, "true")
	mustMoss(t, "rm", "warm2", "warm3")
	if n := warmStubs(); n != 0 {
		t.Fatalf("%d warm containers after the removal of the one that claimed it", n)
	}
	mustMoss(t, "run", "--rm", image, "true")
	waitWarm(t) // the next one
	_ = syscall.Kill(agentPID(), syscall.SIGKILL)
	waitGone(agentPID(), 10*time.Second)
	mustMoss(t, "ps")
	waitFor(t, "the killed agent's warm container to go", 10*time.Second, func() bool { return warmStubs() == 0 })
	// Its endpoint on the default network too (the bridge driver keeps
	// one file per endpoint, by network).
	bridgeID := strings.TrimSpace(mustMoss(t, "network", "inspect", "-f", "{{.Id}}", "bridge"))
	if eps, _ := filepath.Glob(filepath.Join(runDir, "plugins", "bridge", "endpoints", bridgeID, "*.json")); len(eps) != 0 {
		t.Fatalf("endpoints left on the default network: %v", eps)
	}
	entries, _ := os.ReadDir(filepath.Join(dataDir, "containers"))
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(dataDir, "containers", e.Name(), "container.json")); err != nil && !strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
