package config

import (
	"os"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	cases := []struct {
		name    string
		content string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "absent", check: func(t *testing.T, c Config) {
			if c.Network.Driver != "auto" || c.IDMap.Source != "auto" || !c.Runtime.SeccompEnabled() {
				t.Fatalf("defaults not applied: %+v", c)
			}
		}},
		{name: "values", content: "[storage]\ndriver = \"vfs\"\ngraph_root = \"/data/moss\"\n[runtime]\nseccomp = false\n", check: func(t *testing.T, c Config) {
			if c.Storage.Driver != "vfs" || c.Storage.GraphRoot != "/data/moss" || c.Runtime.SeccompEnabled() {
				t.Fatalf("values not read: %+v", c)
			}
			if len(c.Files) != 1 {
				t.Fatalf("files read: %v", c.Files)
			}
		}},
		{name: "unknown key", content: "[storage]\ndrvier = \"vfs\"\n", wantErr: `unknown key "storage.drvier"`},
		{name: "unknown section", content: "[netwrk]\ndriver = \"none\"\n", wantErr: `unknown key "netwrk`},
		{name: "bad driver", content: "[storage]\ndriver = \"btrfs\"\n", wantErr: `storage.driver "btrfs"`},
		{name: "relative root", content: "[storage]\ngraph_root = \"data\"\n", wantErr: "absolute"},
		{name: "bad cidr", content: "[network]\ncidr = \"10.0.2/99\"\n", wantErr: `network.cidr "10.0.2/99"`},
		{name: "bad idmap", content: "[idmap]\nsource = \"nss\"\n", wantErr: `idmap.source "nss"`},
		{name: "registries", content: "[registries]\nsearch = [\"registry.example.com\", \"127.0.0.1:5000\", \"[::1]:5000\"]\ninsecure = [\"10.0.0.0/8\", \"reg.lan\"]\n", check: func(t *testing.T, c Config) {
			if len(c.Registries.Search) != 3 || c.Registries.Search[1] != "127.0.0.1:5000" || len(c.Registries.Insecure) != 2 {
				t.Fatalf("registries not read: %+v", c.Registries)
			}
		}},
		{name: "cgroups v1", content: "[cgroups]\nunsupported = \"warn\"\nv1 = { memory = \"/sys/fs/cgroup/memory/moss-u\", pids = \"/sys/fs/cgroup/pids/moss-u\" }\n", check: func(t *testing.T, c Config) {
			if !c.Cgroups.Warn() || c.Cgroups.V1["memory"] != "/sys/fs/cgroup/memory/moss-u" || len(c.Cgroups.V1) != 2 {
				t.Fatalf("cgroups not read: %+v", c.Cgroups)
			}
		}},
		{name: "cgroups bad controller", content: "[cgroups]\nv1 = { memroy = \"/sys/fs/cgroup/memory/x\" }\n", wantErr: `cgroups.v1 key "memroy"`},
		{name: "cgroups relative", content: "[cgroups]\nv2 = \"moss\"\n", wantErr: `cgroups.v2 "moss": must be an absolute path`},
		{name: "cgroups bad mode", content: "[cgroups]\nunsupported = \"ignore\"\n", wantErr: `cgroups.unsupported "ignore"`},
		{name: "search with scheme", content: "[registries]\nsearch = [\"https://quay.io\"]\n", wantErr: `registries.search "https://quay.io"`},
		{name: "search with path", content: "[registries]\nsearch = [\"quay.io/org\"]\n", wantErr: `registries.search "quay.io/org"`},
		{name: "bad insecure", content: "[registries]\ninsecure = [\"10.0.0.0/99\"]\n", wantErr: `registries.insecure "10.0.0.0/99"`},
		{name: "unknown registries key", content: "[registries]\nmirrors = []\n", wantErr: "registries.search"},
		{name: "syntax", content: "[storage\n", wantErr: "moss.toml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := UserFile(dir)
			if tc.content != "" {
				if err := os.WriteFile(f, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Load(f)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}
