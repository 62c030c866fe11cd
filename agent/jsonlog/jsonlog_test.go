package jsonlog

import (
	"encoding/json"
	"fmt"
	"math/rand"
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

func TestParseTime(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	check := func(y, mo, d, h, mi, s, ns int) {
		b := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", y, mo, d, h, mi, s, ns)
		got, ok := parseTime([]byte(b))
		want := time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
		if !ok || got != want {
			t.Fatalf("parseTime(%s) = %v, %v; want %v", b, got, ok, want)
		}
	}
	for _, y := range []int{0, 1, 4, 100, 399, 400, 1600, 1899, 1900, 1969, 1970, 2000, 2024, 2026, 2100, 2400, 9999} {
		for mo := 1; mo <= 12; mo++ {
			for _, d := range []int{1, 28, 29, 30, 31} {
				check(y, mo, d, 23, 59, 59, 999999999)
				check(y, mo, d, 0, 0, 0, 0)
			}
		}
	}
	for i := 0; i < 100000; i++ {
		check(rnd.Intn(10000), 1+rnd.Intn(12), 1+rnd.Intn(31), rnd.Intn(24), rnd.Intn(60), rnd.Intn(60), rnd.Intn(1e9))
	}
	// Through the cache of a scan, as without.
	var tc timeCache
	base := time.Date(2026, 12, 31, 23, 59, 58, 0, time.UTC)
	for i := 0; i < 5000; i++ {
		want := base.Add(time.Duration(i) * 997 * time.Microsecond)
		b := want.Format("2006-01-02T15:04:05.000000000Z")
		if got, ok := tc.parse([]byte(b)); !ok || got != want {
			t.Fatalf("cached parse(%s) = %v, %v", b, got, ok)
		}
	}
	for _, b := range []string{"2026-12-31T23:59:58.00000000xZ", "2026-12-31T23:59:58.5Z", "2026-12-31T23:59:58Z"} {
		got, ok := tc.parse([]byte(b))
		want, wok := parseTime([]byte(b))
		if got != want || ok != wok {
			t.Fatalf("cached parse(%s) = %v, %v; want %v, %v", b, got, ok, want, wok)
		}
	}
	// Out of range: normalised as time.Date does.
	check(2026, 13, 32, 0, 0, 0, 0)
	check(2026, 0, 0, 99, 99, 99, 0)
}

// A line whose log ends in \n but that the fast path does not read as a
// whole must reach encoding/json untouched.
func TestParseFallbackUntouched(t *testing.T) {
	for _, line := range []string{
		`{"log":"x\n","stream":"stdout","attrs":{"a":"b"},"time":"2026-12-01T08:00:00Z"}`,
		`{"log":"x\n","stream":"stdout","time":"2026-12-01T08:00:00Z","more":1}`,
		`{"log":"\n","stream":"stderr","time":"2026-12-01T08:00:00.000000001Z"}`,
	} {
		b := []byte(line + "\n")
		got, err := Parse(b)
		var want Entry
		if err := json.Unmarshal([]byte(line), &want); err != nil {
			t.Fatal(err)
		}
		if err != nil || string(got.Log) != want.Log || got.Stream != want.Stream || !got.Time.Equal(want.Time) {
			t.Errorf("Parse(%s) = %+v, %v; want %+v", line, got, err, want)
		}
	}
}

func BenchmarkScan(b *testing.B) {
	path := filepath.Join(b.TempDir(), "c.log")
	line := `{"log":"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456\n","stream":"stdout","time":"2026-12-01T09:45:05.177729879Z"}` + "\n"
	os.WriteFile(path, []byte(strings.Repeat(line, 100000)), 0o600)
	b.SetBytes(int64(len(line) * 100000))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		n := 0
		Scan([]string{path}, func(r *Raw) error { n += len(r.Log); return nil })
		if n != 98*100000 {
			b.Fatal(n)
		}
	}
}
