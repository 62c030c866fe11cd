package cli

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/image"
)

func TestCommit(t *testing.T) {
	f := newFakeAgent(t)
	f.json("POST /commit", http.StatusCreated, map[string]interface{}{"Id": "sha256:abc", "Warnings": []string{"not paused"}})
	r := moss("", "commit", "-a", "Me", "-m", "msg", "-c", "CMD [\"sh\"]", "-c", "ENV A=1", "web", "localhost:5000/x/y:v1")
	if r.code != 0 || r.stdout != "sha256:abc\n" || r.stderr != "WARNING: not paused\n" {
		t.Fatalf("%+v", r)
	}
	req, _ := f.find("POST", "/commit")
	want := map[string][]string{
		"container": {"web"}, "repo": {"localhost:5000/x/y"}, "tag": {"v1"}, "author": {"Me"}, "comment": {"msg"},
		"changes": {`CMD ["sh"]`, "ENV A=1"}, "pause": {"1"},
	}
	if !reflect.DeepEqual(req.Query, want) {
		t.Errorf("query %v, want %v", req.Query, want)
	}
	// container commit, without a name, not paused.
	f.json("POST /commit", http.StatusCreated, map[string]interface{}{"Id": "sha256:def"})
	r = moss("", "container", "commit", "--pause=false", "web")
	if r.code != 0 || r.stdout != "sha256:def\n" || r.stderr != "" {
		t.Fatalf("%+v", r)
	}
	if q := url.Values(f.requests()[len(f.requests())-1].Query); q.Get("pause") != "0" || q.Get("repo") != "" {
		t.Errorf("query %v", q)
	}
	f.json("POST /commit", http.StatusNotFound, apiErr("No such container: nope"))
	if r = moss("", "commit", "nope"); r.code != 1 || r.stderr != "Error response from daemon: No such container: nope\n" {
		t.Errorf("missing container: %+v", r)
	}
	if r = moss("", "commit"); r.code != 1 || !strings.Contains(r.stderr, "requires at least 1 and at most 2 arguments") {
		t.Errorf("no arguments: %+v", r)
	}
}

func TestHistory(t *testing.T) {
	now := time.Now().Add(-2 * time.Hour).Unix()
	items := []historyItem{
		{ID: "sha256:" + strings.Repeat("c", 64), Created: now, CreatedBy: "sh -c echo\thi > /x && and a long command line that goes on", Size: 12, Comment: "changed", Tags: []string{"x:1"}},
		{ID: "<missing>", Created: 0, CreatedBy: "moss import", Size: 2140160},
	}
	f := newFakeAgent(t)
	f.json("GET /images/{name...}", http.StatusOK, items)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"history", "x:1"}, "" +
			"IMAGE          CREATED       CREATED BY                                      SIZE      COMMENT\n" +
			"cccccccccccc   2 hours ago   sh -c echo hi > /x && and a long command lin…   12B       changed\n" +
			"<missing>                    moss import                                     2.14MB    \n"},
		{[]string{"history", "-q", "x:1"}, "cccccccccccc\n<missing>\n"},
		{[]string{"image", "history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}", "x:1"},
			"sha256:" + strings.Repeat("c", 64) + "|sh -c echo hi > /x && and a long command line that goes on|12B\n<missing>|moss import|2.14MB\n"},
		{[]string{"history", "--human=false", "--format", "{{.Size}} {{.CreatedSince}}", "x:1"}, "12 " + time.Unix(now, 0).Format(time.RFC3339) + "\n2140160 " + time.Unix(0, 0).Format(time.RFC3339) + "\n"},
	}
	for _, tc := range cases {
		r := moss("", tc.args...)
		if r.code != 0 || r.stdout != tc.want {
			t.Errorf("%v: %+v\nwant:\n%s", tc.args, r, tc.want)
		}
	}
	req, _ := f.find("GET", "/images/x:1/history")
	if req.Method == "" {
		t.Errorf("requests %v", f.calls())
	}
	r := moss("", "history", "--format", "json", "x:1")
	var m map[string]string
	if err := json.Unmarshal([]byte(strings.Split(r.stdout, "\n")[0]), &m); err != nil || m["ID"] != "cccccccccccc" || m["Comment"] != "changed" {
		t.Errorf("json: %q, %v", r.stdout, err)
	}
}

func TestImagePrune(t *testing.T) {
	rep := image.PruneReport{ImagesDeleted: []image.DeleteResponse{{Untagged: "x:1"}, {Deleted: "sha256:abc"}}, SpaceReclaimed: 4261000}
	cases := []struct {
		stdin  string
		args   []string
		pruned bool
		prompt string
		filter string
	}{
		{"n\n", nil, false, "WARNING! This will remove all dangling images.", ""},
		{"y\n", []string{"-a"}, true, "WARNING! This will remove all images without at least one container associated to them.", `"dangling":{"false":true}`},
		{"", []string{"-f", "--filter", "until=24h", "--filter", "label=a=b"}, true, "", `"until":{"24h":true}`},
	}
	for _, tc := range cases {
		f := newFakeAgent(t)
		f.json("POST /images/prune", http.StatusOK, rep)
		r := moss(tc.stdin, append([]string{"image", "prune"}, tc.args...)...)
		req, pruned := f.find("POST", "/images/prune")
		if r.code != 0 || pruned != tc.pruned {
			t.Fatalf("%v: %+v pruned %v", tc.args, r, pruned)
		}
		if tc.prompt != "" && !strings.HasPrefix(r.stdout, tc.prompt+"\nAre you sure you want to continue? [y/N] ") {
			t.Errorf("prompt %q", r.stdout)
		}
		if !pruned {
			continue
		}
		if !strings.HasSuffix(r.stdout, "Deleted Images:\nuntagged: x:1\ndeleted: sha256:abc\n\nTotal reclaimed space: 4.261MB\n") {
			t.Errorf("output %q", r.stdout)
		}
		if fl := req.Query["filters"]; len(fl) != 1 || !strings.Contains(fl[0], tc.filter) || tc.filter == "" {
			if tc.filter != "" {
				t.Errorf("filters %v, want %s", fl, tc.filter)
			}
		}
	}
}
