package localvol

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/moss-containers/moss/internal/atomicfile"
)

// Files of a volume's directory.
const (
	dataDir    = "_data"
	metaFile   = "opts.json"
	mountsFile = "mounts.json"
)

// stateVersion is the version of the driver's files.
const stateVersion = 1

// meta is a volume's opts.json: what Create was given, and when.
type meta struct {
	Version   int               `json:"version"`
	CreatedAt string            `json:"created_at"` // RFC 3339
	Options   map[string]string `json:"options,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// mounts is a volume's mounts.json: the mount ids that hold it.
type mounts struct {
	Version  int      `json:"version"`
	MountIDs []string `json:"mount_ids"`
}

func saveMeta(dir string, m *meta) error {
	m.Version = stateVersion
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, metaFile), data)
}

// saveMounts writes the volume's mount ids. Unsynced: they matter only as
// long as the machine is up — the mounts and containers they count do not
// survive it going down.
func saveMounts(v *volume) error {
	ids := make([]string, 0, len(v.mounts))
	for id := range v.mounts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	data, err := json.Marshal(mounts{Version: stateVersion, MountIDs: ids})
	if err != nil {
		return err
	}
	return atomicfile.WriteUnsynced(filepath.Join(v.dir, mountsFile), data)
}

// loadVolume reads volume name under root. A directory without opts.json
// is an os.ErrNotExist error. A mounts.json that cannot be read counts no
// mount id (logged): only a crash of the machine, which ended the mounts,
// can leave it so.
func (d *Driver) loadVolume(root, name string) (*volume, error) {
	dir := filepath.Join(root, name)
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	v := &volume{name: name, dir: dir, mounts: map[string]bool{}}
	if err := json.Unmarshal(data, &v.meta); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, metaFile), err)
	}
	if v.meta.Version != stateVersion {
		return nil, fmt.Errorf("%s: version %d, this driver reads %d", filepath.Join(dir, metaFile), v.meta.Version, stateVersion)
	}
	if v.spec, err = parseOptions(v.meta.Options); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, metaFile), err)
	}
	if fi, err := os.Stat(v.data()); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory: %v", v.data(), err)
	}
	data, err = os.ReadFile(filepath.Join(dir, mountsFile))
	if errors.Is(err, os.ErrNotExist) {
		return v, nil
	}
	var m mounts
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	if err != nil {
		d.log.Warn("volume's mount ids unreadable: counting none", "volume", name, "error", err)
		return v, nil
	}
	for _, id := range m.MountIDs {
		v.mounts[id] = true
	}
	return v, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
