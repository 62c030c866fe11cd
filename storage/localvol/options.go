package localvol

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.podman.io/storage/pkg/mount"
	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/plugins"
)

// The options of the local driver, as Docker's.
const (
	optType   = "type"
	optDevice = "device"
	optO      = "o"
	optSize   = "size"
)

// required is Docker's: an option that needs others.
var required = map[string][]string{
	optType:   {optDevice},
	optDevice: {optType},
	optO:      {optDevice},
}

// mountSpec is how a volume with options is mounted on its _data.
type mountSpec struct {
	fstype string
	device string
	opts   string  // o, as given
	flags  uintptr // mount(2) flags but propagation
	// propagation is a propagation type (MS_PRIVATE, …, maybe with
	// MS_REC) set after the mount; 0 for none.
	propagation uintptr
	data        string // the file system's own options
	bind        bool
}

// propagationTypes are the o flags that set a mount's propagation;
// mount.ParseOptions folds them into the flags with the others.
var propagationTypes = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

const propagationFlags = unix.MS_PRIVATE | unix.MS_SHARED | unix.MS_SLAVE | unix.MS_UNBINDABLE

// parseOptions checks a Create's options and returns how to mount the
// volume: nil for a plain directory (no options).
func parseOptions(opts map[string]string) (*mountSpec, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case optType, optDevice, optO:
		case optSize:
			return nil, plugins.Unsupported("option %q is not supported by the local volume driver (it has no quotas); for a volume of limited size use -o type=tmpfs -o device=tmpfs -o o=size=SIZE", k)
		default:
			return nil, plugins.Invalid("invalid option %q for the local volume driver: its options are type, device and o", k)
		}
	}
	for _, k := range keys {
		for _, r := range required[k] {
			if _, ok := opts[r]; !ok {
				return nil, plugins.Invalid("missing required option: %q (option %q needs it)", r, k)
			}
		}
	}
	s := &mountSpec{fstype: opts[optType], device: opts[optDevice], opts: opts[optO]}
	if s.fstype == "" || s.device == "" {
		return nil, plugins.Invalid("options %q and %q of the local volume driver may not be empty", optType, optDevice)
	}
	var kept []string
	for _, o := range strings.Split(s.opts, ",") {
		switch o {
		case "", "defaults":
			continue
		case "remount":
			return nil, plugins.Invalid("mount option %q is not allowed for a volume", o)
		case "bind", "rbind":
			s.bind = true
			if o == "rbind" {
				s.flags |= unix.MS_REC
			}
		}
		if p, ok := propagationTypes[o]; ok {
			s.propagation = p
		}
		kept = append(kept, o)
	}
	flags, data := mount.ParseOptions(strings.Join(kept, ","))
	s.flags |= uintptr(flags) &^ (propagationFlags | unix.MS_REC)
	s.data = data
	if s.fstype == "none" && !s.bind {
		return nil, plugins.Invalid("a volume of type none is a bind mount: it needs o=bind (or rbind) and a host directory as device")
	}
	if s.bind && !filepath.IsAbs(s.device) {
		return nil, plugins.Invalid("a bind mount volume needs an absolute path as device, not %q", s.device)
	}
	return s, nil
}

// checkDevice checks at Create that a bind mount's device is a directory.
func (s *mountSpec) checkDevice() error {
	if s == nil || !s.bind {
		return nil
	}
	fi, err := os.Stat(s.device)
	if err != nil {
		return plugins.Invalid("device %q of a bind mount volume: %v", s.device, err)
	}
	if !fi.IsDir() {
		return plugins.Invalid("device %q of a bind mount volume is not a directory", s.device)
	}
	return nil
}
