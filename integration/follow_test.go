package integration

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// followLines runs `moss logs -f name` and returns its lines as they come,
// and a channel closed when the command returns.
func followLines(t *testing.T, name string) (<-chan string, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(mossBin, "logs", "-f", name)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines, done := make(chan string, 1000), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return lines, done
}

// Acceptance 5: logs -f on a container printing a numbered line per
// 100 ms shows the lines as they come, across log rotation, and returns
// when the container stops; also with an agent SIGKILLed and restarted in
// between.
func TestLogsFollow(t *testing.T) {
	mustMoss(t, "run", "-d", "--name", "ticks", "--log-opt", "max-size=2k", "--log-opt", "max-file=3", image,
		"sh", "-c", "i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo tick-$i-padding-to-fill-the-log-faster; sleep 0.1; done")
	rmf(t, "ticks")
	waitFor(t, "the first ticks", 10*time.Second, func() bool { return strings.Contains(moss(t, "logs", "ticks").stdout, "tick-3-") })
	old := agentPID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(old, 5*time.Second)
	lines, done := followLines(t, "ticks") // starts a new agent
	// Lines come while the container runs, one every 100 ms: the first
	// within a second, long before the container's end.
	start := time.Now()
	var got []int
	first := true
	for {
		select {
		case l := <-lines:
			if first && time.Since(start) > 3*time.Second {
				t.Fatalf("the first line came after %v", time.Since(start))
			}
			first = false
			f := strings.Split(l, "-")
			if len(f) < 2 || f[0] != "tick" {
				t.Fatalf("unexpected line %q", l)
			}
			n, _ := strconv.Atoi(f[1])
			got = append(got, n)
			continue
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("logs -f did not return after the container stopped")
		}
		break
	}
	for len(lines) > 0 {
		<-lines
	}
	if len(got) < 20 || got[len(got)-1] != 60 {
		t.Fatalf("logs -f saw %d lines ending with %v, want the lines up to 60", len(got), got[len(got)-1:])
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("a gap in the followed lines after %d: %d (the log rotates every ~40 lines)", got[i-1], got[i])
		}
	}
	if st := strings.TrimSpace(mustMoss(t, "inspect", "--format", "{{.State.Status}}", "ticks")); st != "exited" {
		t.Fatalf("logs -f returned while the container is %s", st)
	}
}

// wait --condition: next-exit waits for the run after the current one,
// removed for the removal; a bad condition is refused.
func TestWaitCondition(t *testing.T) {
	id := strings.TrimSpace(mustMoss(t, "create", "--name", "waiter", image, "sh", "-c", "exit 5"))
	rmf(t, "waiter")
	cmd := exec.Command(mossBin, "wait", "--condition", "next-exit", id)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	mustMoss(t, "start", id)
	if err := cmd.Wait(); err != nil || strings.TrimSpace(out.String()) != "5" {
		t.Fatalf("wait --condition next-exit: %q, %v", out.String(), err)
	}
	rm := exec.Command(mossBin, "wait", "--condition", "removed", id)
	var rout strings.Builder
	rm.Stdout = &rout
	if err := rm.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	mustMoss(t, "rm", id)
	if err := rm.Wait(); err != nil || strings.TrimSpace(rout.String()) != "5" {
		t.Fatalf("wait --condition removed: %q, %v", rout.String(), err)
	}
	if r := moss(t, "wait", "--condition", "sometime", id); r.code == 0 || !strings.Contains(r.stderr, "invalid --condition") {
		t.Errorf("bad condition: %d %q", r.code, r.stderr)
	}
}
