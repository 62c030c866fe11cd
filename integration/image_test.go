package integration

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(strings.ToLower(s), strings.ToLower(w)) {
			return true
		}
	}
	return false
}

// save, load, tag, rmi round trip.
func TestImageArchives(t *testing.T) {
	dir := t.TempDir()
	mustMoss(t, "tag", image, "mosstest/copy:v2")
	archive := filepath.Join(dir, "two.tar")
	mustMoss(t, "save", "-o", archive, image, "mosstest/copy:v2")
	id := strings.TrimSpace(mustMoss(t, "image", "inspect", "--format", "{{.Id}}", image))
	out := mustMoss(t, "rmi", "mosstest/copy:v2")
	if !strings.Contains(out, "Untagged: mosstest/copy:v2") || strings.Contains(out, "Deleted") {
		t.Fatalf("rmi of one of two names should only untag:\n%s", out)
	}
	out = mustMoss(t, "load", "-i", archive)
	if !strings.Contains(out, "Loaded image: mosstest/copy:v2") {
		t.Fatalf("load: %s", out)
	}
	if got := strings.TrimSpace(mustMoss(t, "image", "inspect", "--format", "{{.Id}}", "mosstest/copy:v2")); got != id {
		t.Fatalf("loaded image ID %s, want %s", got, id)
	}
	images := mustMoss(t, "images")
	if !strings.Contains(images, "mosstest/copy") || !strings.Contains(images, "REPOSITORY") {
		t.Fatalf("images:\n%s", images)
	}
	oci := filepath.Join(dir, "one.oci.tar")
	mustMoss(t, "save", "--format", "oci-archive", "-o", oci, "mosstest/copy:v2")
	mustMoss(t, "rmi", "mosstest/copy:v2")
	if out := mustMoss(t, "load", "-i", oci); !strings.Contains(out, "Loaded image") {
		t.Fatalf("load oci-archive: %s", out)
	}
	// An image in use is refused without -f.
	mustMoss(t, "tag", image, "mosstest/inuse:1")
	mustMoss(t, "create", "--name", "user-of-image", "mosstest/inuse:1", "true")
	rmf(t, "user-of-image")
	if r := moss(t, "rmi", "mosstest/inuse:1"); r.code == 0 {
		// One of two names: untagging is fine; the ID form must be refused.
		mustMoss(t, "tag", image, "mosstest/inuse:1")
	}
	if r := moss(t, "rmi", id); r.code == 0 || !strings.Contains(r.stderr, "must be forced") && !strings.Contains(r.stderr, "is using") {
		t.Fatalf("rmi of an image in use by ID: %+v", r)
	}
	moss(t, "rmi", "mosstest/inuse:1")
}

func tarball(t *testing.T, entries []tar.Header) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		if h.Typeflag == tar.TypeReg {
			h.Size = 1
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("x"))
		}
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "in.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Acceptance 8: bad input gets a clear error, a non-zero exit, and changes
// nothing else.
func TestBadInput(t *testing.T) {
	mustMoss(t, "create", "--name", "taken", image, "true")
	rmf(t, "taken")
	mustMoss(t, "run", "-d", "--name", "busy", image, "sleep", "1000")
	rmf(t, "busy")
	notArchive := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notArchive, []byte("this is not an image\n"), 0o644)
	dotdot := tarball(t, []tar.Header{{Name: "ok", Typeflag: tar.TypeReg}, {Name: "../escape", Typeflag: tar.TypeReg}})
	viaLink := tarball(t, []tar.Header{{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, {Name: "evil/x", Typeflag: tar.TypeReg}})
	hardlink := tarball(t, []tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}})

	state := func() string {
		return mustMoss(t, "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}") +
			mustMoss(t, "images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
	}
	before := state()

	// Each case: the arguments, and the words of which the error message
	// must contain one (case-insensitive).
	cases := []struct {
		name string
		args []string
		msg  []string
		code int // 0: any non-zero status
	}{
		{"unknown image", []string{"run", "--rm", "no/such-image:1", "true"}, []string{"Unable to find image 'no/such-image:1' locally"}, 125},
		{"unknown image, no pull", []string{"run", "--rm", "--pull", "never", "no/such-image:1", "true"}, []string{"No such image"}, 125},
		{"invalid name", []string{"create", "--name", "bad name!", image, "true"}, []string{"Invalid container name"}, 125},
		{"duplicate name", []string{"create", "--name", "taken", image, "true"}, []string{"already in use"}, 125},
		{"rm running", []string{"rm", "busy"}, []string{"stop", "force"}, 0},
		{"malformed env", []string{"run", "--rm", "-e", "=x", image, "true"}, []string{"invalid environment variable"}, 125},
		{"missing command", []string{"run", "--rm", image, "no-such-command"}, []string{"not found", "no such file"}, 127},
		{"not an archive", []string{"load", "-i", notArchive}, []string{"not a docker-archive or oci-archive", "archive"}, 0},
		{"import non-tar", []string{"import", notArchive, "bad:1"}, []string{"not a tar archive", "archive"}, 0},
		{"import dotdot", []string{"import", dotdot, "bad:2"}, []string{"outside the image root", "escape"}, 0},
		{"import through symlink", []string{"import", viaLink, "bad:3"}, []string{"outside the image root", "symlink", "escape"}, 0},
		{"import hardlink", []string{"import", hardlink, "bad:4"}, []string{"outside the image root", "escape"}, 0},
		{"bad reference", []string{"tag", image, "UPPER/Case"}, []string{"invalid reference format"}, 0},
		{"unknown container", []string{"stop", "nosuchcontainer"}, []string{"No such container"}, 0},
		{"bad signal", []string{"kill", "-s", "SIGNOPE", "busy"}, []string{"invalid signal"}, 0},
		{"unknown network", []string{"run", "--rm", "--network", "nosuchnet", image, "true"}, []string{"network nosuchnet not found"}, 125},
		{"bad user", []string{"run", "--rm", "-u", "nosuchuser", image, "true"}, []string{"unable to find user"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := moss(t, tc.args...)
			if r.code == 0 || tc.code != 0 && r.code != tc.code {
				t.Errorf("exit %d, want %s; stdout %q", r.code, map[bool]string{true: strconv.Itoa(tc.code), false: "non-zero"}[tc.code != 0], r.stdout)
			}
			if !containsAny(r.stderr, tc.msg) {
				t.Errorf("stderr %q says none of %q", r.stderr, tc.msg)
			}
			if after := state(); after != before {
				t.Fatalf("containers or images changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	// The API itself: unknown endpoints and malformed bodies.
	if r := runCmd(t, "", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", socketPath(), "http://d/v1.47/nope"); r.stdout != "404" {
		t.Fatalf("unknown endpoint: %+v", r)
	}
	if r := runCmd(t, "", "curl", "-s", "--unix-socket", socketPath(), "-X", "POST", "-H", "Content-Type: application/json", "-d", "{bad", "http://d/v1.47/containers/create"); !strings.Contains(r.stdout, "malformed request body") {
		t.Fatalf("malformed body: %+v", r)
	}
}

// Acceptance 6 (run by make check as the user mossnosub, which has no
// subordinate IDs): containers run with a single-ID mapping, and info says so.
func TestNoSubuid(t *testing.T) {
	if os.Getenv("MOSS_IT_USER_NOSUBUID") == "" && os.Getenv("MOSS_IT_NOSUBUID") == "" {
		t.Skip("run as a user without /etc/subuid entries with MOSS_IT_USER_NOSUBUID=1 (make check does)")
	}
	out := mustMoss(t, "run", "--rm", image, "id")
	if !strings.Contains(out, "uid=0(root)") {
		t.Fatalf("id: %q", out)
	}
	info := mustMoss(t, "info")
	if !strings.Contains(strings.ToLower(info), "single") {
		t.Fatalf("info does not report the single-ID mapping:\n%s", info)
	}
	out = mustMoss(t, "run", "--rm", image, "cat", "/proc/self/uid_map")
	if f := strings.Fields(out); len(f) != 3 || f[0] != "0" || f[1] != strconv.Itoa(os.Getuid()) || f[2] != "1" {
		t.Fatalf("uid_map should map only 0 to uid %d: %q", os.Getuid(), out)
	}
}

// info reports the rootless setup.
func TestInfo(t *testing.T) {
	out := mustMoss(t, "info")
	for _, want := range []string{"Rootless: true", "Storage Driver: overlay", "Seccomp: active", "IDMapping:", "Kernel Version"} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}
}
