// Package storage owns images and container root file systems: it wraps
// containers/storage (layers, overlay mounts) and containers/image (archive
// transports) for the agent. It must not know about running containers,
// only about their layers.
package storage

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	cstorage "go.podman.io/storage"
	"go.podman.io/storage/types"
	"golang.org/x/sys/unix"
)

// Error kinds; the API maps them to HTTP status codes.
var (
	ErrNotFound = errors.New("not found")
	ErrInUse    = errors.New("in use")
	ErrInvalid  = errors.New("invalid argument")
	ErrExists   = errors.New("already exists")
)

// kindError carries a user-facing message and a kind for errors.Is.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...interface{}) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Options configure a Store.
type Options struct {
	GraphRoot, RunRoot string
	// Driver is "overlay", "fuse-overlayfs" or "vfs"; empty tries them in
	// that order.
	Driver        string
	DriverOptions []string
	// IgnoreChownErrors is set with a single-ID mapping, where files owned
	// by other IDs cannot be created.
	IgnoreChownErrors bool
	// SearchRegistries resolve short names of stored images ("busybox"
	// finds REGISTRY/busybox:latest pulled from one of them), in order.
	SearchRegistries []string
	Logger           hclog.Logger
}

// Store holds images and container layers.
type Store struct {
	s      cstorage.Store
	driver string
	log    hclog.Logger

	search []string

	mu     sync.Mutex
	images map[string]*Image // parsed image cache by ID
}

var storageConfOnce sync.Once

// networkFS maps statfs magic numbers of file systems that cannot hold
// overlay layers to their names.
var networkFS = map[int64]string{
	0x6969:     "NFS",
	0x0BD00BD0: "Lustre",
	0xFF534D42: "CIFS",
	0xFE534D42: "SMB2",
	0x00C36400: "CephFS",
	0x47504653: "GPFS",
	0x19830326: "BeeGFS",
	0x65735546: "FUSE",
}

// FilesystemName names the file system holding path and tells whether it
// is a network file system.
func FilesystemName(path string) (string, bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "", false, err
	}
	if n, ok := networkFS[int64(st.Type)]; ok {
		return n, n != "FUSE", nil
	}
	names := map[int64]string{
		unix.EXT4_SUPER_MAGIC: "ext4", unix.XFS_SUPER_MAGIC: "xfs", unix.BTRFS_SUPER_MAGIC: "btrfs",
		unix.TMPFS_MAGIC: "tmpfs", unix.OVERLAYFS_SUPER_MAGIC: "overlay", 0x2fc12fc1: "zfs",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n, false, nil
	}
	return fmt.Sprintf("0x%x", st.Type), false, nil
}

// Open opens (creating if needed) the store.
func Open(o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	for _, d := range []string{o.GraphRoot, o.RunRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	if name, network, err := FilesystemName(o.GraphRoot); err == nil && network {
		return nil, fmt.Errorf("storage graph root %s is on %s, which cannot hold overlay layers: set storage.graph_root in ~/.config/moss/moss.toml to a local disk directory", o.GraphRoot, name)
	}
	candidates := []string{o.Driver}
	if o.Driver == "" {
		candidates = []string{"overlay", "fuse-overlayfs", "vfs"}
	}
	storageConfOnce.Do(ignoreStorageConf)
	var errs []string
	for _, drv := range candidates {
		s, eff, err := openDriver(o, drv)
		if err == nil {
			o.Logger.Debug("storage opened", "driver", eff, "graph_root", o.GraphRoot)
			return &Store{s: s, driver: eff, log: o.Logger, images: map[string]*Image{}, search: o.SearchRegistries}, nil
		}
		if errors.Is(err, ErrInvalid) {
			return nil, err
		}
		o.Logger.Debug("storage driver unusable", "driver", drv, "error", err)
		errs = append(errs, fmt.Sprintf("%s: %v", drv, err))
		if o.Driver != "" {
			break
		}
	}
	return nil, fmt.Errorf("no usable storage driver (%s); set storage.driver in ~/.config/moss/moss.toml", strings.Join(errs, "; "))
}

// fuseOverlayfs is where the fuse-overlayfs package installs its program.
const fuseOverlayfs = "/usr/bin/fuse-overlayfs"

func openDriver(o Options, drv string) (cstorage.Store, string, error) {
	name := drv
	var opts []string
	switch drv {
	case "overlay":
		opts = append(opts, "overlay.mountopt=nodev")
	case "fuse-overlayfs":
		bin := fuseOverlayfs
		if _, err := os.Stat(bin); err != nil {
			if bin, err = exec.LookPath("fuse-overlayfs"); err != nil {
				return nil, "", errors.New("fuse-overlayfs is not installed")
			}
		}
		name = "overlay"
		opts = append(opts, "overlay.mount_program="+bin, "overlay.mountopt=nodev")
	case "vfs":
	default:
		return nil, "", errorf(ErrInvalid, "unknown storage driver %q: use overlay, fuse-overlayfs or vfs", drv)
	}
	if o.IgnoreChownErrors {
		opts = append(opts, name+".ignore_chown_errors=true")
	}
	opts = append(opts, o.DriverOptions...)
	so := cstorage.StoreOptions{
		RunRoot: o.RunRoot, GraphRoot: o.GraphRoot, GraphDriverName: name, GraphDriverOptions: opts,
	}
	s, err := cstorage.GetStore(so)
	if err != nil {
		return nil, "", err
	}
	// GetStore initializes the driver lazily; make it probe now (the
	// overlay driver test-mounts overlayfs) so a failing driver is noticed
	// here and the next one tried.
	if _, err := s.GraphDriver(); err != nil {
		_, _ = s.Shutdown(true)
		return nil, "", err
	}
	// Without a mount_program the overlay driver quietly falls back to a
	// fuse-overlayfs it finds in $PATH when native overlay does not mount,
	// and records that in the graph root for good.
	if drv == "overlay" {
		if b, err := os.ReadFile(filepath.Join(o.GraphRoot, "overlay", ".has-mount-program")); err == nil && strings.TrimSpace(string(b)) == "true" {
			drv = "fuse-overlayfs"
		}
	}
	return s, drv, nil
}

// ignoreStorageConf makes containers/storage's one reading of its default
// options (storage.conf in /etc/containers, /usr/share/containers and
// ~/.config/containers) read an empty file instead: Moss passes every
// option explicitly, and a podman configuration, broken or not, must not
// change or break Moss's store.
func ignoreStorageConf() {
	const env = "CONTAINERS_STORAGE_CONF"
	if _, set := os.LookupEnv(env); set {
		_, _ = types.DefaultStoreOptions()
		return
	}
	_ = os.Setenv(env, os.DevNull)
	_, _ = types.DefaultStoreOptions() // cached for the process
	_ = os.Unsetenv(env)
}

// Driver is the effective driver's name.
func (s *Store) Driver() string {
	if s.driver == "fuse-overlayfs" {
		return "overlay (fuse-overlayfs)"
	}
	return s.driver
}

// GraphRoot is where layers live.
func (s *Store) GraphRoot() string { return s.s.GraphRoot() }

// RunRoot is where per-boot storage state lives.
func (s *Store) RunRoot() string { return s.s.RunRoot() }

// Shutdown releases the store. It unmounts nothing: containers outlive
// the agent, so layers still mounted for them are not an error.
func (s *Store) Shutdown() error {
	mounted, err := s.s.Shutdown(false)
	if errors.Is(err, cstorage.ErrLayerUsedByContainer) {
		s.log.Debug("storage shut down with layers still mounted", "layers", len(mounted))
		return nil
	}
	return err
}

// CreateContainer creates a writable layer for container id on imageID.
// A volatile one (for a container removed when it exits, as Podman does for
// --rm) has its metadata written without fsync: an unclean shutdown may
// lose it, which a container that ends with its run does not miss.
func (s *Store) CreateContainer(id, imageID string, volatile bool) error {
	_, err := s.s.CreateContainer(id, nil, imageID, "", "", &cstorage.ContainerOptions{Volatile: volatile})
	if errors.Is(err, cstorage.ErrDuplicateID) {
		return errorf(ErrExists, "container layer %s already exists", id)
	}
	if errors.Is(err, cstorage.ErrImageUnknown) {
		return errorf(ErrNotFound, "no such image: %s", imageID)
	}
	return err
}

// Mount mounts the container's root file system and returns its path.
// Mounts are counted: each Mount wants an Unmount, or a forced one.
func (s *Store) Mount(id string) (string, error) {
	p, err := s.s.Mount(id, "")
	if errors.Is(err, cstorage.ErrContainerUnknown) || errors.Is(err, cstorage.ErrLayerUnknown) {
		return "", errorf(ErrNotFound, "no such container layer: %s", id)
	}
	return p, err
}

// Unmount unmounts the container's root file system; force unmounts it
// however often it was mounted.
func (s *Store) Unmount(id string, force bool) error {
	_, err := s.s.Unmount(id, force)
	if errors.Is(err, cstorage.ErrContainerUnknown) || errors.Is(err, cstorage.ErrLayerUnknown) || errors.Is(err, cstorage.ErrLayerNotMounted) {
		return nil
	}
	return err
}

// DeleteContainer unmounts and deletes the container's layer.
func (s *Store) DeleteContainer(id string) error {
	err := s.s.DeleteContainer(id)
	if errors.Is(err, cstorage.ErrContainerUnknown) || errors.Is(err, cstorage.ErrNotAContainer) {
		return nil
	}
	return err
}

// ContainerDir is the storage's per-container directory, for the
// container's runtime files; it is removed with the container.
func (s *Store) ContainerDir(id string) (string, error) {
	d, err := s.s.ContainerDirectory(id)
	if errors.Is(err, cstorage.ErrContainerUnknown) {
		return "", errorf(ErrNotFound, "no such container layer: %s", id)
	}
	return d, err
}

// Change is one path a container's layer changed: Kind 0 modified, 1
// added, 2 deleted (Docker's numbers).
type Change struct {
	Path string
	Kind int
}

// Changes lists what the container's layer changed against its image.
func (s *Store) Changes(id string) ([]Change, error) {
	c, err := s.s.Container(id)
	if err != nil {
		return nil, errorf(ErrNotFound, "no such container layer: %s", id)
	}
	chs, err := s.s.Changes("", c.LayerID)
	if err != nil {
		return nil, err
	}
	out := make([]Change, 0, len(chs))
	for _, ch := range chs {
		out = append(out, Change{Path: ch.Path, Kind: int(ch.Kind)})
	}
	return out, nil
}

// ContainerIDs lists the IDs of all container layers.
func (s *Store) ContainerIDs() ([]string, error) {
	cs, err := s.s.Containers()
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// ContainerExists reports whether a container layer exists.
func (s *Store) ContainerExists(id string) bool { return s.s.Exists(id) }

// ContainerLayerData returns the driver's description of the container's
// layer (UpperDir, WorkDir, MergedDir, LowerDir for overlay).
func (s *Store) ContainerLayerData(id string) (map[string]string, error) {
	c, err := s.s.Container(id)
	if err != nil {
		return nil, errorf(ErrNotFound, "no such container layer: %s", id)
	}
	drv, err := s.s.GraphDriver()
	if err != nil {
		return nil, err
	}
	return drv.Metadata(c.LayerID)
}
