// Package localvol is Moss's built-in "local" volume driver: named volumes
// as directories under the user's data directory, optionally mounted
// (tmpfs, bind) with the options of Docker's local driver. It implements
// plugins.VolumeDriver, runs as a plugin process (`moss __plugin
// volumedriver local`, Main) and passes plugins/volumetest. It owns the
// volumes' directory and nothing else: bind mounts and tmpfs given to
// `run` are the agent's.
//
// # Where it runs
//
// Under rootlesskit the plugin is root of the rootless user namespace, in
// the mount namespace the agent and the containers' runtime share: what it
// mounts on a volume the agent sees and bind-mounts into containers. A
// user namespace may mount tmpfs and bind mounts; most other file systems
// (ext4, nfs, …) the kernel refuses there with EPERM, which Create reports
// as an Unsupported error that says so.
//
// # Layout
//
// As Docker's: the volumes' root is ConfigureRequest.Options["root"] (the
// agent passes ~/.local/share/moss/volumes), else the plugin's StateDir.
// Volume NAME is ROOT/NAME: its data is ROOT/NAME/_data, its options,
// labels and creation time are ROOT/NAME/opts.json (written atomically and
// synced), the mount ids that hold it empty files in ROOT/NAME/mounts/.
// Create builds a volume in ROOT/.create-NAME-* and renames
// it into place; Remove renames it to ROOT/.remove-NAME-* and deletes
// that: a crash leaves either the whole volume or none, and Configure
// clears what a crash left behind. Names are Docker's:
// [a-zA-Z0-9][a-zA-Z0-9_.-]+ (two characters at least).
//
// # Options
//
// None: the volume is a plain directory. Otherwise those of Docker's local
// driver, with the same rules — type and device go together, o needs
// device:
//
//	type=tmpfs device=tmpfs o=size=64m,mode=0750   a tmpfs, empty at each first Mount
//	type=none device=/host/dir o=bind              a bind mount of a host directory
//
// o holds mount(8) options: flags (ro, nosuid, nodev, noexec, bind, rbind,
// noatime, private, …) become mount(2) flags, the rest the file system's
// data. A read-only bind mount is remounted read-only, keeping the flags
// the kernel locks in a user namespace. Create checks the options and
// mounts the volume once to try them: a volume that Create accepted
// mounts. size (a quota) is not supported; other keys are Invalid. Create
// of an existing name returns the existing volume whatever its options, as
// Docker does.
//
// # Mounts
//
// A volume with options is mounted on its _data at its first Mount and
// unmounted at its last Unmount; mounts are counted by mount_id. Counts
// persist: a restarted plugin carries on with them. On a restart (Configure)
// a volume whose mount ids are kept but whose _data is no longer mounted
// lost its mount with the mount namespace (the machine or the user
// namespace's holder restarted, and its containers with it): its mount ids
// are forgotten. A mount left without mount ids (a crash between the two)
// is unmounted. The driver cannot tell a mount id of a container that is
// gone from a live one: the agent releases those of containers that no
// longer run (after a reboot, say).
//
// Remove refuses a volume that a mount id holds (InUse). It deletes the
// whole directory, files of every ID in the user namespace included, after
// unmounting what is still mounted under it: it never deletes through a
// mount into a bind mount's source.
package localvol

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/moss-containers/moss/plugins"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
)

// Name is the driver's name.
const Name = "local"

// OptionRoot is the Configure option that names the volumes' root
// directory; without it the volumes live in the plugin's StateDir.
const OptionRoot = "root"

// Version is the driver's version (the binary's, set by make build).
var Version = "dev"

// Main runs the driver (`moss __plugin volumedriver local` passes
// args = ["local"]) until the agent ends it.
func Main(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: moss __plugin volumedriver local")
		return 2
	}
	if args[0] != Name {
		fmt.Fprintf(os.Stderr, "no built-in volume driver %q\n", args[0])
		return 2
	}
	plugins.Serve(New(Version, plugins.Logger()))
	return 0
}

// Driver is the local volume driver. Its methods may be called
// concurrently.
type Driver struct {
	version string
	log     hclog.Logger

	// createMu serializes Creates, which take long (a trial mount, two
	// fsyncs) without holding mu, so that Mounts of other volumes need not
	// wait for them.
	createMu sync.Mutex

	mu   sync.Mutex
	root string             // resolved, absolute; "" until Configure
	vols map[string]*volume // by name
}

// volume is one volume as the driver keeps it. Its name, directory,
// metadata and mount spec do not change after Create; mu guards the rest.
type volume struct {
	name string
	dir  string // ROOT/NAME
	meta meta
	spec *mountSpec // nil for a plain directory

	mu      sync.Mutex
	mounts  map[string]bool // mount ids that hold it
	removed bool
}

func (v *volume) data() string { return filepath.Join(v.dir, dataDir) }

func (v *volume) proto() *volumev1.Volume {
	return &volumev1.Volume{
		Name:       v.name,
		Mountpoint: v.data(),
		CreatedAt:  v.meta.CreatedAt,
		Labels:     v.meta.Labels,
		Options:    v.meta.Options,
	}
}

// New returns an unconfigured driver that logs to log (nil: nowhere).
func New(version string, log hclog.Logger) *Driver {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Driver{version: version, log: log}
}

// Info names the driver.
func (d *Driver) Info(context.Context) (*basev1.InfoResponse, error) {
	return &basev1.InfoResponse{Name: Name, Kind: plugins.KindVolume, Version: d.version}, nil
}

// Capabilities: the volumes are this machine's.
func (d *Driver) Capabilities(context.Context) (*volumev1.CapabilitiesResponse, error) {
	return &volumev1.CapabilitiesResponse{Scope: "local"}, nil
}

// Configure sets the volumes' root (Options["root"], else StateDir),
// clears what a crash left there, loads the volumes and reconciles their
// mounts with the kernel's (see the package doc).
func (d *Driver) Configure(_ context.Context, req *basev1.ConfigureRequest) error {
	root := req.GetOptions()[OptionRoot]
	if root == "" {
		root = req.GetStateDir()
	}
	if root == "" {
		return plugins.Invalid("local volume driver: no state directory and no %q option", OptionRoot)
	}
	if !filepath.IsAbs(root) {
		return plugins.Invalid("local volume driver: option %q: %q is not an absolute path", OptionRoot, root)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("local volume driver: %w", err)
	}
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("local volume driver: %w", err)
	}
	vols, err := d.load(root)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.root, d.vols = root, vols
	d.mu.Unlock()
	d.log.Debug("configured", "root", root, "volumes", len(vols))
	return nil
}

// nameRE is Docker's pattern for local volume names.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func validName(name string) error {
	if name == "" {
		return plugins.Invalid("a volume needs a name")
	}
	if !nameRE.MatchString(name) {
		return plugins.Invalid(`%q includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, name)
	}
	return nil
}

// lookup finds a volume by name.
func (d *Driver) lookup(name string) (*volume, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookupLocked(name)
}

func (d *Driver) lookupLocked(name string) (*volume, error) {
	if d.vols == nil {
		return nil, errors.New("local volume driver: not configured")
	}
	v, ok := d.vols[name]
	if !ok {
		return nil, plugins.NotFound("no such volume: %s", name)
	}
	return v, nil
}

// Create makes a volume, or returns the existing one of that name as it
// is (whatever options and labels it was created with).
func (d *Driver) Create(_ context.Context, req *volumev1.CreateRequest) (*volumev1.Volume, error) {
	name := req.GetName()
	if err := validName(name); err != nil {
		return nil, err
	}
	d.createMu.Lock()
	defer d.createMu.Unlock()
	d.mu.Lock()
	root, vols := d.root, d.vols
	v, ok := vols[name]
	d.mu.Unlock()
	if vols == nil {
		return nil, errors.New("local volume driver: not configured")
	}
	if ok {
		return v.proto(), nil
	}
	spec, err := parseOptions(req.GetOptions())
	if err != nil {
		return nil, err
	}
	if err := spec.checkDevice(); err != nil {
		return nil, err
	}
	v = &volume{
		name: name,
		dir:  filepath.Join(root, name),
		meta: meta{
			CreatedAt: time.Now().Format(time.RFC3339),
			Options:   copyMap(req.GetOptions()),
			Labels:    copyMap(req.GetLabels()),
		},
		spec:   spec,
		mounts: map[string]bool{},
	}
	if err := d.createDir(root, v); err != nil {
		return nil, fmt.Errorf("create volume %q: %w", name, err)
	}
	d.mu.Lock()
	vols[name] = v
	d.mu.Unlock()
	d.log.Debug("created", "volume", name, "options", v.meta.Options)
	return v.proto(), nil
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Remove deletes a volume that no mount id holds, and all its data.
func (d *Driver) Remove(_ context.Context, req *volumev1.RemoveRequest) error {
	name := req.GetName()
	if err := validName(name); err != nil {
		return err
	}
	d.mu.Lock()
	v, err := d.lookupLocked(name)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	v.mu.Lock()
	if n := len(v.mounts); n > 0 {
		v.mu.Unlock()
		d.mu.Unlock()
		return plugins.InUse("remove volume %s: volume is in use (mounted %d times)", name, n)
	}
	trash, err := d.detach(v)
	if err == nil {
		v.removed = true
		delete(d.vols, name)
	}
	v.mu.Unlock()
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	// Deleting may take long: no lock is held.
	if err := os.RemoveAll(trash); err != nil {
		d.log.Error("volume removed, but not all of its files", "volume", name, "dir", trash, "error", err)
		return fmt.Errorf("remove volume %s: its files in %s: %w", name, trash, err)
	}
	d.log.Debug("removed", "volume", name)
	return nil
}

// Mount makes the volume available for mountID: the first mount id of a
// volume with options mounts it. It returns the volume's _data.
func (d *Driver) Mount(_ context.Context, req *volumev1.MountRequest) (string, error) {
	id := req.GetMountId()
	if id == "" {
		return "", plugins.Invalid("mount volume %s: no mount id", req.GetName())
	}
	if !checkMountID(id) {
		return "", plugins.Invalid("mount volume %s: mount id %q cannot be a file name", req.GetName(), id)
	}
	v, err := d.lookup(req.GetName())
	if err != nil {
		return "", err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.removed {
		return "", plugins.NotFound("no such volume: %s", v.name)
	}
	if v.mounts[id] {
		return v.data(), nil
	}
	mountedNow := false
	if len(v.mounts) == 0 && v.spec != nil {
		if mountedNow, err = v.spec.ensureMounted(v.name, v.data()); err != nil {
			return "", err
		}
	}
	if err := addMountID(v, id); err != nil {
		if mountedNow {
			_ = unmount(v.data())
		}
		return "", fmt.Errorf("mount volume %s: %w", v.name, err)
	}
	v.mounts[id] = true
	return v.data(), nil
}

// Unmount releases mountID's hold on the volume; the last one unmounts a
// volume with options. A mount id that holds nothing is no error.
func (d *Driver) Unmount(_ context.Context, req *volumev1.UnmountRequest) error {
	v, err := d.lookup(req.GetName())
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	id := req.GetMountId()
	if v.removed || !v.mounts[id] {
		return nil
	}
	if err := dropMountID(v, id); err != nil {
		return fmt.Errorf("unmount volume %s: %w", v.name, err)
	}
	delete(v.mounts, id)
	if len(v.mounts) == 0 && v.spec != nil {
		if err := unmount(v.data()); err != nil {
			return fmt.Errorf("unmount volume %s: %w", v.name, err)
		}
	}
	return nil
}

// Get returns a volume.
func (d *Driver) Get(_ context.Context, req *volumev1.GetRequest) (*volumev1.Volume, error) {
	v, err := d.lookup(req.GetName())
	if err != nil {
		return nil, err
	}
	return v.proto(), nil
}

// List returns every volume, by name.
func (d *Driver) List(context.Context) ([]*volumev1.Volume, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.vols == nil {
		return nil, errors.New("local volume driver: not configured")
	}
	names := make([]string, 0, len(d.vols))
	for name := range d.vols {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]*volumev1.Volume, 0, len(names))
	for _, name := range names {
		out = append(out, d.vols[name].proto())
	}
	return out, nil
}

// Prefixes of the directories a Create or Remove works in: never volume
// names, which start with a letter or digit.
const (
	createPrefix = ".create-"
	removePrefix = ".remove-"
)

func tempName(prefix, name string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + name + "-" + hex.EncodeToString(b)
}

// createDir builds the volume's directory beside its place and renames it
// there, after trying its mount.
func (d *Driver) createDir(root string, v *volume) (err error) {
	tmp := filepath.Join(root, tempName(createPrefix, v.name))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if cerr := removeTree(tmp); cerr != nil {
				d.log.Error("clean up after a failed create", "dir", tmp, "error", cerr)
			}
		}
	}()
	data := filepath.Join(tmp, dataDir)
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	if v.spec != nil {
		if _, err := v.spec.ensureMounted(v.name, data); err != nil {
			return err
		}
		if err := unmount(data); err != nil {
			return err
		}
	}
	if err := saveMeta(tmp, &v.meta); err != nil {
		return err
	}
	if err := os.Rename(tmp, v.dir); err != nil {
		if errors.Is(err, os.ErrExist) { // EEXIST or ENOTEMPTY
			return fmt.Errorf("%s exists and is not a volume of the local driver (it has no readable %s)", v.dir, metaFile)
		}
		return err
	}
	return syncDir(root)
}

// detach unmounts what is still mounted under the volume's directory and
// renames it out of the way; the caller deletes what it returns.
func (d *Driver) detach(v *volume) (string, error) {
	if err := unmountUnder(v.dir); err != nil {
		return "", err
	}
	trash := filepath.Join(d.root, tempName(removePrefix, v.name))
	if err := os.Rename(v.dir, trash); err != nil {
		return "", err
	}
	return trash, nil
}

// removeTree deletes dir after unmounting anything under it, so that
// the deletion never reaches into a mounted file system.
func removeTree(dir string) error {
	if err := unmountUnder(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// load reads the volumes under root and clears what an interrupted Create
// or Remove left. A volume whose files cannot be read is left alone and
// logged: one broken volume does not hide the others.
func (d *Driver) load(root string) (map[string]*volume, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("local volume driver: %w", err)
	}
	vols := map[string]*volume{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, createPrefix) || strings.HasPrefix(name, removePrefix) {
			if err := removeTree(filepath.Join(root, name)); err != nil {
				d.log.Error("clear an interrupted create or remove", "dir", filepath.Join(root, name), "error", err)
			} else {
				d.log.Info("cleared an interrupted create or remove", "dir", filepath.Join(root, name))
			}
			continue
		}
		if !e.IsDir() || validName(name) != nil {
			continue
		}
		v, err := d.loadVolume(root, name)
		if errors.Is(err, os.ErrNotExist) {
			d.log.Debug("not a volume: no "+metaFile, "dir", filepath.Join(root, name))
			continue
		}
		if err != nil {
			d.log.Error("volume ignored", "volume", name, "error", err)
			continue
		}
		d.reconcile(v)
		vols[name] = v
	}
	return vols, nil
}

// reconcile makes a volume's mount ids agree with the kernel's mounts.
func (d *Driver) reconcile(v *volume) {
	if v.spec == nil {
		return
	}
	mounted, err := isMounted(v.data())
	if err != nil {
		d.log.Warn("check whether a volume is mounted", "volume", v.name, "error", err)
		return
	}
	switch {
	case len(v.mounts) > 0 && !mounted:
		d.log.Warn("volume's mount was lost (its mount namespace ended): forgetting its mount ids", "volume", v.name, "mount_ids", len(v.mounts))
		v.mounts = map[string]bool{}
		if err := dropMountIDs(v); err != nil {
			d.log.Error("save a volume's mount ids", "volume", v.name, "error", err)
		}
	case len(v.mounts) == 0 && mounted:
		d.log.Info("unmounting a volume no mount id holds", "volume", v.name)
		if err := unmount(v.data()); err != nil {
			d.log.Error("unmount a volume no mount id holds", "volume", v.name, "error", err)
		}
	}
}
