package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// layerListed reports whether containers/storage still has a container
// record for id (volatile ones are in their own file).
func layerListed(t *testing.T, id string) bool {
	t.Helper()
	for _, f := range []string{"containers.json", "volatile-containers.json"} {
		b, err := os.ReadFile(filepath.Join(dataDir, "storage", "overlay-containers", f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if strings.Contains(string(b), id) {
			return true
		}
	}
	return false
}

// mountedIn reports whether path is a mount point in the mount tables of
// the agent and of the holder's child.
func mountedIn(t *testing.T, path string) bool {
	t.Helper()
	for _, pid := range []int{agentPID(), holderChild()} {
		if pid <= 0 {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		if err != nil {
			continue // the agent may be between two runs
		}
		if strings.Contains(string(b), " "+path+" ") {
			return true
		}
	}
	return false
}

// run --rm: the container is gone when the command returns; its layer,
// mount and files follow in the background.
func TestRunRmCleansUp(t *testing.T) {
	id := strings.TrimSpace(mustMoss(t, "create", "--rm", "--name", "rmclean", image, "sh", "-c", "echo out"))
	rmf(t, "rmclean")
	merged := strings.TrimSpace(mustMoss(t, "inspect", "--format", "{{.GraphDriver.Data.MergedDir}}", id))
	if !layerListed(t, id) {
		t.Fatal("containers/storage does not list the new container")
	}
	if out := mustMoss(t, "start", "-a", id); out != "out\n" {
		t.Fatalf("start -a printed %q", out)
	}
	waitFor(t, "the container to disappear", 10*time.Second, func() bool { return moss(t, "inspect", id).code != 0 })
	waitFor(t, "its layer, mount and files to be deleted", 10*time.Second, func() bool {
		_, errB := os.Stat(filepath.Join(dataDir, "containers", id))
		_, errT := os.Stat(filepath.Join(dataDir, "containers", ".removed-"+id))
		return !layerListed(t, id) && os.IsNotExist(errB) && os.IsNotExist(errT) && !mountedIn(t, merged)
	})
	// The name is free again at once.
	mustMoss(t, "run", "--rm", "--name", "rmclean", image, "true")
	mustMoss(t, "run", "--rm", "--name", "rmclean", image, "true")
}

// An agent that dies after a removal but before the background deletion
// leaves the renamed directory and the layer: the next agent deletes both
// and does not bring the container back.
func TestOrphansDeleted(t *testing.T) {
	id := strings.TrimSpace(mustMoss(t, "create", "--name", "orphan", image, "true"))
	rmf(t, "orphan")
	old := agentPID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(old, 5*time.Second)
	// What remove leaves for the background deletion.
	bundle := filepath.Join(dataDir, "containers", id)
	trash := filepath.Join(dataDir, "containers", ".removed-"+id)
	if err := os.Rename(bundle, trash); err != nil {
		t.Fatal(err)
	}
	if ps := mustMoss(t, "ps", "-a"); strings.Contains(ps, "orphan") {
		t.Fatalf("a removed container came back:\n%s", ps)
	}
	waitFor(t, "the orphaned layer and directory to be deleted", 10*time.Second, func() bool {
		_, err := os.Stat(trash)
		return os.IsNotExist(err) && !layerListed(t, id)
	})
	if agentPID() == old {
		t.Fatal("no new agent")
	}
}

// bin/moss is the front binary: the agent runs from the full binary it
// unpacked into the runtime directory, shims from a sealed copy of the
// front binary.
func TestFrontBinary(t *testing.T) {
	mustMoss(t, "ps")
	agents, _ := filepath.Glob(filepath.Join(runDir, "moss-agent-*"))
	if len(agents) != 1 {
		t.Fatalf("want one unpacked agent binary in the runtime directory, got %v", agents)
	}
	fi, err := os.Stat(agents[0])
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("unpacked agent binary: %v, %v", fi.Mode(), err)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", agentPID()))
	if err != nil || exe != agents[0] {
		t.Fatalf("the agent runs %q (%v), want %s", exe, err, agents[0])
	}
	id := strings.TrimSpace(mustMoss(t, "run", "-d", image, "sleep", "100"))
	rmf(t, id)
	shimPID := pidFile(filepath.Join(dataDir, "containers", id, "shim.pid"))
	abs, _ := filepath.Abs(mossBin)
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	// The shim re-executes itself as the supervisor: /proc/PID/exe may
	// be missing for that moment.
	waitFor(t, "the shim's executable", 5*time.Second, func() bool {
		exe, err = os.Readlink(fmt.Sprintf("/proc/%d/exe", shimPID))
		return err == nil
	})
	if !strings.HasPrefix(exe, "/memfd:") || !strings.Contains(exe, abs) {
		t.Fatalf("the shim runs %q, want a sealed copy of %s", exe, abs)
	}
}
