package agent

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moss-containers/moss/agent/jsonlog"
)

// frames splits a multiplexed stream.
func frames(t *testing.T, b []byte) (ids []byte, payloads [][]byte) {
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatalf("short header %q", b)
		}
		n := int(binary.BigEndian.Uint32(b[4:8]))
		if len(b) < 8+n {
			t.Fatalf("short frame: %d of %d bytes", len(b)-8, n)
		}
		ids = append(ids, b[0])
		payloads = append(payloads, b[8:8+n])
		b = b[8+n:]
	}
	return ids, payloads
}

func TestLogWriterBatches(t *testing.T) {
	var out bytes.Buffer
	w := newLogWriter(&out, false, false)
	type ent struct {
		stream string
		log    string
	}
	var in []ent
	big := strings.Repeat("b", 100<<10) + "\n"
	for i := 0; i < 5000; i++ {
		s := "stdout"
		if i%7 == 3 || i%7 == 4 {
			s = "stderr"
		}
		l := fmt.Sprintf("line %d\n", i)
		if i%1000 == 999 {
			l = big
		}
		in = append(in, ent{s, l})
	}
	for _, e := range in {
		if err := w.write(&jsonlog.Raw{Log: []byte(e.log), Stream: e.stream}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	ids, payloads := frames(t, out.Bytes())
	// The concatenation of the frames of each run of a stream is its
	// entries, in order; consecutive frames of a stream only when the
	// first was full.
	var got []ent
	for i, p := range payloads {
		if len(p) > maxFrame && strings.Count(string(p), "\n") != 1 {
			t.Fatalf("frame %d of %d bytes holds several entries", i, len(p))
		}
		s := map[byte]string{1: "stdout", 2: "stderr"}[ids[i]]
		for _, l := range strings.SplitAfter(string(p), "\n") {
			if l != "" {
				got = append(got, ent{s, l})
			}
		}
		if i > 0 && ids[i] == ids[i-1] && len(payloads[i-1])+len(strings.SplitAfter(string(p), "\n")[0]) <= maxFrame {
			t.Fatalf("frame %d could have joined the one before", i)
		}
	}
	if len(got) != len(in) {
		t.Fatalf("%d entries out of %d", len(got), len(in))
	}
	for i := range in {
		if got[i] != in[i] {
			t.Fatalf("entry %d: %q, want %q", i, got[i], in[i])
		}
	}
	if len(payloads) > 5000/7*2+20 {
		t.Fatalf("%d frames for 5000 entries", len(payloads))
	}
}

func TestLogWriterTimestamps(t *testing.T) {
	var out bytes.Buffer
	w := newLogWriter(&out, true, false)
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 5, time.FixedZone("x", 3600))
	w.write(&jsonlog.Raw{Log: []byte("a\n"), Stream: "stdout", Time: t0})
	w.write(&jsonlog.Raw{Log: []byte("b\n"), Stream: "stdout", Time: t0.Add(time.Second)})
	w.write(&jsonlog.Raw{Log: []byte("c\n"), Stream: "stderr", Time: t0})
	w.flush()
	ids, payloads := frames(t, out.Bytes())
	if string(ids) != "\x01\x02" || string(payloads[0]) != "2026-12-01T07:00:00.000000005Z a\n2026-12-01T07:00:01.000000005Z b\n" ||
		string(payloads[1]) != "2026-12-01T07:00:00.000000005Z c\n" {
		t.Fatalf("%q %q", ids, payloads)
	}
}

// streamLogs over HTTP with --tail and --since/--until stays exact.
func TestStreamLogsOptions(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.log")
	var buf bytes.Buffer
	base := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	type ent struct {
		Log    string    `json:"log"`
		Stream string    `json:"stream"`
		Time   time.Time `json:"time"`
	}
	var all []ent
	for i := 0; i < 20000; i++ {
		s := "stdout"
		if i%5 == 0 {
			s = "stderr"
		}
		e := ent{fmt.Sprintf("%d %s\n", i, strings.Repeat("x", i%50)), s, base.Add(time.Duration(i) * time.Millisecond)}
		all = append(all, e)
		line, _ := json.Marshal(e)
		buf.Write(line)
		buf.WriteByte('\n')
	}
	os.WriteFile(src, buf.Bytes(), 0o600)
	_, srv := newLogsAgent(t, src)
	defer srv.Close()
	get := func(q string) (stdout, stderr string) {
		resp, err := http.Get(srv.URL + "/containers/" + fmt.Sprintf("%064d", 1) + "/logs?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ids, payloads := frames(t, b)
		var o, e strings.Builder
		for i, p := range payloads {
			if ids[i] == 1 {
				o.Write(p)
			} else {
				e.Write(p)
			}
		}
		return o.String(), e.String()
	}
	want := func(from, to int, stream string) string {
		var b strings.Builder
		for _, e := range all[from:to] {
			if stream == "" || e.Stream == stream {
				b.WriteString(e.Log)
			}
		}
		return b.String()
	}
	if o, e := get("stdout=1&stderr=1"); o != want(0, len(all), "stdout") || e != want(0, len(all), "stderr") {
		t.Fatalf("all: %d/%d bytes", len(o), len(e))
	}
	if o, e := get("stdout=1&stderr=1&tail=7"); o != want(len(all)-7, len(all), "stdout") || e != want(len(all)-7, len(all), "stderr") {
		t.Fatalf("tail: %q %q", o, e)
	}
	if o, e := get("stdout=1&tail=all"); o != want(0, len(all), "stdout") || e != "" {
		t.Fatalf("stdout only: %d/%d bytes", len(o), len(e))
	}
	since := base.Add(12345 * time.Millisecond)
	until := base.Add(15000 * time.Millisecond)
	q := fmt.Sprintf("stdout=1&stderr=1&since=%d.%09d&until=%d.%09d", since.Unix(), since.Nanosecond(), until.Unix(), until.Nanosecond())
	if o, e := get(q); o != want(12345, 15001, "stdout") || e != want(12345, 15001, "stderr") {
		t.Fatalf("since/until: %d/%d bytes", len(o), len(e))
	}
}

// A TTY container's log goes out raw, as Docker's.
func TestStreamLogsTTY(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.log")
	os.WriteFile(src, []byte(`{"log":"hi\r\n","stream":"stdout","time":"2026-12-01T09:53:07.155102314Z"}`+"\n"+
		`{"log":"there\r\n","stream":"stdout","time":"2026-12-01T09:53:07.155182816Z"}`+"\n"), 0o600)
	a, srv := newLogsAgent(t, src)
	defer srv.Close()
	id := fmt.Sprintf("%064d", 1)
	a.containers[id].Config = &container.Config{Tty: true}
	for q, want := range map[string]string{
		"stdout=1&stderr=1":              "hi\r\nthere\r\n",
		"stdout=1&stderr=1&tail=1":       "there\r\n",
		"stdout=1&stderr=1&timestamps=1": "2026-12-01T09:53:07.155102314Z hi\r\n2026-12-01T09:53:07.155182816Z there\r\n",
	} {
		resp, err := http.Get(srv.URL + "/containers/" + id + "/logs?" + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want || resp.Header.Get("Content-Type") != "application/vnd.docker.raw-stream" {
			t.Errorf("%s: %q (%s), want %q", q, b, resp.Header.Get("Content-Type"), want)
		}
	}
}
