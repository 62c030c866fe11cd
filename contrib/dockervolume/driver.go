// Package dockervolume adapts Docker volume plugins — programs that speak
// Docker's volume-plugin HTTP protocol (/Plugin.Activate,
// /VolumeDriver.Create, …) on a unix socket or a TCP address — to Moss's
// plugins.VolumeDriver, so existing Docker volume plugins serve Moss
// volumes. It is compiled into the moss binary: the loader runs one
// adapter process per Docker plugin it finds in a plugin directory
// (NAME.sock, NAME.spec, NAME.json), as `moss __plugin volumedriver
// docker-protocol NAME ADDR` (Main).
//
// The adapter owns its records of the volumes made through it (labels,
// options, creation times, the mount IDs that hold them), in its state
// directory, and nothing else: the volumes are the Docker plugin's.
package dockervolume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/moss-containers/moss/internal/atomicfile"
	"github.com/moss-containers/moss/plugins"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// Version is the adapter's version (the binary's, set by make build).
var Version = "dev"

// Timeouts of the calls to the plugin. Creating, mounting and removing
// may provision, attach or delete remote storage: they get longer.
const (
	longTimeout  = 2 * time.Minute
	shortTimeout = 30 * time.Second
)

// activateWait is how long Configure waits for a plugin that is not
// listening yet, as Docker waits for a plugin that is coming up; it stays
// inside the loader's 10 s handshake. dialRetry is how long a later call
// retries a plugin that refuses connections: one that restarts is away
// for a moment.
const (
	activateWait = 8 * time.Second
	dialRetry    = 3 * time.Second
)

// Driver is a plugins.VolumeDriver that forwards to a Docker volume
// plugin. What Docker's protocol does not carry the adapter keeps in its
// state directory, for the volumes created through it: their labels and
// options, their creation time when the plugin gives none, and which
// mount IDs hold them. Mounts are counted by mount ID here as well as in
// the plugin: a Mount of an ID that holds the volume already is not sent
// again (a plugin that counts calls would never be unmounted), an
// Unmount of an ID that holds nothing is not sent, and a volume that an
// ID holds is not removed (InUse).
type Driver struct {
	name, addr              string
	log                     hclog.Logger
	activateWait, dialRetry time.Duration

	mu        sync.Mutex
	c         *client
	stateFile string             // "": records kept in memory only
	vols      map[string]*record // by volume name
	locks     map[string]*sync.Mutex
}

// record is what the adapter keeps of a volume.
type record struct {
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	CreatedAt string            `json:"created_at,omitempty"`
	Mounts    []string          `json:"mounts,omitempty"` // mount IDs that hold it
}

var _ plugins.VolumeDriver = (*Driver)(nil)

// validName is Docker's rule for volume names, which Docker checks before
// a plugin sees them.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func checkName(name string) error {
	if !validName.MatchString(name) {
		return plugins.Invalid("invalid volume name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed", name)
	}
	return nil
}

// New returns a driver called name for the Docker plugin at addr:
// unix:///abs/path.sock, an absolute socket path, tcp://host:port,
// http(s)://host:port (what a Docker .spec file holds), or the absolute
// path of a .spec or .json spec file, read at each Configure (a .json's
// TLSConfig is honoured). Nothing is dialled before Configure.
func New(name, addr string) *Driver {
	return &Driver{
		name: name, addr: addr,
		log:          plugins.Logger().Named(name),
		activateWait: activateWait,
		dialRetry:    dialRetry,
		vols:         map[string]*record{},
		locks:        map[string]*sync.Mutex{},
	}
}

// Main runs the adapter as a plugin process until the agent ends it:
// `moss __plugin volumedriver docker-protocol NAME ADDR` passes
// args = [NAME, ADDR].
func Main(args []string) int {
	if len(args) != 2 || args[0] == "" || args[1] == "" {
		fmt.Fprintln(os.Stderr, "usage: moss __plugin volumedriver docker-protocol NAME ADDR")
		return 2
	}
	plugins.Serve(New(args[0], args[1]))
	return 0
}

// Info names the driver as the loader knows the plugin.
func (d *Driver) Info(context.Context) (*basev1.InfoResponse, error) {
	return &basev1.InfoResponse{Name: d.name, Kind: plugins.KindVolume, Version: Version}, nil
}

// Configure activates the plugin — waiting a few seconds for one that is
// not listening yet — and refuses one that does not implement
// VolumeDriver. It takes no options.
func (d *Driver) Configure(ctx context.Context, req *basev1.ConfigureRequest) error {
	for k := range req.GetOptions() {
		return plugins.Invalid("%s: unknown option %q: a Docker volume plugin takes no options from Moss's configuration", d.name, k)
	}
	c, err := newClient(d.addr)
	if err != nil {
		return fmt.Errorf("%s: %w", d.name, err)
	}
	vols := map[string]*record{}
	var stateFile string
	if dir := req.GetStateDir(); dir != "" {
		stateFile = filepath.Join(dir, "volumes.json")
		data, err := os.ReadFile(stateFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return fmt.Errorf("%s: volume records: %w", d.name, err)
		default:
			if err := json.Unmarshal(data, &vols); err != nil {
				return fmt.Errorf("%s: volume records %s: %w", d.name, stateFile, err)
			}
		}
	}

	// Within the caller's deadline, with room to say why.
	wait := d.activateWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)-500*time.Millisecond)
	}
	var m struct{ Implements []string }
	actx, cancel := context.WithTimeout(ctx, shortTimeout)
	defer cancel()
	if err := c.call(actx, "Plugin.Activate", nil, &m, wait); err != nil {
		var u *unreachable
		if errors.As(err, &u) {
			return &plugins.Error{Kind: plugins.ErrUnavailable, Msg: fmt.Sprintf(
				"docker volume plugin %q does not answer at %s: %v", d.name, c.addr, u.err)}
		}
		return fmt.Errorf("docker volume plugin %q at %s: activate: %w", d.name, c.addr, err)
	}
	if !slices.Contains(m.Implements, "VolumeDriver") {
		return plugins.Unsupported("docker plugin %q at %s is not a volume plugin: it implements %s, not VolumeDriver",
			d.name, c.addr, describe(m.Implements))
	}
	d.log.Debug("activated", "addr", c.addr, "implements", m.Implements)

	d.mu.Lock()
	d.c, d.stateFile, d.vols = c, stateFile, vols
	d.mu.Unlock()
	return nil
}

func describe(impl []string) string {
	if len(impl) == 0 {
		return "nothing"
	}
	return strings.Join(impl, ", ")
}

// client returns the configured client.
func (d *Driver) client() (*client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c == nil {
		return nil, &plugins.Error{Kind: plugins.ErrUnavailable, Msg: d.name + ": not configured"}
	}
	return d.c, nil
}

// lock serialises the calls about one volume.
func (d *Driver) lock(name string) func() {
	d.mu.Lock()
	l, ok := d.locks[name]
	if !ok {
		l = &sync.Mutex{}
		d.locks[name] = l
	}
	d.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// call calls the plugin and turns what went wrong into an error of the
// right kind: not there (ErrUnavailable), not found, in use, not
// implemented (a 404 without a message), or the plugin's message.
func (d *Driver) call(parent context.Context, method string, args, ret any, timeout time.Duration) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	err = c.call(ctx, method, args, ret, d.dialRetry)
	var u *unreachable
	var h *httpError
	var bad *badAnswer
	switch {
	case err == nil:
		// A plugin may answer 200 with an error in Err.
		if e, ok := ret.(interface{ errMsg() string }); ok && e.errMsg() != "" {
			return d.pluginError(e.errMsg())
		}
		return nil
	case errors.As(err, &u):
		return &plugins.Error{Kind: plugins.ErrUnavailable, Msg: fmt.Sprintf(
			"docker volume plugin %q is not running (%s): %v", d.name, c.addr, u.err)}
	case errors.As(err, &h) && h.status == 404 && !h.err:
		return plugins.Unsupported("docker volume plugin %q does not implement %s", d.name, method)
	case errors.As(err, &h):
		return d.pluginError(h.msg)
	case errors.As(err, &bad):
		return fmt.Errorf("docker volume plugin %q: %s: %w", d.name, method, err)
	case parent.Err() != nil:
		return fmt.Errorf("docker volume plugin %q: %s: %w", d.name, method, parent.Err())
	case ctx.Err() != nil:
		return fmt.Errorf("docker volume plugin %q: %s: no answer within %s: %w", d.name, method, timeout, context.DeadlineExceeded)
	default:
		// The connection broke under the call: the plugin died in it.
		return &plugins.Error{Kind: plugins.ErrUnavailable, Msg: fmt.Sprintf(
			"docker volume plugin %q: %s: the plugin went away during the call: %v", d.name, method, err)}
	}
}

// notFound are the phrases with which plugins say that a volume does not
// exist ("no such volume", rclone's "volume not found", …).
var notFound = []string{"not found", "no such", "not exist", "doesn't exist", "unknown volume"}

// inUse are those of a volume that is busy.
var inUse = []string{"in use", "busy"}

// pluginError is the plugin's message as an error of the kind it
// describes, prefixed by the driver's name.
func (d *Driver) pluginError(msg string) error {
	low := strings.ToLower(msg)
	for _, p := range notFound {
		if strings.Contains(low, p) {
			return plugins.NotFound("%s: %s", d.name, msg)
		}
	}
	for _, p := range inUse {
		if strings.Contains(low, p) {
			return plugins.InUse("%s: %s", d.name, msg)
		}
	}
	return fmt.Errorf("%s: %s", d.name, msg)
}

// errResponse is the Err field every answer has.
type errResponse struct{ Err string }

func (e *errResponse) errMsg() string { return e.Err }

// volume is a volume as the protocol carries it.
type volume struct {
	Name       string
	Mountpoint string
	CreatedAt  string
	Status     map[string]any
}

func (v *volume) proto() *volumev1.Volume {
	out := &volumev1.Volume{Name: v.Name, Mountpoint: v.Mountpoint, CreatedAt: v.CreatedAt}
	if len(v.Status) > 0 {
		out.Status = map[string]string{}
		for k, s := range v.Status {
			if str, ok := s.(string); ok {
				out.Status[k] = str
				continue
			}
			b, _ := json.Marshal(s)
			out.Status[k] = string(b)
		}
	}
	return out
}

// Capabilities is the plugin's scope, "local" or "global".
func (d *Driver) Capabilities(ctx context.Context) (*volumev1.CapabilitiesResponse, error) {
	var r struct {
		errResponse
		Capabilities struct{ Scope string }
	}
	err := d.call(ctx, "VolumeDriver.Capabilities", struct{}{}, &r, shortTimeout)
	if errors.Is(err, plugins.ErrUnavailable) {
		return nil, err
	}
	// As Docker: Capabilities is optional (1.12) and any failure means a
	// local driver.
	scope := strings.ToLower(r.Capabilities.Scope)
	if err != nil || (scope != "local" && scope != "global") {
		if err != nil || scope != "" {
			d.log.Debug("capabilities: taken as local scope", "scope", r.Capabilities.Scope, "error", err)
		}
		scope = "local"
	}
	return &volumev1.CapabilitiesResponse{Scope: scope}, nil
}

// Create creates the volume unless the plugin has it already: Docker
// asks Get first too, and strict plugins refuse to create a volume twice.
func (d *Driver) Create(ctx context.Context, req *volumev1.CreateRequest) (*volumev1.Volume, error) {
	name := req.GetName()
	if err := checkName(name); err != nil {
		return nil, err
	}
	defer d.lock(name)()
	v, err := d.get(ctx, name)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, plugins.ErrNotFound) && !errors.Is(err, plugins.ErrUnsupported) {
		return nil, err
	}
	var r errResponse
	args := struct {
		Name string
		Opts map[string]string
	}{name, req.GetOptions()}
	if args.Opts == nil {
		args.Opts = map[string]string{}
	}
	if err := d.call(ctx, "VolumeDriver.Create", args, &r, longTimeout); err != nil {
		// Made meanwhile by someone else: it is there as it is.
		if !errors.Is(err, plugins.ErrNotFound) && strings.Contains(strings.ToLower(err.Error()), "exist") {
			if v, gerr := d.get(ctx, name); gerr == nil {
				return v, nil
			}
		}
		return nil, err
	}
	err = d.update(name, func(rec *record) bool {
		*rec = record{Labels: req.GetLabels(), Options: req.GetOptions(), CreatedAt: time.Now().UTC().Format(time.RFC3339)}
		return true
	})
	if err != nil {
		return nil, err
	}
	v, err = d.get(ctx, name)
	if errors.Is(err, plugins.ErrUnsupported) {
		// A plugin older than Docker 1.10 has no Get.
		v, err = d.merge(&volume{Name: name}), nil
	}
	return v, err
}

// Remove removes the volume unless a mount ID holds it.
func (d *Driver) Remove(ctx context.Context, req *volumev1.RemoveRequest) error {
	name := req.GetName()
	if err := checkName(name); err != nil {
		return err
	}
	defer d.lock(name)()
	d.mu.Lock()
	var n int
	if rec := d.vols[name]; rec != nil {
		n = len(rec.Mounts)
	}
	d.mu.Unlock()
	if n > 0 {
		return plugins.InUse("%s: volume %q is in use: mounted %d times", d.name, name, n)
	}
	var r errResponse
	err := d.call(ctx, "VolumeDriver.Remove", struct{ Name string }{name}, &r, longTimeout)
	if err == nil || errors.Is(err, plugins.ErrNotFound) {
		if uerr := d.update(name, func(*record) bool { return false }); err == nil {
			err = uerr
		}
	}
	return err
}

// holds says whether the mount ID holds the volume.
func (d *Driver) holds(name, id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	rec := d.vols[name]
	return rec != nil && slices.Contains(rec.Mounts, id)
}

// Mount mounts the volume for the mount ID. An ID that holds the volume
// already gets its path again (from Path; a plugin that has forgotten the
// mount, having restarted, is asked to mount again).
func (d *Driver) Mount(ctx context.Context, req *volumev1.MountRequest) (string, error) {
	name, id := req.GetName(), req.GetMountId()
	if err := checkName(name); err != nil {
		return "", err
	}
	defer d.lock(name)()
	if d.holds(name, id) {
		var r struct {
			errResponse
			Mountpoint string
		}
		if err := d.call(ctx, "VolumeDriver.Path", struct{ Name string }{name}, &r, shortTimeout); err != nil {
			return "", err
		}
		if r.Mountpoint != "" {
			return r.Mountpoint, nil
		}
	}
	var r struct {
		errResponse
		Mountpoint string
	}
	args := struct{ Name, ID string }{name, id}
	if err := d.call(ctx, "VolumeDriver.Mount", args, &r, longTimeout); err != nil {
		return "", err
	}
	if !filepath.IsAbs(r.Mountpoint) {
		d.unmountQuietly(name, id)
		return "", fmt.Errorf("%s: Mount of volume %q answered %q, not an absolute path", d.name, name, r.Mountpoint)
	}
	err := d.update(name, func(rec *record) bool {
		if !slices.Contains(rec.Mounts, id) {
			rec.Mounts = append(rec.Mounts, id)
		}
		return true
	})
	if err != nil {
		d.unmountQuietly(name, id)
		return "", err
	}
	return r.Mountpoint, nil
}

// unmountQuietly undoes a Mount that cannot be used.
func (d *Driver) unmountQuietly(name, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	var r errResponse
	if err := d.call(ctx, "VolumeDriver.Unmount", struct{ Name, ID string }{name, id}, &r, shortTimeout); err != nil {
		d.log.Warn("unmount after a failed mount", "volume", name, "id", id, "error", err)
	}
}

// Unmount releases the mount ID's hold. The plugin is told only of IDs
// that hold the volume; one that says the volume or the mount is gone
// has released it.
func (d *Driver) Unmount(ctx context.Context, req *volumev1.UnmountRequest) error {
	name, id := req.GetName(), req.GetMountId()
	if checkName(name) != nil {
		return nil // never mounted
	}
	defer d.lock(name)()
	if !d.holds(name, id) {
		return nil
	}
	var r errResponse
	err := d.call(ctx, "VolumeDriver.Unmount", struct{ Name, ID string }{name, id}, &r, shortTimeout)
	if err != nil && !errors.Is(err, plugins.ErrNotFound) && !strings.Contains(strings.ToLower(err.Error()), "not mounted") {
		return err
	}
	if err != nil {
		d.log.Info("unmount: the plugin holds no such mount", "volume", name, "id", id, "error", err)
	}
	return d.update(name, func(rec *record) bool {
		rec.Mounts = slices.DeleteFunc(rec.Mounts, func(m string) bool { return m == id })
		return true
	})
}

// update changes the volume's record — change returns false to drop it —
// and saves the records; on failure memory stays as the disk has it.
func (d *Driver) update(name string, change func(*record) bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.vols[name]
	rec := &record{}
	if old != nil {
		c := *old
		c.Mounts = slices.Clone(old.Mounts)
		rec = &c
	}
	if change(rec) && (len(rec.Labels) > 0 || len(rec.Options) > 0 || rec.CreatedAt != "" || len(rec.Mounts) > 0) {
		d.vols[name] = rec
	} else {
		delete(d.vols, name)
	}
	if d.stateFile == "" {
		return nil
	}
	data, err := json.MarshalIndent(d.vols, "", "\t")
	if err == nil {
		err = atomicfile.Write(d.stateFile, data)
	}
	if err != nil {
		if old != nil {
			d.vols[name] = old
		} else {
			delete(d.vols, name)
		}
		return fmt.Errorf("%s: save volume records: %w", d.name, err)
	}
	return nil
}

// merge is the plugin's volume with what the adapter keeps of it.
func (d *Driver) merge(v *volume) *volumev1.Volume {
	out := v.proto()
	d.mu.Lock()
	defer d.mu.Unlock()
	if rec := d.vols[v.Name]; rec != nil {
		out.Labels, out.Options = rec.Labels, rec.Options
		if out.CreatedAt == "" {
			out.CreatedAt = rec.CreatedAt
		}
	}
	return out
}

// Get is the plugin's volume, with the adapter's records of it.
func (d *Driver) Get(ctx context.Context, req *volumev1.GetRequest) (*volumev1.Volume, error) {
	if err := checkName(req.GetName()); err != nil {
		return nil, err
	}
	return d.get(ctx, req.GetName())
}

func (d *Driver) get(ctx context.Context, name string) (*volumev1.Volume, error) {
	var r struct {
		errResponse
		Volume *volume
	}
	if err := d.call(ctx, "VolumeDriver.Get", struct{ Name string }{name}, &r, shortTimeout); err != nil {
		return nil, err
	}
	if r.Volume == nil || r.Volume.Name == "" {
		return nil, plugins.NotFound("%s: no such volume: %s", d.name, name)
	}
	return d.merge(r.Volume), nil
}

// List is the plugin's volumes, with the adapter's records of them.
func (d *Driver) List(ctx context.Context) ([]*volumev1.Volume, error) {
	var r struct {
		errResponse
		Volumes []*volume
	}
	if err := d.call(ctx, "VolumeDriver.List", struct{}{}, &r, shortTimeout); err != nil {
		return nil, err
	}
	out := make([]*volumev1.Volume, 0, len(r.Volumes))
	for _, v := range r.Volumes {
		if v != nil && v.Name != "" {
			out = append(out, d.merge(v))
		}
	}
	return out, nil
}
