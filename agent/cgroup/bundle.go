package cgroup

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// File is the name of a container's cgroups in its bundle directory:
// the agent writes it before the start, the shim joins them, and the
// agent reads them for stats, update and pause.
const File = "cgroup.json"

// Spec is a container's cgroups and its limits.
type Spec struct {
	// Paths are by controller on v1, "" the unified one on v2.
	Paths     map[string]string     `json:"paths"`
	Resources *specs.LinuxResources `json:"resources,omitempty"`
}

// Read returns the cgroups recorded in bundle, nil when there are none.
func Read(bundle string) (*Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, File))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Write records s in bundle; nil removes the record.
func Write(bundle string, s *Spec) error {
	path := filepath.Join(bundle, File)
	if s == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
