package jsonlog

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteReadRotate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := Open(path, 200, 3)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for i := 0; i < 20; i++ {
		stream := "stdout"
		if i%2 == 1 {
			stream = "stderr"
		}
		if err := w.Write(stream, []byte(strings.Repeat("x", i)+"\n\"q\"\n"), t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files := Files(path, 3)
	if len(files) != 3 {
		t.Fatalf("files %v, want 3 after rotation", files)
	}
	var got []Entry
	if err := ReadAll(files, func(e Entry) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) >= 20 {
		t.Fatalf("read %d entries, want some but not all after rotation", len(got))
	}
	for i := 1; i < len(got); i++ {
		if !got[i].Time.After(got[i-1].Time) {
			t.Fatalf("entries out of order at %d", i)
		}
	}
	last := got[len(got)-1]
	if last.Stream != "stderr" || last.Log != strings.Repeat("x", 19)+"\n\"q\"\n" || !last.Time.Equal(t0.Add(19*time.Second)) {
		t.Fatalf("last entry %+v", last)
	}
}
