package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/volume"
)

// The outputs and requests below are docker CLI 27's for the same
// answers (checked against it with a recording fake daemon).

func TestVolumeCreate(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		body   string
		stdout string
	}{
		{"generated name", nil, `{"Driver":"local"}`, strings.Repeat("f", 64) + "\n"},
		{"named", []string{"vol1"}, `{"Driver":"local","Name":"vol1"}`, "vol1\n"},
		{"hidden --name", []string{"--name", "vol1"}, `{"Driver":"local","Name":"vol1"}`, "vol1\n"},
		{"everything", []string{"-d", "foo", "--label", "a=b", "--label", "c", "-o", "type=tmpfs", "--opt", "device=tmpfs", "-o", "o=size=1m", "-o", "bare", "myvol"},
			`{"Driver":"foo","DriverOpts":{"bare":"","device":"tmpfs","o":"size=1m","type":"tmpfs"},"Labels":{"a":"b","c":""},"Name":"myvol"}`, "myvol\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAgent(t)
			f.handle("POST /volumes/create", func(w http.ResponseWriter, r *http.Request) {
				var req volume.CreateRequest
				_ = json.NewDecoder(r.Body).Decode(&req)
				if req.Name == "" {
					req.Name = strings.Repeat("f", 64)
				}
				w.WriteHeader(http.StatusCreated)
				_ = json.NewEncoder(w).Encode(volume.Volume{Name: req.Name, Driver: req.Driver, Scope: "local"})
			})
			r := moss("", append([]string{"volume", "create"}, tc.args...)...)
			if r.code != 0 || r.stdout != tc.stdout || r.stderr != "" {
				t.Fatalf("%+v", r)
			}
			req, ok := f.find("POST", "/volumes/create")
			if !ok {
				t.Fatalf("no create request: %v", f.calls())
			}
			if got := string(req.Body); got != tc.body {
				t.Errorf("body\n%s\nwant\n%s", got, tc.body)
			}
		})
	}
}

func TestVolumeCreateErrors(t *testing.T) {
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--name", "a", "b"}, 1, "conflicting options: cannot specify a volume-name through both --name and as a positional arg\n"},
		{[]string{"a", "b"}, 1, `"moss volume create" requires at most 1 argument.`},
		{[]string{"--label", "=x", "a"}, 125, `moss: invalid argument "=x" for "--label" flag: invalid label '=x': empty name`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := newFakeAgent(t)
			r := moss("", append([]string{"volume", "create"}, tc.args...)...)
			if r.code != tc.code || !strings.HasPrefix(r.stderr, tc.stderr) || r.stdout != "" {
				t.Fatalf("exit %d stdout %q stderr %q, want %d and %q", r.code, r.stdout, r.stderr, tc.code, tc.stderr)
			}
			if len(f.calls()) > 0 {
				t.Fatalf("requests sent: %v", f.calls())
			}
		})
	}
	t.Run("agent error", func(t *testing.T) {
		f := newFakeAgent(t)
		f.json("POST /volumes/create", http.StatusNotFound, apiErr(`plugin "nope" not found`))
		r := moss("", "volume", "create", "-d", "nope", "v")
		if r.code != 1 || r.stderr != "Error response from daemon: plugin \"nope\" not found\n" {
			t.Fatalf("%+v", r)
		}
	})
}

func volumesAgent(t *testing.T) *fakeAgent {
	f := newFakeAgent(t)
	f.json("GET /volumes", http.StatusOK, volume.ListResponse{Volumes: []volume.Volume{
		{Name: "vol10", Driver: "local", Labels: map[string]string{"x": "y", "a": "b"}, Mountpoint: "/d/vol10", Scope: "local"},
		{Name: "abc", Driver: "local", Mountpoint: "/d/abc", Scope: "local", UsageData: &volume.UsageData{RefCount: 2, Size: 12345678}},
		{Name: "vol2", Driver: "other", Mountpoint: "/d/vol2", Scope: "local"},
	}})
	return f
}

func TestVolumeLs(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		code    int
		stdout  string
		stderr  string
		filters string
		none    bool // no request is sent
	}{
		{name: "table, natural order by name", args: []string{"volume", "ls"},
			stdout: "DRIVER    VOLUME NAME\nlocal     abc\nother     vol2\nlocal     vol10\n"},
		{name: "quiet", args: []string{"volume", "list", "-q"}, stdout: "abc\nvol2\nvol10\n"},
		{name: "quiet table", args: []string{"volume", "ls", "-q", "--format", "table"}, stdout: "abc\nvol2\nvol10\n"},
		{name: "quiet with a format", args: []string{"volume", "ls", "-q", "--format", "{{.Driver}}"}, stdout: "local\nother\nlocal\n"},
		{name: "format", args: []string{"volume", "ls", "--format", `{{.Name}} {{.Labels}} {{.Label "a"}} {{.Links}} {{.Size}} {{.Scope}} {{.Mountpoint}}`},
			stdout: "abc   2 12.35MB local /d/abc\nvol2   N/A N/A local /d/vol2\nvol10 a=b,x=y b N/A N/A local /d/vol10\n"},
		{name: "table format", args: []string{"volume", "ls", "--format", "table {{.Name}}\t{{.Mountpoint}}\t{{.Links}}\t{{.Size}}\t{{.Status}}"},
			stdout: "VOLUME NAME   MOUNTPOINT   LINKS     SIZE      STATUS\nabc           /d/abc       2         12.35MB   N/A\n" +
				"vol2          /d/vol2      N/A       N/A       N/A\nvol10         /d/vol10     N/A       N/A       N/A\n"},
		{name: "json", args: []string{"volume", "ls", "--format", "json"},
			stdout: `{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"","Links":"2","Mountpoint":"/d/abc","Name":"abc","Scope":"local","Size":"12.35MB","Status":"N/A"}` + "\n" +
				`{"Availability":"N/A","Driver":"other","Group":"N/A","Labels":"","Links":"N/A","Mountpoint":"/d/vol2","Name":"vol2","Scope":"local","Size":"N/A","Status":"N/A"}` + "\n" +
				`{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"a=b,x=y","Links":"N/A","Mountpoint":"/d/vol10","Name":"vol10","Scope":"local","Size":"N/A","Status":"N/A"}` + "\n"},
		{name: "filters", args: []string{"volume", "ls", "-q", "-f", "dangling=true", "--filter", "driver=local", "-f", "label=a=b", "-f", "label=x", "-f", "name=vol"},
			stdout: "abc\nvol2\nvol10\n", filters: `{"dangling":{"true":true},"driver":{"local":true},"label":{"a=b":true,"x":true},"name":{"vol":true}}`},
		{name: "bad filter", args: []string{"volume", "ls", "-f", "foo"}, code: 125,
			stderr: `moss: invalid argument "foo" for "-f, --filter" flag: bad format of filter (expected name=value)` + "\nSee 'moss volume ls --help'.\n", none: true},
		{name: "bad template", args: []string{"volume", "ls", "--format", "{{.Name"}, code: 1, stderr: "moss: template parsing error"},
		{name: "arguments", args: []string{"volume", "ls", "x"}, code: 1, stderr: `"moss volume ls" accepts no arguments.`, none: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := volumesAgent(t)
			r := moss("", tc.args...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.HasPrefix(r.stderr, tc.stderr) || (tc.stderr == "" && r.stderr != "") {
				t.Fatalf("exit %d stdout:\n%s\nstderr %q\nwant exit %d stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
			if tc.none {
				if len(f.calls()) > 0 {
					t.Fatalf("requests sent: %v", f.calls())
				}
				return
			}
			req, _ := f.find("GET", "/volumes")
			if got := strings.Join(req.Query["filters"], ""); got != tc.filters {
				t.Errorf("filters %q, want %q", got, tc.filters)
			}
		})
	}
}

func TestVolumeInspect(t *testing.T) {
	vol := `{"CreatedAt":"2024-01-02T03:04:05Z","Driver":"local","Labels":{"a":"b"},"Mountpoint":"/d/vol1","Name":"vol1","Options":null,"Scope":"local","MossExtra":1}`
	cases := []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{args: []string{"vol1"}, stdout: "[\n    {\n        \"CreatedAt\": \"2024-01-02T03:04:05Z\",\n        \"Driver\": \"local\",\n        \"Labels\": {\n" +
			"            \"a\": \"b\"\n        },\n        \"Mountpoint\": \"/d/vol1\",\n        \"Name\": \"vol1\",\n        \"Options\": null,\n" +
			"        \"Scope\": \"local\",\n        \"MossExtra\": 1\n    }\n]\n"},
		{args: []string{"-f", "{{.Name}} {{.Driver}} {{.Labels}} {{.MossExtra}}", "vol1", "vol1"}, stdout: "vol1 local map[a:b] 1\nvol1 local map[a:b] 1\n"},
		{args: []string{"--format", "json", "vol1"}, stdout: jsonOfRaw(vol) + "\n"},
		{args: []string{"nope"}, code: 1, stdout: "[]\n", stderr: "Error response from daemon: get nope: no such volume\n"},
		{args: []string{"-f", "{{.Name}}", "nope", "vol1"}, code: 1, stdout: "vol1\n", stderr: "Error response from daemon: get nope: no such volume\n"},
		{args: nil, code: 1, stderr: `"moss volume inspect" requires at least 1 argument.`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := newFakeAgent(t)
			f.handle("GET /volumes/{name}", func(w http.ResponseWriter, r *http.Request) {
				if r.PathValue("name") != "vol1" {
					w.WriteHeader(http.StatusNotFound)
					json.NewEncoder(w).Encode(apiErr("get " + r.PathValue("name") + ": no such volume"))
					return
				}
				io.WriteString(w, vol)
			})
			r := moss("", append([]string{"volume", "inspect"}, tc.args...)...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.HasPrefix(r.stderr, tc.stderr) || (tc.stderr == "" && r.stderr != "") {
				t.Fatalf("exit %d stdout:\n%s\nstderr %q\nwant exit %d stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestVolumeRm(t *testing.T) {
	cases := []struct {
		args           []string
		code           int
		stdout, stderr string
		deletes        []string
		force          bool
	}{
		{args: []string{"a", "b"}, stdout: "a\nb\n", deletes: []string{"a", "b"}},
		{args: []string{"a", "nope", "inuse", "b"}, code: 1, stdout: "a\nb\n",
			stderr:  "Error response from daemon: get nope: no such volume\nError response from daemon: remove inuse: volume is in use - [c1]\n",
			deletes: []string{"a", "nope", "inuse", "b"}},
		{args: []string{"-f", "a"}, stdout: "a\n", deletes: []string{"a"}, force: true},
		{args: []string{"--force", "inuse"}, code: 1, stderr: "Error response from daemon: remove inuse: volume is in use - [c1]\n", deletes: []string{"inuse"}, force: true},
		{args: nil, code: 1, stderr: `"moss volume rm" requires at least 1 argument.`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := newFakeAgent(t)
			f.handle("DELETE /volumes/{name}", func(w http.ResponseWriter, r *http.Request) {
				switch name := r.PathValue("name"); name {
				case "nope":
					w.WriteHeader(http.StatusNotFound)
					json.NewEncoder(w).Encode(apiErr("get nope: no such volume"))
				case "inuse":
					w.WriteHeader(http.StatusConflict)
					json.NewEncoder(w).Encode(apiErr("remove inuse: volume is in use - [c1]"))
				default:
					w.WriteHeader(http.StatusNoContent)
				}
			})
			r := moss("", append([]string{"volume", "rm"}, tc.args...)...)
			stderrOK := r.stderr == tc.stderr
			if tc.deletes == nil { // a usage error: its first lines
				stderrOK = strings.HasPrefix(r.stderr, tc.stderr)
			}
			if r.code != tc.code || r.stdout != tc.stdout || !stderrOK {
				t.Fatalf("exit %d stdout %q stderr %q, want %d %q %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
			var deletes []string
			for _, req := range f.requests() {
				if req.Method != "DELETE" {
					continue
				}
				deletes = append(deletes, strings.TrimPrefix(req.Path, "/volumes/"))
				want := map[string][]string{}
				if tc.force {
					want["force"] = []string{"1"}
				}
				if !reflect.DeepEqual(req.Query, want) {
					t.Errorf("query %v, want %v", req.Query, want)
				}
			}
			if !reflect.DeepEqual(deletes, tc.deletes) {
				t.Errorf("deleted %v, want %v", deletes, tc.deletes)
			}
		})
	}
	t.Run("remove alias", func(t *testing.T) {
		f := newFakeAgent(t)
		f.handle("DELETE /volumes/{name}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
		if r := moss("", "volume", "remove", "a"); r.code != 0 || r.stdout != "a\n" {
			t.Fatalf("%+v", r)
		}
	})
}

func TestVolumePrune(t *testing.T) {
	const (
		anonymous = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
		all       = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
	)
	cases := []struct {
		name, stdin string
		args        []string
		report      volume.PruneReport
		code        int
		stdout      string
		stderr      string
		pruned      bool
		filters     string
	}{
		{name: "declined", stdin: "n\n", stdout: anonymous},
		{name: "no answer", stdin: "", stdout: anonymous},
		{name: "declined all", stdin: "no\n", args: []string{"-a"}, stdout: all},
		{name: "confirmed", stdin: "y\n", report: volume.PruneReport{VolumesDeleted: []string{"v1", "v2"}, SpaceReclaimed: 12345678},
			stdout: anonymous + "Deleted Volumes:\nv1\nv2\n\nTotal reclaimed space: 12.35MB\n", pruned: true},
		{name: "all", stdin: "yes\n", args: []string{"--all", "--filter", "label=x"}, report: volume.PruneReport{VolumesDeleted: []string{"named"}, SpaceReclaimed: 1000},
			stdout: all + "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 1kB\n", pruned: true, filters: `{"all":{"true":true},"label":{"x":true}}`},
		{name: "forced with filters", args: []string{"-f", "--filter", "label!=a", "--filter", "all=true"}, report: volume.PruneReport{VolumesDeleted: []string{"v1"}},
			stdout: "Deleted Volumes:\nv1\n\nTotal reclaimed space: 0B\n", pruned: true, filters: `{"all":{"true":true},"label!":{"a":true}}`},
		{name: "nothing deleted", args: []string{"--force"}, report: volume.PruneReport{SpaceReclaimed: 99}, stdout: "Total reclaimed space: 0B\n", pruned: true},
		{name: "-a and the all filter", args: []string{"-a", "-f", "--filter", "all=0"}, code: 1,
			stderr: "conflicting options: cannot specify both --all and --filter all=1\n"},
		{name: "arguments", args: []string{"x"}, code: 1, stderr: `"moss volume prune" accepts no arguments.`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAgent(t)
			f.json("POST /volumes/prune", http.StatusOK, tc.report)
			r := moss(tc.stdin, append([]string{"volume", "prune"}, tc.args...)...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.HasPrefix(r.stderr, tc.stderr) || (tc.stderr == "" && r.stderr != "") {
				t.Fatalf("%+v, want exit %d stdout %q stderr %q", r, tc.code, tc.stdout, tc.stderr)
			}
			req, pruned := f.find("POST", "/volumes/prune")
			if pruned != tc.pruned {
				t.Fatalf("pruned %v, want %v: %v", pruned, tc.pruned, f.calls())
			}
			if got := strings.Join(req.Query["filters"], ""); got != tc.filters {
				t.Errorf("filters %q, want %q", got, tc.filters)
			}
		})
	}
}

func TestVolumeGroup(t *testing.T) {
	newFakeAgent(t)
	r := moss("", "volume", "frob")
	if r.code != 1 || !strings.Contains(r.stderr, "'volume frob' is not a moss command") {
		t.Fatalf("%+v", r)
	}
	r = moss("", "volume")
	for _, verb := range []string{"create", "inspect", "ls", "prune", "rm"} {
		if !strings.Contains(r.stdout, "\n  "+verb+" ") {
			t.Errorf("help lacks %s:\n%s", verb, r.stdout)
		}
	}
}
