package integration

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// v1Delegated returns the cgroup v1 directories hack/prepare-host.sh
// delegates to the user, by controller; it skips the test without them.
func v1Delegated(t *testing.T) map[string]string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range []string{"memory", "cpu", "cpuacct", "pids", "freezer", "blkio", "cpuset"} {
		d := filepath.Join("/sys/fs/cgroup", c, "moss-"+u.Username)
		if st, err := os.Stat(d); err == nil && st.IsDir() && syscall.Access(filepath.Join(d, "cgroup.procs"), 2) == nil {
			out[c] = d
		}
	}
	if out["memory"] == "" || out["pids"] == "" || out["freezer"] == "" || out["cpu"] == "" || out["cpuacct"] == "" {
		t.Skip("no delegated cgroup v1 subtree (hack/prepare-host.sh makes them)")
	}
	return out
}

// withCgroupConfig writes the user's moss.toml naming the delegated
// subtrees and restarts the agent; the clean-up restores the default.
func withCgroupConfig(t *testing.T, v1 map[string]string, extra string) {
	t.Helper()
	var kv []string
	for c, d := range v1 {
		kv = append(kv, fmt.Sprintf("%s = %q", c, d))
	}
	body := "[cgroups]\n" + extra
	if v1 != nil {
		body += "v1 = { " + strings.Join(kv, ", ") + " }\n"
	}
	withAgentConfig(t, body)
}

// agentConfig is the user's moss.toml, which the agent reads at its start.
func agentConfig() string { return filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "moss", "moss.toml") }

// writeAgentConfig writes the user's moss.toml.
func writeAgentConfig(t *testing.T, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(agentConfig()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(agentConfig(), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// withAgentConfig writes the user's moss.toml and restarts the agent; the
// clean-up restores the default.
func withAgentConfig(t *testing.T, body string) {
	t.Helper()
	writeAgentConfig(t, body)
	restartAgent(t)
	t.Cleanup(func() {
		os.Remove(agentConfig())
		restartAgent(t)
	})
}

func restartAgent(t *testing.T) {
	old := agentPID()
	_ = syscall.Kill(old, syscall.SIGTERM)
	waitGone(old, 10*time.Second)
	mustMoss(t, "version")
}

// blockDevice is a disk of this machine for the blkio throttles ("" when
// there is none to name).
func blockDevice() string {
	entries, _ := os.ReadDir("/sys/block")
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "zram") || strings.HasPrefix(n, "dm-") {
			continue
		}
		if _, err := os.Stat("/dev/" + n); err == nil {
			return "/dev/" + n
		}
	}
	return ""
}

// noCgroups checks that the cgroups of the container id are gone.
func noCgroups(t *testing.T, v1 map[string]string, id string) {
	t.Helper()
	waitFor(t, "the container's cgroups to be removed", 5*time.Second, func() bool {
		for _, d := range v1 {
			if _, err := os.Stat(filepath.Join(d, id)); err == nil {
				return false
			}
		}
		return true
	})
}

// hasProcess says whether the cgroup dir holds a process whose command
// line is cmdline (its arguments separated by NUL, as /proc has them).
func hasProcess(dir, cmdline string) bool {
	for _, pid := range strings.Fields(readFile(filepath.Join(dir, "cgroup.procs"))) {
		if b, err := os.ReadFile("/proc/" + pid + "/cmdline"); err == nil && strings.TrimRight(string(b), "\x00") == cmdline {
			return true
		}
	}
	return false
}

func readInt(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

func containerID(t *testing.T, name string) string {
	return strings.TrimSpace(mustMoss(t, "inspect", "-f", "{{.Id}}", name))
}

func TestLimits(t *testing.T) {
	v1 := v1Delegated(t)
	withCgroupConfig(t, v1, "")
	if out := mustMoss(t, "info"); !strings.Contains(out, "memory") || !strings.Contains(out, v1["memory"]) {
		t.Fatalf("info does not show the delegated controllers:\n%s", out)
	}

	t.Run("BadInput", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"-m", "1k"}, "Minimum memory limit allowed is 6MB"},
			{[]string{"--cpus", "-1"}, "Range of CPUs is from 0.01"},
			{[]string{"--cpuset-cpus", "99"}, "Requested CPUs are not available - requested 99"},
			{[]string{"--blkio-weight", "5"}, "Range of blkio weight is from 10 to 1000"},
			{[]string{"--memory-swap", "64m"}, "You should always set the Memory limit"},
		} {
			r := moss(t, append(append([]string{"run", "--rm"}, c.args...), image, "true")...)
			if r.code != 125 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("run %v: %+v, want code 125 and %q", c.args, r, c.want)
			}
		}
	})

	t.Run("FailedStart", func(t *testing.T) {
		rmf(t, "fstart")
		if r := moss(t, "run", "--name", "fstart", "-m", "32m", "--pids-limit", "20", image, "/nonexistent"); r.code != 127 {
			t.Fatalf("run of a missing command: %+v, want 127", r)
		}
		noCgroups(t, v1, containerID(t, "fstart"))
		rmf(t, "fstart")
	})

	t.Run("Flags", func(t *testing.T) {
		rmf(t, "flags")
		args := []string{"run", "-d", "--name", "flags", "-m", "64m", "--memory-swap", "128m", "--memory-reservation", "32m",
			"--oom-kill-disable", "--cpu-shares", "512", "--cpu-period", "50000", "--cpu-quota", "25000",
			"--cpuset-cpus", "0", "--cpuset-mems", "0", "--blkio-weight", "300",
			"--ulimit", "nofile=512:1024", "--ulimit", "nproc=100:200", "--shm-size", "8m"}
		disk := blockDevice()
		if disk != "" {
			args = append(args, "--device-read-bps", disk+":2mb", "--device-write-bps", disk+":1mb")
		}
		mustMoss(t, append(args, image, "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u; df -k /dev/shm | tail -1; exec sleep 60")...)
		id := containerID(t, "flags")
		for _, f := range []struct{ ctrl, file, want string }{
			{"memory", "memory.limit_in_bytes", "67108864"},
			{"memory", "memory.memsw.limit_in_bytes", "134217728"},
			{"memory", "memory.soft_limit_in_bytes", "33554432"},
			{"memory", "memory.oom_control", "oom_kill_disable 1"},
			{"cpu", "cpu.shares", "512"},
			{"cpu", "cpu.cfs_period_us", "50000"},
			{"cpu", "cpu.cfs_quota_us", "25000"},
			{"cpuset", "cpuset.cpus", "0"},
			{"cpuset", "cpuset.mems", "0"},
		} {
			if v1[f.ctrl] == "" {
				continue
			}
			path := filepath.Join(v1[f.ctrl], id, f.file)
			if _, err := os.Stat(path); err != nil && f.file == "memory.memsw.limit_in_bytes" {
				continue // no swap accounting in this kernel
			}
			if got := readFile(path); !strings.HasPrefix(got, f.want) {
				t.Errorf("%s: %q, want %q", f.file, got, f.want)
			}
		}
		if d := v1["blkio"]; d != "" {
			weight := filepath.Join(d, id, "blkio.weight")
			if _, err := os.Stat(weight); err != nil {
				weight = filepath.Join(d, id, "blkio.bfq.weight")
			}
			if got := readFile(weight); !strings.Contains(got, "300") {
				t.Errorf("%s: %q, want 300", weight, got)
			}
			if disk != "" {
				var st syscall.Stat_t
				if err := syscall.Stat(disk, &st); err != nil {
					t.Fatal(err)
				}
				dev := fmt.Sprintf("%d:%d ", unix.Major(st.Rdev), unix.Minor(st.Rdev))
				if got := readFile(filepath.Join(d, id, "blkio.throttle.read_bps_device")); !strings.Contains(got, dev+"2097152") {
					t.Errorf("read_bps_device %q, want %s2097152", got, dev)
				}
				if got := readFile(filepath.Join(d, id, "blkio.throttle.write_bps_device")); !strings.Contains(got, dev+"1048576") {
					t.Errorf("write_bps_device %q, want %s1048576", got, dev)
				}
			}
		}
		var out string
		waitFor(t, "the container's output", 5*time.Second, func() bool {
			out = mustMoss(t, "logs", "flags")
			return strings.Count(out, "\n") >= 4
		})
		if f := strings.Fields(out); len(f) < 5 || f[0] != "512" || f[1] != "1024" || f[2] != "100" || f[4] != "8192" {
			t.Errorf("ulimits and /dev/shm inside: %q, want 512 1024 100 and 8192 KiB", out)
		}
		if got := mustMoss(t, "exec", "flags", "sh", "-c", "ulimit -n; ulimit -Hn"); got != "512\n1024\n" {
			t.Errorf("an exec's ulimits: %q, want the container's", got)
		}
		var own unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &own); err == nil && own.Max != unix.RLIM_INFINITY {
			r := moss(t, "run", "--rm", "--ulimit", fmt.Sprintf("nofile=%d:%d", own.Max+1, own.Max+1), image, "true")
			if r.code != 125 || !strings.Contains(r.stderr, "above the user's own") {
				t.Errorf("--ulimit above the user's hard limit: %+v", r)
			}
		}
		rmf(t, "flags")
	})

	t.Run("OOM", func(t *testing.T) {
		rmf(t, "oom")
		r := moss(t, "run", "--name", "oom", "-m", "32m", image, "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived")
		if r.code != 137 {
			t.Fatalf("memory hog under -m 32m: %+v, want exit 137", r)
		}
		if got := mustMoss(t, "inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "oom"); got != "true 137\n" {
			t.Fatalf("inspect: %q, want OOMKilled true, 137", got)
		}
		if ev := mustMoss(t, "events", "--since", "5m", "--until", "0s", "--filter", "container=oom", "--filter", "event=oom"); !strings.Contains(ev, "oom") {
			t.Errorf("no oom event: %q", ev)
		}
		rmf(t, "oom")
	})

	t.Run("PidsLimit", func(t *testing.T) {
		rmf(t, "pids")
		mustMoss(t, "run", "-d", "--name", "pids", "--pids-limit", "20", image, "sh", "-c", "(for i in $(seq 100); do sleep 60 & done); exec sleep 60")
		id := containerID(t, "pids")
		cg := filepath.Join(v1["pids"], id)
		if got := strings.TrimSpace(readFile(filepath.Join(cg, "pids.max"))); got != "20" {
			t.Fatalf("pids.max %q", got)
		}
		waitFor(t, "the fork loop to hit the limit", 10*time.Second, func() bool {
			return strings.Contains(readFile(filepath.Join(cg, "pids.events")), "max ") && !strings.Contains(readFile(filepath.Join(cg, "pids.events")), "max 0")
		})
		if n := readInt(t, filepath.Join(cg, "pids.current")); n > 20 {
			t.Fatalf("%d processes under --pids-limit 20", n)
		}
		mustMoss(t, "ps")
		if out := mustMoss(t, "inspect", "-f", "{{.State.Running}}", "pids"); out != "true\n" {
			t.Fatalf("the container did not survive its fork loop: %q", out)
		}
		rmf(t, "pids")
	})

	t.Run("CPUs", func(t *testing.T) {
		rmf(t, "cpus")
		mustMoss(t, "run", "-d", "--name", "cpus", "--cpus", "0.5", image, "sh", "-c", "while :; do :; done")
		id := containerID(t, "cpus")
		usage := filepath.Join(v1["cpuacct"], id, "cpuacct.usage")
		time.Sleep(500 * time.Millisecond) // the loop is running
		u0, t0 := readInt(t, usage), time.Now()
		time.Sleep(5 * time.Second)
		u1, t1 := readInt(t, usage), time.Now()
		share := float64(u1-u0) / float64(t1.Sub(t0).Nanoseconds())
		t.Logf("--cpus 0.5: %.1f %% of one core over %v", share*100, t1.Sub(t0).Round(time.Millisecond))
		if share < 0.40 || share > 0.60 {
			t.Fatalf("--cpus 0.5 used %.1f %% of one core, want 40-60 %%", share*100)
		}
		rmf(t, "cpus")
	})

	t.Run("PauseAndStats", func(t *testing.T) {
		rmf(t, "counter")
		mustMoss(t, "run", "-d", "--name", "counter", "-m", "32m", image, "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done")
		id := containerID(t, "counter")
		lines := func() int { return strings.Count(mustMoss(t, "logs", "counter"), "\n") }
		waitFor(t, "the counter", 5*time.Second, func() bool { return lines() > 2 })
		mustMoss(t, "pause", "counter")
		if got := strings.TrimSpace(readFile(filepath.Join(v1["freezer"], id, "freezer.state"))); got != "FROZEN" {
			t.Fatalf("freezer.state %q after pause", got)
		}
		if got := mustMoss(t, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "counter"); got != "paused true\n" {
			t.Fatalf("inspect after pause: %q", got)
		}
		n := lines()
		time.Sleep(500 * time.Millisecond)
		if m := lines(); m != n {
			t.Fatalf("the counter advanced while paused: %d → %d", n, m)
		}
		mustMoss(t, "unpause", "counter")
		waitFor(t, "the counter to resume", 5*time.Second, func() bool { return lines() > n })

		out := mustMoss(t, "stats", "--no-stream", "counter")
		if !strings.Contains(out, "MEM USAGE / LIMIT") || !strings.Contains(out, "/ 32MiB") {
			t.Fatalf("stats --no-stream does not show the 32 MiB limit:\n%s", out)
		}
		out = mustMoss(t, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "counter")
		if !strings.HasPrefix(out, "counter ") {
			t.Fatalf("stats --format: %q", out)
		}
		mustMoss(t, "update", "-m", "64m", "counter")
		if n := readInt(t, filepath.Join(v1["memory"], id, "memory.limit_in_bytes")); n != 64<<20 {
			t.Fatalf("memory.limit_in_bytes %d after update -m 64m", n)
		}

		// An exec's process is the container's, in each of its cgroups.
		mustMoss(t, "exec", "-d", "counter", "sleep", "61")
		for _, ctrl := range []string{"pids", "memory", "freezer"} {
			waitFor(t, "the exec in the "+ctrl+" cgroup", 5*time.Second, func() bool {
				return hasProcess(filepath.Join(v1[ctrl], id), "sleep\x0061")
			})
		}
		// Paused: exec is refused, and stop kills it promptly.
		mustMoss(t, "pause", "counter")
		if r := moss(t, "exec", "counter", "true"); r.code == 0 || !strings.Contains(r.stderr, "is paused, unpause the container before exec") {
			t.Fatalf("exec into a paused container: %+v", r)
		}
		t0 := time.Now()
		mustMoss(t, "stop", "-t", "1", "counter")
		if d := time.Since(t0); d > 10*time.Second {
			t.Fatalf("stop of a paused container took %v", d)
		}
		if got := mustMoss(t, "inspect", "-f", "{{.State.Status}} {{.State.Paused}} {{.State.ExitCode}}", "counter"); got != "exited false 137\n" {
			t.Fatalf("inspect after stopping the paused container: %q", got)
		}
		noCgroups(t, v1, id)
		rmf(t, "counter")
	})

	t.Run("Docker", func(t *testing.T) {
		rmf(t, "doom", "dcount")
		r := docker(t, "run", "--name", "doom", "-m", "32m", image, "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a)")
		if r.code != 137 {
			t.Fatalf("docker run -m 32m hog: %+v", r)
		}
		if r := docker(t, "inspect", "-f", "{{.State.OOMKilled}}", "doom"); strings.TrimSpace(r.stdout) != "true" {
			t.Fatalf("docker inspect OOMKilled: %+v", r)
		}
		if r := docker(t, "run", "-d", "--name", "dcount", "-m", "48m", image, "sleep", "60"); r.code != 0 {
			t.Fatalf("docker run -d: %+v", r)
		}
		for _, verb := range []string{"pause", "unpause"} {
			if r := docker(t, verb, "dcount"); r.code != 0 {
				t.Fatalf("docker %s: %+v", verb, r)
			}
		}
		if r := docker(t, "stats", "--no-stream", "dcount"); r.code != 0 || !strings.Contains(r.stdout, "48MiB") {
			t.Fatalf("docker stats --no-stream: %+v", r)
		}
		rmf(t, "doom", "dcount")
	})
}

// TestLimitsUndelegated: without delegated cgroups a limit is an error
// that names the cause and the fix, or a warning with unsupported = "warn".
func TestLimitsUndelegated(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		t.Skip("a cgroup v2 host: the user's systemd session may delegate controllers")
	}
	r := moss(t, "run", "--rm", "-m", "32m", image, "true")
	if r.code != 125 || !strings.Contains(r.stderr, "cannot apply --memory") || !strings.Contains(r.stderr, "[cgroups] v1") {
		t.Fatalf("-m without delegated cgroups: %+v", r)
	}
	withCgroupConfig(t, nil, "unsupported = \"warn\"\n")
	r = moss(t, "run", "--rm", "-m", "32m", image, "echo", "ran")
	if r.code != 0 || r.stdout != "ran\n" || !strings.Contains(r.stderr, "--memory discarded") {
		t.Fatalf("-m with unsupported = warn: %+v", r)
	}
}
