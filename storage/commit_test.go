package storage

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// changedContainer creates a container on img and changes its root: a new
// file, a modified one, a deleted one and the agent's mount point
// /etc/hostname (which the commit must leave out).
func changedContainer(t *testing.T, s *Store, id, imgID string) {
	t.Helper()
	if err := s.CreateContainer(id, imgID, false); err != nil {
		t.Fatal(err)
	}
	root, err := s.Mount(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.DeleteContainer(id) })
	for p, body := range map[string]string{"tmp/new": "new file\n", "etc/passwd": "root:x:0:0::/root:/bin/sh\n", "etc/hostname": ""} {
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(root, "etc/group")); err != nil {
		t.Fatal(err)
	}
}

func commitConfig(cmd ...string) dockerspec.DockerOCIImageConfig {
	var c dockerspec.DockerOCIImageConfig
	c.Cmd = cmd
	c.Env = []string{"PATH=/bin"}
	return c
}

func changeList(t *testing.T, s *Store, from, to string) []string {
	t.Helper()
	chs, err := s.s.Changes(from, to)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ch := range chs {
		out = append(out, ch.String())
	}
	sort.Strings(out)
	return out
}

func TestCommit(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	base := mustImport(t, s, busyboxRootfs(t), "mosstest/base:1", ImportConfig{Cmd: []string{"sh"}, Message: "base"})
	changedContainer(t, s, "ctr", base.ID)
	layersBefore := layerCount(t, s)

	img, err := s.Commit(ctx, "ctr", CommitOptions{
		Ref: "mosstest/committed:v1", Config: commitConfig("cat", "/tmp/new"), Author: "A. Author",
		Comment: "a change", CreatedBy: "sh -c change", Exclude: map[string]bool{"/etc/hostname": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if img.Parent != base.ID || !slices.Equal(img.RepoTags, []string{"mosstest/committed:v1"}) {
		t.Errorf("committed image: parent %s tags %v", img.Parent, img.RepoTags)
	}
	if n := layerCount(t, s); n != layersBefore+1 {
		t.Errorf("%d layers, want %d", n, layersBefore+1)
	}
	cfg := img.Config
	if len(cfg.RootFS.DiffIDs) != 2 || cfg.RootFS.DiffIDs[0] != base.Config.RootFS.DiffIDs[0] || len(cfg.History) != 2 {
		t.Fatalf("rootfs %v history %v", cfg.RootFS.DiffIDs, cfg.History)
	}
	if h := cfg.History[1]; h.CreatedBy != "sh -c change" || h.Comment != "a change" || h.Author != "A. Author" || h.EmptyLayer {
		t.Errorf("history entry %+v", h)
	}
	if cfg.Author != "A. Author" || !slices.Equal(cfg.Config.Cmd, []string{"cat", "/tmp/new"}) || cfg.OS != "linux" {
		t.Errorf("config %+v", cfg)
	}
	// The new layer holds exactly the changes, without the mount point.
	parentTop := base.TopLayer
	got := changeList(t, s, parentTop, img.TopLayer)
	want := []string{"C /etc", "C /etc/passwd", "C /tmp", "A /tmp/new", "D /etc/group"}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("committed layer changes %v, want %v", got, want)
	}
	// A container of the new image sees them.
	if err := s.CreateContainer("ctr2", img.ID, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.DeleteContainer("ctr2") })
	root, err := s.Mount("ctr2")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "tmp/new")); err != nil || string(b) != "new file\n" {
		t.Errorf("tmp/new: %q, %v", b, err)
	}
	for _, gone := range []string{"etc/group", "etc/hostname"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s in the committed image: %v", gone, err)
		}
	}
	if err := s.DeleteContainer("ctr2"); err != nil {
		t.Fatal(err)
	}

	// history: newest first, IDs of the image and its parent.
	hist, err := s.History("mosstest/committed:v1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].ID != "sha256:"+img.ID || hist[1].ID != "sha256:"+base.ID || hist[0].CreatedBy != "sh -c change" ||
		hist[1].CreatedBy != "moss import" || hist[1].Comment != "base" || hist[0].Size <= 0 || hist[1].Size <= hist[0].Size ||
		!slices.Equal(hist[0].Tags, []string{"mosstest/committed:v1"}) {
		t.Errorf("history %+v", hist)
	}

	// Nothing changed: no new layer, an empty-layer history entry.
	if err := s.CreateContainer("same", img.ID, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.DeleteContainer("same") })
	empty, err := s.Commit(ctx, "same", CommitOptions{Config: commitConfig("true"), CreatedBy: "true"})
	if err != nil {
		t.Fatal(err)
	}
	if empty.TopLayer != img.TopLayer || len(empty.Config.RootFS.DiffIDs) != 2 || len(empty.Config.History) != 3 ||
		!empty.Config.History[2].EmptyLayer || len(empty.RepoTags) != 0 || empty.Parent != img.ID {
		t.Errorf("empty commit %+v", empty)
	}
	hist, err = s.History(empty.ID)
	if err != nil || len(hist) != 3 || hist[0].Size != 0 || hist[1].ID != "sha256:"+img.ID || hist[2].ID != "sha256:"+base.ID {
		t.Errorf("history of the empty commit %+v, %v", hist, err)
	}

	// Bad references and missing containers change nothing.
	n := layerCount(t, s)
	for ref, kind := range map[string]error{"Bad/Ref": ErrInvalid, "x@sha256:" + strings.Repeat("a", 64): ErrInvalid} {
		if _, err := s.Commit(ctx, "ctr", CommitOptions{Ref: ref}); !errors.Is(err, kind) {
			t.Errorf("commit to %q: %v", ref, err)
		}
	}
	if _, err := s.Commit(ctx, "nosuch", CommitOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("commit of a missing container: %v", err)
	}
	if layerCount(t, s) != n {
		t.Error("a failed commit left a layer")
	}
}

// An image commits were made from is not deleted while they exist;
// deleting the last child deletes its untagged parents too.
func TestRemoveParentImage(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	base := mustImport(t, s, busyboxRootfs(t), "mosstest/base:1", ImportConfig{Cmd: []string{"sh"}})
	changedContainer(t, s, "ctr", base.ID)
	mid, err := s.Commit(ctx, "ctr", CommitOptions{Config: commitConfig("sh"), Exclude: map[string]bool{"/etc/hostname": true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteContainer("ctr"); err != nil {
		t.Fatal(err)
	}
	changedContainer(t, s, "ctr2", mid.ID)
	top, err := s.Commit(ctx, "ctr2", CommitOptions{Ref: "mosstest/top", Config: commitConfig("sh")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteContainer("ctr2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RemoveImage(mid.ID, true); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "dependent child images") {
		t.Errorf("rmi of a parent by ID: %v", err)
	}
	// By its last name: untagged only.
	untagged, deleted, err := s.RemoveImage("mosstest/base:1", false)
	if err != nil || !slices.Equal(untagged, []string{"mosstest/base:1"}) || len(deleted) != 0 {
		t.Errorf("rmi of a parent by name: %v %v %v", untagged, deleted, err)
	}
	if _, err := s.Image(base.ID); err != nil {
		t.Errorf("parent deleted: %v", err)
	}
	_, deleted, err = s.RemoveImage("mosstest/top", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{top.ID, mid.ID, base.ID} {
		if !slices.Contains(deleted, "sha256:"+id) {
			t.Errorf("deleted %v lacks %s", deleted, id)
		}
	}
	if n, m := layerCount(t, s), imageCount(t, s); n != 0 || m != 0 {
		t.Errorf("left %d layers, %d images", n, m)
	}
}

func TestPruneImages(t *testing.T) {
	s := openTest(t, Options{})
	tagged := mustImport(t, s, busyboxRootfs(t), "mosstest/base:1", ImportConfig{})
	dangling := mustImport(t, s, buildTar(t, file("a", "1")), "", ImportConfig{})
	used := mustImport(t, s, buildTar(t, file("b", "2")), "", ImportConfig{})
	labelled := mustImport(t, s, buildTar(t, file("c", "3")), "mosstest/l:1", ImportConfig{Labels: map[string]string{"keep": "yes"}})
	if err := s.CreateContainer("user", used.ID, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.DeleteContainer("user") })

	untagged, deleted, space, err := s.PruneImages(false, nil)
	if err != nil || len(untagged) != 0 || len(deleted) != 2 || deleted[0] != "sha256:"+dangling.ID || space == 0 {
		t.Fatalf("prune: %v %v %d %v", untagged, deleted, space, err)
	}
	// -a with a filter that keeps the labelled image.
	keep := func(img *Image) bool { return img.Config.Config.Labels["keep"] != "yes" }
	untagged, deleted, _, err = s.PruneImages(true, keep)
	if err != nil || !slices.Contains(untagged, "mosstest/base:1") || !slices.Contains(deleted, "sha256:"+tagged.ID) {
		t.Fatalf("prune -a: %v %v %v", untagged, deleted, err)
	}
	left, err := s.Images()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, img := range left {
		ids = append(ids, img.ID)
	}
	slices.Sort(ids)
	want := []string{used.ID, labelled.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("left %v, want the used and the labelled image", ids)
	}
}

func TestImagesUsage(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	base := mustImport(t, s, busyboxRootfs(t), "mosstest/base:1", ImportConfig{})
	changedContainer(t, s, "ctr", base.ID)
	child, err := s.Commit(ctx, "ctr", CommitOptions{Config: commitConfig("sh")})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.ImagesUsage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Shared[base.ID] != base.Size || u.Shared[child.ID] != base.Size || u.LayersSize != child.Size {
		t.Errorf("usage %+v; base %d child %d", u, base.Size, child.Size)
	}
	if n, err := s.ContainerSize("ctr"); err != nil || n <= 0 {
		t.Errorf("container size %d, %v", n, err)
	}
}

// Several images, one committed from another, survive save and load with
// their IDs, tags and history, in both archive formats.
func TestSaveLoadCommitted(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	base := mustImport(t, s, busyboxRootfs(t), "mosstest/base:1", ImportConfig{Cmd: []string{"sh"}})
	changedContainer(t, s, "ctr", base.ID)
	child, err := s.Commit(ctx, "ctr", CommitOptions{Ref: "mosstest/child:2", Config: commitConfig("sh"), CreatedBy: "made"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(child.ID, "localhost:5000/child:3"); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"docker-archive", "oci-archive"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := s.Save(ctx, &buf, []string{"mosstest/base:1", child.ID}, format); err != nil {
				t.Fatal(err)
			}
			s2 := openTest(t, Options{})
			out, err := s2.Load(ctx, &buf)
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(out)
			if want := []string{"Loaded image: localhost:5000/child:3", "Loaded image: mosstest/base:1", "Loaded image: mosstest/child:2"}; !slices.Equal(out, want) {
				t.Errorf("loaded %q, want %q", out, want)
			}
			for ref, want := range map[string]*Image{"mosstest/base:1": base, "mosstest/child:2": child, "localhost:5000/child:3": child} {
				got, err := s2.Image(ref)
				if err != nil || got.ID != want.ID || len(got.Config.History) != len(want.Config.History) {
					t.Errorf("%s: %+v, %v", ref, got, err)
					continue
				}
				for i, h := range got.Config.History {
					if h.CreatedBy != want.Config.History[i].CreatedBy || !h.Created.Equal(*want.Config.History[i].Created) {
						t.Errorf("%s: history %d %+v, want %+v", ref, i, h, want.Config.History[i])
					}
				}
			}
			if n := layerCount(t, s2); n != 2 {
				t.Errorf("%d layers after load, want 2 (the base's shared)", n)
			}
		})
	}
}

// A load that fails on its second image leaves nothing of the first.
func TestLoadRollsBack(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	mustImport(t, s, busyboxRootfs(t), "mosstest/base:1", ImportConfig{})
	mustImport(t, s, buildTar(t, dir("etc/"), file("etc/motd", "hi")), "mosstest/other:1", ImportConfig{})
	var buf bytes.Buffer
	if err := s.Save(ctx, &buf, []string{"mosstest/base:1", "mosstest/other:1"}, ""); err != nil {
		t.Fatal(err)
	}
	broken := corruptLastLayer(t, buf.Bytes())
	s2 := openTest(t, Options{})
	if _, err := s2.Load(ctx, bytes.NewReader(broken)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "nothing was loaded") {
		t.Fatalf("load of a damaged archive: %v", err)
	}
	if n, m := layerCount(t, s2), imageCount(t, s2); n != 0 || m != 0 {
		t.Errorf("left %d layers, %d images", n, m)
	}
	// A truncated archive is refused before anything is written.
	if _, err := s2.Load(ctx, bytes.NewReader(buf.Bytes()[:buf.Len()/2])); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("load of a truncated archive: %v", err)
	}
}

// corruptLastLayer flips a byte in the last layer of the last image of a
// docker-archive, keeping its size.
func corruptLastLayer(t *testing.T, archive []byte) []byte {
	t.Helper()
	files := map[string][]byte{}
	var hdrs []*tar.Header
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
		hdrs = append(hdrs, h)
	}
	var man []struct{ Layers []string }
	if err := json.Unmarshal(files["manifest.json"], &man); err != nil || len(man) < 2 {
		t.Fatalf("manifest.json: %s, %v", files["manifest.json"], err)
	}
	layers := man[len(man)-1].Layers
	victim := layers[len(layers)-1]
	b := files[victim]
	// The first file's content starts after its 512-byte header.
	b[600] ^= 0xff
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[h.Name])
	}
	tw.Close()
	return out.Bytes()
}

func TestFilterTar(t *testing.T) {
	in := buildTar(t, dir("etc/"), file("etc/hostname", ""), file("etc/x", "1"), file("./sbin/moss-init", "i"))
	var out bytes.Buffer
	n, err := filterTar(&out, bytes.NewReader(in), map[string]bool{"/etc/hostname": true, "/sbin/moss-init": true})
	if err != nil || n != 2 {
		t.Fatalf("%d entries, %v", n, err)
	}
	var names []string
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	if !slices.Equal(names, []string{"etc/", "etc/x"}) {
		t.Errorf("kept %v", names)
	}
}

// Derive adds a configuration step without a layer, also from scratch.
func TestDerive(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	base := mustImport(t, s, busyboxRootfs(t), "mosstest/base:1", ImportConfig{})
	img, err := s.Derive(ctx, base.ID, CommitOptions{Ref: "mosstest/derived", Config: commitConfig("echo"), CreatedBy: "CMD echo"})
	if err != nil {
		t.Fatal(err)
	}
	if img.TopLayer != base.TopLayer || img.Parent != base.ID || len(img.Config.History) != 2 || !img.Config.History[1].EmptyLayer ||
		!slices.Equal(img.Config.Config.Cmd, []string{"echo"}) || !slices.Equal(img.RepoTags, []string{"mosstest/derived:latest"}) {
		t.Errorf("derived %+v", img)
	}
	scratch, err := s.Derive(ctx, "", CommitOptions{Config: commitConfig("x"), CreatedBy: "FROM scratch"})
	if err != nil {
		t.Fatal(err)
	}
	if scratch.TopLayer != "" || len(scratch.Config.RootFS.DiffIDs) != 0 || scratch.Config.OS != "linux" || scratch.Parent != "" {
		t.Errorf("from scratch %+v", scratch)
	}
	// A layer on nothing: a storage container without an image.
	if _, err := s.s.CreateContainer("scratchctr", nil, "", "", "", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.DeleteContainer("scratchctr") })
	root, err := s.Mount("scratchctr")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	one, err := s.Commit(ctx, "scratchctr", CommitOptions{Config: commitConfig("/hello"), CreatedBy: "COPY hello /"})
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Config.RootFS.DiffIDs) != 1 || len(one.Config.History) != 1 || one.Parent != "" {
		t.Errorf("commit on scratch %+v", one)
	}
	var buf bytes.Buffer
	if err := s.Save(ctx, &buf, []string{one.ID}, ""); err != nil {
		t.Errorf("save of an image committed on scratch: %v", err)
	}
}

// An image loaded from a docker-archive (a schema 2 manifest in the
// store) keeps its ID through an oci-archive.
func TestOCIArchiveKeepsConfig(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	base := mustImport(t, s, busyboxRootfs(t), "mosstest/base:1", ImportConfig{Cmd: []string{"sh"}})
	changedContainer(t, s, "ctr", base.ID)
	child, err := s.Commit(ctx, "ctr", CommitOptions{Ref: "mosstest/child:2", Config: commitConfig("sh")})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Save(ctx, &buf, []string{"mosstest/child:2", "mosstest/base:1"}, "docker-archive"); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, Options{})
	if _, err := s2.Load(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := s2.Save(ctx, &buf, []string{"mosstest/child:2", "mosstest/base:1", child.ID}, "oci-archive"); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	s3 := openTest(t, Options{})
	if _, err := s3.Load(ctx, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{"mosstest/child:2": child.ID, "mosstest/base:1": base.ID} {
		if got, err := s3.Image(ref); err != nil || got.ID != want {
			t.Errorf("%s: %v, %v; want ID %s", ref, got, err, want)
		}
	}
	// No blob is left that the index does not use.
	tr := tar.NewReader(bytes.NewReader(data))
	blobs := 0
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if strings.HasPrefix(h.Name, "blobs/sha256/") && h.Typeflag == tar.TypeReg {
			blobs++
		}
	}
	// two manifests, two configs, two layers
	if blobs != 6 {
		t.Errorf("%d blobs in the oci-archive, want 6", blobs)
	}
}
