package storage

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/opencontainers/go-digest"
	ociv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage/pkg/archive"
)

// sys keeps containers/image inside the graph root: temporary files and
// its blob info cache go there, not to /var/tmp and ~/.local/share/containers.
func (s *Store) sys() *types.SystemContext {
	return &types.SystemContext{
		BigFilesTemporaryDir: s.tmpDir(),
		BlobInfoCacheDir:     s.subdir("cache"),
		OSChoice:             "linux",
		ArchitectureChoice:   runtime.GOARCH,
		SignaturePolicyPath:  "/dev/null",
	}
}

func (s *Store) tmpDir() string { return s.subdir("tmp") }

func (s *Store) subdir(name string) string {
	d := path.Join(s.s.GraphRoot(), name)
	_ = os.MkdirAll(d, 0o700)
	return d
}

func policy() (*signature.PolicyContext, error) {
	return signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
}

func configID(ctx context.Context, sys *types.SystemContext, ref types.ImageReference) (string, error) {
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return "", err
	}
	defer src.Close()
	img, err := image.FromUnparsedImage(ctx, sys, image.UnparsedInstance(src, nil))
	if err != nil {
		return "", err
	}
	return img.ConfigInfo().Digest.Encoded(), nil
}

// copyTo copies an image into the store and returns it.
func (s *Store) copyTo(ctx context.Context, dest, src types.ImageReference) (*Image, error) {
	pc, err := policy()
	if err != nil {
		return nil, err
	}
	defer pc.Destroy()
	defer s.invalidate()
	man, err := copy.Image(ctx, pc, dest, src, &copy.Options{SourceCtx: s.sys(), DestinationCtx: s.sys(), ReportWriter: io.Discard})
	if err != nil {
		return nil, err
	}
	img, err := istorage.Transport.GetStoreImage(s.s, dest)
	if err != nil {
		return nil, fmt.Errorf("find copied image (manifest %s): %w", digest.FromBytes(man), err)
	}
	return s.toImage(img)
}

// archiveKind tells docker-archive from oci-archive by their index files,
// reading the whole archive: a truncated or damaged one is refused here,
// before anything is written to the store.
func archiveKind(f *os.File) (string, error) {
	defer f.Seek(0, io.SeekStart)
	tr := tar.NewReader(f)
	seen := map[string]bool{}
	n := 0
	for {
		h, err := tr.Next()
		inside := ""
		if err == nil {
			inside = h.Name
			_, err = io.Copy(io.Discard, tr)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			switch {
			case errors.Is(err, io.ErrUnexpectedEOF) && inside != "":
				return "", errorf(ErrInvalid, "the archive is truncated: it ends inside %q (entry %d); nothing was loaded", inside, n+1)
			case errors.Is(err, io.ErrUnexpectedEOF) && n > 0:
				return "", errorf(ErrInvalid, "the archive is truncated: it ends after %d entries; nothing was loaded", n)
			case n > 0:
				return "", errorf(ErrInvalid, "the archive is damaged after %d entries: %v; nothing was loaded", n, err)
			}
			return "", errorf(ErrInvalid, "input is not a docker-archive or oci-archive: %v", err)
		}
		n++
		seen[path.Clean(h.Name)] = true
	}
	switch {
	case seen["manifest.json"]:
		return "docker-archive", nil
	case seen["index.json"] && seen["oci-layout"]:
		return "oci-archive", nil
	}
	return "", errorf(ErrInvalid, "input is not a docker-archive or oci-archive: it has neither manifest.json nor index.json")
}

// loadedImage is one image of an archive: where to read it, its ID and
// the names the archive gives it.
type loadedImage struct {
	src   types.ImageReference
	id    string
	names []string
}

// Load loads every image of a docker-archive or oci-archive and returns
// "Loaded image: NAME" / "Loaded image ID: sha256:ID" lines. It is all or
// nothing: the images are copied first and named at the end, and when one
// fails those copied before it are deleted again.
func (s *Store) Load(ctx context.Context, r io.Reader) ([]string, error) {
	dr, err := archive.DecompressStream(bufio.NewReader(r))
	if err != nil {
		return nil, errorf(ErrInvalid, "input is not a docker-archive or oci-archive: %v", err)
	}
	defer dr.Close()
	f, err := os.CreateTemp(s.tmpDir(), "load-*.tar")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, dr); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errorf(ErrInvalid, "the archive is truncated: %v; nothing was loaded", err)
		}
		return nil, errorf(ErrInvalid, "read archive: %v", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	kind, err := archiveKind(f)
	if err != nil {
		return nil, err
	}
	var imgs []loadedImage
	if kind == "oci-archive" {
		dir, err := os.MkdirTemp(s.tmpDir(), "load-oci-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if imgs, err = s.ociImages(ctx, f, dir); err != nil {
			return nil, err
		}
	} else {
		rd, err := dockerarchive.NewReader(s.sys(), f.Name())
		if err != nil {
			return nil, errorf(ErrInvalid, "input is not a valid docker-archive: %v", err)
		}
		defer rd.Close()
		if imgs, err = s.dockerImages(ctx, rd); err != nil {
			return nil, err
		}
	}
	return s.loadImages(ctx, imgs)
}

// dockerImages lists the images of a docker-archive.
func (s *Store) dockerImages(ctx context.Context, rd *dockerarchive.Reader) ([]loadedImage, error) {
	groups, err := rd.List()
	if err != nil {
		return nil, errorf(ErrInvalid, "input is not a valid docker-archive: %v", err)
	}
	var out []loadedImage
	for _, refs := range groups {
		li := loadedImage{src: refs[0]}
		for _, ref := range refs {
			if n := ref.DockerReference(); n != nil {
				li.names = append(li.names, n.String())
			}
		}
		if li.id, err = configID(ctx, s.sys(), li.src); err != nil {
			return nil, errorf(ErrInvalid, "read image from archive: %v", err)
		}
		out = append(out, li)
	}
	return out, nil
}

// ociImages unpacks an oci-archive into dir and lists its images, with
// the names of their index annotations.
func (s *Store) ociImages(ctx context.Context, f *os.File, dir string) ([]loadedImage, error) {
	if err := extractLayout(f, dir); err != nil {
		return nil, err
	}
	list, err := layout.List(dir)
	if err != nil {
		return nil, errorf(ErrInvalid, "input is not a valid oci-archive: %v", err)
	}
	if len(list) == 0 {
		return nil, errorf(ErrInvalid, "the oci-archive holds no image")
	}
	var out []loadedImage
	for _, item := range list {
		li := loadedImage{src: item.Reference}
		if n := ociName(item.ManifestDescriptor.Annotations); n != nil {
			li.names = []string{n.String()}
		}
		if li.id, err = configID(ctx, s.sys(), li.src); err != nil {
			return nil, errorf(ErrInvalid, "read image from oci-archive: %v", err)
		}
		out = append(out, li)
	}
	return out, nil
}

// ociName is the image name an OCI index entry gives: containerd's (and
// Docker's) full name annotation, else the OCI ref name when it is a name
// and not only a tag.
func ociName(ann map[string]string) reference.Named {
	for _, n := range []string{ann["io.containerd.image.name"], ann[ociv1.AnnotationRefName]} {
		if n == "" {
			continue
		}
		if nn, err := reference.ParseNormalizedNamed(n); err == nil {
			return reference.TagNameOnly(nn)
		}
		if nn, err := reference.ParseNormalizedNamed("localhost/" + n); err == nil {
			return reference.TagNameOnly(nn)
		}
	}
	return nil
}

// extractLayout unpacks the directories and regular files of an OCI
// layout archive into dir; anything else (links, devices) has no place in
// a layout and is skipped, so no entry can lead outside dir.
func extractLayout(f *os.File, dir string) error {
	defer f.Seek(0, io.SeekStart)
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errorf(ErrInvalid, "read oci-archive: %v", err)
		}
		name, ok := inRoot(h.Name)
		if !ok {
			return errorf(ErrInvalid, "oci-archive entry %q points outside the archive", h.Name)
		}
		if name == "." {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return err
			}
			out, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return errorf(ErrInvalid, "read oci-archive entry %q: %v", h.Name, err)
			}
		}
	}
}

// loadImages copies the images that are not here yet into the store, then
// names them all; a failed copy deletes the images this load created.
func (s *Store) loadImages(ctx context.Context, imgs []loadedImage) (out []string, err error) {
	var created []string
	defer func() {
		if err == nil {
			return
		}
		for _, id := range created {
			if _, derr := s.s.DeleteImage(id, true); derr != nil {
				s.log.Warn("cannot remove an image of a failed load", "image", id, "error", derr)
			}
		}
		s.invalidate()
	}()
	for _, li := range imgs {
		// An image that is already here (an imported one, whose layer
		// IDs containers/image would compute differently) only gets the
		// archive's names, as docker load does.
		if _, err := s.s.Image(li.id); err == nil {
			continue
		}
		dest, err := istorage.Transport.NewStoreReference(s.s, nil, li.id)
		if err != nil {
			return nil, err
		}
		if _, err := s.copyTo(ctx, dest, li.src); err != nil {
			if _, ierr := s.s.Image(li.id); ierr == nil {
				created = append(created, li.id)
			}
			return nil, errorf(ErrInvalid, "load image %s: %v; nothing was loaded", shortID(li.id), err)
		}
		created = append(created, li.id)
	}
	for _, li := range imgs {
		if len(li.names) > 0 {
			if err := s.s.AddNames(li.id, li.names); err != nil {
				return nil, fmt.Errorf("name loaded image %s: %w", shortID(li.id), err)
			}
			s.invalidate()
			for _, n := range li.names {
				nn, _ := reference.ParseNormalizedNamed(n)
				out = append(out, "Loaded image: "+reference.FamiliarString(nn))
			}
			continue
		}
		out = append(out, "Loaded image ID: sha256:"+li.id)
	}
	return out, nil
}

// Save writes the images named by refs to w as a docker-archive or an
// oci-archive, each image once with the tags asked for: a name saves that
// tag, an ID or digest reference every tag of the image. Nothing is
// written to w unless the whole archive could be made.
func (s *Store) Save(ctx context.Context, w io.Writer, refs []string, format string) error {
	switch format {
	case "", "docker-archive", "oci-archive":
	default:
		return errorf(ErrInvalid, "unknown archive format %q: use docker-archive or oci-archive", format)
	}
	entries, err := s.saveEntries(refs)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.tmpDir(), "save-*.tar")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	if format == "oci-archive" {
		err = s.saveOCI(ctx, name, entries)
	} else {
		err = s.saveDocker(ctx, name, entries)
	}
	if err != nil {
		return err
	}
	rf, err := os.Open(name)
	if err != nil {
		return err
	}
	defer rf.Close()
	_, err = io.Copy(w, rf)
	return err
}

// saveEntry is one image of a save and the tags it is saved with.
type saveEntry struct {
	id   string
	tags []reference.NamedTagged
}

func (s *Store) saveEntries(refs []string) ([]*saveEntry, error) {
	var order []*saveEntry
	byID := map[string]*saveEntry{}
	add := func(e *saveEntry, nt reference.NamedTagged) {
		if !slices.ContainsFunc(e.tags, func(t reference.NamedTagged) bool { return t.String() == nt.String() }) {
			e.tags = append(e.tags, nt)
		}
	}
	for _, ref := range refs {
		img, err := s.lookup(ref)
		if err != nil {
			return nil, err
		}
		e := byID[img.ID]
		if e == nil {
			e = &saveEntry{id: img.ID}
			byID[img.ID] = e
			order = append(order, e)
		}
		if n, err := normalize(ref); err == nil && slices.Contains(img.Names, n.String()) {
			if nt, ok := n.(reference.NamedTagged); ok {
				add(e, nt)
			}
			continue
		}
		for _, n := range img.Names {
			nn, err := reference.ParseNormalizedNamed(n)
			if err != nil {
				continue
			}
			if nt, ok := nn.(reference.NamedTagged); ok {
				add(e, nt)
			}
		}
	}
	return order, nil
}

// copyOut copies the image id to dest and returns the manifest written.
func (s *Store) copyOut(ctx context.Context, dest types.ImageReference, id string, destSys *types.SystemContext) ([]byte, error) {
	src, err := istorage.Transport.NewStoreReference(s.s, nil, id)
	if err != nil {
		return nil, err
	}
	pc, err := policy()
	if err != nil {
		return nil, err
	}
	defer pc.Destroy()
	man, err := copy.Image(ctx, pc, dest, src, &copy.Options{SourceCtx: s.sys(), DestinationCtx: destSys, ReportWriter: io.Discard})
	if err != nil {
		return nil, fmt.Errorf("save %s: %w", shortID(id), err)
	}
	return man, nil
}

func (s *Store) saveDocker(ctx context.Context, file string, entries []*saveEntry) error {
	_ = os.Remove(file)
	wr, err := dockerarchive.NewWriter(s.sys(), file)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			wr.Close()
		}
	}()
	for _, e := range entries {
		var first reference.NamedTagged
		sys := s.sys()
		if len(e.tags) > 0 {
			first = e.tags[0]
			sys.DockerArchiveAdditionalTags = e.tags[1:]
		}
		dest, err := wr.NewReference(first)
		if err != nil {
			return err
		}
		if _, err := s.copyOut(ctx, dest, e.id, sys); err != nil {
			return err
		}
	}
	closed = true
	return wr.Close()
}

// saveOCI writes an OCI layout with an index entry per image and tag
// (org.opencontainers.image.ref.name the familiar name, as Podman writes
// it) and packs it into file.
func (s *Store) saveOCI(ctx context.Context, file string, entries []*saveEntry) error {
	dir, err := os.MkdirTemp(s.tmpDir(), "save-oci-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, e := range entries {
		names := []string{""}
		if len(e.tags) > 0 {
			names = names[:0]
			for _, t := range e.tags {
				names = append(names, reference.FamiliarString(t))
			}
		}
		for _, n := range names {
			dest, err := layout.NewReference(dir, n)
			if err != nil {
				return err
			}
			man, err := s.copyOut(ctx, dest, e.id, s.sys())
			if err != nil {
				return err
			}
			if err := s.keepOCIConfig(dir, e.id, man); err != nil {
				return fmt.Errorf("save %s: %w", shortID(e.id), err)
			}
		}
	}
	if err := pruneLayoutBlobs(dir); err != nil {
		return err
	}
	return tarDir(dir, file)
}

// keepOCIConfig puts the image's own configuration back into the layout
// where containers/image wrote a converted one. An image stored with a
// Docker schema 2 manifest (loaded from a docker-archive, pulled) gets
// its configuration re-encoded when the manifest becomes an OCI one,
// which changes its digest, the image's ID; Docker's configuration is a
// valid OCI one, and Docker's own OCI archives carry it unchanged too.
func (s *Store) keepOCIConfig(dir, id string, manBlob []byte) error {
	var man ociv1.Manifest
	if err := json.Unmarshal(manBlob, &man); err != nil {
		return fmt.Errorf("read the manifest written: %w", err)
	}
	if man.Config.Digest.Encoded() == id {
		return nil
	}
	cfg, err := s.configBlob(id)
	if err != nil {
		return err
	}
	if digest.FromBytes(cfg).Encoded() != id {
		return nil // an image whose ID is not its config's digest
	}
	man.Config = ociv1.Descriptor{MediaType: ociv1.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	newMan, err := json.Marshal(man)
	if err != nil {
		return err
	}
	for _, b := range [][]byte{cfg, newMan} {
		if err := os.WriteFile(blobPath(dir, digest.FromBytes(b)), b, 0o644); err != nil {
			return err
		}
	}
	idxPath := filepath.Join(dir, ociv1.ImageIndexFile)
	data, err := os.ReadFile(idxPath)
	if err != nil {
		return err
	}
	var idx ociv1.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return err
	}
	old := digest.FromBytes(manBlob)
	for i := range idx.Manifests {
		if idx.Manifests[i].Digest == old {
			idx.Manifests[i].Digest, idx.Manifests[i].Size = digest.FromBytes(newMan), int64(len(newMan))
		}
	}
	if data, err = json.Marshal(idx); err != nil {
		return err
	}
	return os.WriteFile(idxPath, data, 0o644)
}

func blobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
}

// pruneLayoutBlobs removes the blobs of an OCI layout that no manifest
// of its index refers to (the configurations keepOCIConfig replaced).
func pruneLayoutBlobs(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, ociv1.ImageIndexFile))
	if err != nil {
		return err
	}
	var idx ociv1.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, md := range idx.Manifests {
		keep[blobPath(dir, md.Digest)] = true
		b, err := os.ReadFile(blobPath(dir, md.Digest))
		if err != nil {
			return err
		}
		var man ociv1.Manifest
		if err := json.Unmarshal(b, &man); err != nil {
			return err
		}
		keep[blobPath(dir, man.Config.Digest)] = true
		for _, l := range man.Layers {
			keep[blobPath(dir, l.Digest)] = true
		}
	}
	return filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || keep[p] {
			return err
		}
		return os.Remove(p)
	})
}

// tarDir packs the files of dir into the tar file, in a stable order.
func tarDir(dir, file string) error {
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: fi.ModTime(), Mode: 0o644, Typeflag: tar.TypeReg, Size: fi.Size()}
		if d.IsDir() {
			h.Name += "/"
			h.Mode, h.Typeflag, h.Size = 0o755, tar.TypeDir, 0
		} else if !d.Type().IsRegular() {
			return nil
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return out.Close()
}
