// Package paths resolves where Moss keeps its socket, runtime state and data
// for the invoking user. It owns directory creation and the ownership/mode
// checks of the per-user runtime directory; it must not know about containers,
// images or the API.
package paths

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Dirs are the locations Moss uses for one user.
type Dirs struct {
	// Runtime is the per-boot directory (0700) holding the socket, the
	// holder's state, container runtime state and the agent log.
	Runtime string
	// Data is the persistent directory holding storage, container metadata,
	// container logs and volumes.
	Data string
	// Config is the per-user configuration directory.
	Config string
}

// Socket is the API socket inside the runtime directory.
func (d Dirs) Socket() string { return filepath.Join(d.Runtime, "moss.sock") }

// AgentLog is the log file of a background-started agent.
func (d Dirs) AgentLog() string { return filepath.Join(d.Runtime, "agent.log") }

// Holder is the state directory of the namespace holder (rootlesskit).
func (d Dirs) Holder() string { return filepath.Join(d.Runtime, "holder") }

// RuncRoot is libcontainer's state root.
func (d Dirs) RuncRoot() string { return filepath.Join(d.Runtime, "runc") }

// Containers is where per-container metadata and logs live.
func (d Dirs) Containers() string { return filepath.Join(d.Data, "containers") }

// GraphRoot is the default containers/storage graph root.
func (d Dirs) GraphRoot() string { return filepath.Join(d.Data, "storage") }

// RunRoot is the default containers/storage run root.
func (d Dirs) RunRoot() string { return filepath.Join(d.Runtime, "storage") }

// Networks holds the agent's network records.
func (d Dirs) Networks() string { return filepath.Join(d.Data, "networks") }

// Volumes is where the built-in local driver keeps volumes, one
// directory each (NAME/_data), as Docker's /var/lib/docker/volumes.
func (d Dirs) Volumes() string { return filepath.Join(d.Data, "volumes") }

// VolumeRecords holds the agent's volume records.
func (d Dirs) VolumeRecords() string { return filepath.Join(d.Data, "volume-records") }

// AgentLock is the agent's lock file: the running agent holds it.
func (d Dirs) AgentLock() string { return filepath.Join(d.Runtime, "agent.lock") }

// PluginDir is the per-user directory of third-party plugin executables.
func (d Dirs) PluginDir() string { return filepath.Join(d.Data, "plugins") }

// PluginState holds the plugins' persistent state, one directory each.
func (d Dirs) PluginState() string { return filepath.Join(d.Data, "plugin-state") }

// PluginRun holds the plugins' runtime files and sockets.
func (d Dirs) PluginRun() string { return filepath.Join(d.Runtime, "plugins") }

// NetNS holds the bind mounts of containers' network namespaces.
func (d Dirs) NetNS() string { return filepath.Join(d.Runtime, "netns") }

// Default returns the directories for the current user, from the environment
// (XDG_RUNTIME_DIR, XDG_DATA_HOME, XDG_CONFIG_HOME, HOME). It does not create
// anything. MOSS_RUNTIME_DIR and MOSS_DATA_DIR override the first two, which
// tests use to run independent agents side by side.
func Default() (Dirs, error) {
	uid := os.Getuid()
	var d Dirs
	home := os.Getenv("HOME")
	if uid == 0 && os.Getenv("MOSS_DATA_DIR") == "" {
		d = Dirs{Runtime: "/run/moss", Data: "/var/lib/moss", Config: "/etc/moss"}
	} else {
		if home == "" {
			return Dirs{}, errors.New("HOME is not set: moss needs a home directory for its data")
		}
		if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
			d.Runtime = filepath.Join(x, "moss")
		} else {
			d.Runtime = filepath.Join(os.TempDir(), "moss-run-"+strconv.Itoa(uid))
		}
		if x := os.Getenv("XDG_DATA_HOME"); x != "" {
			d.Data = filepath.Join(x, "moss")
		} else {
			d.Data = filepath.Join(home, ".local", "share", "moss")
		}
		if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
			d.Config = filepath.Join(x, "moss")
		} else {
			d.Config = filepath.Join(home, ".config", "moss")
		}
	}
	if x := os.Getenv("MOSS_RUNTIME_DIR"); x != "" {
		d.Runtime = x
	}
	if x := os.Getenv("MOSS_DATA_DIR"); x != "" {
		d.Data = x
	}
	return d, nil
}

// Ensure creates the runtime directory (0700) and the data directory, and
// checks that the runtime directory belongs to the current user and is not
// accessible to others: a fallback directory in a shared /tmp could otherwise
// have been created by somebody else to intercept the socket.
func (d Dirs) Ensure() error {
	if err := os.MkdirAll(filepath.Dir(d.Runtime), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(d.Runtime), err)
	}
	if err := os.Mkdir(d.Runtime, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create runtime directory: %w", err)
	}
	if err := CheckPrivate(d.Runtime); err != nil {
		return err
	}
	if err := os.MkdirAll(d.Data, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	return nil
}

// CheckPrivate verifies that dir is a directory (not a symlink) owned by the
// current user with no access for group or others.
func CheckPrivate(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory: remove it or set XDG_RUNTIME_DIR", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("stat %s: unexpected type %T", dir, fi.Sys())
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%s belongs to uid %d, not to you (uid %d): remove it or set XDG_RUNTIME_DIR", dir, st.Uid, os.Getuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o; it must not be accessible to others (chmod 700 %s)", dir, fi.Mode().Perm(), dir)
	}
	return nil
}
