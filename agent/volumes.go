package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/volume"

	"github.com/moss-containers/moss/internal/atomicfile"
	"github.com/moss-containers/moss/plugins"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// Volume is the agent's record of one volume, persisted as
// volume-records/NAME.json: which driver holds it and what it was
// created with. The driver keeps the data.
type Volume struct {
	Name       string            `json:"name"`
	Driver     string            `json:"driver"`
	Mountpoint string            `json:"mountpoint,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	Labels     map[string]string `json:"labels,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	Scope      string            `json:"scope,omitempty"`
}

// anonymousLabel marks the volumes made for a container, as Docker 23+:
// `volume prune` removes only those unless asked for all.
const anonymousLabel = "com.docker.volume.anonymous"

func (v *Volume) anonymous() bool {
	_, ok := v.Labels[anonymousLabel]
	return ok
}

// validVolumeName is Docker's rule for local volume names.
var validVolumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func checkVolumeName(name string) error {
	if !validVolumeName.MatchString(name) {
		return kindErr(errInvalid, "create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name, name)
	}
	return nil
}

// volumeRegistry holds the volume records by name.
type volumeRegistry struct {
	mu     sync.Mutex
	byName map[string]*Volume
	// pending counts containers being created with a volume, which
	// removal must treat as users before they are registered.
	pending map[string]int
	// unmounting counts the Unmounts of removed containers still in
	// flight (unmountLater); removal waits for them (idle is signalled
	// when one ends).
	unmounting map[string]int
	idle       *sync.Cond
	// ops serialises creations and removals, which call drivers.
	ops sync.Mutex
}

func (a *Agent) loadVolumes() error {
	a.vols = &volumeRegistry{byName: map[string]*Volume{}, pending: map[string]int{}, unmounting: map[string]int{}}
	a.vols.idle = sync.NewCond(&a.vols.mu)
	vols, err := loadRecords[Volume](a, a.dirs.VolumeRecords(), "volume", func(v *Volume) bool { return v.Name != "" })
	if err != nil {
		return err
	}
	for _, v := range vols {
		a.vols.byName[v.Name] = v
	}
	return nil
}

// loadRecords reads the agent's JSON records (NAME.json) in dir, made if
// missing; records that do not decode, or that valid refuses, are logged
// and skipped.
func loadRecords[T any](a *Agent, dir, what string, valid func(*T) bool) ([]*T, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []*T
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		r := new(T)
		if err := json.Unmarshal(data, r); err != nil || !valid(r) {
			a.log.Warn("skipping unreadable "+what+" record", "file", e.Name(), "error", err)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

func (a *Agent) saveVolume(v *Volume) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(a.dirs.VolumeRecords(), v.Name+".json"), b)
}

func (a *Agent) volume(name string) (*Volume, error) {
	a.vols.mu.Lock()
	defer a.vols.mu.Unlock()
	if v, ok := a.vols.byName[name]; ok {
		return v, nil
	}
	return nil, kindErr(errNotFound, "get %s: no such volume", name)
}

// volumeDriver finds a volume driver by name.
func (a *Agent) volumeDriver(name string) (*plugins.VolumeHandle, error) {
	d, err := a.plugins.Volume(name)
	if err != nil {
		return nil, kindErr(errNotFound, "error looking up volume plugin %s: plugin %q not found", name, name)
	}
	return d, nil
}

// createVolume makes a volume with the driver, or returns the existing
// one of that name (an error if it has another driver). An empty name is
// generated.
func (a *Agent) createVolume(ctx context.Context, name, driver string, opts, labels map[string]string) (*Volume, error) {
	if driver == "" {
		driver = "local"
	}
	if name == "" {
		name = newID()
	} else if err := checkVolumeName(name); err != nil {
		return nil, err
	}
	a.vols.ops.Lock()
	defer a.vols.ops.Unlock()
	a.vols.mu.Lock()
	v, ok := a.vols.byName[name]
	a.vols.mu.Unlock()
	if ok {
		if v.Driver != driver {
			return nil, kindErr(errConflict, "create %s: volume name %q already exists with driver %q, not %q", name, name, v.Driver, driver)
		}
		return v, nil
	}
	d, err := a.volumeDriver(driver)
	if err != nil {
		return nil, kindErr(errNotFound, "create %s: %s", name, err.Error())
	}
	caps, err := d.Capabilities(ctx)
	if err != nil {
		return nil, volumeErr("create", name, err)
	}
	pv, err := d.Create(ctx, &volumev1.CreateRequest{Name: name, Options: opts, Labels: labels})
	if err != nil {
		return nil, volumeErr("create", name, err)
	}
	v = &Volume{
		Name: name, Driver: driver, Mountpoint: pv.GetMountpoint(), CreatedAt: time.Now().UTC(),
		Labels: labels, Options: opts, Scope: caps.GetScope(),
	}
	if t, err := time.Parse(time.RFC3339Nano, pv.GetCreatedAt()); err == nil {
		v.CreatedAt = t.UTC()
	}
	if v.Scope == "" {
		v.Scope = "local"
	}
	if err := a.saveVolume(v); err != nil {
		// Without a record the agent would not know it: undo.
		_ = d.Remove(ctx, &volumev1.RemoveRequest{Name: name})
		return nil, err
	}
	a.vols.mu.Lock()
	a.vols.byName[name] = v
	a.vols.mu.Unlock()
	a.volumeEvent(v, events.ActionCreate, nil)
	return v, nil
}

// noteMountpoint records where a driver mounted a volume when its record
// says otherwise (drivers that only know it once mounted), for inspect.
func (a *Agent) noteMountpoint(v *Volume, path string) {
	a.vols.mu.Lock()
	if v.Mountpoint == path || path == "" {
		a.vols.mu.Unlock()
		return
	}
	nv := *v
	nv.Mountpoint = path
	if cur, ok := a.vols.byName[v.Name]; ok && cur == v {
		a.vols.byName[v.Name] = &nv
	}
	a.vols.mu.Unlock()
	if err := a.saveVolume(&nv); err != nil {
		a.log.Warn("save volume record", "name", v.Name, "error", err)
	}
}

// volumeErr puts a driver's error in Docker's words: "OP NAME: message",
// with the kind the API needs.
func volumeErr(op, name string, err error) error {
	msg := fmt.Sprintf("%s %s: %s", op, name, err.Error())
	switch {
	case errors.Is(err, plugins.ErrNotFound):
		return kindErr(errNotFound, "%s", msg)
	case errors.Is(err, plugins.ErrInUse), errors.Is(err, plugins.ErrExists):
		return kindErr(errConflict, "%s", msg)
	case errors.Is(err, plugins.ErrInvalid), errors.Is(err, plugins.ErrUnsupported):
		return kindErr(errInvalid, "%s", msg)
	case errors.Is(err, plugins.ErrUnavailable):
		return kindErr(errUnavailable, "%s", msg)
	}
	return errors.New(msg)
}

// volumeUsers are the IDs of the containers that use the volume, and
// how many are being created with it. It takes the containers' locks:
// callers must not hold a.vols.mu or a container's.
func (a *Agent) volumeUsers(name string) ([]string, int) {
	// Pending first: a container that stops being pending is registered.
	a.vols.mu.Lock()
	pending := a.vols.pending[name]
	a.vols.mu.Unlock()
	var ids []string
	for _, c := range a.snapshot() {
		c.mu.Lock()
		for _, m := range c.Mounts {
			if m.Type == "volume" && m.Name == name {
				ids = append(ids, c.ID)
				break
			}
		}
		c.mu.Unlock()
	}
	sort.Strings(ids)
	return ids, pending
}

// removeVolume removes an unused volume; with force an unknown volume is
// no error.
func (a *Agent) removeVolume(ctx context.Context, name string, force bool) error {
	a.vols.ops.Lock()
	defer a.vols.ops.Unlock()
	return a.removeVolumeLocked(ctx, name, force)
}

// removeVolumeLocked is removeVolume for callers holding a.vols.ops.
func (a *Agent) removeVolumeLocked(ctx context.Context, name string, force bool) error {
	a.vols.mu.Lock()
	for a.vols.unmounting[name] > 0 {
		a.vols.idle.Wait()
	}
	v, ok := a.vols.byName[name]
	a.vols.mu.Unlock()
	var users []string
	pending := 0
	if ok {
		users, pending = a.volumeUsers(name)
	}
	if !ok {
		if force {
			return nil
		}
		return kindErr(errNotFound, "get %s: no such volume", name)
	}
	if len(users) > 0 || pending > 0 {
		return kindErr(errConflict, "remove %s: volume is in use - [%s]", name, strings.Join(users, ", "))
	}
	d, err := a.volumeDriver(v.Driver)
	if err == nil {
		err = d.Remove(ctx, &volumev1.RemoveRequest{Name: name})
	}
	if err != nil && !(errors.Is(err, plugins.ErrNotFound) || (force && errors.Is(err, errNotFound))) {
		return volumeErr("remove", name, err)
	}
	if err := os.Remove(filepath.Join(a.dirs.VolumeRecords(), name+".json")); err != nil && !os.IsNotExist(err) {
		return err
	}
	a.vols.mu.Lock()
	delete(a.vols.byName, name)
	a.vols.mu.Unlock()
	a.volumeEvent(v, events.ActionDestroy, nil)
	return nil
}

// reserveVolumes marks names as used by a container being created, until
// release is called (after it is registered, or failed).
func (a *Agent) reserveVolumes(names []string) (release func()) {
	a.vols.mu.Lock()
	for _, n := range names {
		a.vols.pending[n]++
	}
	a.vols.mu.Unlock()
	return func() {
		a.vols.mu.Lock()
		for _, n := range names {
			if a.vols.pending[n]--; a.vols.pending[n] <= 0 {
				delete(a.vols.pending, n)
			}
		}
		a.vols.mu.Unlock()
	}
}

// volumeList returns the volumes that pass the filters (dangling, driver,
// label, name), sorted by name.
func (a *Agent) volumeList(f map[string][]string) ([]*Volume, error) {
	for k := range f {
		switch k {
		case "dangling", "driver", "label", "name", "label!":
		default:
			return nil, kindErr(errInvalid, "invalid filter '%s'", k)
		}
	}
	var dangling *bool
	if vs := f["dangling"]; len(vs) > 0 {
		var b bool
		switch strings.ToLower(vs[0]) {
		case "true", "1":
			b = true
		case "false", "0":
		default:
			return nil, kindErr(errInvalid, "invalid filter 'dangling=%s'", vs[0])
		}
		dangling = &b
	}
	a.vols.mu.Lock()
	all := make([]*Volume, 0, len(a.vols.byName))
	for _, v := range a.vols.byName {
		all = append(all, v)
	}
	a.vols.mu.Unlock()
	var out []*Volume
	for _, v := range all {
		if !matchAny(f["driver"], func(s string) bool { return s == v.Driver }) ||
			!matchAny(f["name"], func(s string) bool { return strings.Contains(v.Name, s) }) ||
			!matchLabels(f["label"], v.Labels) || !unmatchLabels(f["label!"], v.Labels) {
			continue
		}
		if dangling != nil {
			users, pending := a.volumeUsers(v.Name)
			if (len(users) == 0 && pending == 0) != *dangling {
				continue
			}
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// matchAny is true when want is empty or one of its values matches.
func matchAny(want []string, match func(string) bool) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		if match(w) {
			return true
		}
	}
	return false
}

// unmatchLabels is true when none of the label!= filters matches.
func unmatchLabels(not []string, labels map[string]string) bool {
	for _, l := range not {
		if matchLabels([]string{l}, labels) {
			return false
		}
	}
	return true
}

// pruneVolumes removes the unused volumes that pass the filters: only
// anonymous ones unless all. It returns the names and the bytes freed.
func (a *Agent) pruneVolumes(ctx context.Context, f map[string][]string) ([]string, uint64, error) {
	all := false
	if vs := f["all"]; len(vs) > 0 {
		switch strings.ToLower(vs[0]) {
		case "true", "1":
			all = true
		case "false", "0":
		default:
			return nil, 0, kindErr(errInvalid, "invalid filter 'all=%s': want true or false", vs[0])
		}
	}
	delete(f, "all")
	f["dangling"] = []string{"true"}
	vs, err := a.volumeList(f)
	if err != nil {
		return nil, 0, err
	}
	a.vols.ops.Lock()
	defer a.vols.ops.Unlock()
	var deleted []string
	var space uint64
	for _, v := range vs {
		if !all && !v.anonymous() {
			continue
		}
		size := dirSize(v.Mountpoint)
		if err := a.removeVolumeLocked(ctx, v.Name, false); err != nil {
			a.log.Debug("prune: volume kept", "name", v.Name, "error", err)
			continue
		}
		deleted = append(deleted, v.Name)
		space += size
	}
	return deleted, space, nil
}

// dirSize adds up the sizes of the regular files under dir.
func dirSize(dir string) uint64 {
	if dir == "" {
		return 0
	}
	var n uint64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += uint64(fi.Size())
			}
		}
		return nil
	})
	return n
}

// apiVolume is v as the Docker API shows it.
func (a *Agent) apiVolume(v *Volume) volume.Volume {
	labels, opts := v.Labels, v.Options
	if labels == nil {
		labels = map[string]string{}
	}
	if opts == nil {
		opts = map[string]string{}
	}
	return volume.Volume{
		Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint,
		CreatedAt: v.CreatedAt.Format(time.RFC3339), Labels: labels, Options: opts, Scope: v.Scope,
	}
}

func (a *Agent) volumeEvent(v *Volume, action events.Action, extra map[string]string) {
	attrs := map[string]string{"driver": v.Driver}
	for k, val := range extra {
		attrs[k] = val
	}
	a.emit(events.VolumeEventType, action, v.Name, attrs)
}
