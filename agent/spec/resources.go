package spec

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/sys/userns"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// minMemory is Docker's smallest memory limit and reservation.
const minMemory = 6 << 20

// Resources checks the container's limits as Docker does and returns
// them as OCI resources (nil fields: not limited). It does not say
// whether the host can apply them: agent/cgroup does.
func Resources(h *container.HostConfig) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	if h == nil {
		return r, nil
	}
	res := h.Resources
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	switch {
	case res.Memory < 0:
		return nil, bad("invalid memory limit %d: must not be negative", res.Memory)
	case res.Memory > 0 && res.Memory < minMemory:
		return nil, bad("Minimum memory limit allowed is 6MB")
	case res.MemorySwap > 0 && res.Memory == 0:
		return nil, bad("You should always set the Memory limit when using Memoryswap limit, see usage")
	case res.MemorySwap > 0 && res.MemorySwap < res.Memory:
		return nil, bad("Minimum memoryswap limit should be larger than memory limit, see usage")
	case res.MemoryReservation < 0 || (res.MemoryReservation > 0 && res.MemoryReservation < minMemory):
		return nil, bad("Minimum memory reservation allowed is 6MB")
	case res.Memory > 0 && res.MemoryReservation > 0 && res.Memory < res.MemoryReservation:
		return nil, bad("Minimum memory limit can not be less than memory reservation limit, see usage")
	case res.MemorySwappiness != nil && (*res.MemorySwappiness < -1 || *res.MemorySwappiness > 100):
		return nil, bad("Invalid value: %d, valid memory swappiness range is 0-100", *res.MemorySwappiness)
	}
	mem := &specs.LinuxMemory{}
	memSet := false
	if res.Memory > 0 {
		mem.Limit, memSet = &res.Memory, true
	}
	if res.MemorySwap != 0 {
		mem.Swap, memSet = &res.MemorySwap, true
	}
	if res.MemoryReservation > 0 {
		mem.Reservation, memSet = &res.MemoryReservation, true
	}
	if res.OomKillDisable != nil && *res.OomKillDisable {
		mem.DisableOOMKiller, memSet = res.OomKillDisable, true
	}
	if res.MemorySwappiness != nil && *res.MemorySwappiness >= 0 {
		v := uint64(*res.MemorySwappiness)
		mem.Swappiness, memSet = &v, true
	}
	if memSet {
		r.Memory = mem
	}

	ncpu := int64(runtime.NumCPU())
	switch {
	case res.NanoCPUs != 0 && (res.CPUPeriod != 0 || res.CPUQuota != 0):
		return nil, bad("Conflicting options: Nano CPUs and CPU Period or CPU Quota cannot both be set")
	case res.NanoCPUs < 0 || res.NanoCPUs > ncpu*1e9 || (res.NanoCPUs > 0 && res.NanoCPUs < 1e7):
		return nil, bad("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available (--cpus %s)", ncpu, ncpu, strconv.FormatFloat(float64(res.NanoCPUs)/1e9, 'f', -1, 64))
	case res.CPUPeriod != 0 && (res.CPUPeriod < 1000 || res.CPUPeriod > 1000000):
		return nil, bad("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	case res.CPUQuota != 0 && res.CPUQuota != -1 && res.CPUQuota < 1000:
		return nil, bad("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	case res.CPUShares < 0:
		return nil, bad("invalid CPU shares %d: must not be negative", res.CPUShares)
	}
	cpu := &specs.LinuxCPU{}
	cpuSet := false
	if res.CPUShares > 0 {
		v := uint64(max(res.CPUShares, 2))
		cpu.Shares, cpuSet = &v, true
	}
	if res.NanoCPUs > 0 {
		period := uint64(100000)
		quota := res.NanoCPUs * int64(period) / 1e9
		cpu.Period, cpu.Quota, cpuSet = &period, &quota, true
	}
	if res.CPUPeriod > 0 {
		v := uint64(res.CPUPeriod)
		cpu.Period, cpuSet = &v, true
	}
	if res.CPUQuota != 0 {
		v := res.CPUQuota
		cpu.Quota, cpuSet = &v, true
	}
	if res.CpusetCpus != "" {
		if err := checkSet(res.CpusetCpus, "/sys/devices/system/cpu/online", "CPUs", "cpus"); err != nil {
			return nil, err
		}
		cpu.Cpus, cpuSet = res.CpusetCpus, true
	}
	if res.CpusetMems != "" {
		if err := checkSet(res.CpusetMems, "/sys/devices/system/node/online", "memory nodes", "mems"); err != nil {
			return nil, err
		}
		cpu.Mems, cpuSet = res.CpusetMems, true
	}
	if cpuSet {
		r.CPU = cpu
	}

	if res.PidsLimit != nil && *res.PidsLimit > 0 {
		v := *res.PidsLimit
		r.Pids = &specs.LinuxPids{Limit: &v}
	}

	blk := &specs.LinuxBlockIO{}
	blkSet := false
	if res.BlkioWeight != 0 {
		if res.BlkioWeight < 10 || res.BlkioWeight > 1000 {
			return nil, bad("Range of blkio weight is from 10 to 1000")
		}
		v := res.BlkioWeight
		blk.Weight, blkSet = &v, true
	}
	for _, t := range []struct {
		flag string
		in   []*blkioDevice
		out  *[]specs.LinuxThrottleDevice
	}{
		{"--device-read-bps", devices(res.BlkioDeviceReadBps), &blk.ThrottleReadBpsDevice},
		{"--device-write-bps", devices(res.BlkioDeviceWriteBps), &blk.ThrottleWriteBpsDevice},
	} {
		for _, d := range t.in {
			var st unix.Stat_t
			if err := unix.Stat(d.path, &st); err != nil {
				return nil, bad("%s %s: %v", t.flag, d.path, err)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFBLK {
				return nil, bad("%s %s: not a block device", t.flag, d.path)
			}
			td := specs.LinuxThrottleDevice{Rate: d.rate}
			td.Major, td.Minor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
			*t.out, blkSet = append(*t.out, td), true
		}
	}
	if blkSet {
		r.BlockIO = blk
	}
	if h.ShmSize < 0 {
		return nil, bad("SHM size can not be less than 0")
	}
	if _, err := Rlimits(res.Ulimits); err != nil {
		return nil, err
	}
	return r, nil
}

type blkioDevice struct {
	path string
	rate uint64
}

func devices(list []*blkiodev.ThrottleDevice) []*blkioDevice {
	var out []*blkioDevice
	for _, d := range list {
		if d != nil {
			out = append(out, &blkioDevice{path: d.Path, rate: d.Rate})
		}
	}
	return out
}

// RlimitTypes are the kernel's resources of the spec's process limits;
// the --ulimit names Docker takes are theirs in lower case, without RLIMIT_.
var RlimitTypes = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// Rlimits returns the process limits of --ulimit. In a user namespace
// (rootless) a hard limit cannot go above the caller's own: that is an
// error here, before the start.
func Rlimits(list []*container.Ulimit) ([]specs.POSIXRlimit, error) {
	out := []specs.POSIXRlimit{}
	for _, u := range list {
		if u == nil {
			continue
		}
		t := "RLIMIT_" + strings.ToUpper(u.Name)
		if _, ok := RlimitTypes[t]; !ok {
			return nil, fmt.Errorf("%w: invalid ulimit type: %s", ErrInvalid, u.Name)
		}
		if u.Soft > u.Hard && u.Hard != -1 {
			return nil, fmt.Errorf("%w: ulimit soft limit must be less than hard limit: %d > %d", ErrInvalid, u.Soft, u.Hard)
		}
		r := specs.POSIXRlimit{Type: t, Soft: uint64(u.Soft), Hard: uint64(u.Hard)}
		var own unix.Rlimit
		if userns.RunningInUserNS() && unix.Getrlimit(RlimitTypes[t], &own) == nil && r.Hard > own.Max {
			return nil, fmt.Errorf("%w: --ulimit %s: the hard limit %s is above the user's own (%s), which a rootless container cannot raise; ask for a higher limit (/etc/security/limits.conf) or use at most %s",
				ErrInvalid, u.Name, rlimitString(r.Hard), rlimitString(own.Max), rlimitString(own.Max))
		}
		out = append(out, r)
	}
	return out, nil
}

func rlimitString(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// checkSet checks a cpuset list ("0-2,4") against the host's online list.
func checkSet(want, onlineFile, what, key string) error {
	req, err := parseSet(want)
	if err != nil {
		return fmt.Errorf("%w: Invalid value %s for cpuset %s", ErrInvalid, want, key)
	}
	b, err := os.ReadFile(onlineFile)
	if err != nil {
		return nil // no such information: the kernel decides
	}
	online := strings.TrimSpace(string(b))
	have, err := parseSet(online)
	if err != nil {
		return nil
	}
	for n := range req {
		if !have[n] {
			return fmt.Errorf("%w: Requested %s are not available - requested %s, available: %s", ErrInvalid, what, want, online)
		}
	}
	return nil
}

func parseSet(s string) (map[int]bool, error) {
	out := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad cpuset %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad cpuset %q", s)
			}
		}
		if b-a > 1<<16 {
			return nil, fmt.Errorf("bad cpuset %q", s)
		}
		for i := a; i <= b; i++ {
			out[i] = true
		}
	}
	return out, nil
}
