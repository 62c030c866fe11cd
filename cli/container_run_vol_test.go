package cli

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// The mount flags of create and run reach the create request as docker's
// CLI sends them.
func TestRunVolumeRequest(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want map[string]string // "X" (of the embedded Config) or "HostConfig.X" → the field's JSON
	}{
		{"none", nil, map[string]string{"Volumes": `{}`, "HostConfig.Binds": `null`, "HostConfig.Mounts": `null`,
			"HostConfig.Tmpfs": `null`, "HostConfig.VolumesFrom": `null`, "HostConfig.VolumeDriver": `""`}},
		{"-v", []string{"-v", "vol:/data", "--volume", "/h:/c:ro", "-v", "/anon", "-v", "/anon"},
			map[string]string{"Volumes": `{"/anon":{}}`, "HostConfig.Binds": `["vol:/data","/h:/c:ro"]`}},
		{"--mount", []string{"--mount", "type=bind,src=/h,dst=/c,readonly", "--mount",
			"type=volume,src=v,dst=/v,volume-driver=dd,volume-opt=a=b,volume-nocopy", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770"},
			map[string]string{"HostConfig.Mounts": `[{"ReadOnly":true,"Source":"/h","Target":"/c","Type":"bind"},` +
				`{"Source":"v","Target":"/v","Type":"volume","VolumeOptions":{"DriverConfig":{"Name":"dd","Options":{"a":"b"}},"NoCopy":true}},` +
				`{"Target":"/t","TmpfsOptions":{"Mode":1016,"SizeBytes":1048576},"Type":"tmpfs"}]`, "Volumes": `{}`}},
		{"--tmpfs, --volumes-from, --volume-driver", []string{"--tmpfs", "/t1", "--tmpfs", "/t2:size=1m,mode=1777",
			"--volumes-from", "a", "--volumes-from", "b:ro", "--volume-driver", "foo"},
			map[string]string{"HostConfig.Tmpfs": `{"/t1":"","/t2":"size=1m,mode=1777"}`, "HostConfig.VolumesFrom": `["a","b:ro"]`,
				"HostConfig.VolumeDriver": `"foo"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, r, f := createBody(t, tc.args...)
			if r.code != 0 || r.stderr != "" || body == nil {
				t.Fatalf("%+v, requests %v", r, f.calls())
			}
			for path, want := range tc.want {
				m, field := body, path
				if sect, f, ok := strings.Cut(path, "."); ok {
					m, _ = body[sect].(map[string]interface{})
					field = f
				}
				if got := jsonOf(m[field]); got != want {
					t.Errorf("%s = %s, want %s", path, got, want)
				}
			}
		})
	}
}

func TestRunVolumeErrors(t *testing.T) {
	cases := []struct {
		args   []string
		stderr string
	}{
		{[]string{"-v", ""}, "moss: invalid empty volume spec\n"},
		{[]string{"-v", "/x:"}, "moss: invalid spec: /x:: empty section between colons\n"},
		{[]string{"--mount", "type=bind,src=/a"}, `moss: invalid argument "type=bind,src=/a" for "--mount" flag: target is required` + "\nSee 'moss create --help'.\n"},
		{[]string{"--mount", "dst=/x,bogus=1"}, `moss: invalid argument "dst=/x,bogus=1" for "--mount" flag: unexpected key 'bogus' in 'bogus=1'`},
		{[]string{"--mount", "type=tmpfs,dst=/x,tmpfs-size=zz"}, `moss: invalid argument "type=tmpfs,dst=/x,tmpfs-size=zz" for "--mount" flag: invalid value for tmpfs-size: zz`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for _, verb := range []string{"create", "run"} {
				f := newFakeAgent(t)
				r := moss("", append(append([]string{verb}, tc.args...), "img")...)
				if r.code != exitDaemon || !strings.HasPrefix(r.stderr, strings.ReplaceAll(tc.stderr, "moss create", "moss "+verb)) || r.stdout != "" {
					t.Fatalf("%s: exit %d stdout %q stderr %q, want 125 and %q", verb, r.code, r.stdout, r.stderr, tc.stderr)
				}
				if len(f.calls()) > 0 {
					t.Fatalf("%s: requests sent: %v", verb, f.calls())
				}
			}
		})
	}
}

func TestRunMountWarning(t *testing.T) {
	_, r, _ := createBody(t, "--mount", "type=bind,src=/a,dst=/b,bind-nonrecursive=true")
	if r.code != 0 || r.stderr != "WARNING: bind-nonrecursive is deprecated, use bind-recursive=disabled instead\n" {
		t.Fatalf("%+v", r)
	}
}

// rm -v asks the agent to remove the container's anonymous volumes too.
func TestRmVolumes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		v    string
	}{{[]string{"rm", "c1"}, "0"}, {[]string{"rm", "-v", "c1"}, "1"}, {[]string{"container", "rm", "--volumes", "c1"}, "1"}} {
		f := newFakeAgent(t)
		f.handle("DELETE /containers/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
		r := moss("", tc.args...)
		if r.code != 0 || r.stdout != "c1\n" {
			t.Fatalf("%v: %+v", tc.args, r)
		}
		req, ok := f.find("DELETE", "/containers/c1")
		if !ok || !reflect.DeepEqual(req.Query["v"], []string{tc.v}) {
			t.Errorf("%v: query %v, want v=%s", tc.args, req.Query, tc.v)
		}
	}
}

// run --rm sets AutoRemove: the agent removes the anonymous volumes with
// the container, as docker's daemon does.
func TestRunRmAutoRemove(t *testing.T) {
	f := newFakeAgent(t)
	f.json("POST /containers/create", http.StatusCreated, container.CreateResponse{ID: testID})
	f.handle("POST /containers/{id}/start", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	if r := moss("", "run", "-d", "--rm", "-v", "/anon", "img"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	req, _ := f.find("POST", "/containers/create")
	var cr container.CreateRequest
	if err := json.Unmarshal(req.Body, &cr); err != nil {
		t.Fatal(err)
	}
	if !cr.HostConfig.AutoRemove || !reflect.DeepEqual(cr.Config.Volumes, map[string]struct{}{"/anon": {}}) {
		t.Errorf("config %+v host %+v", cr.Config, cr.HostConfig)
	}
}
