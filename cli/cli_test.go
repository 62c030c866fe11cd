package cli

import (
	"bytes"
	"encoding/binary"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func frame(stream byte, s string) []byte {
	h := make([]byte, 8)
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
	return append(h, s...)
}

func TestDemux(t *testing.T) {
	in := append(append(frame(1, "out1\n"), frame(2, "err\n")...), frame(1, "out2\n")...)
	var out, errb bytes.Buffer
	if err := demux(bytes.NewReader(in), &out, &errb); err != nil {
		t.Fatal(err)
	}
	if out.String() != "out1\nout2\n" || errb.String() != "err\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
	if err := demux(bytes.NewReader(frame(1, "truncated")[:12]), &out, &errb); err == nil {
		t.Fatal("truncated frame accepted")
	}
}

func TestParseEnv(t *testing.T) {
	os.Setenv("MOSS_TEST_FROM_HOST", "h")
	dir := t.TempDir()
	f := dir + "/env"
	os.WriteFile(f, []byte("# comment\nFILE=1\n\nMOSS_TEST_UNSET_XYZ\n"), 0o644)
	got, err := parseEnv([]string{"A=1", "MOSS_TEST_FROM_HOST", "EMPTY="}, []string{f})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"FILE=1", "A=1", "MOSS_TEST_FROM_HOST=h", "EMPTY="}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for _, bad := range []string{"=x", "A B=1"} {
		if _, err := parseEnv([]string{bad}, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRequest(t *testing.T) {
	o := &runOptions{rm: true, name: "n", entrypoint: "/bin/echo", user: "www", workdir: "/w", stopTimeout: 3,
		env: []string{"A=1"}, labels: []string{"k=v"}, capDrop: []string{"ALL"}, network: "none", logOpt: []string{"max-size=1m"}}
	req, err := o.request("img", []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	c, h := req.Config, req.HostConfig
	if c.Image != "img" || !reflect.DeepEqual(c.Cmd, []string{"a", "b"}) || !reflect.DeepEqual(c.Entrypoint, []string{"/bin/echo"}) ||
		c.User != "www" || c.WorkingDir != "/w" || *c.StopTimeout != 3 || c.Labels["k"] != "v" || c.Env[0] != "A=1" {
		t.Fatalf("config %+v", c)
	}
	if !h.AutoRemove || h.NetworkMode != "none" || h.CapDrop[0] != "ALL" || h.LogConfig.Config["max-size"] != "1m" {
		t.Fatalf("host config %+v", h)
	}
	if _, err := (&runOptions{logOpt: []string{"novalue"}, stopTimeout: -1}).request("i", nil); err == nil {
		t.Fatal("bad --log-opt accepted")
	}
}

func TestSplitRepoTagAndFilters(t *testing.T) {
	for in, want := range map[string][2]string{"a": {"a", ""}, "a:1": {"a", "1"}, "host:5000/a": {"host:5000/a", ""}, "host:5000/a:2": {"host:5000/a", "2"}} {
		r, tag := splitRepoTag(in)
		if r != want[0] || tag != want[1] {
			t.Errorf("%s: %s %s", in, r, tag)
		}
	}
	q := filterQuery([]string{"status=running", "label=a=b", "status=exited"})
	if got := q.Get("filters"); got != `{"label":["a=b"],"status":["running","exited"]}` {
		t.Fatalf("filters %s", got)
	}
	if len(filterQuery(nil)) != 0 {
		t.Fatal("empty filters encoded")
	}
	_ = url.Values{}
}

func TestRender(t *testing.T) {
	var buf bytes.Buffer
	rows := []interface{}{map[string]string{"ID": "abc", "Names": "web"}, map[string]string{"ID": "defgh", "Names": "db"}}
	if err := render(&buf, "table {{.ID}}\t{{.Names}}", rows, map[string]string{"ID": "CONTAINER ID", "Names": "NAMES"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "CONTAINER ID   NAMES") || !strings.HasPrefix(lines[2], "defgh") {
		t.Fatalf("table:\n%s", buf.String())
	}
	buf.Reset()
	if err := render(&buf, "{{json .}}", rows[:1], nil); err != nil || buf.String() != `{"ID":"abc","Names":"web"}`+"\n" {
		t.Fatalf("json: %q %v", buf.String(), err)
	}
	if err := render(&buf, "{{.ID", rows, nil); err == nil {
		t.Fatal("bad template accepted")
	}
	if humanSize(2127000) != "2.127MB" || humanSize(999) != "999B" {
		t.Fatalf("humanSize %s %s", humanSize(2127000), humanSize(999))
	}
}

func TestRowJSON(t *testing.T) {
	var buf bytes.Buffer
	rows := []interface{}{psRow{s: container.Summary{ID: strings.Repeat("a", 64), Names: []string{"/web"}, State: "running", Command: "sh"}}}
	if err := render(&buf, "json", rows, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"ID":"aaaaaaaaaaaa"`, `"Names":"web"`, `"State":"running"`} {
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("%s lacks %s", buf.String(), want)
		}
	}
}
