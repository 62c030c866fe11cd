package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
)

// The mount flags of run and create (-v, --mount, --tmpfs) parsed as the
// docker CLI 27 parses them: the CLI checks the syntax and resolves
// relative bind sources against the working directory; whether a source
// exists, a name is valid or a destination is allowed is the agent's to
// say, as it is the daemon's in docker.

// mountOpt is --mount, repeatable: docker's MountOpt, a CSV list of
// key=value fields parsed into a mount.Mount when the flag is read.
type mountOpt struct {
	values   []mount.Mount
	warnings []string // for create to print
}

func (m *mountOpt) Set(value string) error {
	mnt, warning, err := parseMount(value)
	if err != nil {
		return err
	}
	if warning != "" {
		m.warnings = append(m.warnings, warning)
	}
	m.values = append(m.values, mnt)
	return nil
}

func (m *mountOpt) String() string { return "" }
func (m *mountOpt) Type() string   { return "mount" }

// parseMount is docker's MountOpt.Set: the fields, their keys matched
// without regard to case, the type defaulting to volume, and docker's
// messages for each mistake. The string is docker's warning for a
// deprecated field, if one was used.
func parseMount(value string) (mount.Mount, string, error) {
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return mount.Mount{}, "", err
	}
	var warning string
	m := mount.Mount{Type: mount.TypeVolume}
	volumeOptions := func() *mount.VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{}
		}
		if m.VolumeOptions.DriverConfig == nil {
			m.VolumeOptions.DriverConfig = &mount.Driver{}
		}
		return m.VolumeOptions
	}
	bindOptions := func() *mount.BindOptions {
		if m.BindOptions == nil {
			m.BindOptions = &mount.BindOptions{}
		}
		return m.BindOptions
	}
	tmpfsOptions := func() *mount.TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	// setOn adds a k=v (or k alone, an empty value) to a map; an empty key
	// is ignored, as docker does.
	setOn := func(target map[string]string, kv string) map[string]string {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return target
		}
		if target == nil {
			target = map[string]string{}
		}
		target[k] = v
		return target
	}
	parseBool := func(key, val string) (bool, error) {
		v, err := strconv.ParseBool(val)
		if err != nil {
			return false, fmt.Errorf("invalid value for %s: %s", key, val)
		}
		return v, nil
	}
	for _, field := range fields {
		key, val, ok := strings.Cut(field, "=")
		key = strings.ToLower(key)
		if !ok {
			switch key {
			case "readonly", "ro":
				m.ReadOnly = true
			case "volume-nocopy":
				volumeOptions().NoCopy = true
			case "bind-nonrecursive": // no warning here, as in docker
				bindOptions().NonRecursive = true
			default:
				return mount.Mount{}, "", fmt.Errorf("invalid field '%s' must be a key=value pair", field)
			}
			continue
		}
		switch key {
		case "type":
			m.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			m.Source = absDotPath(val)
		case "target", "dst", "destination":
			m.Target = val
		case "readonly", "ro":
			if m.ReadOnly, err = parseBool(key, val); err != nil {
				return mount.Mount{}, "", err
			}
		case "consistency":
			m.Consistency = mount.Consistency(strings.ToLower(val))
		case "bind-propagation":
			bindOptions().Propagation = mount.Propagation(strings.ToLower(val))
		case "bind-nonrecursive":
			if bindOptions().NonRecursive, err = parseBool(key, val); err != nil {
				return mount.Mount{}, "", err
			}
			warning = "bind-nonrecursive is deprecated, use bind-recursive=disabled instead"
		case "bind-recursive":
			switch val {
			case "enabled": // the default: read-only recursively where the kernel can
			case "disabled":
				bindOptions().NonRecursive = true
			case "writable":
				bindOptions().ReadOnlyNonRecursive = true
			case "readonly":
				bindOptions().ReadOnlyForceRecursive = true
			default:
				return mount.Mount{}, "", fmt.Errorf(`invalid value for %s: %s (must be "enabled", "disabled", "writable", or "readonly")`, key, val)
			}
		case "volume-subpath":
			volumeOptions().Subpath = val
		case "volume-nocopy":
			if volumeOptions().NoCopy, err = parseBool(key, val); err != nil {
				return mount.Mount{}, "", err
			}
		case "volume-label":
			vo := volumeOptions()
			vo.Labels = setOn(vo.Labels, val)
		case "volume-driver":
			volumeOptions().DriverConfig.Name = val
		case "volume-opt":
			dc := volumeOptions().DriverConfig
			dc.Options = setOn(dc.Options, val)
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil || n < 0 {
				return mount.Mount{}, "", fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOptions().SizeBytes = n
		case "tmpfs-mode":
			mode, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return mount.Mount{}, "", fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOptions().Mode = os.FileMode(mode)
		default:
			return mount.Mount{}, "", fmt.Errorf("unexpected key '%s' in '%s'", key, field)
		}
	}
	switch {
	case m.Type == "":
		return mount.Mount{}, "", errors.New("type is required")
	case m.Target == "":
		return mount.Mount{}, "", errors.New("target is required")
	case m.VolumeOptions != nil && m.Type != mount.TypeVolume:
		return mount.Mount{}, "", fmt.Errorf("cannot mix 'volume-*' options with mount type '%s'", m.Type)
	case m.BindOptions != nil && m.Type != mount.TypeBind:
		return mount.Mount{}, "", fmt.Errorf("cannot mix 'bind-*' options with mount type '%s'", m.Type)
	case m.TmpfsOptions != nil && m.Type != mount.TypeTmpfs:
		return mount.Mount{}, "", fmt.Errorf("cannot mix 'tmpfs-*' options with mount type '%s'", m.Type)
	}
	if b := m.BindOptions; b != nil {
		if b.ReadOnlyNonRecursive && !m.ReadOnly {
			return mount.Mount{}, "", errors.New("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction")
		}
		if b.ReadOnlyForceRecursive {
			if !m.ReadOnly {
				return mount.Mount{}, "", errors.New("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction")
			}
			if b.Propagation != mount.PropagationRPrivate {
				return mount.Mount{}, "", errors.New("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction")
			}
		}
	}
	return m, warning, nil
}

// absDotPath makes "." and "./…" absolute, the only relative paths the
// docker CLI 27 resolves (in -v and --mount); anything else is sent as it
// is, for the agent to refuse or take as a volume name.
func absDotPath(p string) string {
	if p != "." && !strings.HasPrefix(p, "."+string(filepath.Separator)) {
		return p
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// volumeSpec is one -v value as docker's compose loader (ParseVolume)
// reads it: [SOURCE:]TARGET[:OPTIONS]. Only the fields the CLI acts on are
// kept; the options stay in the spec for the agent.
type volumeSpec struct {
	source, target string
}

// bind tells whether the source is a host path (docker's isFilePath): it
// starts with ".", "/" or "~", or is a Windows drive or pipe path, which
// docker's CLI recognizes whatever the platform.
func (v volumeSpec) bind() bool {
	s := v.source
	if s == "" {
		return false
	}
	switch s[0] {
	case '.', '/', '~':
		return true
	}
	r := []rune(s)
	if len(r) == 1 {
		return false
	}
	if strings.HasPrefix(s, `\\`) {
		return true
	}
	return r[1] == ':' && unicode.IsLetter(r[0])
}

// parseVolumeSpec splits a -v value at its colons as docker does: a
// colon right after a single letter belongs to a Windows drive, an empty
// section or a fourth section is an error, and a spec of one or two
// characters is a target alone.
func parseVolumeSpec(spec string) (volumeSpec, error) {
	var v volumeSpec
	switch len(spec) {
	case 0:
		return v, errors.New("invalid empty volume spec")
	case 1, 2:
		v.target = spec
		return v, nil
	}
	var buf []rune
	const end = rune(0)
	for _, c := range spec + string(end) {
		switch {
		case c == ':' && len(buf) == 1 && unicode.IsLetter(buf[0]):
			buf = append(buf, c) // a Windows drive letter
		case c == ':' || c == end:
			switch {
			case len(buf) == 0:
				return v, fmt.Errorf("invalid spec: %s: empty section between colons", spec)
			case v.source == "" && c == end:
				v.target = string(buf)
			case v.source == "":
				v.source = string(buf)
			case v.target == "":
				v.target = string(buf)
			case c == ':':
				return v, fmt.Errorf("invalid spec: %s: too many colons", spec)
			}
			buf = buf[:0]
		default:
			buf = append(buf, c)
		}
	}
	return v, nil
}

// parseVolumes sorts -v values as docker run does: a spec with a source
// (a named volume or a host path) goes to HostConfig.Binds, a relative
// "./" host path made absolute; a target alone is an anonymous volume in
// Config.Volumes. Duplicates count once.
func parseVolumes(specs []string) (binds []string, volumes map[string]struct{}, err error) {
	volumes = map[string]struct{}{}
	seen := map[string]bool{}
	for _, spec := range specs {
		v, err := parseVolumeSpec(spec)
		if err != nil {
			return nil, nil, err
		}
		if seen[spec] {
			continue
		}
		seen[spec] = true
		if v.source == "" {
			volumes[spec] = struct{}{}
			continue
		}
		if v.bind() {
			if host, rest, ok := strings.Cut(spec, ":"); ok {
				spec = absDotPath(host) + ":" + rest
			}
		}
		binds = append(binds, spec)
	}
	return binds, volumes, nil
}

// parseTmpfs turns --tmpfs PATH[:OPTIONS] values into HostConfig.Tmpfs;
// the options are the agent's to check, as docker leaves them to the
// daemon.
func parseTmpfs(specs []string) map[string]string {
	if len(specs) == 0 {
		return nil
	}
	m := make(map[string]string, len(specs))
	for _, t := range specs {
		k, v, _ := strings.Cut(t, ":")
		m[k] = v
	}
	return m
}
