package storage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	"go.podman.io/storage/pkg/reexec"
)

func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

// openTest opens a fresh store under a test directory and shuts it down,
// unmounting everything, when the test ends.
func openTest(t *testing.T, o Options) *Store {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (or a user namespace's root) to mount overlay layers")
	}
	dir := t.TempDir()
	if o.GraphRoot == "" {
		o.GraphRoot = filepath.Join(dir, "graph")
	}
	if o.RunRoot == "" {
		o.RunRoot = filepath.Join(dir, "run")
	}
	o.Logger = hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Debug})
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := s.s.Shutdown(true); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// entry is one file of a test tarball.
type entry struct {
	name, link string
	typ        byte
	body       []byte
	mode       int64
	uid        int
}

func dir(n string) entry { return entry{name: n, typ: tar.TypeDir, mode: 0o755} }
func file(n, body string) entry {
	return entry{name: n, typ: tar.TypeReg, body: []byte(body), mode: 0o644}
}
func symlink(n, target string) entry {
	return entry{name: n, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(n, target string) entry {
	return entry{name: n, typ: tar.TypeLink, link: target, mode: 0o644}
}
func exe(n string, body []byte) entry {
	return entry{name: n, typ: tar.TypeReg, body: body, mode: 0o755}
}

// owned gives e to another user, which a single-ID user namespace
// cannot represent.
func owned(e entry, uid int) entry { e.uid = uid; return e }

func buildTar(t *testing.T, es ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Size: int64(len(e.body)), Uid: e.uid, Gid: e.uid}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func statUID(fi os.FileInfo) int {
	if fi == nil {
		return -1
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// busyboxRootfs is a small realistic root file system: the static busybox
// with its applet links, /etc/passwd and a file owned by another user.
func busyboxRootfs(t *testing.T) []byte {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no static busybox for a test image (install busybox-static): %v", err)
	}
	return buildTar(t,
		dir("bin/"), exe("bin/busybox", bb), symlink("bin/sh", "/bin/busybox"), symlink("bin/true", "busybox"),
		dir("etc/"), file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
		file("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
		dir("tmp/"), owned(dir("home/"), 1000), owned(file("home/owned", "by 1000"), 1000),
	)
}

func mustImport(t *testing.T, s *Store, data []byte, ref string, c ImportConfig) *Image {
	t.Helper()
	img, err := s.Import(context.Background(), bytes.NewReader(data), ref, c)
	if err != nil {
		t.Fatalf("import %s: %v", ref, err)
	}
	return img
}

// layerCount counts the store's layers, to prove failures leave none.
func layerCount(t *testing.T, s *Store) int {
	t.Helper()
	ls, err := s.s.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return len(ls)
}

func imageCount(t *testing.T, s *Store) int {
	t.Helper()
	imgs, err := s.Images()
	if err != nil {
		t.Fatal(err)
	}
	return len(imgs)
}

// mountedUnder lists the mount points under dir from /proc/self/mountinfo.
func mountedUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") && strings.Contains(l, " - overlay ") {
			out = append(out, f[4])
		}
	}
	return out
}

func TestOpenDriver(t *testing.T) {
	s := openTest(t, Options{})
	if d := s.Driver(); d != "overlay" {
		t.Errorf("auto driver %q, want native overlay on this kernel", d)
	}
	v := openTest(t, Options{Driver: "vfs"})
	if v.Driver() != "vfs" {
		t.Errorf("driver %q, want vfs", v.Driver())
	}
	if _, err := Open(Options{GraphRoot: t.TempDir(), RunRoot: t.TempDir(), Driver: "zfs-magic"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown driver: %v, want ErrInvalid", err)
	}
	name, network, err := FilesystemName(s.GraphRoot())
	if err != nil || network || name == "" {
		t.Errorf("FilesystemName(%s) = %q, %v, %v", s.GraphRoot(), name, network, err)
	}
}

func TestImport(t *testing.T) {
	s := openTest(t, Options{})
	rootfs := busyboxRootfs(t)
	for _, tc := range []struct {
		name, ref string
		data      []byte
	}{
		{"plain", "mosstest/busybox:plain", rootfs},
		{"gzip", "localhost:5000/busybox:gz", gzipped(t, rootfs)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := mustImport(t, s, tc.data, tc.ref, ImportConfig{
				Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}, WorkingDir: "/tmp", User: "nobody",
				Labels: map[string]string{"a": "b"}, Message: "imported for " + tc.name,
			})
			n, _ := normalize(tc.ref)
			if !slices.Equal(img.Names, []string{n.String()}) {
				t.Errorf("names %v, want %s", img.Names, n)
			}
			if len(img.RepoTags) != 1 || img.RepoTags[0] != strings.TrimPrefix(tc.ref, "docker.io/") {
				t.Errorf("repo tags %v", img.RepoTags)
			}
			c := img.Config
			if !slices.Equal(c.Config.Cmd, []string{"/bin/sh"}) || c.Config.WorkingDir != "/tmp" || c.Config.User != "nobody" || c.Config.Labels["a"] != "b" {
				t.Errorf("config %+v", c.Config)
			}
			if len(c.History) != 1 || c.History[0].CreatedBy != "moss import" || c.History[0].Comment != "imported for "+tc.name {
				t.Errorf("history %+v", c.History)
			}
			if len(c.RootFS.DiffIDs) != 1 || img.Size < int64(len(rootfs))/2 || img.Digest == "" || img.TopLayer == "" || img.Created.IsZero() {
				t.Errorf("image %+v", img)
			}
			got, err := s.Image(img.ID[:12])
			if err != nil || got.ID != img.ID {
				t.Errorf("by prefix: %v, %v", got, err)
			}
		})
	}
	// Untagged.
	img := mustImport(t, s, rootfs, "", ImportConfig{})
	if len(img.Names) != 0 || len(img.RepoTags) != 0 {
		t.Errorf("untagged import has names %v", img.Names)
	}
	for _, ref := range []string{img.ID, "sha256:" + img.ID, img.ID[:5]} {
		if got, err := s.Image(ref); err != nil || got.ID != img.ID {
			t.Errorf("Image(%s) = %v, %v", ref, got, err)
		}
	}
	if _, err := s.Image("nosuch"); !errors.Is(err, ErrNotFound) || err.Error() != "no such image: nosuch" {
		t.Errorf("missing image: %v", err)
	}
	if _, err := s.Image("UPPER/Case"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad reference: %v", err)
	}
}

func TestImportRejects(t *testing.T) {
	s := openTest(t, Options{})
	good := buildTar(t, dir("etc/"), file("etc/hostname", "x"))
	mustImport(t, s, good, "keep", ImportConfig{})
	layers, images := layerCount(t, s), imageCount(t, s)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"dotdot", buildTar(t, file("ok", "1"), file("../../evil", "x")), `"../../evil" points outside`},
		{"through absolute symlink", buildTar(t, symlink("etcl", "/etc"), file("etcl/passwd", "x")), `"etcl/passwd": it is reached through the symbolic link "etcl" -> "/etc"`},
		{"through symlink chain", buildTar(t, dir("a/"), dir("a/b/"), symlink("a/b/up", "../.."), symlink("a/b/up/x", "../../etc"), file("a/b/up/x/passwd", "x")), "symbolic link"},
		{"hard link out", buildTar(t, hardlink("pw", "../../etc/passwd")), `"pw" is a hard link to "../../etc/passwd" outside`},
		{"hard link through symlink", buildTar(t, symlink("e", "/etc"), hardlink("pw", "e/shadow")), "hard link"},
		{"not a tar", []byte(strings.Repeat("this is not a tar archive\n", 40)), "not a tar archive"},
		{"gzip of garbage", gzipped(t, []byte(strings.Repeat("garbage", 200))), "not a tar archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Import(context.Background(), bytes.NewReader(tc.data), "evil:1", ImportConfig{})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalid with %q", err, tc.want)
			}
			if l, i := layerCount(t, s), imageCount(t, s); l != layers || i != images {
				t.Errorf("left behind: %d layers (want %d), %d images (want %d)", l, layers, i, images)
			}
			if _, err := s.Image("evil:1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("rejected image exists: %v", err)
			}
		})
	}
	// A leaf absolute symlink is normal.
	mustImport(t, s, buildTar(t, dir("bin/"), exe("bin/busybox", []byte("#!")), symlink("bin/sh", "/bin/busybox")), "fine", ImportConfig{})
	ents, err := os.ReadDir(s.tmpDir())
	if err != nil || len(ents) != 0 {
		t.Errorf("temporary files left: %v %v", ents, err)
	}
}

func TestContainerLifecycle(t *testing.T) {
	s := openTest(t, Options{})
	img := mustImport(t, s, busyboxRootfs(t), "busybox", ImportConfig{})
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if err := s.CreateContainer(id, img.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateContainer(id, img.ID, false); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v, want ErrExists", err)
	}
	if err := s.CreateContainer("c2", "nosuchimage", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("create on missing image: %v, want ErrNotFound", err)
	}
	if !s.ContainerExists(id) {
		t.Fatal("container does not exist")
	}
	// A volatile one (--rm) is listed beside it.
	if err := s.CreateContainer("rm1", img.ID, true); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.ContainerIDs(); err != nil || !slices.Contains(ids, id) || !slices.Contains(ids, "rm1") || len(ids) != 2 {
		t.Errorf("ContainerIDs = %v, %v", ids, err)
	}
	if err := s.DeleteContainer("rm1"); err != nil || s.ContainerExists("rm1") {
		t.Errorf("delete volatile container: %v", err)
	}
	cdir, err := s.ContainerDir(id)
	if err != nil || !strings.HasPrefix(cdir, s.GraphRoot()) {
		t.Fatalf("container dir %q, %v", cdir, err)
	}
	if _, err := os.Stat(cdir); err != nil {
		t.Error(err)
	}
	rootfs, err := s.Mount(id)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "etc/passwd")); err != nil || !strings.HasPrefix(string(b), "root:") {
		t.Fatalf("rootfs content: %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(rootfs, "bin/sh")); err != nil || l != "/bin/busybox" {
		t.Errorf("bin/sh -> %q, %v", l, err)
	}
	if fi, err := os.Lstat(filepath.Join(rootfs, "home/owned")); err != nil || statUID(fi) != 1000 {
		t.Errorf("home/owned owner %d, %v", statUID(fi), err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "tmp/written"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mountedUnder(t, s.GraphRoot()); len(got) != 1 || got[0] != rootfs {
		t.Errorf("mounts %v, want [%s]", got, rootfs)
	}
	again, err := s.Mount(id)
	if err != nil || again != rootfs {
		t.Fatalf("second mount %q, %v", again, err)
	}
	if err := s.Unmount(id, false); err != nil {
		t.Fatal(err)
	}
	if got := mountedUnder(t, s.GraphRoot()); len(got) != 1 {
		t.Errorf("after one of two unmounts: mounts %v", got)
	}
	if err := s.Unmount(id, true); err != nil {
		t.Fatal(err)
	}
	if got := mountedUnder(t, s.GraphRoot()); len(got) != 0 {
		t.Errorf("after forced unmount: mounts %v", got)
	}
	if err := s.Unmount(id, false); err != nil {
		t.Errorf("unmount of an unmounted container: %v", err)
	}
	// The write survives a remount: it is in the container's layer.
	rootfs, err = s.Mount(id)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "tmp/written")); err != nil || string(b) != "hello" {
		t.Errorf("written file after remount: %q, %v", b, err)
	}
	// The image is in use now.
	if _, _, err := s.RemoveImage("busybox", false); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "in use by container 0123456789ab") {
		t.Errorf("rmi of a used image: %v, want ErrInUse", err)
	}
	// Delete while mounted: unmounts, removes the layer and the directory.
	if err := s.DeleteContainer(id); err != nil {
		t.Fatal(err)
	}
	if got := mountedUnder(t, s.GraphRoot()); len(got) != 0 {
		t.Errorf("after delete: mounts %v", got)
	}
	if s.ContainerExists(id) {
		t.Error("container still exists")
	}
	if _, err := os.Stat(cdir); !os.IsNotExist(err) {
		t.Errorf("container dir left: %v", err)
	}
	if n := layerCount(t, s); n != 1 {
		t.Errorf("%d layers left, want the image's one", n)
	}
	if err := s.DeleteContainer(id); err != nil {
		t.Errorf("second delete: %v", err)
	}
	if _, err := s.Mount(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("mount of a deleted container: %v, want ErrNotFound", err)
	}
	if _, err := s.ContainerDir(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("dir of a deleted container: %v, want ErrNotFound", err)
	}
}

func TestTagAndRemove(t *testing.T) {
	s := openTest(t, Options{})
	img := mustImport(t, s, busyboxRootfs(t), "busybox", ImportConfig{})
	if err := s.Tag("busybox", "busybox:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(img.ID[:8], "localhost:5000/bb"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("nosuch", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("tag of a missing image: %v", err)
	}
	if err := s.Tag("busybox", "Bad:Name"); !errors.Is(err, ErrInvalid) {
		t.Errorf("tag with a bad name: %v", err)
	}
	got, err := s.Image("docker.io/library/busybox:1")
	if err != nil || got.ID != img.ID {
		t.Fatalf("tagged image: %v, %v", got, err)
	}
	slices.Sort(got.RepoTags)
	if want := []string{"busybox:1", "busybox:latest", "localhost:5000/bb:latest"}; !slices.Equal(got.RepoTags, want) {
		t.Errorf("repo tags %v, want %v", got.RepoTags, want)
	}
	// By ID with several names: must be forced.
	if _, _, err := s.RemoveImage(img.ID, false); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "must be forced") {
		t.Errorf("rmi by ID of a multi-tag image: %v", err)
	}
	// By name with several names: untag only.
	untagged, deleted, err := s.RemoveImage("busybox:1", false)
	if err != nil || !slices.Equal(untagged, []string{"busybox:1"}) || len(deleted) != 0 {
		t.Errorf("rmi busybox:1 = %v, %v, %v", untagged, deleted, err)
	}
	if _, err := s.Image("busybox:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("untagged name still found: %v", err)
	}
	// A container stands on the image: forced removal untags, keeps it.
	if err := s.CreateContainer("ctr1", img.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RemoveImage("localhost:5000/bb", false); err != nil {
		t.Errorf("untag of one of two names with a container: %v", err)
	}
	if _, _, err := s.RemoveImage("busybox", false); !errors.Is(err, ErrInUse) {
		t.Errorf("rmi last name with a container: %v, want ErrInUse", err)
	}
	untagged, deleted, err = s.RemoveImage("busybox", true)
	if err != nil || !slices.Equal(untagged, []string{"busybox:latest"}) || len(deleted) != 0 {
		t.Errorf("forced rmi with a container = %v, %v, %v", untagged, deleted, err)
	}
	if _, err := s.Image(img.ID); err != nil {
		t.Errorf("image under a container was deleted: %v", err)
	}
	rootfs, err := s.Mount("ctr1")
	if err != nil {
		t.Fatalf("container after forced rmi: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "bin/busybox")); err != nil {
		t.Error(err)
	}
	if err := s.DeleteContainer("ctr1"); err != nil {
		t.Fatal(err)
	}
	// Now nothing uses it: removal by ID deletes image and layer.
	untagged, deleted, err = s.RemoveImage("sha256:"+img.ID, false)
	if err != nil || len(untagged) != 0 || len(deleted) != 2 || deleted[0] != "sha256:"+img.ID {
		t.Errorf("rmi by ID = %v, %v, %v", untagged, deleted, err)
	}
	if n, m := layerCount(t, s), imageCount(t, s); n != 0 || m != 0 {
		t.Errorf("left %d layers, %d images", n, m)
	}
	if _, _, err := s.RemoveImage("busybox", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("rmi of a missing image: %v", err)
	}
}

func TestSaveLoadDockerArchive(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	base := mustImport(t, s, busyboxRootfs(t), "mosstest/base:1", ImportConfig{Cmd: []string{"sh"}})
	if err := s.Tag(base.ID, "mosstest/base:latest"); err != nil {
		t.Fatal(err)
	}
	other := mustImport(t, s, buildTar(t, dir("etc/"), file("etc/motd", "hi")), "localhost:5000/other:2", ImportConfig{})
	if err := s.Tag(other.ID, "other:3"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Save(ctx, &buf, []string{"mosstest/base:1", "mosstest/base", other.ID}, ""); err != nil {
		t.Fatal(err)
	}
	if !tarHas(t, buf.Bytes(), "manifest.json") {
		t.Fatal("no manifest.json in the docker-archive")
	}

	s2 := openTest(t, Options{})
	loaded, err := s2.Load(ctx, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(loaded)
	want := []string{"Loaded image: localhost:5000/other:2", "Loaded image: mosstest/base:1", "Loaded image: mosstest/base:latest", "Loaded image: other:3"}
	if !slices.Equal(loaded, want) {
		t.Errorf("loaded %q, want %q", loaded, want)
	}
	for ref, id := range map[string]string{"mosstest/base:1": base.ID, "mosstest/base": base.ID, "other:3": other.ID, "localhost:5000/other:2": other.ID} {
		got, err := s2.Image(ref)
		if err != nil {
			t.Errorf("%s: %v", ref, err)
			continue
		}
		if got.ID != id {
			t.Errorf("%s: ID %s, want %s (the config digest survives)", ref, got.ID, id)
		}
	}
	if got, err := s2.Image("mosstest/base"); err == nil && (!slices.Equal(got.Config.Config.Cmd, []string{"sh"}) || got.Config.History[0].CreatedBy != "moss import") {
		t.Errorf("loaded config %+v", got.Config)
	}
	// Loading again changes nothing; an image sharing a layer with a
	// loaded one stores that layer once.
	if _, err := s2.Load(ctx, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if n := layerCount(t, s2); n != 2 {
		t.Errorf("%d layers after loading twice, want 2", n)
	}
	sharing := mustImport(t, s, busyboxRootfs(t), "sharing", ImportConfig{Cmd: []string{"true"}})
	buf.Reset()
	if err := s.Save(ctx, &buf, []string{"sharing"}, "docker-archive"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Load(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	if n, m := layerCount(t, s2), imageCount(t, s2); n != 2 || m != 3 {
		t.Errorf("after loading an image sharing its layer: %d layers (want 2), %d images (want 3)", n, m)
	}
	if got, err := s2.Image("sharing"); err != nil || got.ID != sharing.ID {
		t.Errorf("sharing: %v, %v", got, err)
	}
	// The loaded image runs.
	if err := s2.CreateContainer("c", base.ID, false); err != nil {
		t.Fatal(err)
	}
	rootfs, err := s2.Mount("c")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "bin/busybox")); err != nil {
		t.Error(err)
	}
	if err := s2.DeleteContainer("c"); err != nil {
		t.Fatal(err)
	}
}

func TestSaveLoadOCIArchive(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	img := mustImport(t, s, busyboxRootfs(t), "localhost:5000/bb:oci", ImportConfig{Entrypoint: []string{"/bin/sh"}})
	var buf bytes.Buffer
	if err := s.Save(ctx, &buf, []string{"localhost:5000/bb:oci"}, "oci-archive"); err != nil {
		t.Fatal(err)
	}
	if !tarHas(t, buf.Bytes(), "index.json") {
		t.Fatal("no index.json in the oci-archive")
	}
	if err := s.Save(ctx, io.Discard, []string{"localhost:5000/bb:oci", "nosuch"}, "oci-archive"); !errors.Is(err, ErrNotFound) {
		t.Errorf("oci-archive with a missing image: %v", err)
	}
	if err := s.Save(ctx, io.Discard, []string{"localhost:5000/bb:oci"}, "zip"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown format: %v", err)
	}
	s2 := openTest(t, Options{})
	loaded, err := s2.Load(ctx, bytes.NewReader(gzipped(t, buf.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(loaded, []string{"Loaded image: localhost:5000/bb:oci"}) {
		t.Errorf("loaded %q", loaded)
	}
	got, err := s2.Image("localhost:5000/bb:oci")
	if err != nil || got.ID != img.ID || !slices.Equal(got.Config.Config.Entrypoint, []string{"/bin/sh"}) {
		t.Errorf("loaded image %+v, %v", got, err)
	}
	// An untagged image saves and loads by ID.
	untagged := mustImport(t, s, buildTar(t, file("x", "y")), "", ImportConfig{})
	buf.Reset()
	if err := s.Save(ctx, &buf, []string{untagged.ID}, "oci-archive"); err != nil {
		t.Fatal(err)
	}
	loaded, err = s2.Load(ctx, &buf)
	if err != nil || !slices.Equal(loaded, []string{"Loaded image ID: sha256:" + untagged.ID}) {
		t.Errorf("load untagged: %q, %v", loaded, err)
	}
}

func TestLoadRejects(t *testing.T) {
	s := openTest(t, Options{})
	for name, data := range map[string][]byte{
		"text":       []byte(strings.Repeat("no archive here\n", 50)),
		"rootfs tar": buildTar(t, file("etc/passwd", "x")),
		"bad index":  buildTar(t, file("manifest.json", "{not json")),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Load(context.Background(), bytes.NewReader(data))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not a docker-archive or oci-archive") && !strings.Contains(err.Error(), "not a valid docker-archive") {
				t.Errorf("error %v, want ErrInvalid", err)
			}
			if n := layerCount(t, s); n != 0 {
				t.Errorf("%d layers left", n)
			}
		})
	}
}

func tarHas(t *testing.T, data []byte, name string) bool {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			return false
		}
		if h.Name == name {
			return true
		}
	}
}

// BenchmarkContainerRootfs is the storage part of `moss run --rm`: create
// and mount a container's root file system, then unmount and delete it.
func BenchmarkContainerRootfs(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to mount overlay layers")
	}
	dir := b.TempDir()
	s, err := Open(Options{GraphRoot: filepath.Join(dir, "graph"), RunRoot: filepath.Join(dir, "run")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.s.Shutdown(true)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		b.Skip(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb)), Typeflag: tar.TypeReg})
	tw.Write(bb)
	tw.Close()
	img, err := s.Import(context.Background(), &buf, "busybox", ImportConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("%064x", i)
		if err := s.CreateContainer(id, img.ID, true); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Mount(id); err != nil {
			b.Fatal(err)
		}
		if err := s.DeleteContainer(id); err != nil {
			b.Fatal(err)
		}
	}
}

// Loading an archive of an image that is already here (an imported one)
// only adds the archive's names, as docker load does.
func TestLoadExistingImage(t *testing.T) {
	s := openTest(t, Options{})
	img := mustImport(t, s, busyboxRootfs(t), "mosstest/base:1", ImportConfig{})
	if err := s.Tag("mosstest/base:1", "mosstest/base:2"); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"docker-archive", "oci-archive"} {
		var buf bytes.Buffer
		ref := "mosstest/base:2"
		if err := s.Save(context.Background(), &buf, []string{ref}, format); err != nil {
			t.Fatalf("%s: save: %v", format, err)
		}
		if _, _, err := s.RemoveImage(ref, false); err != nil {
			t.Fatal(err)
		}
		out, err := s.Load(context.Background(), &buf)
		if err != nil {
			t.Fatalf("%s: load of an existing image: %v", format, err)
		}
		got, err := s.Image(ref)
		if err != nil || got.ID != img.ID {
			t.Fatalf("%s: %v after load (%v): %v", format, got, out, err)
		}
	}
	if n := imageCount(t, s); n != 1 {
		t.Fatalf("%d images, want 1", n)
	}
}
