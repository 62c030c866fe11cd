package integration

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Acceptance 7: moss events shows create/start/die/destroy of a run --rm,
// in order, as they happen; --since/--until replay them and filters pick.
func TestEvents(t *testing.T) {
	cmd := exec.Command(mossBin, "events", "--filter", "container=evrm", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(300 * time.Millisecond) // the stream is open
	start := time.Now()
	if r := moss(t, "run", "--rm", "--name", "evrm", image, "sh", "-c", "exit 2"); r.code != 2 {
		t.Fatalf("run: %d %q", r.code, r.stderr)
	}
	var got []string
	for len(got) < 5 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the event stream ended after %v", got)
			}
			got = append(got, l)
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far: %v", got)
		}
	}
	want := []string{"container create evrm", "container attach evrm", "container start evrm", "container die evrm", "container destroy evrm"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events %v, want %v", got, want)
	}
	// A replay of the past: the die event with its exit code; images too.
	mustMoss(t, "tag", image, "mosstest/evtag:1")
	mustMoss(t, "rmi", "mosstest/evtag:1")
	replay := mustMoss(t, "events", "--since", start.Add(-time.Second).Format(time.RFC3339Nano), "--until", "0s",
		"--filter", "event=die", "--filter", "event=tag", "--filter", "event=untag")
	if !strings.Contains(replay, "container die") || !strings.Contains(replay, "exitCode=2") || !strings.Contains(replay, "name=evrm") ||
		!strings.Contains(replay, "image tag") || !strings.Contains(replay, "image untag") || strings.Contains(replay, " start ") {
		t.Fatalf("replayed events:\n%s", replay)
	}
	if r := moss(t, "events", "--filter", "nonsense=1", "--until", "0s"); r.code == 0 || !strings.Contains(r.stderr, "invalid filter") {
		t.Errorf("bad filter: %d %q", r.code, r.stderr)
	}
	if _, err := exec.LookPath("docker"); err == nil {
		// docker's CLI sends a duration (--until 0s) in whole seconds; a
		// time ends the stream at that instant.
		since := strconv.FormatInt(start.Add(-2*time.Second).Unix(), 10)
		until := time.Now().Add(500 * time.Millisecond).Format(time.RFC3339Nano)
		d := docker(t, "events", "--since", since, "--until", until, "--filter", "container=evrm", "--format", "{{.Action}}")
		if f := strings.Fields(d.stdout); d.code != 0 || len(f) == 0 || f[0] != "create" {
			t.Errorf("docker events --since %s: %d %q %q", since, d.code, d.stdout, d.stderr)
		}
	}
}
