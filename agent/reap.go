package agent

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// trashPrefix marks the directories of a removed container that wait for
// deletion; a restarted agent does not load them.
const trashPrefix = ".removed-"

// deleteLater deletes a removed container's layer and directories in the
// background. The container is already gone from the agent: its
// directories are renamed out of the way here, before this returns. What a
// failure or an agent crash leaves behind is deleted at the next start
// (deleteOrphans).
func (a *Agent) deleteLater(id string, dirs []string) {
	var trash []string
	for _, d := range dirs {
		t := filepath.Join(filepath.Dir(d), trashPrefix+filepath.Base(d))
		if err := os.Rename(d, t); err != nil {
			if !os.IsNotExist(err) {
				a.log.Warn("remove container files", "id", id, "error", err)
			}
			continue
		}
		trash = append(trash, t)
	}
	a.deleteInBackground(id, trash)
}

// deleteInBackground deletes the container layer id (if any) and the
// directories trash, in the background.
func (a *Agent) deleteInBackground(id string, trash []string) {
	a.deleting.Add(1)
	go func() {
		defer a.deleting.Done()
		t0 := time.Now()
		if id != "" {
			if err := a.store.DeleteContainer(id); err != nil {
				a.log.Warn("delete the layer of a removed container (retried at the next agent start)", "id", id, "error", err)
			}
		}
		for _, t := range trash {
			if err := os.RemoveAll(t); err != nil {
				a.log.Warn("remove container files", "id", id, "error", err)
			}
		}
		a.log.Debug("deleted", "id", id, "took", time.Since(t0))
	}()
}

// waitLayersDeleted waits for the background deletions in flight: before
// removing an image (containers/storage refuses an image that still has
// container layers) and before the agent exits.
func (a *Agent) waitLayersDeleted() { a.deleting.Wait() }

// deleteOrphans deletes what removed containers left: container layers that
// belong to no container the agent knows (every container layer in the
// agent's store is created with the container's metadata, createContainer,
// and removed with it) and directories waiting for deletion.
func (a *Agent) deleteOrphans() {
	var trash []string
	for _, dir := range []string{a.dirs.Containers(), a.dirs.RuncRoot()} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), trashPrefix) {
				trash = append(trash, filepath.Join(dir, e.Name()))
			}
		}
	}
	if len(trash) > 0 {
		a.deleteInBackground("", trash)
	}
	ids, err := a.store.ContainerIDs()
	if err != nil {
		a.log.Warn("list container layers", "error", err)
		return
	}
	a.mu.Lock()
	var orphans []string
	for _, id := range ids {
		if _, ok := a.containers[id]; !ok {
			orphans = append(orphans, id)
		}
	}
	a.mu.Unlock()
	for _, id := range orphans {
		a.log.Info("deleting the layer of a removed container", "id", id)
		a.deleteInBackground(id, nil)
	}
}
