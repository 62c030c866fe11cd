package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/image"
)

func TestInspect(t *testing.T) {
	// Fields the client's types do not know and a large integer survive.
	containerJSON := `{"Id":"` + testID + `","Name":"/web","State":{"Status":"running","Pid":123456,"ExitCode":0},"MossExtra":{"z":1,"a":[1,2]},"SizeRw":9007199254740993}`
	imageJSON := `{"Id":"sha256:abc","RepoTags":["busybox:latest"],"Size":4261000}`
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{name: "raw array", args: []string{"inspect", "web"}, stdout: "[\n    {\n        \"Id\": \"" + testID + "\",\n        \"Name\": \"/web\",\n        \"State\": {\n            \"Status\": \"running\",\n            \"Pid\": 123456,\n            \"ExitCode\": 0\n        },\n        \"MossExtra\": {\n            \"z\": 1,\n            \"a\": [\n                1,\n                2\n            ]\n        },\n        \"SizeRw\": 9007199254740993\n    }\n]\n"},
		{name: "format", args: []string{"inspect", "-f", "{{.State.Status}} {{.Name}} {{.State.Pid}} {{if eq .State.ExitCode 0}}ok{{end}} {{.SizeRw}} {{json .MossExtra}} {{.Missing}}", "web"},
			stdout: "running /web 123456 ok 9007199254740993 {\"a\":[1,2],\"z\":1} <no value>\n"},
		{name: "image fallback", args: []string{"inspect", "--format", "{{index .RepoTags 0}} {{.Size}}", "busybox"}, stdout: "busybox:latest 4261000\n"},
		{name: "type image", args: []string{"inspect", "--type", "image", "-f", "{{.Id}}", "busybox"}, stdout: "sha256:abc\n"},
		{name: "image inspect", args: []string{"image", "inspect", "-f", "{{.Id}}", "busybox"}, stdout: "sha256:abc\n"},
		{name: "not found", args: []string{"inspect", "nope"}, code: 1, stdout: "[]\n", stderr: "Error: No such object: nope\n"},
		{name: "some found", args: []string{"inspect", "-f", "{{.Name}}", "nope", "web"}, code: 1, stdout: "/web\n", stderr: "Error: No such object: nope\n"},
		{name: "container type", args: []string{"container", "inspect", "busybox"}, code: 1, stdout: "[]\n", stderr: "Error: No such container: busybox\n"},
		{name: "bad template", args: []string{"inspect", "-f", "{{.Name", "web"}, code: 1, stderr: "template parsing error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAgent(t)
			f.handle("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
				if r.PathValue("id") != "web" {
					w.WriteHeader(http.StatusNotFound)
					json.NewEncoder(w).Encode(apiErr("No such container: " + r.PathValue("id")))
					return
				}
				io.WriteString(w, containerJSON)
			})
			f.handle("GET /images/{name}/json", func(w http.ResponseWriter, r *http.Request) {
				if r.PathValue("name") != "busybox" {
					w.WriteHeader(http.StatusNotFound)
					json.NewEncoder(w).Encode(apiErr("No such image: " + r.PathValue("name")))
					return
				}
				io.WriteString(w, imageJSON)
			})
			r := moss("", tc.args...)
			if r.code != tc.code || (tc.stdout != "" && r.stdout != tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d stdout:\n%s\nstderr: %q\nwant exit %d stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestImages(t *testing.T) {
	created := time.Now().Add(-3 * 24 * time.Hour).Unix()
	list := []image.Summary{
		{ID: "sha256:" + strings.Repeat("a", 64), RepoTags: []string{"docker.io/library/busybox:latest", "busybox:1.36", "registry:5000/x/y:2"},
			RepoDigests: []string{"busybox@sha256:" + strings.Repeat("d", 64)}, Created: created, Size: 4261000},
		{ID: "sha256:" + strings.Repeat("b", 64), Created: created, Size: 999},
	}
	cases := []struct {
		name  string
		args  []string
		want  string
		query map[string]string
	}{
		{name: "table", args: []string{"images"}, want: "" +
			"REPOSITORY          TAG       IMAGE ID       CREATED      SIZE\n" +
			"busybox             1.36      aaaaaaaaaaaa   3 days ago   4.26MB\n" +
			"busybox             latest    aaaaaaaaaaaa   3 days ago   4.26MB\n" +
			"registry:5000/x/y   2         aaaaaaaaaaaa   3 days ago   4.26MB\n" +
			"<none>              <none>    bbbbbbbbbbbb   3 days ago   999B\n"},
		{name: "quiet", args: []string{"images", "-q"}, want: "aaaaaaaaaaaa\naaaaaaaaaaaa\naaaaaaaaaaaa\nbbbbbbbbbbbb\n"},
		{name: "digests", args: []string{"images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}"}, want: "" +
			"busybox:1.36 sha256:" + strings.Repeat("d", 64) + "\n" +
			"busybox:latest sha256:" + strings.Repeat("d", 64) + "\n" +
			"registry:5000/x/y:2 <none>\n<none>:<none> <none>\n"},
		{name: "no-trunc", args: []string{"image", "ls", "--no-trunc", "--format", "{{.ID}}"}, want: "" +
			strings.Repeat("sha256:"+strings.Repeat("a", 64)+"\n", 3) + "sha256:" + strings.Repeat("b", 64) + "\n"},
		{name: "filters", args: []string{"images", "-a", "--filter", "dangling=true", "busy*"},
			query: map[string]string{"all": "1", "filters": `{"dangling":{"true":true},"reference":{"busy*":true}}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAgent(t)
			f.json("GET /images/json", http.StatusOK, list)
			r := moss("", tc.args...)
			if r.code != 0 || (tc.want != "" && r.stdout != tc.want) {
				t.Fatalf("exit %d output:\n%s\nwant:\n%s\nstderr %q", r.code, r.stdout, tc.want, r.stderr)
			}
			req, _ := f.find("GET", "/images/json")
			for k, v := range tc.query {
				if got := strings.Join(req.Query[k], ","); got != v {
					t.Errorf("query %s=%q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestRmiAndTag(t *testing.T) {
	f := newFakeAgent(t)
	f.handle("DELETE /images/{name...}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") == "nope" {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(apiErr("No such image: nope"))
			return
		}
		json.NewEncoder(w).Encode([]image.DeleteResponse{{Untagged: r.PathValue("name")}, {Deleted: "sha256:abc"}})
	})
	f.handle("POST /images/{name...}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	r := moss("", "rmi", "busybox:latest", "nope")
	if r.code != 1 || r.stdout != "Untagged: busybox:latest\nDeleted: sha256:abc\n" || r.stderr != "Error response from daemon: No such image: nope\n" {
		t.Fatalf("%+v", r)
	}
	if r := moss("", "tag", "busybox", "registry:5000/me/box:v1"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	req, ok := f.find("POST", "/images/busybox/tag")
	if !ok || req.Query["repo"][0] != "registry:5000/me/box" || req.Query["tag"][0] != "v1" {
		t.Fatalf("tag request %+v (%v)", req, f.calls())
	}
}

func TestImportLoadSave(t *testing.T) {
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "rootfs.tar")
	os.WriteFile(tarPath, []byte("TARDATA"), 0o644)
	f := newFakeAgent(t)
	f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"sha256:`+strings.Repeat("e", 64)+`"}`+"\n")
	})
	f.handle("POST /images/load", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) == "BAD" {
			io.WriteString(w, `{"errorDetail":{"message":"not a docker-archive or oci-archive"},"error":"not a docker-archive or oci-archive"}`+"\n")
			return
		}
		io.WriteString(w, `{"stream":"Loaded image: busybox:latest\n"}`+"\n")
	})
	f.handle("GET /images/get", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ARCHIVE") })

	r := moss("", "import", "-c", "CMD [\"sh\"]", "-c", "ENV A=1", "-m", "hello", tarPath, "mine:1")
	if r.code != 0 || r.stdout != "sha256:"+strings.Repeat("e", 64)+"\n" {
		t.Fatalf("import: %+v", r)
	}
	req, _ := f.find("POST", "/images/create")
	want := map[string][]string{"fromSrc": {"-"}, "repo": {"mine"}, "tag": {"1"}, "changes": {`CMD ["sh"]`, "ENV A=1"}, "message": {"hello"}}
	if !reflect.DeepEqual(req.Query, want) || string(req.Body) != "TARDATA" {
		t.Fatalf("import request %v %q", req.Query, req.Body)
	}
	if r := moss("STDINTAR", "import", "-"); r.code != 0 {
		t.Fatalf("import -: %+v", r)
	}
	if reqs := f.requests(); string(reqs[len(reqs)-1].Body) != "STDINTAR" {
		t.Fatalf("import - body %q", reqs[len(reqs)-1].Body)
	}

	if r := moss("GOOD", "load"); r.code != 0 || r.stdout != "Loaded image: busybox:latest\n" {
		t.Fatalf("load: %+v", r)
	}
	req, _ = f.find("POST", "/images/load")
	if req.Query["quiet"][0] != "1" {
		t.Fatalf("load query %v", req.Query)
	}
	bad := filepath.Join(dir, "bad.tar")
	os.WriteFile(bad, []byte("BAD"), 0o644)
	if r := moss("", "load", "-i", bad); r.code != 1 || r.stderr != "moss: not a docker-archive or oci-archive\n" {
		t.Fatalf("load of a bad archive: %+v", r)
	}

	out := filepath.Join(dir, "out.tar")
	if r := moss("", "save", "-o", out, "--format", "oci-archive", "a", "b"); r.code != 0 {
		t.Fatalf("save: %+v", r)
	}
	if data, _ := os.ReadFile(out); string(data) != "ARCHIVE" {
		t.Fatalf("saved %q", data)
	}
	req, _ = f.find("GET", "/images/get")
	if !reflect.DeepEqual(req.Query["names"], []string{"a", "b"}) || req.Query["format"][0] != "oci-archive" {
		t.Fatalf("save query %v", req.Query)
	}
	if r := moss("", "save", "a"); r.code != 0 || r.stdout != "ARCHIVE" {
		t.Fatalf("save to stdout: %+v", r)
	}
}
