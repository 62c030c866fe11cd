package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func rootfs(t *testing.T) string {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\n"
	group := "root:x:0:\nwww:x:33:\nstaff:x:50:www\n"
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/group"), []byte(group), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBuild(t *testing.T) {
	root := rootfs(t)
	cases := []struct {
		name    string
		cfg     container.Config
		host    container.HostConfig
		wantErr string
		check   func(t *testing.T, in Input)
	}{
		{name: "defaults", cfg: container.Config{Cmd: []string{"true"}, Hostname: "abc"}, check: func(t *testing.T, in Input) {
			s, _ := Build(in)
			if s.Process.User.UID != 0 || s.Process.Cwd != "/" || s.Hostname != "abc" {
				t.Fatalf("process: %+v", s.Process)
			}
			if !slices.Contains(s.Process.Env, "HOME=/root") || !slices.Contains(s.Process.Env, "HOSTNAME=abc") {
				t.Fatalf("env: %v", s.Process.Env)
			}
			if len(s.Process.Capabilities.Bounding) != len(DefaultCaps) {
				t.Fatalf("caps: %v", s.Process.Capabilities.Bounding)
			}
			if s.Linux.Seccomp == nil || len(s.Linux.MaskedPaths) == 0 {
				t.Fatal("seccomp or masked paths missing")
			}
			if a := s.Linux.Seccomp.Architectures; len(a) != 1 || a[0] != specs.ArchX86_64 {
				t.Fatalf("seccomp architectures %v, want only the native one", a)
			}
			in.Seccomp32 = true
			s, _ = Build(in)
			if a := s.Linux.Seccomp.Architectures; len(a) != 2 || a[1] != specs.ArchX86 {
				t.Fatalf("seccomp architectures %v with the 32-bit ABI", a)
			}
			if len(s.Linux.Namespaces) != 6 {
				t.Fatalf("namespaces: %v", s.Linux.Namespaces)
			}
		}},
		{name: "user and group by name", cfg: container.Config{Cmd: []string{"id"}, User: "www:staff"}, check: func(t *testing.T, in Input) {
			s, _ := Build(in)
			if s.Process.User.UID != 33 || s.Process.User.GID != 50 || !slices.Contains(s.Process.Env, "HOME=/var/www") {
				t.Fatalf("user: %+v env %v", s.Process.User, s.Process.Env)
			}
		}},
		{name: "numeric user not in passwd", cfg: container.Config{Cmd: []string{"id"}, User: "1234:5678"}, check: func(t *testing.T, in Input) {
			s, _ := Build(in)
			if s.Process.User.UID != 1234 || s.Process.User.GID != 5678 {
				t.Fatalf("user: %+v", s.Process.User)
			}
		}},
		{name: "unknown user", cfg: container.Config{Cmd: []string{"id"}, User: "nosuch"}, wantErr: "unable to find user nosuch"},
		{name: "no command", cfg: container.Config{}, wantErr: "no command"},
		{name: "cap add drop", cfg: container.Config{Cmd: []string{"x"}}, host: container.HostConfig{CapAdd: []string{"sys_admin"}, CapDrop: []string{"CAP_CHOWN", "net_raw"}}, check: func(t *testing.T, in Input) {
			s, _ := Build(in)
			c := s.Process.Capabilities.Bounding
			if !slices.Contains(c, "CAP_SYS_ADMIN") || slices.Contains(c, "CAP_CHOWN") || slices.Contains(c, "CAP_NET_RAW") {
				t.Fatalf("caps: %v", c)
			}
		}},
		{name: "drop all", cfg: container.Config{Cmd: []string{"x"}}, host: container.HostConfig{CapDrop: []string{"ALL"}, CapAdd: []string{"KILL"}}, check: func(t *testing.T, in Input) {
			s, _ := Build(in)
			if c := s.Process.Capabilities.Bounding; len(c) != 1 || c[0] != "CAP_KILL" {
				t.Fatalf("caps: %v", c)
			}
		}},
		{name: "unknown cap", cfg: container.Config{Cmd: []string{"x"}}, host: container.HostConfig{CapAdd: []string{"FLY"}}, wantErr: "unknown capability"},
		{name: "privileged", cfg: container.Config{Cmd: []string{"x"}}, host: container.HostConfig{Privileged: true}, check: func(t *testing.T, in Input) {
			s, _ := Build(in)
			if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 || len(s.Process.Capabilities.Bounding) != len(capNames) {
				t.Fatal("privileged container is confined")
			}
		}},
		{name: "read-only and nnp", cfg: container.Config{Cmd: []string{"x"}}, host: container.HostConfig{ReadonlyRootfs: true, SecurityOpt: []string{"no-new-privileges"}}, check: func(t *testing.T, in Input) {
			s, _ := Build(in)
			if !s.Root.Readonly || !s.Process.NoNewPrivileges {
				t.Fatal("read-only or no-new-privileges not set")
			}
		}},
		{name: "bad security opt", cfg: container.Config{Cmd: []string{"x"}}, host: container.HostConfig{SecurityOpt: []string{"bogus"}}, wantErr: "unsupported --security-opt"},
		{name: "single id has no gid=5", cfg: container.Config{Cmd: []string{"x"}}, check: func(t *testing.T, in Input) {
			in.SingleID = true
			s, _ := Build(in)
			for _, m := range s.Mounts {
				if m.Destination == "/dev/pts" && slices.Contains(m.Options, "gid=5") {
					t.Fatal("devpts gid=5 with a single-ID mapping")
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, host := tc.cfg, tc.host
			in := Input{ID: "x", Rootfs: root, Config: &cfg, Host: &host, EtcDir: "/e", Seccomp: true}
			_, err := Build(in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, in)
		})
	}
}

func TestSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{"": unix.SIGTERM, "SIGKILL": unix.SIGKILL, "hup": unix.SIGHUP, "9": unix.SIGKILL, "SIGRTMIN+3": 0} {
		got, err := Signal(in)
		if want == 0 {
			if err == nil && got == 0 {
				t.Errorf("%q: no error", in)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: got %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"SIGNOPE", "0", "99", "-1"} {
		if _, err := Signal(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestWriteEtc(t *testing.T) {
	dir := t.TempDir()
	if err := WriteEtc(dir, Etc{Hostname: "box", ExtraHosts: []string{"db:10.0.0.5"}, DNS: []string{"1.1.1.1"}, DNSSearch: []string{"example.com"}}); err != nil {
		t.Fatal(err)
	}
	hosts, _ := os.ReadFile(filepath.Join(dir, "hosts"))
	resolv, _ := os.ReadFile(filepath.Join(dir, "resolv.conf"))
	hn, _ := os.ReadFile(filepath.Join(dir, "hostname"))
	if !strings.Contains(string(hosts), "10.0.0.5\tdb") || !strings.Contains(string(hosts), "box") {
		t.Fatalf("hosts: %s", hosts)
	}
	if string(resolv) != "nameserver 1.1.1.1\nsearch example.com\n" || string(hn) != "box\n" {
		t.Fatalf("resolv %q hostname %q", resolv, hn)
	}
	if err := WriteEtc(dir, Etc{Hostname: "box", ExtraHosts: []string{"nocolon"}}); err == nil {
		t.Fatal("bad --add-host accepted")
	}
}
