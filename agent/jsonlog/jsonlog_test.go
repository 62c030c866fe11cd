package jsonlog

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadRotated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	files := map[string]string{
		path + ".2": `{"log":"old\n","stream":"stdout","time":"2026-01-02T03:04:01.000000001Z"}` + "\n",
		path + ".1": `{"log":"q\"uote\\\t\n","stream":"stderr","time":"2026-01-02T03:04:02Z"}` + "\n",
		path:        `{"log":"new\n","stream":"stdout","time":"2026-01-02T03:04:03.5Z"}` + "\n" + `{"log":"partial`,
	}
	for p, data := range files {
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := Files(path, 3)
	if len(got) != 3 || got[0] != path+".2" || got[2] != path {
		t.Fatalf("files %v", got)
	}
	var entries []Entry
	if err := ReadAll(got, func(e Entry) error { entries = append(entries, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("entries %+v (the unfinished last line must be skipped)", entries)
	}
	if entries[1].Log != "q\"uote\\\t\n" || entries[1].Stream != "stderr" {
		t.Fatalf("escaped entry %+v", entries[1])
	}
	if !entries[2].Time.Equal(time.Date(2026, 1, 2, 3, 4, 3, 500000000, time.UTC)) {
		t.Fatalf("time %v", entries[2].Time)
	}
	os.WriteFile(path, []byte("not json\n"), 0o600)
	err := ReadAll([]string{path}, func(Entry) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt line: %v", err)
	}
}

func TestParseLine(t *testing.T) {
	for _, line := range []string{
		`{"log":"plain line\n","stream":"stdout","time":"2026-12-01T08:00:00.123456789Z"}`,
		`{"log":"esc \"q\" \\ \t tab \u0001 é ✓ \/\r\n","stream":"stderr","time":"2026-12-01T08:00:00Z"}`,
		`{"log":"","stream":"stdout","time":"2026-12-01T08:00:00.5Z"}`,
	} {
		got, ok := parseLine([]byte(line + "\n"))
		var want Entry
		if err := json.Unmarshal([]byte(line), &want); err != nil {
			t.Fatal(err)
		}
		if !ok || got.Log != want.Log || got.Stream != want.Stream || !got.Time.Equal(want.Time) {
			t.Errorf("parseLine(%s) = %+v, %v; want %+v", line, got, ok, want)
		}
	}
	// Other layouts are left to encoding/json.
	for _, line := range []string{
		`{"stream":"stdout","log":"x","time":"2026-12-01T08:00:00Z"}`,
		`{"log":"\ud83d\ude00","stream":"stdout","time":"2026-12-01T08:00:00Z"}`,
		`{"log":"x","stream":"stdout","time":"yesterday"}`,
	} {
		if _, ok := parseLine([]byte(line)); ok {
			t.Errorf("parseLine accepted %s", line)
		}
	}
}
