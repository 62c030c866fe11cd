package localvol

import (
	"errors"
	"fmt"
	"sort"

	"github.com/moby/sys/mountinfo"
	"github.com/moby/sys/userns"
	"golang.org/x/sys/unix"

	"github.com/moss-containers/moss/plugins"
)

// bindRemountFlags are the flags that a bind mount takes only from a
// remount after it.
const bindRemountFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
	unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME

// ensureMounted mounts the volume on target unless something is mounted
// there already (a mount the driver made before a restart of its own);
// it reports whether it mounted.
func (s *mountSpec) ensureMounted(name, target string) (bool, error) {
	mounted, err := isMounted(target)
	if err != nil {
		return false, fmt.Errorf("volume %s: %w", name, err)
	}
	if mounted {
		return false, nil
	}
	if err := s.mount(target); err != nil {
		return false, s.mountError(name, err)
	}
	return true, nil
}

func (s *mountSpec) mount(target string) error {
	flags := s.flags
	if s.bind {
		flags &^= bindRemountFlags
	}
	if err := unix.Mount(s.device, target, s.fstype, flags, s.data); err != nil {
		return err
	}
	err := s.afterMount(target)
	if err != nil {
		_ = unmount(target)
	}
	return err
}

// afterMount applies what mount(2) does not in the same call: a bind
// mount's flags and the propagation type.
func (s *mountSpec) afterMount(target string) error {
	if s.bind && s.flags&bindRemountFlags != 0 {
		if err := remountBind(target, s.flags&bindRemountFlags); err != nil {
			return fmt.Errorf("remount: %w", err)
		}
	}
	if s.propagation != 0 {
		if err := unix.Mount("", target, "", s.propagation, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

// remountBind sets flags on a bind mount. In a user namespace the kernel
// refuses (EPERM) a remount that would clear a flag it locked on the
// source mount (nosuid, nodev, noexec, atime flags of a mount the
// namespace did not make): then it keeps those, as runc does.
func remountBind(target string, flags uintptr) error {
	err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|flags, "")
	if !errors.Is(err, unix.EPERM) {
		return err
	}
	var st unix.Statfs_t
	if serr := unix.Statfs(target, &st); serr != nil {
		return err
	}
	locked := uintptr(0)
	for _, f := range []struct{ st, ms uintptr }{
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(st.Flags)&f.st != 0 {
			locked |= f.ms
		}
	}
	if locked&(unix.MS_NOATIME|unix.MS_RELATIME) != 0 {
		flags &^= unix.MS_STRICTATIME | unix.MS_NOATIME | unix.MS_RELATIME
	}
	return unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|flags|locked, "")
}

// mountError says why a mount failed in the words of the volume's
// options, with the kind of error the agent maps to a status.
func (s *mountSpec) mountError(name string, err error) error {
	what := fmt.Sprintf("volume %s: mount type=%s device=%s o=%s", name, s.fstype, s.device, s.opts)
	switch {
	case errors.Is(err, unix.EPERM) && !s.bind && userns.RunningInUserNS():
		return plugins.Unsupported("%s: the kernel does not allow mounting %s in a user namespace, where rootless Moss runs; tmpfs (type=tmpfs device=tmpfs) and bind mounts (type=none o=bind device=/host/dir) work", what, s.fstype)
	case errors.Is(err, unix.ENODEV):
		return plugins.Invalid("%s: the kernel does not know file system type %q", what, s.fstype)
	case errors.Is(err, unix.ENOENT):
		return plugins.Invalid("%s: device %s does not exist", what, s.device)
	case errors.Is(err, unix.ENOTBLK):
		return plugins.Invalid("%s: device %s is not a block device", what, s.device)
	case errors.Is(err, unix.EINVAL):
		return plugins.Invalid("%s: the kernel refused the options: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// unmount detaches what is mounted on target; nothing mounted there is no
// error.
func unmount(target string) error {
	err := unix.Unmount(target, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) {
		return nil
	}
	return fmt.Errorf("unmount %s: %w", target, err)
}

// isMounted reports whether path is a mount point.
func isMounted(path string) (bool, error) {
	return mountinfo.Mounted(path)
}

// unmountUnder detaches every mount at or under dir, deepest first (and
// again for mounts stacked on one another), until none is left.
func unmountUnder(dir string) error {
	for round := 0; ; round++ {
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
		if err != nil || len(mounts) == 0 {
			return err
		}
		if round == maxUnmountRounds {
			return fmt.Errorf("%s is still mounted", mounts[0].Mountpoint)
		}
		sort.Slice(mounts, func(a, b int) bool { return len(mounts[a].Mountpoint) > len(mounts[b].Mountpoint) })
		for _, m := range mounts {
			if err := unmount(m.Mountpoint); err != nil {
				return err
			}
		}
	}
}

// maxUnmountRounds bounds unmountUnder: a mount the kernel does not let
// go of (a locked one, EINVAL) is an error, not a loop.
const maxUnmountRounds = 8
