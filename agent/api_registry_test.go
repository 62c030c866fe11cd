package agent

import (
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moss-containers/moss/storage"
)

func TestPullName(t *testing.T) {
	dg := "sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		fromImage, tag, want string
		all                  bool
	}{
		{"docker.io/library/busybox", "latest", "docker.io/library/busybox:latest", false},
		{"127.0.0.1:5000/foo", "1", "127.0.0.1:5000/foo:1", false},
		{"127.0.0.1:5000/foo:old", "new", "127.0.0.1:5000/foo:new", false},
		{"127.0.0.1:5000/foo:1", "", "127.0.0.1:5000/foo:1", false},
		{"127.0.0.1:5000/foo", dg, "127.0.0.1:5000/foo@" + dg, false},
		{"127.0.0.1:5000/foo@" + dg, "ignored", "127.0.0.1:5000/foo@" + dg, false},
		{"127.0.0.1:5000/foo", "", "127.0.0.1:5000/foo", true},
		{"busybox", "", "busybox", true},
	} {
		got, all := pullName(tc.fromImage, tc.tag)
		if got != tc.want || all != tc.all {
			t.Errorf("pullName(%q, %q) = %q, %v; want %q, %v", tc.fromImage, tc.tag, got, all, tc.want, tc.all)
		}
	}
}

func TestRegistryAuth(t *testing.T) {
	enc := func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		header, query string
		want          storage.Auth
		bad           bool
	}{
		{header: "", want: storage.Auth{}},
		{header: enc("{}"), want: storage.Auth{}},
		{header: enc(`{"username":"u","password":"p?>","serveraddress":"r"}`), want: storage.Auth{Username: "u", Password: "p?>"}},
		{header: base64.RawURLEncoding.EncodeToString([]byte(`{"username":"u","password":"p?"}`)), want: storage.Auth{Username: "u", Password: "p?"}},
		{header: enc(`{"auth":"` + base64.StdEncoding.EncodeToString([]byte("me:se:cret")) + `"}`), want: storage.Auth{Username: "me", Password: "se:cret"}},
		{header: enc(`{"identitytoken":"tok"}`), want: storage.Auth{IdentityToken: "tok"}},
		{query: "authfile=/tmp/a.json", want: storage.Auth{File: "/tmp/a.json"}},
		{query: "authfile=rel.json", bad: true},
		{header: "!!!", bad: true},
		{header: enc("{nope"), bad: true},
		{header: enc(`{"auth":"bm9jb2xvbg=="}`), bad: true},
	} {
		r := httptest.NewRequest("POST", "/images/create?"+tc.query, nil)
		if tc.header != "" {
			r.Header.Set("X-Registry-Auth", tc.header)
		}
		got, err := registryAuth(r)
		if tc.bad {
			if err == nil || !errors.Is(err, errInvalid) {
				t.Errorf("header %q query %q: accepted (%+v, %v)", tc.header, tc.query, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("header %q query %q: %+v, %v; want %+v", tc.header, tc.query, got, err, tc.want)
		}
	}
}

func TestProgressMessage(t *testing.T) {
	m := progressMessage(storage.Progress{ID: "latest", Status: "Pulling from foo"})
	if _, ok := m["progressDetail"]; ok || m["id"] != "latest" {
		t.Errorf("Pulling from: %v", m)
	}
	m = progressMessage(storage.Progress{ID: "abc", Status: "Pulling fs layer"})
	if d, ok := m["progressDetail"].(map[string]interface{}); !ok || len(d) != 0 {
		t.Errorf("layer line without bytes: %v", m)
	}
	m = progressMessage(storage.Progress{ID: "abc", Status: "Downloading", Current: 512, Total: 2048})
	if d := m["progressDetail"].(map[string]interface{}); d["current"] != int64(512) || d["total"] != int64(2048) {
		t.Errorf("Downloading: %v", m)
	}
	if p, _ := m["progress"].(string); !strings.HasPrefix(p, "[============>") || !strings.HasSuffix(p, "512B/2.05kB") {
		t.Errorf("progress bar %q", p)
	}
	if m := progressMessage(storage.Progress{Status: "Digest: sha256:x"}); len(m) != 1 {
		t.Errorf("a plain line: %v", m)
	}
	if bar := progressBar(10, 10); !strings.HasPrefix(bar, "["+strings.Repeat("=", 50)+"]") {
		t.Errorf("full bar %q", bar)
	}
}

func TestFamiliar(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/busybox:latest": "busybox:latest",
		"docker.io/user/app:1":             "user/app:1",
		"127.0.0.1:5000/foo:1":             "127.0.0.1:5000/foo:1",
		"quay.io/org/app@sha256:abc":       "quay.io/org/app@sha256:abc",
	} {
		if got := familiar(in); got != want {
			t.Errorf("familiar(%q) = %q, want %q", in, got, want)
		}
	}
}
