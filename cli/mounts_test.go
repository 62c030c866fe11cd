package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/mount"
)

// The expected values and messages are what docker CLI 27 sends and says
// (checked against the docker CLI with a recording fake daemon).
func TestParseMount(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in   string
		want mount.Mount
		err  string
	}{
		{in: "type=bind,src=/h,dst=/c,readonly", want: mount.Mount{Type: "bind", Source: "/h", Target: "/c", ReadOnly: true}},
		{in: "type=bind,source=/h,target=/c,ro=false", want: mount.Mount{Type: "bind", Source: "/h", Target: "/c"}},
		{in: "type=bind,src=/h,destination=/c,ro=1", want: mount.Mount{Type: "bind", Source: "/h", Target: "/c", ReadOnly: true}},
		{in: "dst=/plain", want: mount.Mount{Type: "volume", Target: "/plain"}},
		{in: "TYPE=Bind,SRC=/a,Target=/b", want: mount.Mount{Type: "bind", Source: "/a", Target: "/b"}},
		{in: "type=volume,source=v,target=/v,volume-driver=dd,volume-opt=a=b,volume-opt=c=d,volume-opt==x,volume-label=l=1,volume-label=k,volume-nocopy",
			want: mount.Mount{Type: "volume", Source: "v", Target: "/v", VolumeOptions: &mount.VolumeOptions{
				NoCopy: true, Labels: map[string]string{"l": "1", "k": ""},
				DriverConfig: &mount.Driver{Name: "dd", Options: map[string]string{"a": "b", "c": "d"}}}}},
		{in: "type=volume,src=v,dst=/x,volume-nocopy=false,volume-subpath=s",
			want: mount.Mount{Type: "volume", Source: "v", Target: "/x", VolumeOptions: &mount.VolumeOptions{Subpath: "s", DriverConfig: &mount.Driver{}}}},
		{in: "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770",
			want: mount.Mount{Type: "tmpfs", Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1770}}},
		{in: "type=tmpfs,dst=/t,tmpfs-size=1.5g", want: mount.Mount{Type: "tmpfs", Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1610612736}}},
		{in: "type=bind,src=/a,dst=/b,bind-propagation=RShared,consistency=Cached",
			want: mount.Mount{Type: "bind", Source: "/a", Target: "/b", Consistency: "cached", BindOptions: &mount.BindOptions{Propagation: "rshared"}}},
		{in: "type=bind,src=/a,dst=/b,bind-nonrecursive", want: mount.Mount{Type: "bind", Source: "/a", Target: "/b", BindOptions: &mount.BindOptions{NonRecursive: true}}},
		{in: "type=bind,src=/a,dst=/b,bind-recursive=disabled", want: mount.Mount{Type: "bind", Source: "/a", Target: "/b", BindOptions: &mount.BindOptions{NonRecursive: true}}},
		{in: "type=bind,src=/a,dst=/b,ro,bind-recursive=writable",
			want: mount.Mount{Type: "bind", Source: "/a", Target: "/b", ReadOnly: true, BindOptions: &mount.BindOptions{ReadOnlyNonRecursive: true}}},
		{in: "type=bind,src=/a,dst=/b,ro,bind-recursive=readonly,bind-propagation=rprivate",
			want: mount.Mount{Type: "bind", Source: "/a", Target: "/b", ReadOnly: true, BindOptions: &mount.BindOptions{ReadOnlyForceRecursive: true, Propagation: "rprivate"}}},
		{in: `type=bind,"src=/a,b",dst=/c`, want: mount.Mount{Type: "bind", Source: "/a,b", Target: "/c"}},
		{in: "type=bind,src=./x,dst=/x", want: mount.Mount{Type: "bind", Source: filepath.Join(cwd, "x"), Target: "/x"}},
		{in: "type=bind,src=.,dst=/x", want: mount.Mount{Type: "bind", Source: cwd, Target: "/x"}},
		// docker 27 resolves only "." and "./…"; the agent refuses the rest.
		{in: "type=bind,src=../x,dst=/x", want: mount.Mount{Type: "bind", Source: "../x", Target: "/x"}},
		{in: "type=bind,src=rel,dst=/x", want: mount.Mount{Type: "bind", Source: "rel", Target: "/x"}},
		// The type is the agent's to check (docker leaves it to the daemon).
		{in: "type=npipe,src=a,dst=/b", want: mount.Mount{Type: "npipe", Source: "a", Target: "/b"}},
		{in: "type=tmpfs,src=x,dst=/y", want: mount.Mount{Type: "tmpfs", Source: "x", Target: "/y"}},

		{in: "type=foo", err: "target is required"},
		{in: "src=x", err: "target is required"},
		{in: "type=,dst=/x", err: "type is required"},
		{in: "target=/x,bogus=1", err: "unexpected key 'bogus' in 'bogus=1'"},
		{in: "dst=/x,FOO=1", err: "unexpected key 'foo' in 'FOO=1'"},
		{in: " type = bind , src=/a,dst=/b", err: "unexpected key ' type ' in ' type = bind '"},
		{in: "foo", err: "invalid field 'foo' must be a key=value pair"},
		{in: `type=bind,src="a`, err: `parse error on line 1, column 15: bare " in non-quoted-field`},
		{in: "type=bind,src=/a,dst=/x,ro=maybe", err: "invalid value for ro: maybe"},
		{in: "type=bind,src=/a,dst=/x,readonly=maybe", err: "invalid value for readonly: maybe"},
		{in: "type=bind,dst=/x,bind-nonrecursive=maybe", err: "invalid value for bind-nonrecursive: maybe"},
		{in: "type=bind,src=/a,dst=/b,volume-nocopy=x", err: "invalid value for volume-nocopy: x"},
		{in: "type=tmpfs,dst=/x,tmpfs-size=zz", err: "invalid value for tmpfs-size: zz"},
		{in: "type=tmpfs,dst=/x,tmpfs-size=-1", err: "invalid value for tmpfs-size: -1"},
		{in: "type=tmpfs,dst=/x,tmpfs-mode=9", err: "invalid value for tmpfs-mode: 9"},
		{in: "type=volume,src=v,dst=/x,bind-propagation=rshared", err: "cannot mix 'bind-*' options with mount type 'volume'"},
		{in: "type=tmpfs,dst=/y,volume-opt=a", err: "cannot mix 'volume-*' options with mount type 'tmpfs'"},
		{in: "type=bind,dst=/y,tmpfs-mode=1", err: "cannot mix 'tmpfs-*' options with mount type 'bind'"},
		{in: "type=bind,src=/a,dst=/b,bind-recursive=bad", err: `invalid value for bind-recursive: bad (must be "enabled", "disabled", "writable", or "readonly")`},
		{in: "type=bind,src=/a,dst=/b,bind-recursive=writable", err: "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction"},
		{in: "type=bind,src=/a,dst=/b,bind-recursive=readonly", err: "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction"},
		{in: "type=bind,src=/a,dst=/b,bind-recursive=readonly,readonly",
			err: "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, _, err := parseMount(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %s\nwant %s", jsonOf(got), jsonOf(tc.want))
			}
		})
	}
}

func TestParseVolumes(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		in      []string
		binds   []string
		volumes []string
		err     string
	}{
		{name: "named, bind and anonymous", in: []string{"vol:/data", "/h:/c:ro", "/anon", "rel2:/r2", "/h2:/c2:rw,z", "vol"},
			binds: []string{"vol:/data", "/h:/c:ro", "rel2:/r2", "/h2:/c2:rw,z"}, volumes: []string{"/anon", "vol"}},
		{name: "dot paths made absolute", in: []string{"./rel:/r", ".:/dot:ro"},
			binds: []string{filepath.Join(cwd, "rel") + ":/r", cwd + ":/dot:ro"}, volumes: []string{}},
		// docker 27 resolves only "." and "./…" (28 resolves every path
		// starting with a dot).
		{name: "other relative paths as they are", in: []string{"../up:/u", ".hidden:/x", "~/x:/y", "x y:/z"},
			binds: []string{"../up:/u", ".hidden:/x", "~/x:/y", "x y:/z"}, volumes: []string{}},
		{name: "a target alone that looks like options", in: []string{"/anon:ro"}, binds: []string{"/anon:ro"}, volumes: []string{}},
		{name: "options are the agent's", in: []string{"vol:/d:bogus", "vol:rel", "vol:/"},
			binds: []string{"vol:/d:bogus", "vol:rel", "vol:/"}, volumes: []string{}},
		{name: "windows drives", in: []string{`C:\x:/y`, "a:b:c:d:e"}, binds: []string{`C:\x:/y`, "a:b:c:d:e"}, volumes: []string{}},
		{name: "short specs are targets", in: []string{":", "::"}, volumes: []string{":", "::"}},
		// As in docker: a one-letter name is a Windows drive, the whole a target.
		{name: "one-letter source", in: []string{"v:/d"}, volumes: []string{"v:/d"}},
		{name: "duplicates once", in: []string{"vv:/d", "vv:/d", "/a", "/a"}, binds: []string{"vv:/d"}, volumes: []string{"/a"}},
		{name: "empty", in: []string{""}, err: "invalid empty volume spec"},
		{name: "empty source", in: []string{":/x"}, err: "invalid spec: :/x: empty section between colons"},
		{name: "empty target", in: []string{"/x:"}, err: "invalid spec: /x:: empty section between colons"},
		{name: "too many colons", in: []string{"/a:/b:ro:"}, err: "invalid spec: /a:/b:ro:: too many colons"},
		{name: "too many colons inside", in: []string{"/a:/b:ro:x"}, err: "invalid spec: /a:/b:ro:x: too many colons"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			binds, vols, err := parseVolumes(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(binds, tc.binds) {
				t.Errorf("binds %q, want %q", binds, tc.binds)
			}
			want := map[string]struct{}{}
			for _, v := range tc.volumes {
				want[v] = struct{}{}
			}
			if !reflect.DeepEqual(vols, want) {
				t.Errorf("volumes %v, want %v", vols, want)
			}
		})
	}
}

func TestParseTmpfs(t *testing.T) {
	if got := parseTmpfs(nil); got != nil {
		t.Errorf("no --tmpfs: %v", got)
	}
	got := parseTmpfs([]string{"/t1", "/t2:size=1m,mode=1777", "/t3:"})
	want := map[string]string{"/t1": "", "/t2": "size=1m,mode=1777", "/t3": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
