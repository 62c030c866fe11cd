package integration

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// tmuxSession is a terminal driven like a person would: keys in, screen out.
type tmuxSession struct {
	t    *testing.T
	sock string
}

func newTmux(t *testing.T, width, height int) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed")
	}
	s := &tmuxSession{t: t, sock: fmt.Sprintf("moss-it-%d", time.Now().UnixNano())}
	// A plain shell with a prompt of its own; the environment (the
	// private agent's directories) is this process's.
	s.tmux("new-session", "-d", "-s", "it", "-x", fmt.Sprint(width), "-y", fmt.Sprint(height),
		"env PS1='host$ ' bash --norc --noprofile")
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", s.sock, "kill-server").Run() })
	s.waitFor("the host shell's prompt", func(sc string) bool { return strings.Contains(sc, "host$") })
	return s
}

func (s *tmuxSession) tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.sock}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

// line types a line and Enter.
func (s *tmuxSession) line(text string) { s.tmux("send-keys", "-t", "it", "-l", text); s.keys("Enter") }

func (s *tmuxSession) keys(keys ...string) {
	s.tmux(append([]string{"send-keys", "-t", "it"}, keys...)...)
}

func (s *tmuxSession) screen() string { return s.tmux("capture-pane", "-t", "it", "-p") }

func (s *tmuxSession) waitFor(what string, cond func(string) bool) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		sc := s.screen()
		if cond(sc) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s; the screen:\n%s", what, sc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitPrompt waits until the screen's last non-empty line ends with the
// prompt p: the shell behind it waits for input again.
func (s *tmuxSession) waitPrompt(p string) {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("the prompt %q", p), func(sc string) bool {
		lines := strings.Split(strings.TrimRight(sc, "\n "), "\n")
		return strings.HasSuffix(strings.TrimSpace(lines[len(lines)-1]), p)
	})
}

// waitText waits until text is on the screen.
func (s *tmuxSession) waitText(text string) {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("%q on the screen", text), func(sc string) bool { return strings.Contains(sc, text) })
}

// Acceptance 1: run -it gives a prompt, stty size matches the terminal and
// follows its resize, exit 3 returns 3; with the docker CLI and with moss.
func TestTTY(t *testing.T) {
	clients := map[string]string{"moss": mossBin}
	if _, err := exec.LookPath("docker"); err == nil {
		clients["docker"] = "DOCKER_HOST=unix://" + socketPath() + " docker"
	}
	for name, cli := range clients {
		t.Run(name, func(t *testing.T) {
			s := newTmux(t, 100, 30)
			s.line(cli + " run -it --rm " + image + " sh")
			s.waitPrompt("/ #")
			// $((…)) is evaluated inside: the echo of the typed line alone
			// does not satisfy the wait.
			s.line("stty size; echo size-$((40+2))")
			s.waitText("size-42")
			if sc := s.screen(); !strings.Contains(sc, "30 100") {
				t.Fatalf("stty size does not match the 100x30 pane:\n%s", sc)
			}
			s.tmux("resize-window", "-t", "it", "-x", "120", "-y", "40")
			s.line("stty size; echo resized-$((40+3))")
			s.waitText("resized-43")
			if sc := s.screen(); !strings.Contains(sc, "40 120") {
				t.Fatalf("stty size does not follow the resize to 120x40:\n%s", sc)
			}
			s.line("exit 3")
			s.waitPrompt("host$")
			s.line("echo rc=$?")
			s.waitText("rc=3")
		})
	}
}

// Acceptance 3 and 2: Ctrl-P Ctrl-Q leaves the container running, attach
// reconnects and sees new output; exec -it works in it (docker CLI).
func TestDetachAttach(t *testing.T) {
	s := newTmux(t, 100, 30)
	s.line(mossBin + " run -it --name detach1 " + image + " sh")
	rmf(t, "detach1")
	s.waitPrompt("/ #")
	s.line("echo first-$((1+1))")
	s.waitText("first-2")
	s.keys("C-p", "C-q")
	s.waitPrompt("host$")
	s.line("echo detached=$?")
	s.waitText("detached=0")
	if st := strings.TrimSpace(mustMoss(t, "inspect", "--format", "{{.State.Status}}", "detach1")); st != "running" {
		t.Fatalf("after the detach keys the container is %s", st)
	}
	s.line(mossBin + " attach detach1")
	// attach shows only new output: an empty line brings a prompt.
	s.keys("Enter")
	s.waitPrompt("/ #")
	s.line("echo again-$((40+2))")
	s.waitText("again-42")
	// Other keys than the sequence pass: Ctrl-P then x.
	s.keys("C-p", "x")
	s.keys("C-u") // clear the shell's line
	s.keys("C-p", "C-q")
	s.waitPrompt("host$")
	s.line("echo attach=$?")
	s.waitText("attach=0")
	if _, err := exec.LookPath("docker"); err == nil {
		s.line("DOCKER_HOST=unix://" + socketPath() + " docker exec -it detach1 sh")
		s.waitPrompt("/ #")
		s.line("echo in-exec-$((2+5)); tty")
		s.waitText("in-exec-7")
		s.waitText("/dev/pts/")
		s.line("exit 6")
		s.waitPrompt("host$")
		s.line("echo exec=$?")
		s.waitText("exec=6")
	}
	// The container saw all of it: its log has the output of both sessions.
	logs := mustMoss(t, "logs", "detach1")
	if !strings.Contains(logs, "first-2") || !strings.Contains(logs, "again-42") {
		t.Fatalf("the log misses output:\n%s", logs)
	}
}
