package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// describeProcess prints what an exec's process is given: credentials,
// capabilities, seccomp, no_new_privs, signals, limits, umask, streams,
// environment, working directory, cgroups, namespaces, session and
// process group, OOM score, scheduling; and how the container's seccomp
// profile answers (a refused unshare).
const describeProcess = `id
grep -vE "^(Name|State|Pid|PPid|Tgid|Ngid|TracerPid|Vm|Rss|Threads|voluntary|nonvoluntary|NS|Kthread|SigQ|untag_mask|HugetlbPages|CoreDumping|THP_enabled)" /proc/self/status
umask
cat /proc/self/limits
ls -l /proc/self/fd | sed 1d | awk '{print $1, $9, $10, substr($11, 1, 5)}'
env | sort
pwd
cat /proc/self/cgroup
for n in ipc mnt net pid uts cgroup user time; do readlink /proc/self/ns/$n; done
set -- $(cat /proc/self/stat)
echo session-leader=$(($6 == $$)) group-leader=$(($5 == $$)) parent-outside=$(($4 == 0))
cat /proc/self/oom_score_adj /proc/self/loginuid
grep -E "^(policy|prio)" /proc/self/sched
unshare -U true; echo unshare=$?
`

// TestFastExec (issue 3, exec latency): the fast exec (internal/cexec)
// gives an exec's process what libcontainer's exec gives it, and fails as
// it does: every exec below prints the same with the fast exec on (the
// default) and off ([runtime] fast_exec = false), in containers with and
// without options that reach an exec (limits, capabilities,
// no-new-privileges, a user, a working directory). A container whose
// processes may trace another (CAP_SYS_PTRACE) has libcontainer's exec
// only: the fast exec's process shares the agent's memory until its exec.
func TestFastExec(t *testing.T) {
	ctrs := []string{"fastexec", "fastexec-opts", "fastexec-ptrace"}
	rmf(t, ctrs...)
	mustMoss(t, "run", "-d", "--name", "fastexec", image, "sleep", "1000")
	mustMoss(t, "run", "-d", "--name", "fastexec-opts", "--network", "none", "--ulimit", "nofile=512:1024",
		"--ulimit", "nproc=900:1000", "--cap-add", "SYS_NICE", "--cap-drop", "CHOWN",
		"--security-opt", "no-new-privileges", "-u", "1000:1000", "-w", "/tmp", "-e", "FROM_RUN=1", image, "sleep", "1000")
	// Its processes may trace the fast exec's: libcontainer's exec only.
	mustMoss(t, "run", "-d", "--name", "fastexec-ptrace", "--cap-add", "SYS_PTRACE", image, "sleep", "1000")
	type execCase struct {
		name string
		args []string
	}
	var cases []execCase
	for _, ctr := range ctrs {
		cases = append(cases,
			execCase{ctr + " default", []string{"exec", ctr, "sh", "-c", describeProcess}},
			execCase{ctr + " user, dir, env", []string{"exec", "-u", "100:101", "-w", "/etc", "-e", "X=1", "-e", "HOME=/home/x", ctr, "sh", "-c", describeProcess}},
			execCase{ctr + " root", []string{"exec", "-u", "0", ctr, "sh", "-c", describeProcess}},
			execCase{ctr + " exit code", []string{"exec", ctr, "sh", "-c", "echo out; echo err >&2; exit 7"}},
			execCase{ctr + " missing command", []string{"exec", ctr, "nosuchcommand"}},
			execCase{ctr + " missing path", []string{"exec", ctr, "/no/such/file"}},
			execCase{ctr + " not executable", []string{"exec", ctr, "/etc/passwd"}},
			execCase{ctr + " a directory", []string{"exec", ctr, "/etc"}},
			execCase{ctr + " missing working dir", []string{"exec", "-w", "/no/such/dir", ctr, "true"}},
			execCase{ctr + " no PATH", []string{"exec", "-e", "PATH=", ctr, "sh"}},
			execCase{ctr + " unmapped user", []string{"exec", "-u", "4000000:4000000", ctr, "id"}},
			// Last: from then on the container's execs are libcontainer's.
			execCase{ctr + " privileged", []string{"exec", "--privileged", ctr, "sh", "-c", describeProcess}},
		)
	}
	run := func() map[string]result {
		out := map[string]result{}
		for _, c := range cases {
			r := moss(t, c.args...)
			r.stdout = strings.ReplaceAll(r.stdout, "\r", "")
			out[c.name] = r
		}
		// Input reaches the process as well.
		out["stdin"] = runCmd(t, "line one\nline two\n", mossBin, "exec", "-i", "fastexec", "sh", "-c", "cat; ls -l /proc/self/fd/0 | cut -c1-10")
		return out
	}
	fast := run()
	// Execs at the same time, each with its own streams and status.
	var wg sync.WaitGroup
	errs := make(chan string, 12)
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprintf("exec %d", i)
			r := moss(t, "exec", "fastexec", "sh", "-c", "grep ^Seccomp: /proc/self/status; echo "+want+"; exit "+strconv.Itoa(i))
			if r.code != i || r.stdout != "Seccomp:\t2\n"+want+"\n" {
				errs <- fmt.Sprintf("%s: %+v", want, r)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error("parallel exec:", e)
	}
	// The fast exec ran: it compiled the containers' seccomp programs once
	// and keeps them beside their libcontainer state; not in the container
	// whose processes may trace. A privileged exec marked each container.
	for _, ctr := range ctrs {
		id := strings.TrimSpace(mustMoss(t, "inspect", "-f", "{{.Id}}", ctr))
		_, err := os.Stat(filepath.Join(runDir, "runc", id+".seccomp.json"))
		if ran := err == nil; ran != (ctr != "fastexec-ptrace") {
			t.Errorf("%s: the fast exec ran: %v", ctr, ran)
		}
		if _, err := os.Stat(filepath.Join(runDir, "runc", id+".ptrace")); err != nil {
			t.Errorf("%s: a privileged exec did not mark the container: %v", ctr, err)
		}
	}
	withAgentConfig(t, "[runtime]\nfast_exec = false\n")
	slow := run()
	for name, f := range fast {
		s := slow[name]
		if f.code != s.code || f.stdout != s.stdout || f.stderr != s.stderr {
			t.Errorf("%s: the fast exec differs from libcontainer's\nfast: %d\n%s\n%s\nlibcontainer: %d\n%s\n%s", name, f.code, f.stdout, f.stderr, s.code, s.stdout, s.stderr)
		}
	}
	// A few answers known in advance, so that equal is also right (as
	// docker, a failure to start is told on the output stream).
	if r := fast["fastexec exit code"]; r.code != 7 || r.stdout != "out\n" || !strings.Contains(r.stderr, "err") {
		t.Errorf("exit code: %+v", r)
	}
	if r := fast["fastexec missing command"]; r.code != 127 || !strings.Contains(r.stdout, `exec: "nosuchcommand": executable file not found in $PATH`) {
		t.Errorf("missing command: %+v", r)
	}
	if r := fast["fastexec not executable"]; r.code != 126 || !strings.Contains(r.stdout, "permission denied") {
		t.Errorf("not executable: %+v", r)
	}
	if r := fast["fastexec-opts default"]; !strings.Contains(r.stdout, "uid=1000 gid=1000") || !strings.Contains(r.stdout, "NoNewPrivs:\t1") ||
		!strings.Contains(r.stdout, "Max open files            512                  1024") || !strings.Contains(r.stdout, "\n/tmp\n") ||
		!strings.Contains(r.stdout, "Seccomp:\t2") || !strings.Contains(r.stdout, "unshare=1") {
		t.Errorf("exec in the container with options:\n%s", r.stdout)
	}
	if r := fast["stdin"]; !strings.HasPrefix(r.stdout, "line one\nline two\n") {
		t.Errorf("stdin: %+v", r)
	}
	mustMoss(t, append([]string{"rm", "-f"}, ctrs...)...)
	for _, f := range []string{".seccomp.json", ".ptrace"} {
		if m, _ := filepath.Glob(filepath.Join(runDir, "runc", "*"+f)); len(m) > 0 {
			t.Errorf("left after the containers' removal: %v", m)
		}
	}
}
