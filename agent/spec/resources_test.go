package spec

import (
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestResources(t *testing.T) {
	bad := []struct {
		res  container.Resources
		want string
	}{
		{container.Resources{Memory: 1024}, "Minimum memory limit allowed is 6MB"},
		{container.Resources{NanoCPUs: -1e9}, "Range of CPUs is from 0.01"},
		{container.Resources{CpusetCpus: "99"}, "Requested CPUs are not available"},
		{container.Resources{CpusetCpus: "a-b"}, "Invalid value a-b for cpuset cpus"},
		{container.Resources{MemorySwap: 64 << 20}, "always set the Memory limit"},
		{container.Resources{Memory: 64 << 20, MemorySwap: 32 << 20}, "memoryswap limit should be larger"},
		{container.Resources{BlkioWeight: 5}, "Range of blkio weight"},
		{container.Resources{NanoCPUs: 5e8, CPUQuota: 50000}, "Conflicting options"},
		{container.Resources{Ulimits: []*container.Ulimit{{Name: "nofiles", Soft: 1, Hard: 1}}}, "invalid ulimit type: nofiles"},
	}
	for _, c := range bad {
		_, err := Resources(&container.HostConfig{Resources: c.res})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.res, err, c.want)
		}
	}
	pids := int64(20)
	r, err := Resources(&container.HostConfig{Resources: container.Resources{Memory: 32 << 20, NanoCPUs: 5e8, PidsLimit: &pids, CPUShares: 512}})
	if err != nil {
		t.Fatal(err)
	}
	if *r.Memory.Limit != 32<<20 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || *r.Pids.Limit != 20 || *r.CPU.Shares != 512 {
		t.Errorf("resources %+v %+v", r.Memory, r.CPU)
	}
	if r.BlockIO != nil {
		t.Errorf("block I/O limits from none: %+v", r.BlockIO)
	}
}
