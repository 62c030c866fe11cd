package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
)

func TestParseBind(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want mountPoint
		err  string
	}{
		{spec: "vol1:/data", want: mountPoint{Type: "volume", Name: "vol1", Driver: "local", Destination: "/data", RW: true}},
		{spec: "vol1:/data:ro", want: mountPoint{Type: "volume", Name: "vol1", Driver: "local", Destination: "/data", Mode: "ro"}},
		{spec: "/data", want: mountPoint{Type: "volume", Driver: "local", Destination: "/data", RW: true}},
		{spec: "/data:ro,nocopy", want: mountPoint{Type: "volume", Driver: "local", Destination: "/data", Mode: "ro,nocopy", NoCopy: true}},
		{spec: "/host/dir/:/data/:rw,rslave", want: mountPoint{Type: "bind", Source: "/host/dir", Destination: "/data", RW: true, Mode: "rw,rslave", Propagation: "rslave", CreateSource: true}},
		{spec: "../x:/data", err: `"../x" includes invalid characters for a local volume name`},
		{spec: "a/b:/data", err: `"a/b" includes invalid characters`},
		{spec: "/h:/", err: "destination can't be '/'"},
		{spec: "/h:/proc", err: "/proc is reserved"},
		{spec: "/h:/proc/sys", err: "/proc/sys is reserved"},
		{spec: "vv:data", err: "mount path must be absolute"},
		{spec: "vv:/data:rx", err: "invalid mode: rx"},
		{spec: "vv:/data:ro,rw", err: "invalid mode: ro,rw"},
		{spec: "vv:/data:rshared", err: "invalid mode: rshared"},
		{spec: "a:b:c:d", err: "invalid volume specification: 'a:b:c:d'"},
	} {
		got, err := parseBind(tc.spec, "local")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errInvalid) {
				t.Errorf("%s: error %v, want one with %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.spec, err)
			continue
		}
		if got.Type != tc.want.Type || got.Name != tc.want.Name || got.Source != tc.want.Source || got.Destination != tc.want.Destination ||
			got.RW != tc.want.RW || got.Mode != tc.want.Mode || got.NoCopy != tc.want.NoCopy || got.Propagation != tc.want.Propagation ||
			got.Driver != tc.want.Driver || got.CreateSource != tc.want.CreateSource {
			t.Errorf("%s: got %+v, want %+v", tc.spec, got, tc.want)
		}
	}
}

func TestParseMount(t *testing.T) {
	dir := t.TempDir()
	m, req, err := parseMount(mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "/d", ReadOnly: true,
		VolumeOptions: &mount.VolumeOptions{NoCopy: true, DriverConfig: &mount.Driver{Name: "example", Options: map[string]string{"a": "b"}}}}, "local")
	if err != nil || m.Driver != "example" || m.Name != "v1" || m.RW || !m.NoCopy || req == nil || req.name != "v1" || req.opts["a"] != "b" {
		t.Errorf("volume: %+v %+v %v", m, req, err)
	}
	m, req, err = parseMount(mount.Mount{Type: mount.TypeVolume, Target: "/d", VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{"x": "y"}}}, "local")
	if err != nil || m.Name == "" || req == nil || req.name != m.Name || req.labels["x"] != "y" {
		t.Errorf("anonymous volume with labels: %+v %+v %v", m, req, err)
	}
	if _, ok := req.labels[anonymousLabel]; !ok {
		t.Errorf("anonymous volume not labelled: %v", req.labels)
	}
	m, _, err = parseMount(mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/d", ReadOnly: true}, "local")
	if err != nil || m.Type != "bind" || m.Source != dir || m.RW || m.CreateSource {
		t.Errorf("bind: %+v %v", m, err)
	}
	m, _, err = parseMount(mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1777}}, "local")
	if err != nil || strings.Join(m.Tmpfs, ",") != "nosuid,nodev,noexec,size=1048576,mode=1777" {
		t.Errorf("tmpfs: %+v %v", m, err)
	}
	m, _, err = parseMount(mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{Mode: os.ModeSticky | 0o700}}, "local")
	if err != nil || strings.Join(m.Tmpfs, ",") != "nosuid,nodev,noexec,mode=1700" {
		t.Errorf("tmpfs sticky: %+v %v", m, err)
	}
	for _, tc := range []struct {
		m   mount.Mount
		err string
	}{
		{mount.Mount{Type: mount.TypeBind, Source: filepath.Join(dir, "missing"), Target: "/d"}, "bind source path does not exist: " + filepath.Join(dir, "missing")},
		{mount.Mount{Type: mount.TypeBind, Source: "rel", Target: "/d"}, "mount path must be absolute"},
		{mount.Mount{Type: mount.TypeBind, Target: "/d"}, "field Source must not be empty"},
		{mount.Mount{Type: mount.TypeBind, Source: dir}, "field Target must not be empty"},
		{mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/"}, "destination can't be '/'"},
		{mount.Mount{Type: mount.TypeVolume, Source: "../x", Target: "/d"}, "invalid characters"},
		{mount.Mount{Type: mount.TypeTmpfs, Source: "x", Target: "/d"}, "field Source must not be specified"},
		{mount.Mount{Type: mount.TypeVolume, Target: "/d", BindOptions: &mount.BindOptions{}}, "field BindOptions must not be specified"},
		{mount.Mount{Type: "npipe", Target: "/d"}, `mount type "npipe" is not supported`},
	} {
		if _, _, err := parseMount(tc.m, "local"); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: error %v, want %q", tc.m, err, tc.err)
		}
	}
}

func TestTmpfsMount(t *testing.T) {
	m, err := tmpfsMount("/scratch/", "size=1m,exec")
	if err != nil || m.Destination != "/scratch" || strings.Join(m.Tmpfs, ",") != "nosuid,nodev,noexec,size=1m,exec" || !m.RW {
		t.Errorf("got %+v %v", m, err)
	}
	if _, err := tmpfsMount("rel", ""); err == nil {
		t.Error("relative tmpfs destination accepted")
	}
}

func TestSortMounts(t *testing.T) {
	ms := []mountPoint{{Destination: "/a/b/c"}, {Destination: "/b"}, {Destination: "/a/b"}, {Destination: "/a"}}
	sortMounts(ms)
	var got []string
	for _, m := range ms {
		got = append(got, m.Destination)
	}
	if strings.Join(got, " ") != "/a /b /a/b /a/b/c" {
		t.Errorf("order %v", got)
	}
}
