package cli

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func psAgent(t *testing.T) *fakeAgent {
	f := newFakeAgent(t)
	now := time.Now()
	f.json("GET /containers/json", http.StatusOK, []container.Summary{
		{ID: testID, Names: []string{"/web"}, Image: "docker.io/library/busybox:latest", ImageID: "sha256:" + strings.Repeat("b", 64),
			Command: "httpd -f -p 8080 -h /www", Created: now.Add(-90 * time.Second).Unix(), State: "running", Status: "Up 3 seconds",
			Labels: map[string]string{"b": "2", "a": "1"},
			Ports:  []container.PortSummary{{PrivatePort: 80, Type: "tcp"}, {PrivatePort: 81, Type: "tcp"}, {IP: netip.MustParseAddr("0.0.0.0"), PrivatePort: 8080, PublicPort: 18080, Type: "tcp"}}},
		{ID: strings.Repeat("f", 64), Names: []string{"/db"}, Image: "sha256:" + strings.Repeat("c", 64), ImageID: "sha256:" + strings.Repeat("c", 64),
			Command: "true", Created: now.Add(-3 * time.Hour).Unix(), State: "exited", Status: "Exited (0) 2 seconds ago"},
	})
	return f
}

func TestPs(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		want  string // the whole output, or
		lines []string
		query map[string]string
	}{
		{name: "table", args: []string{"ps"}, lines: []string{
			"CONTAINER ID   IMAGE          COMMAND                  CREATED              STATUS                     PORTS                                     NAMES",
			`0123456789ab   busybox:latest "httpd -f -p 8080 -h…"   About a minute ago   Up 3 seconds               80-81/tcp, 0.0.0.0:18080->8080/tcp        web`,
			`ffffffffffff   cccccccccccc   "true"                   3 hours ago          Exited (0) 2 seconds ago                                             db`,
		}},
		{name: "quiet", args: []string{"ps", "-q"}, want: "0123456789ab\nffffffffffff\n"},
		{name: "quiet no-trunc", args: []string{"ps", "-q", "--no-trunc"}, want: testID + "\n" + strings.Repeat("f", 64) + "\n"},
		{name: "format", args: []string{"ps", "--format", "{{.Names}}|{{.State}}|{{.Labels}}|{{.Label \"a\"}}|{{upper .Names}}|{{json .Names}}"},
			want: "web|running|a=1,b=2|1|WEB|\"web\"\ndb|exited|||DB|\"db\"\n"},
		{name: "table format", args: []string{"ps", "--format", "table {{.ID}}\t{{.Names}}"},
			want: "CONTAINER ID   NAMES\n0123456789ab   web\nffffffffffff   db\n"},
		{name: "filters and all", args: []string{"ps", "-a", "--filter", "status=exited", "-f", "name=db", "--filter", "label=a=1"},
			query: map[string]string{"all": "1", "filters": `{"label":{"a=1":true},"name":{"db":true},"status":{"exited":true}}`}},
		{name: "last", args: []string{"ps", "-n", "3"}, query: map[string]string{"all": "1", "limit": "3"}},
		{name: "latest", args: []string{"ps", "-l"}, query: map[string]string{"all": "1", "limit": "1"}},
		{name: "size", args: []string{"ps", "-s"}, query: map[string]string{"size": "1"}},
		{name: "container ls", args: []string{"container", "ls", "-q"}, want: "0123456789ab\nffffffffffff\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := psAgent(t)
			r := moss("", tc.args...)
			if r.code != 0 {
				t.Fatalf("%+v", r)
			}
			if tc.want != "" && r.stdout != tc.want {
				t.Fatalf("output:\n%s\nwant:\n%s", r.stdout, tc.want)
			}
			if tc.lines != nil {
				got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
				if len(got) != len(tc.lines) {
					t.Fatalf("output:\n%s", r.stdout)
				}
				for i := range got {
					if strings.Join(strings.Fields(got[i]), " ") != strings.Join(strings.Fields(tc.lines[i]), " ") {
						t.Errorf("line %d:\n%q\nwant\n%q", i, got[i], tc.lines[i])
					}
				}
				// Columns line up: every NAMES cell starts where the header does.
				col := strings.Index(got[0], "NAMES")
				for _, l := range got[1:] {
					if name := strings.TrimSpace(l[col:]); name != "web" && name != "db" {
						t.Errorf("column NAMES misaligned in %q", l)
					}
				}
			}
			req, _ := f.find("GET", "/containers/json")
			for k, v := range tc.query {
				if got := strings.Join(req.Query[k], ","); got != v {
					t.Errorf("query %s=%q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestPsJSON(t *testing.T) {
	psAgent(t)
	r := moss("", "ps", "--format", "json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("%+v", r)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m["ID"] != "0123456789ab" || m["Names"] != "web" || m["State"] != "running" || m["RunningFor"] != "About a minute ago" {
		t.Fatalf("%v", m)
	}
}

func TestMultipleArguments(t *testing.T) {
	cases := []struct {
		verb, method, path string
		args               []string
	}{
		{"stop", "POST", "/containers/%s/stop", []string{"-t", "1"}},
		{"kill", "POST", "/containers/%s/kill", []string{"-s", "HUP"}},
		{"rm", "DELETE", "/containers/%s", []string{"-f"}},
		{"start", "POST", "/containers/%s/start", nil},
		{"restart", "POST", "/containers/%s/restart", nil},
	}
	for _, tc := range cases {
		t.Run(tc.verb, func(t *testing.T) {
			f := newFakeAgent(t)
			pattern := tc.method + " " + strings.Replace(tc.path, "%s", "{id}", 1)
			f.handle(pattern, func(w http.ResponseWriter, r *http.Request) {
				if r.PathValue("id") == "b" {
					w.WriteHeader(http.StatusNotFound)
					_ = json.NewEncoder(w).Encode(apiErr("No such container: b"))
					return
				}
				w.WriteHeader(http.StatusNoContent)
			})
			args := append(append([]string{tc.verb}, tc.args...), "a", "b", "c")
			r := moss("", args...)
			if r.code != 1 || r.stdout != "a\nc\n" || r.stderr != "Error response from daemon: No such container: b\n" {
				t.Fatalf("%+v", r)
			}
			if n := len(f.calls()); n != 3 {
				t.Fatalf("requests %v", f.calls())
			}
			req, _ := f.find(tc.method, strings.Replace(tc.path, "%s", "c", 1))
			switch tc.verb {
			case "stop":
				if req.Query["t"][0] != "1" {
					t.Errorf("query %v", req.Query)
				}
			case "kill":
				if req.Query["signal"][0] != "HUP" {
					t.Errorf("query %v", req.Query)
				}
			case "rm":
				if req.Query["force"][0] != "1" {
					t.Errorf("query %v", req.Query)
				}
			}
		})
	}
}

func TestWait(t *testing.T) {
	f := newFakeAgent(t)
	f.json("POST /containers/a/wait", http.StatusOK, container.WaitResponse{StatusCode: 137})
	f.json("POST /containers/b/wait", http.StatusOK, container.WaitResponse{StatusCode: 0})
	f.json("POST /containers/c/wait", http.StatusNotFound, apiErr("No such container: c"))
	r := moss("", "wait", "a", "c", "b")
	if r.code != 1 || r.stdout != "137\n0\n" || !strings.Contains(r.stderr, "No such container: c") {
		t.Fatalf("%+v", r)
	}
}

func TestPrune(t *testing.T) {
	cases := []struct {
		stdin, args string
		pruned      bool
	}{
		{"n\n", "", false},
		{"", "", false},
		{"y\n", "", true},
		{"", "-f", true},
	}
	for _, tc := range cases {
		f := newFakeAgent(t)
		f.json("POST /containers/prune", http.StatusOK, container.PruneReport{ContainersDeleted: []string{"abc"}, SpaceReclaimed: 2048})
		args := []string{"container", "prune"}
		if tc.args != "" {
			args = append(args, tc.args)
		}
		r := moss(tc.stdin, args...)
		_, pruned := f.find("POST", "/containers/prune")
		if r.code != 0 || pruned != tc.pruned {
			t.Fatalf("%q %v: %+v pruned %v", tc.stdin, args, r, pruned)
		}
		if tc.args == "" && !strings.HasPrefix(r.stdout, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ") {
			t.Errorf("prompt: %q", r.stdout)
		}
		if pruned && !strings.HasSuffix(r.stdout, "Deleted Containers:\nabc\n\nTotal reclaimed space: 2.048kB\n") {
			t.Errorf("output: %q", r.stdout)
		}
	}
}

func TestLogs(t *testing.T) {
	f := newFakeAgent(t)
	f.json("GET /containers/{id}/json", http.StatusOK, map[string]interface{}{"Id": testID, "Config": map[string]interface{}{"Tty": false}})
	f.handle("GET /containers/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		w.Write(frame(1, "one\n"))
		w.Write(frame(2, "two\n"))
	})
	r := moss("", "logs", "--tail", "2", "-t", "-f", "--since", "2013-01-02T13:23:37Z", "--until", "1700000000", "web")
	if r.code != 0 || r.stdout != "one\n" || r.stderr != "two\n" {
		t.Fatalf("%+v", r)
	}
	req, _ := f.find("GET", "/containers/web/logs")
	for k, v := range map[string]string{"tail": "2", "timestamps": "1", "follow": "1", "since": "1357133017.000000000", "until": "1700000000", "stdout": "1", "stderr": "1"} {
		if got := strings.Join(req.Query[k], ","); got != v {
			t.Errorf("query %s=%q, want %q", k, got, v)
		}
	}
	if r := moss("", "logs", "--since", "yesterday-ish", "web"); r.code != 1 || !strings.Contains(r.stderr, "--since") {
		t.Errorf("bad --since: %+v", r)
	}
}
