package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// pullStream is what the agent streams for a two-layer pull.
var pullStream = strings.Join([]string{
	`{"status":"Pulling from foo","id":"latest"}`,
	`{"status":"Already exists","progressDetail":{},"id":"aaaaaaaaaaaa"}`,
	`{"status":"Pulling fs layer","progressDetail":{},"id":"bbbbbbbbbbbb"}`,
	`{"status":"Downloading","progressDetail":{"current":512,"total":2048},"progress":"[==>  ]","id":"bbbbbbbbbbbb"}`,
	`{"status":"Download complete","progressDetail":{},"id":"bbbbbbbbbbbb"}`,
	`{"status":"Pull complete","progressDetail":{},"id":"bbbbbbbbbbbb"}`,
	`{"status":"Digest: sha256:dd"}`,
	`{"status":"Status: Downloaded newer image for 127.0.0.1:5000/foo:latest"}`,
	`{"progressDetail":{},"aux":{"Name":"127.0.0.1:5000/foo:latest","ID":"sha256:ii"}}`,
}, "\n") + "\n"

func TestPull(t *testing.T) {
	t.Setenv("REGISTRY_AUTH_FILE", "")
	cases := []struct {
		name   string
		args   []string
		env    string // REGISTRY_AUTH_FILE
		code   int
		stdout string
		stderr string
		query  map[string]string
	}{
		{name: "plain", args: []string{"pull", "127.0.0.1:5000/foo"},
			query: map[string]string{"fromImage": "127.0.0.1:5000/foo", "tag": "latest"},
			stdout: "Using default tag: latest\nlatest: Pulling from foo\naaaaaaaaaaaa: Already exists\nbbbbbbbbbbbb: Pulling fs layer\n" +
				"bbbbbbbbbbbb: Download complete\nbbbbbbbbbbbb: Pull complete\nDigest: sha256:dd\n" +
				"Status: Downloaded newer image for 127.0.0.1:5000/foo:latest\n127.0.0.1:5000/foo:latest\n"},
		{name: "quiet", args: []string{"pull", "-q", "127.0.0.1:5000/foo:1"}, query: map[string]string{"fromImage": "127.0.0.1:5000/foo:1", "tag": ""},
			stdout: "127.0.0.1:5000/foo:latest\n"},
		{name: "digest", args: []string{"image", "pull", "-q", "reg.lan/foo@sha256:" + strings.Repeat("a", 64)},
			query: map[string]string{"fromImage": "reg.lan/foo@sha256:" + strings.Repeat("a", 64), "tag": ""}},
		{name: "platform and all tags", args: []string{"pull", "-q", "-a", "--platform", "linux/arm64", "reg.lan/foo"},
			query: map[string]string{"fromImage": "reg.lan/foo", "tag": "", "platform": "linux/arm64"}},
		{name: "authfile", args: []string{"pull", "-q", "--authfile", "/tmp/a.json", "reg.lan/foo"}, query: map[string]string{"authfile": "/tmp/a.json"}},
		{name: "authfile from env", args: []string{"pull", "-q", "reg.lan/foo"}, env: "/tmp/env.json", query: map[string]string{"authfile": "/tmp/env.json"}},
		{name: "all tags with a tag", args: []string{"pull", "-a", "reg.lan/foo:1"}, code: 125, stderr: "tag can't be used with --all-tags"},
		{name: "no name", args: []string{"pull"}, code: 1, stderr: "requires exactly 1 argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("REGISTRY_AUTH_FILE", tc.env)
			f := newFakeAgent(t)
			f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, pullStream)
			})
			r := moss("", tc.args...)
			if r.code != tc.code || (tc.stdout != "" && r.stdout != tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d stdout:\n%s\nstderr: %q\nwant exit %d stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
			if tc.query == nil {
				return
			}
			req, ok := f.find("POST", "/images/create")
			if !ok {
				t.Fatalf("no pull request: %v", f.calls())
			}
			for k, v := range tc.query {
				if got := strings.Join(req.Query[k], ","); got != v {
					t.Errorf("query %s=%q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestPullErrors(t *testing.T) {
	f := newFakeAgent(t)
	f.json("POST /images/create", http.StatusUnauthorized, apiErr("pull reg.lan/foo:latest: unauthorized: reg.lan needs credentials"))
	r := moss("", "pull", "reg.lan/foo")
	if r.code != 1 || !strings.Contains(r.stderr, "Error response from daemon: pull reg.lan/foo:latest: unauthorized") {
		t.Fatalf("401: exit %d stderr %q", r.code, r.stderr)
	}
	f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"Pulling from foo","id":"latest"}`+"\n"+`{"errorDetail":{"message":"no data from registry reg.lan for 1m0s"},"error":"no data from registry reg.lan for 1m0s"}`+"\n")
	})
	r = moss("", "pull", "reg.lan/foo")
	if r.code != 1 || r.stderr != "moss: no data from registry reg.lan for 1m0s\n" || !strings.Contains(r.stdout, "latest: Pulling from foo") {
		t.Fatalf("stream error: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestProgressTerminal: on a terminal each layer keeps its line, redrawn
// in place with a bar; other lines end the block.
func TestProgressTerminal(t *testing.T) {
	var out bytes.Buffer
	p := &progress{w: &out, tty: true, width: 100}
	for _, l := range strings.Split(strings.TrimSpace(pullStream), "\n") {
		var m progressMsg
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Aux) == 0 {
			p.show(m)
		}
	}
	got := out.String()
	for _, want := range []string{
		"latest: Pulling from foo\n",
		"\r\x1b[2Kaaaaaaaaaaaa: Already exists\n",
		"\r\x1b[2Kbbbbbbbbbbbb: Pulling fs layer\n",
		// one line up: bbbb's line, redrawn with its bar
		"\x1b[1A\r\x1b[2Kbbbbbbbbbbbb: Downloading [============>",
		"512B/2.05kB\r\x1b[1B",
		"\x1b[1A\r\x1b[2Kbbbbbbbbbbbb: Pull complete\r\x1b[1B",
		"Digest: sha256:dd\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, got)
		}
	}
	if line := p.layerLine(progressMsg{ID: "cccccccccccc", Status: "Downloading", ProgressDetail: &struct {
		Current int64 `json:"current"`
		Total   int64 `json:"total"`
	}{1 << 20, 4 << 20}}); len(line) >= 100 {
		t.Errorf("a layer line is wider than the terminal: %q", line)
	}
}

func TestPromptChoice(t *testing.T) {
	var errb bytes.Buffer
	a := &app{errw: &errb, in: strings.NewReader("7\nx\n2\n")}
	got, err := a.promptChoice("busybox", []string{"a.example/busybox:latest", "b.example/busybox:latest"})
	if err != nil || got != "b.example/busybox:latest" {
		t.Fatalf("choice %q, %v", got, err)
	}
	if !strings.Contains(errb.String(), "1) a.example/busybox:latest") || strings.Count(errb.String(), "Select an image [1-2]") != 3 {
		t.Fatalf("prompt:\n%s", errb.String())
	}
	a = &app{errw: &errb, in: strings.NewReader("")}
	if _, err := a.promptChoice("busybox", []string{"a", "b"}); err == nil {
		t.Fatal("no answer chose something")
	}
}

func TestPush(t *testing.T) {
	t.Setenv("REGISTRY_AUTH_FILE", "")
	stream := strings.Join([]string{
		`{"status":"The push refers to repository [127.0.0.1:5000/foo]"}`,
		`{"status":"Preparing","progressDetail":{},"id":"aaaaaaaaaaaa"}`,
		`{"status":"Pushing","progressDetail":{"current":1,"total":2},"id":"aaaaaaaaaaaa"}`,
		`{"status":"Pushed","progressDetail":{},"id":"aaaaaaaaaaaa"}`,
		`{"status":"1: digest: sha256:dd size: 528"}`,
		`{"progressDetail":{},"aux":{"Tag":"1","Digest":"sha256:dd","Size":528}}`,
	}, "\n") + "\n"
	f := newFakeAgent(t)
	f.handle("POST /images/{name...}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, stream) })
	r := moss("", "push", "127.0.0.1:5000/foo:1")
	want := "The push refers to repository [127.0.0.1:5000/foo]\naaaaaaaaaaaa: Preparing\naaaaaaaaaaaa: Pushed\n1: digest: sha256:dd size: 528\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("exit %d stdout:\n%s\nwant:\n%s\nstderr %q", r.code, r.stdout, want, r.stderr)
	}
	req, ok := f.find("POST", "/images/127.0.0.1:5000/foo/push")
	if !ok || strings.Join(req.Query["tag"], ",") != "1" {
		t.Fatalf("push request: %+v (%v)", req, f.calls())
	}
	if r := moss("", "push", "-q", "127.0.0.1:5000/foo"); r.code != 0 || r.stdout != "127.0.0.1:5000/foo:latest\n" {
		t.Fatalf("push -q: exit %d stdout %q", r.code, r.stdout)
	}
	if r := moss("", "push", "-a", "-q", "127.0.0.1:5000/foo"); r.code != 0 {
		t.Fatalf("push -a: exit %d stderr %q", r.code, r.stderr)
	}
	if req := f.requests()[len(f.requests())-1]; req.Path != "/images/127.0.0.1:5000/foo/push" || len(req.Query["tag"]) != 0 {
		t.Fatalf("push -a sent %+v", req)
	}
	for _, bad := range [][]string{{"push", "-a", "reg.lan/foo:1"}, {"push", "reg.lan/foo@sha256:" + strings.Repeat("a", 64)}} {
		if r := moss("", bad...); r.code == 0 {
			t.Errorf("%v: exit 0", bad)
		}
	}
}
