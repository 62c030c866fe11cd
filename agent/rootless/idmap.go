package rootless

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// Names under which the binary acts as an ID-mapping helper for rootlesskit
// when the user has no subordinate IDs (or no newuidmap): rootlesskit asks
// getsubids for ranges and runs newuidmap/newgidmap from PATH; these helpers
// answer with the user's own ID and write the single-line maps directly,
// which the kernel allows an unprivileged process to do.
const (
	helperGetsubids = "moss-getsubids"
	helperNewuidmap = "newuidmap"
	helperNewgidmap = "newgidmap"
)

// IsHelper reports whether argv0 names one of the ID-mapping helpers and the
// helper mode is active.
func IsHelper(argv0 string) bool {
	if os.Getenv(envHelpers) == "" {
		return false
	}
	switch filepath.Base(argv0) {
	case helperGetsubids, helperNewuidmap, helperNewgidmap:
		return true
	}
	return false
}

const envHelpers = "_MOSS_IDMAP_HELPERS"

// RunHelper runs the ID-mapping helper named by args[0].
func RunHelper(args []string) int {
	if err := runHelper(args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(args[0]), err)
		return 1
	}
	return 0
}

func runHelper(args []string) error {
	u, err := user.Current()
	if err != nil {
		return err
	}
	switch filepath.Base(args[0]) {
	case helperGetsubids:
		// Output format of shadow's getsubids: "0: USER START COUNT".
		id := u.Uid
		if len(args) > 1 && args[1] == "-g" {
			id = u.Gid
		}
		fmt.Printf("0: %s %s 1\n", u.Username, id)
		return nil
	case helperNewuidmap, helperNewgidmap:
		if len(args) < 2 {
			return errors.New("usage: PID [ID LOWER COUNT]…")
		}
		pid, err := strconv.Atoi(args[1])
		if err != nil {
			return fmt.Errorf("bad pid %q", args[1])
		}
		own := u.Uid
		file := "uid_map"
		if filepath.Base(args[0]) == helperNewgidmap {
			own, file = u.Gid, "gid_map"
		}
		m := args[2:]
		if len(m) != 3 || m[0] != "0" || m[1] != own || m[2] != "1" {
			return fmt.Errorf("only the single mapping \"0 %s 1\" is possible without subordinate IDs, got %v", own, m)
		}
		if file == "gid_map" {
			if err := os.WriteFile(fmt.Sprintf("/proc/%d/setgroups", pid), []byte("deny"), 0); err != nil {
				return err
			}
		}
		return os.WriteFile(fmt.Sprintf("/proc/%d/%s", pid, file), []byte("0 "+own+" 1\n"), 0)
	}
	return fmt.Errorf("unknown helper %q", args[0])
}

// installSingleIDHelpers links the helpers into a private directory, puts it
// first in PATH and points rootlesskit's dynamic ID source at it.
func installSingleIDHelpers(runtimeDir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir := filepath.Join(runtimeDir, "idmap-helpers")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, name := range []string{helperGetsubids, helperNewuidmap, helperNewgidmap} {
		link := filepath.Join(dir, name)
		_ = os.Remove(link)
		if err := os.Symlink(self, link); err != nil {
			return err
		}
	}
	os.Setenv(envHelpers, "1")
	os.Setenv("GETSUBIDS", filepath.Join(dir, helperGetsubids))
	os.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return nil
}
