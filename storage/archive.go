package storage

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"slices"

	"github.com/opencontainers/go-digest"
	ociv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	ociarchive "go.podman.io/image/v5/oci/archive"
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

// archiveKind tells docker-archive from oci-archive by their index files.
func archiveKind(f *os.File) (string, error) {
	defer f.Seek(0, io.SeekStart)
	tr := tar.NewReader(f)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", errorf(ErrInvalid, "input is not a docker-archive or oci-archive: %v", err)
		}
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

// Load loads every image of a docker-archive or oci-archive and returns
// "Loaded image: NAME" / "Loaded image ID: sha256:ID" lines.
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
		return nil, errorf(ErrInvalid, "read archive: %v", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	kind, err := archiveKind(f)
	if err != nil {
		return nil, err
	}
	if kind == "oci-archive" {
		return s.loadOCI(ctx, f.Name())
	}
	rd, err := dockerarchive.NewReader(s.sys(), f.Name())
	if err != nil {
		return nil, errorf(ErrInvalid, "input is not a valid docker-archive: %v", err)
	}
	defer rd.Close()
	groups, err := rd.List()
	if err != nil {
		return nil, errorf(ErrInvalid, "input is not a valid docker-archive: %v", err)
	}
	var out []string
	for _, refs := range groups {
		src := refs[0]
		var names []string
		for _, ref := range refs {
			if n := ref.DockerReference(); n != nil {
				names = append(names, n.String())
			}
		}
		id, err := configID(ctx, s.sys(), src)
		if err != nil {
			return out, errorf(ErrInvalid, "read image from archive: %v", err)
		}
		// An image that is already here (an imported one, whose layer
		// IDs containers/image would compute differently) only gets the
		// archive's names, as docker load does.
		if _, err := s.s.Image(id); err != nil {
			var dest types.ImageReference
			if len(names) > 0 {
				n, _ := reference.ParseNormalizedNamed(names[0])
				dest, err = istorage.Transport.NewStoreReference(s.s, n, "")
			} else {
				dest, err = istorage.Transport.NewStoreReference(s.s, nil, id)
			}
			if err != nil {
				return out, err
			}
			img, err := s.copyTo(ctx, dest, src)
			if err != nil {
				return out, errorf(ErrInvalid, "load image: %v", err)
			}
			id = img.ID
		}
		if len(names) > 0 {
			if err := s.s.AddNames(id, names); err != nil {
				return out, err
			}
			s.invalidate()
		}
		if len(names) == 0 {
			out = append(out, "Loaded image ID: sha256:"+id)
		}
		for _, n := range names {
			nn, _ := reference.ParseNormalizedNamed(n)
			out = append(out, "Loaded image: "+reference.FamiliarString(nn))
		}
	}
	return out, nil
}

func (s *Store) loadOCI(ctx context.Context, file string) ([]string, error) {
	src, err := ociarchive.NewReference(file, "")
	if err != nil {
		return nil, errorf(ErrInvalid, "input is not a valid oci-archive: %v", err)
	}
	var named reference.Named
	if ir, err := ociarchive.LoadManifestDescriptor(src); err == nil {
		if n := ir.Annotations[ociv1.AnnotationRefName]; n != "" {
			if nn, err := reference.ParseNormalizedNamed(n); err == nil {
				named = reference.TagNameOnly(nn)
			} else if nn, err := reference.ParseNormalizedNamed("localhost/" + n); err == nil {
				named = reference.TagNameOnly(nn)
			}
		}
	}
	id, err := configID(ctx, s.sys(), src)
	if err != nil {
		return nil, errorf(ErrInvalid, "read image from oci-archive: %v", err)
	}
	if _, err := s.s.Image(id); err == nil {
		// Already here: only the name is new (see Load).
		if named != nil {
			if err := s.s.AddNames(id, []string{named.String()}); err != nil {
				return nil, err
			}
			s.invalidate()
		}
	} else {
		destID := id
		if named != nil {
			destID = ""
		}
		dest, err := istorage.Transport.NewStoreReference(s.s, named, destID)
		if err != nil {
			return nil, err
		}
		if _, err := s.copyTo(ctx, dest, src); err != nil {
			return nil, errorf(ErrInvalid, "load image: %v", err)
		}
	}
	if named == nil {
		return []string{"Loaded image ID: sha256:" + id}, nil
	}
	return []string{"Loaded image: " + reference.FamiliarString(named)}, nil
}

// Save writes the images named by refs to w as a docker-archive (several
// images) or oci-archive (one image).
func (s *Store) Save(ctx context.Context, w io.Writer, refs []string, format string) error {
	f, err := os.CreateTemp(s.tmpDir(), "save-*.tar")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	switch format {
	case "", "docker-archive":
		if err := s.saveDocker(ctx, name, refs); err != nil {
			return err
		}
	case "oci-archive":
		if len(refs) != 1 {
			return errorf(ErrInvalid, "oci-archive holds one image; got %d", len(refs))
		}
		if err := s.saveOCI(ctx, name, refs[0]); err != nil {
			return err
		}
	default:
		return errorf(ErrInvalid, "unknown archive format %q: use docker-archive or oci-archive", format)
	}
	rf, err := os.Open(name)
	if err != nil {
		return err
	}
	defer rf.Close()
	_, err = io.Copy(w, rf)
	return err
}

func (s *Store) saveDocker(ctx context.Context, file string, refs []string) error {
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
	// Each image goes into the archive once, with all the tags asked for:
	// a name saves that tag, an ID saves every tag of the image.
	type entry struct {
		id   string
		tags []reference.NamedTagged
	}
	var order []*entry
	byID := map[string]*entry{}
	for _, ref := range refs {
		img, err := s.lookup(ref)
		if err != nil {
			return err
		}
		e := byID[img.ID]
		if e == nil {
			e = &entry{id: img.ID}
			byID[img.ID] = e
			order = append(order, e)
		}
		if n, err := normalize(ref); err == nil && slices.Contains(img.Names, n.String()) {
			if nt, ok := n.(reference.NamedTagged); ok && !slices.ContainsFunc(e.tags, func(t reference.NamedTagged) bool { return t.String() == nt.String() }) {
				e.tags = append(e.tags, nt)
			}
			continue
		}
		// An ID or a digest reference saves every tag.
		for _, n := range img.Names {
			nn, err := reference.ParseNormalizedNamed(n)
			if err != nil {
				continue
			}
			if nt, ok := nn.(reference.NamedTagged); ok && !slices.ContainsFunc(e.tags, func(t reference.NamedTagged) bool { return t.String() == nt.String() }) {
				e.tags = append(e.tags, nt)
			}
		}
	}
	for _, e := range order {
		src, err := istorage.Transport.NewStoreReference(s.s, nil, e.id)
		if err != nil {
			return err
		}
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
		pc, err := policy()
		if err != nil {
			return err
		}
		_, err = copy.Image(ctx, pc, dest, src, &copy.Options{SourceCtx: s.sys(), DestinationCtx: sys, ReportWriter: io.Discard})
		pc.Destroy()
		if err != nil {
			return fmt.Errorf("save %s: %w", shortID(e.id), err)
		}
	}
	closed = true
	return wr.Close()
}

func (s *Store) saveOCI(ctx context.Context, file, ref string) error {
	img, err := s.lookup(ref)
	if err != nil {
		return err
	}
	src, err := istorage.Transport.NewStoreReference(s.s, nil, img.ID)
	if err != nil {
		return err
	}
	tag := ""
	if len(img.Names) > 0 {
		if nn, err := reference.ParseNormalizedNamed(img.Names[0]); err == nil {
			tag = reference.FamiliarString(nn)
		}
	}
	_ = os.Remove(file)
	dest, err := ociarchive.NewReference(file, tag)
	if err != nil {
		return err
	}
	pc, err := policy()
	if err != nil {
		return err
	}
	defer pc.Destroy()
	_, err = copy.Image(ctx, pc, dest, src, &copy.Options{SourceCtx: s.sys(), DestinationCtx: s.sys(), ReportWriter: io.Discard})
	return err
}
