package storage

import (
	"archive/tar"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func tarOf(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		if h.Typeflag == tar.TypeReg {
			h.Size = 2
		}
		h.Mode = 0o644
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("hi"))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func TestValidateTar(t *testing.T) {
	reg := func(n string) tar.Header { return tar.Header{Name: n, Typeflag: tar.TypeReg} }
	sym := func(n, target string) tar.Header {
		return tar.Header{Name: n, Typeflag: tar.TypeSymlink, Linkname: target}
	}
	cases := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"plain rootfs", tarOf(t, tar.Header{Name: "bin/", Typeflag: tar.TypeDir}, reg("bin/busybox"), sym("bin/sh", "/bin/busybox"), sym("lib", "usr/lib"), reg("./etc/passwd")), ""},
		{"absolute names stay inside", tarOf(t, reg("/etc/hosts")), ""},
		{"entry under an in-root relative link", tarOf(t, sym("lib", "usr/lib"), reg("lib/x")), ""},
		{"dotdot", tarOf(t, reg("../x")), "outside the image root"},
		{"dotdot inside path", tarOf(t, reg("a/../../x")), "outside the image root"},
		{"through absolute symlink", tarOf(t, sym("evil", "/etc"), reg("evil/passwd")), "symbolic link"},
		{"through climbing symlink", tarOf(t, sym("up", "../../.."), reg("up/x")), "symbolic link"},
		{"hard link out", tarOf(t, tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/shadow"}), "hard link"},
		{"not a tar", []byte("hello, this is text and not a tar archive at all, padded" + strings.Repeat(" ", 600)), "not a tar archive"},
		{"empty", nil, "not a tar archive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validateTar(bytes.NewReader(tc.data))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v, want %q (ErrInvalid)", err, tc.wantErr)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":            "docker.io/library/busybox:latest",
		"mosstest/busybox:1": "docker.io/mosstest/busybox:1",
		"localhost:5000/x:y": "localhost:5000/x:y",
		"quay.io/org/img":    "quay.io/org/img:latest",
	} {
		n, err := normalize(in)
		if err != nil || n.String() != want {
			t.Errorf("%s: %v, %v; want %s", in, n, err, want)
		}
	}
	if _, err := normalize("UPPER/case"); !errors.Is(err, ErrInvalid) {
		t.Errorf("uppercase repository accepted: %v", err)
	}
}
