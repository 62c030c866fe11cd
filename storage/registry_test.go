package storage

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.podman.io/image/v5/types"
)

func TestIsShortName(t *testing.T) {
	for name, want := range map[string]bool{
		"busybox":                   true,
		"busybox:1.36":              true,
		"library/busybox":           true,
		"user/app@sha256:" + hex64:  true,
		"docker.io/library/busybox": false,
		"quay.io/org/app":           false,
		"127.0.0.1:5000/app":        false,
		"localhost/app":             false,
		"reg:5000/app":              false,
		"[::1]:5000/app":            false,
		"Reg/app":                   false, // upper case: a host, as in reference parsing
	} {
		if got := IsShortName(name); got != want {
			t.Errorf("IsShortName(%q) = %v, want %v", name, got, want)
		}
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestCandidates(t *testing.T) {
	one := Registries{Search: []string{"127.0.0.1:5000"}}
	two := Registries{Search: []string{"registry.example.com", "docker.io"}}
	cases := []struct {
		regs    Registries
		name    string
		want    []string
		wantErr string
		kind    error
	}{
		{Registries{}, "quay.io/org/app", []string{"quay.io/org/app:latest"}, "", nil},
		{Registries{}, "127.0.0.1:5000/app:1", []string{"127.0.0.1:5000/app:1"}, "", nil},
		{Registries{}, "localhost/app@sha256:" + hex64, []string{"localhost/app@sha256:" + hex64}, "", nil},
		{Registries{}, "busybox", nil, "no search registries are configured", ErrInvalid},
		{Registries{}, "busybox", nil, "docker.io/library/busybox", ErrInvalid},
		{one, "busybox", []string{"127.0.0.1:5000/busybox:latest"}, "", nil},
		{one, "team/app:2", []string{"127.0.0.1:5000/team/app:2"}, "", nil},
		{one, "app@sha256:" + hex64, []string{"127.0.0.1:5000/app@sha256:" + hex64}, "", nil},
		{two, "busybox", []string{"registry.example.com/busybox:latest", "docker.io/library/busybox:latest"}, "", nil},
		{one, "Busy Box", nil, "invalid reference format", ErrInvalid},
		{one, "busybox:", nil, "invalid reference format", ErrInvalid},
		{one, "", nil, "empty", ErrInvalid},
		{one, "https://quay.io/app", nil, "without a scheme", ErrInvalid},
	}
	for _, tc := range cases {
		got, err := tc.regs.Candidates(tc.name)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, tc.kind) {
				t.Errorf("Candidates(%q) with %v: error %v, want %q", tc.name, tc.regs.Search, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Candidates(%q) with %v: %v", tc.name, tc.regs.Search, err)
			continue
		}
		var names []string
		for _, n := range got {
			names = append(names, n.String())
		}
		if strings.Join(names, " ") != strings.Join(tc.want, " ") {
			t.Errorf("Candidates(%q) with %v = %v, want %v", tc.name, tc.regs.Search, names, tc.want)
		}
	}
}

func TestResolveAmbiguous(t *testing.T) {
	two := Registries{Search: []string{"registry.example.com", "docker.io"}}
	_, err := two.Resolve("busybox")
	if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "ambiguous") ||
		!strings.Contains(err.Error(), "registry.example.com/busybox:latest") || !strings.Contains(err.Error(), "docker.io/library/busybox:latest") {
		t.Fatalf("ambiguous short name: %v", err)
	}
	n, err := two.Resolve("quay.io/app")
	if err != nil || n.String() != "quay.io/app:latest" {
		t.Fatalf("qualified name with two search registries: %v, %v", n, err)
	}
}

func TestAllowsInsecure(t *testing.T) {
	regs := Registries{Insecure: []string{"reg.lan:5000", "plain.example", "10.1.0.0/16", "fd00::/8"}}
	for domain, want := range map[string]bool{
		"localhost":           true,
		"localhost:5000":      true,
		"x.localhost:5000":    true,
		"127.0.0.1":           true,
		"127.0.0.1:5000":      true,
		"127.8.9.10:80":       true,
		"[::1]:5000":          true,
		"reg.lan:5000":        true,
		"reg.lan:5001":        false,
		"reg.lan":             false,
		"plain.example":       true,
		"plain.example:8443":  true,
		"PLAIN.example":       true,
		"10.1.2.3:5000":       true,
		"10.2.0.1:5000":       false,
		"[fd12::1]:5000":      true,
		"docker.io":           false,
		"quay.io":             false,
		"128.0.0.1:5000":      false,
		"localhost.evil.com":  false,
		"127.0.0.1.nip.io:80": false,
	} {
		if got := regs.AllowsInsecure(domain); got != want {
			t.Errorf("AllowsInsecure(%q) = %v, want %v", domain, got, want)
		}
	}
	if (Registries{}).AllowsInsecure("reg.lan:5000") {
		t.Error("an unlisted registry is insecure")
	}
}

func TestLoginKey(t *testing.T) {
	regs := Registries{Search: []string{"first.example:5000", "second.example"}}
	for server, want := range map[string][2]string{
		"":                            {"first.example:5000", "first.example:5000"},
		"127.0.0.1:5000":              {"127.0.0.1:5000", "127.0.0.1:5000"},
		"http://127.0.0.1:5000/":      {"127.0.0.1:5000", "127.0.0.1:5000"},
		"https://index.docker.io/v1/": {"docker.io", "docker.io"},
		"quay.io/org":                 {"quay.io/org", "quay.io"},
		"https://reg.example/v2/":     {"reg.example", "reg.example"},
	} {
		key, reg, err := loginKey(server, regs)
		if err != nil || key != want[0] || reg != want[1] {
			t.Errorf("loginKey(%q) = %q, %q, %v; want %q, %q", server, key, reg, err, want[0], want[1])
		}
	}
	if _, _, err := loginKey("", Registries{}); err == nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("no server and no search registries: %v", err)
	}
	if _, _, err := loginKey("user@reg.example", regs); err == nil {
		t.Error("a server with @ is accepted")
	}
}

// TestProbe: a closed port fails at once, naming the address; a listening
// one passes.
func TestProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := probe(context.Background(), addr, true); err != nil {
		t.Fatalf("probe of a listening registry: %v", err)
	}
	l.Close()
	t0 := time.Now()
	err = probe(context.Background(), addr, true)
	if err == nil || !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("probe of a closed port: %v", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("a refused connection took %v", d)
	}
}

func TestParsePlatform(t *testing.T) {
	for _, bad := range []string{"linux", "/amd64", "linux/", "a/b/c/d"} {
		if err := parsePlatform(&types.SystemContext{}, bad); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("platform %q: %v", bad, err)
		}
	}
	sys := &types.SystemContext{}
	if err := parsePlatform(sys, "linux/arm64/v8"); err != nil || sys.OSChoice != "linux" || sys.ArchitectureChoice != "arm64" || sys.VariantChoice != "v8" {
		t.Errorf("linux/arm64/v8: %+v, %v", sys, err)
	}
}
