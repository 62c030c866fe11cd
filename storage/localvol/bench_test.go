package localvol_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/moss-containers/moss/plugins"
	basev1 "github.com/moss-containers/moss/proto/base/v1"
	volumev1 "github.com/moss-containers/moss/proto/volume/v1"
	"github.com/moss-containers/moss/storage/localvol"
)

// BenchmarkMountUnmount is what each start and exit of a container with a
// plain-directory volume costs the driver, across gRPC as the agent calls.
func BenchmarkMountUnmount(b *testing.B) {
	d := localvol.New("bench", testLogger())
	c := plugins.TestVolumeClient(b, d)
	ctx := context.Background()
	root := b.TempDir()
	if err := c.Configure(ctx, &basev1.ConfigureRequest{StateDir: b.TempDir(), Options: map[string]string{localvol.OptionRoot: root}}); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Create(ctx, &volumev1.CreateRequest{Name: "bv"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := strconv.Itoa(i)
		if _, err := c.Mount(ctx, &volumev1.MountRequest{Name: "bv", MountId: id}); err != nil {
			b.Fatal(err)
		}
		if err := c.Unmount(ctx, &volumev1.UnmountRequest{Name: "bv", MountId: id}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet is a call that writes nothing: the cost of the round trip.
func BenchmarkGet(b *testing.B) {
	d := localvol.New("bench", testLogger())
	c := plugins.TestVolumeClient(b, d)
	ctx := context.Background()
	if err := c.Configure(ctx, &basev1.ConfigureRequest{StateDir: b.TempDir(), Options: map[string]string{localvol.OptionRoot: b.TempDir()}}); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Create(ctx, &volumev1.CreateRequest{Name: "bv"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Get(ctx, &volumev1.GetRequest{Name: "bv"}); err != nil {
			b.Fatal(err)
		}
	}
}
