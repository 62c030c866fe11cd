package agentexe

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

func pack(t *testing.T, content string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestUnpack(t *testing.T) {
	dir := t.TempDir()
	v1 := pack(t, "#!/bin/sh\necho v1\n")
	p1, err := Unpack(v1, dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p1)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("unpacked binary: %v, %v", fi, err)
	}
	if got, _ := os.ReadFile(p1); string(got) != "#!/bin/sh\necho v1\n" {
		t.Fatalf("content %q", got)
	}
	// The same blob: the same file, not written again.
	if err := os.WriteFile(p1, []byte("kept"), 0o700); err != nil {
		t.Fatal(err)
	}
	if p, err := Unpack(v1, dir); err != nil || p != p1 {
		t.Fatalf("second unpack: %s, %v", p, err)
	}
	if got, _ := os.ReadFile(p1); string(got) != "kept" {
		t.Fatal("an unpacked binary was written again")
	}
	// Another version replaces it; nothing else is left in the directory.
	p2, err := Unpack(pack(t, "v2"), dir)
	if err != nil || p2 == p1 {
		t.Fatalf("new version: %s, %v", p2, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || filepath.Join(dir, entries[0].Name()) != p2 {
		t.Fatalf("directory holds %v, want only %s", entries, p2)
	}
	if _, err := Unpack(nil, dir); err == nil {
		t.Error("empty blob accepted")
	}
	if _, err := Unpack([]byte("not gzip"), dir); err == nil {
		t.Error("corrupt blob accepted")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a failed unpack left files: %v", entries)
	}
}
