package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
	"golang.org/x/sys/unix"

	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// mountPoint is one of a container's volumes, bind mounts and tmpfs
// mounts, resolved at its creation from -v, --mount, --tmpfs,
// --volumes-from and the image's VOLUMEs.
type mountPoint struct {
	Type string `json:"type"` // volume, bind or tmpfs
	// Name and Driver are the volume's.
	Name   string `json:"name,omitempty"`
	Driver string `json:"driver,omitempty"`
	// Source is the host path: a bind's, or where the volume's driver has
	// it.
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
	RW          bool   `json:"rw"`
	// Mode is what the user wrote after the destination (-v), for inspect.
	Mode        string `json:"mode,omitempty"`
	Propagation string `json:"propagation,omitempty"`
	// NoCopy keeps an empty volume from being filled with the image's
	// content at the destination.
	NoCopy bool `json:"nocopy,omitempty"`
	// NonRecursive binds only the source, not the mounts below it;
	// ROShallow makes only the top mount read-only.
	NonRecursive bool `json:"non_recursive,omitempty"`
	ROShallow    bool `json:"ro_shallow,omitempty"`
	// CreateSource makes a missing bind source (-v, not --mount).
	CreateSource bool `json:"create_source,omitempty"`
	// Subpath mounts a directory of the volume instead of all of it.
	Subpath string `json:"subpath,omitempty"`
	// Tmpfs are a tmpfs's mount options.
	Tmpfs []string `json:"tmpfs,omitempty"`

	// explicitDriver: --mount named the volume's driver (resolution only).
	explicitDriver bool
}

// Types of mount points.
const (
	mountVolume = "volume"
	mountBind   = "bind"
	mountTmpfs  = "tmpfs"
)

// volumeRequest is a volume that a container being created needs.
type volumeRequest struct {
	name, driver string
	opts, labels map[string]string
	// anyDriver takes an existing volume of the name whatever its
	// driver: none was asked for (-v NAME:/path, as docker).
	anyDriver bool
}

// resolveMounts works out a new container's mounts in Docker's order:
// the image's and Config's VOLUMEs, overridden by --volumes-from, then
// by -v and --mount (which may not name a destination twice) and
// --tmpfs. It validates everything before anything is created and
// returns the volumes the mounts need.
func (a *Agent) resolveMounts(cfg *container.Config, host *container.HostConfig, imageVols map[string]struct{}) ([]mountPoint, []volumeRequest, error) {
	byDest := map[string]mountPoint{}
	explicit := map[string]bool{}
	var reqs []volumeRequest
	put := func(m mountPoint, given bool) error {
		if given {
			if explicit[m.Destination] {
				return kindErr(errInvalid, "Duplicate mount point: %s", m.Destination)
			}
			explicit[m.Destination] = true
			byDest[m.Destination] = m
		} else if _, ok := byDest[m.Destination]; !ok {
			byDest[m.Destination] = m
		}
		return nil
	}
	driver := host.VolumeDriver
	if driver == "" {
		driver = "local"
	}
	explicitDriver := host.VolumeDriver != ""
	for _, ref := range host.VolumesFrom {
		name, mode, _ := strings.Cut(ref, ":")
		if mode != "" && mode != "ro" && mode != "rw" {
			return nil, nil, kindErr(errInvalid, "invalid mode for volumes-from: %s", ref)
		}
		src, err := a.lookup(name)
		if err != nil {
			return nil, nil, err
		}
		src.mu.Lock()
		from := append([]mountPoint(nil), src.Mounts...)
		src.mu.Unlock()
		for _, m := range from {
			if m.Type == mountTmpfs {
				continue
			}
			if mode != "" {
				m.RW = mode == "rw"
				m.Mode = mode
			}
			if err := put(m, false); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, b := range host.Binds {
		m, err := parseBind(b, driver)
		if err != nil {
			return nil, nil, err
		}
		if err := put(m, true); err != nil {
			return nil, nil, err
		}
	}
	for _, spec := range host.Mounts {
		m, req, err := parseMount(spec, driver)
		if err != nil {
			return nil, nil, err
		}
		if err := put(m, true); err != nil {
			return nil, nil, err
		}
		if req != nil {
			reqs = append(reqs, *req)
		}
	}
	for dest, opts := range host.Tmpfs {
		m, err := tmpfsMount(dest, opts)
		if err != nil {
			return nil, nil, err
		}
		if err := put(m, true); err != nil {
			return nil, nil, err
		}
	}
	vols := map[string]struct{}{}
	for d := range imageVols {
		vols[d] = struct{}{}
	}
	for d := range cfg.Volumes {
		vols[d] = struct{}{}
	}
	for d := range vols {
		dest, err := checkDestination(d, d, mountVolume)
		if err != nil {
			return nil, nil, err
		}
		if err := put(mountPoint{Type: mountVolume, Driver: driver, Destination: dest, RW: true}, false); err != nil {
			return nil, nil, err
		}
	}
	out := make([]mountPoint, 0, len(byDest))
	for _, m := range byDest {
		if m.Type == mountVolume && m.Name == "" {
			// Anonymous: a fresh volume of its own.
			m.Name = newID()
			reqs = append(reqs, volumeRequest{name: m.Name, driver: m.Driver, labels: map[string]string{anonymousLabel: ""}})
		} else if m.Type == mountVolume && !hasRequest(reqs, m.Name) {
			reqs = append(reqs, volumeRequest{name: m.Name, driver: m.Driver, anyDriver: !explicitDriver && !m.explicitDriver})
		}
		out = append(out, m)
	}
	sortMounts(out)
	return out, reqs, nil
}

func hasRequest(reqs []volumeRequest, name string) bool {
	for _, r := range reqs {
		if r.name == name {
			return true
		}
	}
	return false
}

// sortMounts orders mounts so that a mount comes after those it is below.
func sortMounts(ms []mountPoint) {
	sort.SliceStable(ms, func(i, j int) bool {
		di, dj := strings.Count(ms[i].Destination, "/"), strings.Count(ms[j].Destination, "/")
		if di != dj {
			return di < dj
		}
		return ms[i].Destination < ms[j].Destination
	})
}

// checkDestination cleans a mount's destination and refuses what cannot
// be mounted over.
func checkDestination(dest, spec, typ string) (string, error) {
	if dest == "" {
		return "", kindErr(errInvalid, "invalid mount config for type %q: field Target must not be empty", typ)
	}
	if !filepath.IsAbs(dest) {
		return "", kindErr(errInvalid, "invalid volume specification: '%s': invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", spec, typ, dest)
	}
	dest = filepath.Clean(dest)
	if dest == "/" {
		return "", kindErr(errInvalid, "invalid volume specification: '%s': invalid mount config for type %q: invalid specification: destination can't be '/'", spec, typ)
	}
	if dest == "/proc" || strings.HasPrefix(dest, "/proc/") {
		return "", kindErr(errInvalid, "invalid volume specification: '%s': invalid mount config for type %q: %s is reserved for the container's proc file system", spec, typ, dest)
	}
	return dest, nil
}

var propagations = map[string]bool{"private": true, "rprivate": true, "shared": true, "rshared": true, "slave": true, "rslave": true}

// parseBind reads one -v (HostConfig.Binds) entry: [SRC:]DEST[:MODE],
// where SRC is an absolute host path (a bind mount) or a volume name.
func parseBind(spec, driver string) (mountPoint, error) {
	parts := strings.Split(spec, ":")
	var src, dest, mode string
	switch len(parts) {
	case 1:
		dest = parts[0]
	case 2:
		if filepath.IsAbs(parts[1]) {
			src, dest = parts[0], parts[1]
		} else {
			dest, mode = parts[0], parts[1]
		}
	case 3:
		src, dest, mode = parts[0], parts[1], parts[2]
	default:
		return mountPoint{}, kindErr(errInvalid, "invalid volume specification: '%s'", spec)
	}
	if src == "" && len(parts) == 3 {
		return mountPoint{}, kindErr(errInvalid, "invalid volume specification: '%s'", spec)
	}
	m := mountPoint{Type: mountVolume, Driver: driver, RW: true, Mode: mode}
	if filepath.IsAbs(src) {
		m.Type, m.Source, m.Driver, m.CreateSource = mountBind, filepath.Clean(src), "", true
	} else if src != "" {
		if err := checkVolumeName(src); err != nil {
			return mountPoint{}, err
		}
		m.Name = src
	}
	var err error
	if m.Destination, err = checkDestination(dest, spec, m.Type); err != nil {
		return mountPoint{}, err
	}
	rwSet := false
	for _, o := range strings.Split(mode, ",") {
		switch {
		case o == "":
		case o == "ro" || o == "rw":
			if rwSet {
				return mountPoint{}, kindErr(errInvalid, "invalid mode: %s", mode)
			}
			rwSet, m.RW = true, o == "rw"
		case o == "z" || o == "Z":
			// SELinux relabelling: nothing to do without SELinux.
		case o == "nocopy" && m.Type == mountVolume:
			m.NoCopy = true
		case propagations[o] && m.Type == mountBind && m.Propagation == "":
			m.Propagation = o
		default:
			return mountPoint{}, kindErr(errInvalid, "invalid mode: %s", mode)
		}
	}
	return m, nil
}

// parseMount reads one --mount (HostConfig.Mounts) entry; a volume with
// options or labels comes with the request to create it.
func parseMount(s mount.Mount, driver string) (mountPoint, *volumeRequest, error) {
	typ := string(s.Type)
	dest, err := checkDestination(s.Target, s.Source+":"+s.Target, typ)
	if err != nil {
		return mountPoint{}, nil, err
	}
	m := mountPoint{Type: typ, Destination: dest, RW: !s.ReadOnly}
	if s.ReadOnly {
		m.Mode = "ro"
	}
	notFor := func(field string) error {
		return kindErr(errInvalid, "invalid mount config for type %q: field %s must not be specified", typ, field)
	}
	switch s.Type {
	case mount.TypeBind:
		if s.VolumeOptions != nil {
			return mountPoint{}, nil, notFor("VolumeOptions")
		}
		if s.TmpfsOptions != nil {
			return mountPoint{}, nil, notFor("TmpfsOptions")
		}
		if s.Source == "" {
			return mountPoint{}, nil, kindErr(errInvalid, "invalid mount config for type \"bind\": field Source must not be empty")
		}
		if !filepath.IsAbs(s.Source) {
			return mountPoint{}, nil, kindErr(errInvalid, "invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", s.Source)
		}
		m.Source = filepath.Clean(s.Source)
		createMissing := false
		if b := s.BindOptions; b != nil {
			if b.Propagation != "" && !propagations[string(b.Propagation)] {
				return mountPoint{}, nil, kindErr(errInvalid, "invalid mount config for type \"bind\": invalid propagation mode: %s", b.Propagation)
			}
			m.Propagation, m.NonRecursive, m.ROShallow = string(b.Propagation), b.NonRecursive, b.ReadOnlyNonRecursive
			createMissing = b.CreateMountpoint
			m.CreateSource = createMissing
		}
		if _, err := os.Stat(m.Source); err != nil && !createMissing {
			if errors.Is(err, os.ErrNotExist) {
				return mountPoint{}, nil, kindErr(errInvalid, "invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
			}
			return mountPoint{}, nil, kindErr(errInvalid, "invalid mount config for type \"bind\": %v", err)
		}
		return m, nil, nil
	case mount.TypeVolume:
		if s.BindOptions != nil {
			return mountPoint{}, nil, notFor("BindOptions")
		}
		if s.TmpfsOptions != nil {
			return mountPoint{}, nil, notFor("TmpfsOptions")
		}
		m.Driver = driver
		var req *volumeRequest
		if o := s.VolumeOptions; o != nil {
			m.NoCopy = o.NoCopy
			if o.Subpath != "" {
				if filepath.IsAbs(o.Subpath) || strings.HasPrefix(filepath.Clean(o.Subpath), "..") {
					return mountPoint{}, nil, kindErr(errInvalid, "invalid mount config for type \"volume\": subpath must be a relative path within the volume: %s", o.Subpath)
				}
				m.Subpath = filepath.Clean(o.Subpath)
			}
			if o.DriverConfig != nil && o.DriverConfig.Name != "" {
				m.Driver, m.explicitDriver = o.DriverConfig.Name, true
			}
			if (o.DriverConfig != nil && len(o.DriverConfig.Options) > 0) || len(o.Labels) > 0 {
				req = &volumeRequest{driver: m.Driver, labels: o.Labels}
				if o.DriverConfig != nil {
					req.opts = o.DriverConfig.Options
				}
			}
		}
		if s.Source != "" {
			if err := checkVolumeName(s.Source); err != nil {
				return mountPoint{}, nil, err
			}
			m.Name = s.Source
		} else if req != nil {
			// Anonymous, with options: named now so the request is its.
			m.Name = newID()
			if req.labels == nil {
				req.labels = map[string]string{}
			}
			req.labels[anonymousLabel] = ""
		}
		if req != nil {
			req.name = m.Name
		}
		return m, req, nil
	case mount.TypeTmpfs:
		if s.Source != "" {
			return mountPoint{}, nil, notFor("Source")
		}
		if s.BindOptions != nil {
			return mountPoint{}, nil, notFor("BindOptions")
		}
		if s.VolumeOptions != nil {
			return mountPoint{}, nil, notFor("VolumeOptions")
		}
		var opts []string
		if t := s.TmpfsOptions; t != nil {
			if t.SizeBytes < 0 {
				return mountPoint{}, nil, kindErr(errInvalid, "invalid mount config for type \"tmpfs\": invalid tmpfs size %d", t.SizeBytes)
			}
			if t.SizeBytes > 0 {
				opts = append(opts, "size="+strconv.FormatInt(t.SizeBytes, 10))
			}
			if t.Mode != 0 {
				// The CLI sends the octal mode as is (1777); os.FileMode's
				// own sticky bit counts too.
				mode := uint32(t.Mode) & 0o7777
				if t.Mode&os.ModeSticky != 0 {
					mode |= 0o1000
				}
				opts = append(opts, "mode="+strconv.FormatUint(uint64(mode), 8))
			}
			for _, o := range t.Options {
				opts = append(opts, strings.Join(o, "="))
			}
		}
		if s.ReadOnly {
			opts = append(opts, "ro")
		}
		m.Tmpfs = append(defaultTmpfsOptions(), opts...)
		return m, nil, nil
	case "":
		return mountPoint{}, nil, kindErr(errInvalid, "invalid mount config: mount type must be specified (bind, volume or tmpfs)")
	}
	return mountPoint{}, nil, kindErr(errInvalid, "invalid mount config: mount type %q is not supported (bind, volume or tmpfs)", typ)
}

// defaultTmpfsOptions are Docker's for tmpfs mounts; the user's come after
// and win (exec undoes noexec).
func defaultTmpfsOptions() []string { return []string{"nosuid", "nodev", "noexec"} }

// tmpfsMount reads one --tmpfs (HostConfig.Tmpfs) entry.
func tmpfsMount(dest, opts string) (mountPoint, error) {
	d, err := checkDestination(dest, dest, mountTmpfs)
	if err != nil {
		return mountPoint{}, err
	}
	m := mountPoint{Type: mountTmpfs, Destination: d, RW: true, Mode: opts, Tmpfs: defaultTmpfsOptions()}
	for _, o := range strings.Split(opts, ",") {
		switch {
		case o == "":
		case o == "ro":
			m.RW = false
			m.Tmpfs = append(m.Tmpfs, o)
		case strings.ContainsAny(o, " \t\n"):
			return mountPoint{}, kindErr(errInvalid, "invalid tmpfs option %q for %s", o, dest)
		default:
			m.Tmpfs = append(m.Tmpfs, o)
		}
	}
	return m, nil
}

// createMountVolumes creates the volumes a new container's mounts need
// (existing ones are used as they are) and fills in their mount points'
// sources. It returns the anonymous volumes it made, for removal when
// the creation fails.
func (a *Agent) createMountVolumes(ctx context.Context, ms []mountPoint, reqs []volumeRequest) ([]string, error) {
	var anon []string
	for _, r := range reqs {
		v, err := a.volume(r.name)
		existed := err == nil
		if !existed || !r.anyDriver {
			v, err = a.createVolume(ctx, r.name, r.driver, r.opts, r.labels)
		}
		if err != nil {
			a.removeAnonymous(anon)
			return nil, err
		}
		if !existed && v.anonymous() {
			anon = append(anon, v.Name)
		}
		for i := range ms {
			if ms[i].Type == mountVolume && ms[i].Name == v.Name {
				ms[i].Source, ms[i].Driver = v.Mountpoint, v.Driver
			}
		}
	}
	return anon, nil
}

// removeAnonymous removes anonymous volumes (of a container that failed or
// was removed with its volumes); one in use elsewhere is kept.
func (a *Agent) removeAnonymous(names []string) {
	for _, n := range names {
		v, err := a.volume(n)
		if err != nil || !v.anonymous() {
			continue
		}
		if err := a.removeVolume(context.Background(), n, false); err != nil {
			a.log.Debug("anonymous volume kept", "name", n, "error", err)
		}
	}
}

// anonymousVolumes are the anonymous volumes among c's mounts.
func (a *Agent) anonymousVolumes(c *Container) []string {
	var out []string
	for _, m := range c.Mounts {
		if m.Type != mountVolume {
			continue
		}
		if v, err := a.volume(m.Name); err == nil && v.anonymous() {
			out = append(out, m.Name)
		}
	}
	return out
}

// volumeMounts are the drivers' mounts of one start's volumes, asked for
// all at once while the container's root is being mounted: a Mount is a
// round trip to a plugin process (about 1 ms), the root's overlay mount
// 3 ms.
type volumeMounts struct {
	wg    sync.WaitGroup
	paths []string // by index of the container's mounts
	errs  []error
}

// startVolumeMounts asks the drivers to mount c's volumes, concurrently,
// in the background. Callers hold c.mu.
func (a *Agent) startVolumeMounts(c *Container) *volumeMounts {
	vm := &volumeMounts{paths: make([]string, len(c.Mounts)), errs: make([]error, len(c.Mounts))}
	for i, m := range c.Mounts {
		if m.Type != mountVolume {
			continue
		}
		vm.wg.Add(1)
		go func() {
			defer vm.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			d, err := a.volumeDriver(m.Driver)
			if err == nil {
				vm.paths[i], err = d.Mount(ctx, &volumev1.MountRequest{Name: m.Name, MountId: c.ID})
			}
			if err != nil {
				vm.errs[i] = volumeErr("error while mounting volume", m.Name, err)
			}
		}()
	}
	return vm
}

// release waits for the mounts and undoes those that were made.
func (vm *volumeMounts) release(a *Agent, c *Container) {
	vm.wg.Wait()
	var mounted []mountPoint
	for i, m := range c.Mounts {
		if m.Type == mountVolume && vm.errs[i] == nil {
			mounted = append(mounted, m)
		}
	}
	a.unmountVolumes(c.ID, mounted)
}

// mountVolumes waits for the volumes' mounts, fills empty volumes with the
// image's content at their destination and returns the spec's mounts. On
// failure what was mounted is released. Callers hold c.mu.
func (a *Agent) mountVolumes(c *Container, rootfs string, vm *volumeMounts) ([]specs.Mount, error) {
	if len(c.Mounts) == 0 {
		return nil, nil
	}
	t0 := time.Now()
	vm.wg.Wait()
	a.log.Debug("volumes mounted", "id", c.ID, "waited", time.Since(t0))
	fail := func(err error) ([]specs.Mount, error) {
		vm.release(a, c)
		return nil, err
	}
	for _, err := range vm.errs {
		if err != nil {
			return fail(err)
		}
	}
	out := make([]specs.Mount, 0, len(c.Mounts))
	for i := range c.Mounts {
		m := &c.Mounts[i]
		src := m.Source
		switch m.Type {
		case mountVolume:
			src = vm.paths[i]
			m.Source = src
			if m.Subpath != "" {
				sub, err := securejoin.SecureJoin(src, m.Subpath)
				if err == nil {
					_, err = os.Stat(sub)
				}
				if err != nil {
					return fail(kindErr(errInvalid, "cannot mount volume %s: subpath %s: %v", m.Name, m.Subpath, err))
				}
				src = sub
			} else if !m.NoCopy {
				if err := a.fillVolume(rootfs, m.Destination, src); err != nil {
					return fail(fmt.Errorf("copy the image's %s into volume %s: %w", m.Destination, m.Name, err))
				}
			}
			if v, err := a.volume(m.Name); err == nil {
				a.noteMountpoint(v, vm.paths[i])
				a.volumeEvent(v, events.ActionMount, map[string]string{"container": c.ID, "destination": m.Destination, "read/write": strconv.FormatBool(m.RW)})
			}
		case mountBind:
			if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
				if !m.CreateSource {
					return fail(kindErr(errInvalid, "invalid mount config for type \"bind\": bind source path does not exist: %s", src))
				}
				// As docker for -v: a missing host directory is made.
				if err := os.MkdirAll(src, 0o755); err != nil {
					return fail(kindErr(errInvalid, "error while creating mount source path '%s': %v", src, err))
				}
			}
		case mountTmpfs:
			out = append(out, specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: m.Tmpfs})
			continue
		}
		opts := []string{"rbind"}
		if m.NonRecursive {
			opts[0] = "bind"
		}
		prop := m.Propagation
		if prop == "" {
			prop = "rprivate"
		}
		opts = append(opts, prop)
		if !m.RW {
			// Really read-only: the mounts below too, where the kernel
			// can (mount_setattr, Linux 5.12).
			if m.ROShallow || !recursiveRO() {
				opts = append(opts, "ro")
			} else {
				opts = append(opts, "rro")
			}
		}
		out = append(out, specs.Mount{Destination: m.Destination, Type: "bind", Source: src, Options: opts})
	}
	return out, nil
}

// unmountVolumes releases the container's mounts of volumes, concurrently.
func (a *Agent) unmountVolumes(id string, ms []mountPoint) {
	var wg sync.WaitGroup
	for _, m := range ms {
		if m.Type != mountVolume {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			d, err := a.volumeDriver(m.Driver)
			if err == nil {
				err = d.Unmount(ctx, &volumev1.UnmountRequest{Name: m.Name, MountId: id})
			}
			if err != nil {
				a.log.Warn("unmount volume", "name", m.Name, "container", id, "error", err)
				return
			}
			if v, err := a.volume(m.Name); err == nil {
				a.volumeEvent(v, events.ActionUnmount, map[string]string{"container": id})
			}
		}()
	}
	wg.Wait()
}

// unmountLater releases the volumes of a container that is being removed
// (run --rm) in the background, so that its removal need not wait for the
// drivers; removing one of the volumes waits for it.
func (a *Agent) unmountLater(id string, ms []mountPoint) {
	var names []string
	for _, m := range ms {
		if m.Type == mountVolume {
			names = append(names, m.Name)
		}
	}
	if len(names) == 0 {
		return
	}
	a.vols.mu.Lock()
	for _, n := range names {
		a.vols.unmounting[n]++
	}
	a.vols.mu.Unlock()
	a.deleting.Add(1)
	go func() {
		defer a.deleting.Done()
		a.unmountVolumes(id, ms)
		a.vols.mu.Lock()
		for _, n := range names {
			if a.vols.unmounting[n]--; a.vols.unmounting[n] <= 0 {
				delete(a.vols.unmounting, n)
			}
		}
		a.vols.idle.Broadcast()
		a.vols.mu.Unlock()
	}()
}

// fillVolume copies the image's content at dest into an empty volume at
// dir, with owners and modes, as Docker does when a volume is first
// mounted over a directory of the image.
func (a *Agent) fillVolume(rootfs, dest, dir string) error {
	src, err := securejoin.SecureJoin(rootfs, dest)
	if err != nil {
		return err
	}
	st, err := os.Lstat(src)
	if err != nil || !st.IsDir() {
		return nil // nothing there (or not a directory): nothing to copy
	}
	if empty, err := dirEmpty(dir); err != nil || !empty {
		return err
	}
	if empty, err := dirEmpty(src); err != nil || empty {
		return err
	}
	tr, err := chrootarchive.Tar(src, &archive.TarOptions{Compression: archive.Uncompressed}, src)
	if err != nil {
		return err
	}
	defer tr.Close()
	opts := &archive.TarOptions{InUserNS: true, IgnoreChownErrors: a.singleID}
	if err := chrootarchive.UntarWithRoot(tr, dir, opts, dir); err != nil {
		return err
	}
	// The volume's root takes the directory's owner and mode too.
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if err := os.Lchown(dir, int(sys.Uid), int(sys.Gid)); err != nil && !a.singleID {
			return err
		}
	}
	return os.Chmod(dir, st.Mode().Perm()|st.Mode()&(os.ModeSticky|os.ModeSetgid|os.ModeSetuid))
}

func dirEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// apiMounts are c's mounts as inspect shows them.
func (c *Container) apiMounts() []container.MountPoint {
	out := make([]container.MountPoint, 0, len(c.Mounts))
	for _, m := range c.Mounts {
		mp := container.MountPoint{
			Type: mount.Type(m.Type), Name: m.Name, Source: m.Source, Destination: m.Destination,
			Driver: m.Driver, Mode: m.Mode, RW: m.RW, Propagation: mount.Propagation(m.Propagation),
		}
		switch m.Type {
		case mountBind:
			if mp.Propagation == "" {
				mp.Propagation = mount.PropagationRPrivate
			}
		case mountTmpfs:
			mp.Source = ""
		}
		out = append(out, mp)
	}
	return out
}

// recursiveRO reports whether the kernel has mount_setattr, with which
// read-only mounts are read-only all the way down ("rro").
var recursiveRO = sync.OnceValue(func() bool {
	err := unix.MountSetattr(-1, "", 0, &unix.MountAttr{})
	return !errors.Is(err, unix.ENOSYS)
})
