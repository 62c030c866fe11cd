package plugins

import (
	"context"
	"errors"
	"fmt"
	"testing"

	basev1 "github.com/moss-containers/moss/proto/base/v1"
	networkv1 "github.com/moss-containers/moss/proto/network/v1"
)

// failing is a driver whose Connect fails with the error it is given.
type failing struct{ err error }

func (f *failing) Info(context.Context) (*basev1.InfoResponse, error) {
	return &basev1.InfoResponse{Name: "failing", Kind: KindNetwork}, nil
}
func (f *failing) Configure(context.Context, *basev1.ConfigureRequest) error { return nil }
func (f *failing) Capabilities(context.Context) (*networkv1.CapabilitiesResponse, error) {
	return &networkv1.CapabilitiesResponse{}, nil
}
func (f *failing) CreateNetwork(context.Context, *networkv1.CreateNetworkRequest) (*networkv1.CreateNetworkResponse, error) {
	return nil, f.err
}
func (f *failing) DeleteNetwork(context.Context, *networkv1.DeleteNetworkRequest) error { return f.err }
func (f *failing) Connect(context.Context, *networkv1.ConnectRequest) (*networkv1.ConnectResponse, error) {
	return nil, f.err
}
func (f *failing) Disconnect(context.Context, *networkv1.DisconnectRequest) error { return f.err }

// TestErrorKindsCrossGRPC: each kind arrives as itself with its message.
func TestErrorKindsCrossGRPC(t *testing.T) {
	for _, c := range []struct {
		err  error
		kind error
	}{
		{NotFound("network %s not found", "x"), ErrNotFound},
		{Exists("subnet overlaps %s", "y"), ErrExists},
		{Invalid("bad CIDR %q", "z"), ErrInvalid},
		{Unsupported("no IPv6"), ErrUnsupported},
		{InUse("volume v is mounted"), ErrInUse},
		{fmt.Errorf("wrapped: %w", NotFound("deep")), ErrNotFound},
		{errors.New("plain failure"), nil},
	} {
		d := &failing{err: c.err}
		client := TestNetworkClient(t, d)
		_, err := client.Connect(context.Background(), &networkv1.ConnectRequest{})
		if err == nil || err.Error() != c.err.Error() {
			t.Fatalf("%v arrived as %v", c.err, err)
		}
		for _, k := range []error{ErrNotFound, ErrExists, ErrInvalid, ErrUnsupported, ErrInUse, ErrUnavailable} {
			if got, want := errors.Is(err, k), k == c.kind; got != want {
				t.Errorf("%v: errors.Is(%v) = %v, want %v", c.err, k, got, want)
			}
		}
		if err := client.Disconnect(context.Background(), &networkv1.DisconnectRequest{}); !errors.Is(err, c.kind) && c.kind != nil {
			t.Errorf("Disconnect: %v lost its kind", err)
		}
	}
}

func TestNetworkUnknownPlugin(t *testing.T) {
	m := NewManager(LoaderConfig{Builtins: map[string][]string{}, RunDir: t.TempDir(), StateDir: t.TempDir()})
	m.Start(context.Background())
	m.Wait()
	if _, err := m.Network("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Network(nope): %v", err)
	}
}
