package agent

import (
	"fmt"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/moss-containers/moss/agent/spec"
)

func TestParseFilters(t *testing.T) {
	cases := map[string]map[string][]string{
		``:                                {},
		`{"status":["running","exited"]}`: {"status": {"running", "exited"}},
		`{"label":{"a=b":true}}`:          {"label": {"a=b"}},
	}
	for raw, want := range cases {
		r := httptest.NewRequest("GET", "/containers/json", nil)
		q := r.URL.Query()
		if raw != "" {
			q.Set("filters", raw)
		}
		r.URL.RawQuery = q.Encode()
		got, err := parseFilters(r)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, %v", raw, got, err)
		}
	}
	r := httptest.NewRequest("GET", "/containers/json?filters=%7Bbad", nil)
	if _, err := parseFilters(r); err == nil {
		t.Error("malformed filters accepted")
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"":                            {},
		"1700000000":                  time.Unix(1700000000, 0),
		"1700000000.5":                time.Unix(1700000000, 500000000),
		"2026-01-02T03:04:05Z":        time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"2026-01-02T03:04:05.1+01:00": time.Date(2026, 1, 2, 2, 4, 5, 100000000, time.UTC),
	} {
		got, err := parseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: got %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseTime("yesterday"); err == nil {
		t.Error("bad time accepted")
	}
}

func TestParseChanges(t *testing.T) {
	ic, err := parseChanges([]string{`CMD ["/bin/sh","-c","echo hi"]`, "ENV A=1", "ENV B 2", "WORKDIR /w", "USER nobody", `LABEL k="v"`, "ENTRYPOINT top -b", "EXPOSE 80 53/udp", `VOLUME ["/a", "/b"]`, "VOLUME /c", "STOPSIGNAL SIGINT"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ic.Cmd, []string{"/bin/sh", "-c", "echo hi"}) || !reflect.DeepEqual(ic.Entrypoint, []string{"/bin/sh", "-c", "top -b"}) {
		t.Fatalf("cmd %v entrypoint %v", ic.Cmd, ic.Entrypoint)
	}
	if !reflect.DeepEqual(ic.Env, []string{"A=1", "B=2"}) || ic.WorkingDir != "/w" || ic.User != "nobody" || ic.Labels["k"] != "v" {
		t.Fatalf("%+v", ic)
	}
	if len(ic.Volumes) != 3 || len(ic.ExposedPorts) != 2 || ic.StopSignal != "SIGINT" {
		t.Fatalf("volumes %v ports %v stop signal %q", ic.Volumes, ic.ExposedPorts, ic.StopSignal)
	}
	if _, ok := ic.ExposedPorts["80/tcp"]; !ok {
		t.Fatalf("ports %v", ic.ExposedPorts)
	}
	if _, err := parseChanges([]string{"VOLUME relative"}); err == nil {
		t.Fatal("a relative VOLUME accepted")
	}
	if _, err := parseChanges([]string{"FROM x"}); err == nil {
		t.Fatal("FROM accepted as a change")
	}
}

func TestMergeEnv(t *testing.T) {
	got := spec.MergeEnv([]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3"})
	if !reflect.DeepEqual(got, []string{"PATH=/bin", "A=2", "B=3"}) {
		t.Fatal(got)
	}
	if err := validateEnv([]string{"=x"}); err == nil {
		t.Fatal("empty variable name accepted")
	}
}

func TestVersionLess(t *testing.T) {
	if !versionLess("1.12", "1.24") || versionLess("1.47", "1.24") || versionLess("1.24", "1.24") || !versionLess("0.9", "1.0") {
		t.Fatal("versionLess")
	}
}

func TestValidateHostLogOptions(t *testing.T) {
	ok := &container.HostConfig{LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}}}
	if err := validateHost(ok); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]string{{"max-size": "big"}, {"max-file": "0"}, {"compress": "true"}} {
		if err := validateHost(&container.HostConfig{LogConfig: container.LogConfig{Config: bad}}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if err := validateHost(&container.HostConfig{LogConfig: container.LogConfig{Type: "syslog"}}); err == nil {
		t.Error("syslog accepted")
	}
	if parseSize("2k") != 2048 || parseSize("1x") != 0 {
		t.Error("parseSize")
	}
}

func TestParsePS(t *testing.T) {
	out := "UID          PID    PPID  C STIME TTY          TIME CMD\n" +
		"root           1       0  0 08:00 ?        00:00:00 /sbin/init splash\n" +
		"100000      4242    4200  0 08:01 ?        00:00:00 sleep 1000\n" +
		"100000      4243    4242  0 08:01 pts/0    00:00:00 sh -c echo a  b\n"
	top, err := parsePS(out, map[int]bool{4242: true, 4243: true})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"100000", "4242", "4200", "0", "08:01", "?", "00:00:00", "sleep 1000"},
		{"100000", "4243", "4242", "0", "08:01", "pts/0", "00:00:00", "sh -c echo a b"},
	}
	if !reflect.DeepEqual(top.Processes, want) || len(top.Titles) != 8 {
		t.Fatalf("%q %q", top.Titles, top.Processes)
	}
	if _, err := parsePS("USER COMMAND\nroot init\n", nil); err == nil {
		t.Fatal("ps output without a PID column accepted")
	}
}

func TestPruneExecs(t *testing.T) {
	a := &Agent{execs: map[string]*execInstance{}}
	c, other := &Container{}, &Container{}
	base := time.Now()
	for i := 0; i < execsKept+10; i++ {
		e := &execInstance{ID: fmt.Sprint("e", i), c: c, done: make(chan struct{}), ended: base.Add(time.Duration(i) * time.Second)}
		close(e.done)
		a.execs[e.ID] = e
	}
	running := &execInstance{ID: "running", c: c, done: make(chan struct{})}
	a.execs["running"] = running
	a.execs["other"] = &execInstance{ID: "other", c: other, done: make(chan struct{})}
	a.pruneExecs(c)
	if len(a.execs) != execsKept+2 {
		t.Fatalf("%d exec instances left, want %d", len(a.execs), execsKept+2)
	}
	for i := 0; i < 10; i++ {
		if _, ok := a.execs[fmt.Sprint("e", i)]; ok {
			t.Errorf("e%d, one of the oldest, was kept", i)
		}
	}
	if a.execs["running"] == nil || a.execs["other"] == nil || a.execs[fmt.Sprint("e", execsKept+9)] == nil {
		t.Error("a running, another container's or the newest exec was dropped")
	}
}

func TestEventRing(t *testing.T) {
	var b eventBus
	for i := 0; i < eventRecent+5; i++ {
		b.publish(eventMessage{ID: fmt.Sprint(i)})
	}
	past, ch := b.subscribe()
	defer b.unsubscribe(ch)
	if len(past) != eventRecent || past[0].ID != "5" || past[len(past)-1].ID != fmt.Sprint(eventRecent+4) {
		t.Fatalf("%d recent events from %s to %s", len(past), past[0].ID, past[len(past)-1].ID)
	}
}
