package agent

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
	"go.podman.io/storage/pkg/idtools"

	"github.com/moss-containers/moss/agent/spec"
)

// withRoot calls fn with the container's root file system: the mounted one
// of a running container, else mounted for the call.
func (a *Agent) withRoot(c *Container, fn func(root string) error) error {
	c.mu.Lock()
	root := c.Rootfs
	c.mu.Unlock()
	if root == "" {
		var err error
		if root, err = a.store.Mount(c.ID); err != nil {
			return err
		}
		defer func() { _ = a.store.Unmount(c.ID, false) }()
	}
	return fn(root)
}

// resolvePath resolves path in the container's root as docker does: every
// symlink before the last element is followed inside root (never out of
// it), the last element is not. It returns the host path and the clean
// absolute path in the container.
func resolvePath(root, path string) (resolved, abs string, err error) {
	abs = archive.PreserveTrailingDotOrSeparator(filepath.Join("/", path), path)
	dir, base := filepath.Split(abs)
	rdir, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return "", "", err
	}
	return archive.PreserveTrailingDotOrSeparator(filepath.Join(rdir, base), abs), abs, nil
}

// statPath is docker's PathStat of resolved: the entry itself (lstat), with
// a symlink's target resolved inside root.
func statPath(root, resolved, abs string) (*container.PathStat, error) {
	fi, err := os.Lstat(resolved)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, kindErr(errNotFound, "Could not find the file %s in container", abs)
		}
		return nil, err
	}
	st := &container.PathStat{Name: filepath.Base(abs), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if fi.Mode()&os.ModeSymlink != 0 {
		target, err := securejoin.SecureJoin(root, abs)
		if err != nil {
			return nil, err
		}
		st.LinkTarget = "/" + strings.TrimPrefix(strings.TrimPrefix(target, root), "/")
	}
	return st, nil
}

// statIn resolves path in root and stats it (resolvePath, statPath).
func statIn(root, path string) (resolved, abs string, st *container.PathStat, err error) {
	if resolved, abs, err = resolvePath(root, path); err != nil {
		return "", "", nil, err
	}
	st, err = statPath(root, resolved, abs)
	return resolved, abs, st, err
}

func setStatHeader(w http.ResponseWriter, st *container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
	return nil
}

func (a *Agent) archiveContainer(r *http.Request) (*Container, string, error) {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return nil, "", err
	}
	path := r.URL.Query().Get("path")
	if path == "" {
		return nil, "", kindErr(errInvalid, "no path given: use ?path=")
	}
	return c, path, nil
}

// headArchive answers the stat of a path in the container (docker cp's
// first request).
func (a *Agent) headArchive(w http.ResponseWriter, r *http.Request) error {
	c, path, err := a.archiveContainer(r)
	if err != nil {
		return err
	}
	return a.withRoot(c, func(root string) error {
		_, _, st, err := statIn(root, path)
		if err != nil {
			return err
		}
		if err := setStatHeader(w, st); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
}

// getArchive sends a path of the container as a tar archive whose top
// entry is named like the path, packed inside a chroot of the container's
// root so that no symlink can lead out of it.
func (a *Agent) getArchive(w http.ResponseWriter, r *http.Request) error {
	c, path, err := a.archiveContainer(r)
	if err != nil {
		return err
	}
	return a.withRoot(c, func(root string) error {
		resolved, abs, st, err := statIn(root, path)
		if err != nil {
			return err
		}
		dir, base := archive.SplitPathDirEntry(resolved)
		tr, err := chrootarchive.Tar(dir, &archive.TarOptions{
			Compression: archive.Uncompressed, IncludeFiles: []string{base},
			IncludeSourceDir: true, RebaseNames: map[string]string{base: filepath.Base(abs)},
		}, root)
		if err != nil {
			return err
		}
		defer tr.Close()
		if err := setStatHeader(w, st); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		_, _ = io.Copy(w, tr)
		a.containerEvent(c, events.ActionArchivePath, map[string]string{"path": abs})
		return nil
	})
}

// putArchive extracts a tar archive into a directory of the container,
// inside a chroot of its root; entries belong to the container's root
// unless copyUIDGID keeps the archive's owners.
func (a *Agent) putArchive(w http.ResponseWriter, r *http.Request) error {
	c, path, err := a.archiveContainer(r)
	if err != nil {
		return err
	}
	if c.HostConfig.ReadonlyRootfs {
		return kindErr(errConflict, "container rootfs is marked read-only")
	}
	return a.withRoot(c, func(root string) error {
		abs := filepath.Join("/", path)
		resolved, err := securejoin.SecureJoin(root, abs)
		if err != nil {
			return err
		}
		fi, err := os.Stat(resolved)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return kindErr(errNotFound, "Could not find the file %s in container %s", abs, c.Name)
			}
			return err
		}
		if !fi.IsDir() {
			return kindErr(errInvalid, "extraction point is not a directory")
		}
		opts := &archive.TarOptions{NoOverwriteDirNonDir: boolParam(r, "noOverwriteDirNonDir"), InUserNS: true}
		if !boolParam(r, "copyUIDGID") {
			opts.ChownOpts = &idtools.IDPair{UID: 0, GID: 0}
		}
		if err := chrootarchive.UntarWithRoot(r.Body, resolved, opts, root); err != nil {
			return kindErr(errInvalid, "extract the archive: %v", err)
		}
		a.containerEvent(c, events.ActionExtractToDir, map[string]string{"path": abs})
		w.WriteHeader(http.StatusOK)
		return nil
	})
}

// getExport sends the container's whole file system as a tar archive.
func (a *Agent) getExport(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	return a.withRoot(c, func(root string) error {
		tr, err := chrootarchive.Tar(root, &archive.TarOptions{Compression: archive.Uncompressed}, root)
		if err != nil {
			return err
		}
		defer tr.Close()
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		_, _ = io.Copy(w, tr)
		a.containerEvent(c, events.ActionExport, nil)
		return nil
	})
}

// getChanges lists what the container changed in its file system, from
// its layer.
func (a *Agent) getChanges(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	chs, err := a.store.Changes(c.ID)
	if err != nil {
		return err
	}
	// The mount points of the files Moss provides (/etc/hostname, hosts,
	// resolv.conf, the init) are not the container's changes, as in
	// docker, whose init layer holds them; nor are their directories when
	// nothing else changed below them.
	hidden := map[string]bool{"/etc/hostname": true, "/etc/hosts": true, "/etc/resolv.conf": true, spec.InitPath: true}
	parents := map[string]bool{}
	for p := range hidden {
		parents[filepath.Dir(p)] = true
	}
	busy := map[string]bool{} // directories with a change of the container's below
	for _, ch := range chs {
		if !hidden[ch.Path] {
			for d := filepath.Dir(ch.Path); d != "/"; d = filepath.Dir(d) {
				busy[d] = true
			}
		}
	}
	out := make([]container.FilesystemChange, 0, len(chs))
	for _, ch := range chs {
		if (hidden[ch.Path] && ch.Kind == 1) || (parents[ch.Path] && !busy[ch.Path]) {
			continue
		}
		out = append(out, container.FilesystemChange{Path: ch.Path, Kind: container.ChangeType(ch.Kind)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
