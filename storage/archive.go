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
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ociv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	ociarchive "go.podman.io/image/v5/oci/archive"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/tarball"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage/pkg/archive"
)

// ImportConfig is the image configuration given to Import.
type ImportConfig struct {
	Cmd, Entrypoint, Env []string
	WorkingDir, User     string
	Labels               map[string]string
	Message              string
}

func (s *Store) sys() *types.SystemContext {
	return &types.SystemContext{
		BigFilesTemporaryDir:        s.tmpDir(),
		OSChoice:                    "linux",
		ArchitectureChoice:          runtime.GOARCH,
		SignaturePolicyPath:         "/dev/null",
		DockerArchiveAdditionalTags: nil,
	}
}

func (s *Store) tmpDir() string {
	d := path.Join(s.s.GraphRoot(), "tmp")
	_ = os.MkdirAll(d, 0o700)
	return d
}

func policy() (*signature.PolicyContext, error) {
	return signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
}

// spool copies r to a temporary file and returns it, rewound.
func (s *Store) spool(r io.Reader, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(s.tmpDir(), pattern)
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Import creates an image from a root file system tarball (plain or
// compressed), rejecting entries that would land outside the root.
func (s *Store) Import(ctx context.Context, r io.Reader, ref string, c ImportConfig) (*Image, error) {
	var named reference.Named
	if ref != "" {
		var err error
		if named, err = normalize(ref); err != nil {
			return nil, err
		}
		if _, ok := named.(reference.Digested); ok {
			return nil, errorf(ErrInvalid, "cannot import to a digest reference %q", ref)
		}
	}
	dr, err := archive.DecompressStream(bufio.NewReader(r))
	if err != nil {
		return nil, errorf(ErrInvalid, "not a tar archive: %v", err)
	}
	defer dr.Close()
	f, err := os.CreateTemp(s.tmpDir(), "import-*.tar")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := validateTar(io.TeeReader(dr, f)); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	cfg := ociv1.Image{
		Created:  &now,
		Platform: ociv1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config: ociv1.ImageConfig{
			Cmd: c.Cmd, Entrypoint: c.Entrypoint, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User, Labels: c.Labels,
		},
		History: []ociv1.History{{Created: &now, CreatedBy: "moss import", Comment: c.Message}},
	}
	src, err := tarball.Transport.ParseReference(f.Name())
	if err != nil {
		return nil, err
	}
	if err := src.(tarball.ConfigUpdater).ConfigUpdate(cfg, nil); err != nil {
		return nil, err
	}
	var id string
	if named == nil {
		// Untagged: name the destination by the config digest, which the
		// copy will produce; compute it from the source first.
		if id, err = configID(ctx, s.sys(), src); err != nil {
			return nil, err
		}
	}
	dest, err := istorage.Transport.NewStoreReference(s.s, named, id)
	if err != nil {
		return nil, err
	}
	img, err := s.copyTo(ctx, dest, src)
	if err != nil {
		return nil, err
	}
	return img, nil
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

// validateTar reads a whole tar stream and rejects entries that escape the
// root: ".." paths, hard links out of the root, and entries reached through
// a symbolic link that points outside it.
func validateTar(r io.Reader) error {
	tr := tar.NewReader(r)
	links := map[string]string{} // cleaned path -> symlink target
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			if n == 0 {
				return errorf(ErrInvalid, "not a tar archive: no entries")
			}
			return nil
		}
		if err != nil {
			if n == 0 {
				return errorf(ErrInvalid, "not a tar archive: %v", err)
			}
			return errorf(ErrInvalid, "broken tar archive after %d entries: %v", n, err)
		}
		n++
		name, ok := inRoot(h.Name)
		if !ok {
			return errorf(ErrInvalid, "tar entry %q points outside the image root: refusing to import", h.Name)
		}
		for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if target, isLink := links[dir]; isLink && escapes(dir, target) {
				return errorf(ErrInvalid, "tar entry %q is reached through the symbolic link %q -> %q, which points outside the image root: refusing to import", h.Name, dir, target)
			}
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			links[name] = h.Linkname
		case tar.TypeLink:
			if _, ok := inRoot(h.Linkname); !ok {
				return errorf(ErrInvalid, "tar entry %q is a hard link to %q outside the image root: refusing to import", h.Name, h.Linkname)
			}
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return errorf(ErrInvalid, "broken tar archive at %q: %v", h.Name, err)
		}
	}
}

// inRoot cleans a tar path relative to the root and reports whether it
// stays inside.
func inRoot(p string) (string, bool) {
	c := path.Clean(strings.TrimPrefix(p, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

// escapes reports whether a symlink at dir with target leaves the root when
// followed: absolute targets and relative ones that climb above it.
func escapes(dir, target string) bool {
	if path.IsAbs(target) {
		return true
	}
	_, ok := inRoot(path.Join(path.Dir(dir), target))
	return !ok
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
		var dest types.ImageReference
		if len(names) > 0 {
			n, _ := reference.ParseNormalizedNamed(names[0])
			dest, err = istorage.Transport.NewStoreReference(s.s, n, "")
		} else {
			id, ierr := configID(ctx, s.sys(), src)
			if ierr != nil {
				return out, errorf(ErrInvalid, "read image from archive: %v", ierr)
			}
			dest, err = istorage.Transport.NewStoreReference(s.s, nil, id)
		}
		if err != nil {
			return out, err
		}
		img, err := s.copyTo(ctx, dest, src)
		if err != nil {
			return out, errorf(ErrInvalid, "load image: %v", err)
		}
		if len(names) > 1 {
			if err := s.s.AddNames(img.ID, names[1:]); err != nil {
				return out, err
			}
			s.invalidate()
		}
		if len(names) == 0 {
			out = append(out, "Loaded image ID: sha256:"+img.ID)
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
	id := ""
	if named == nil {
		if id, err = configID(ctx, s.sys(), src); err != nil {
			return nil, errorf(ErrInvalid, "read image from oci-archive: %v", err)
		}
	}
	dest, err := istorage.Transport.NewStoreReference(s.s, named, id)
	if err != nil {
		return nil, err
	}
	img, err := s.copyTo(ctx, dest, src)
	if err != nil {
		return nil, errorf(ErrInvalid, "load image: %v", err)
	}
	if named == nil {
		return []string{"Loaded image ID: sha256:" + img.ID}, nil
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
		if hexID.MatchString(ref) && !strings.Contains(ref, "/") {
			for _, n := range img.Names {
				if nn, err := reference.ParseNormalizedNamed(n); err == nil {
					if nt, ok := nn.(reference.NamedTagged); ok {
						e.tags = append(e.tags, nt)
					}
				}
			}
		} else if n, err := normalize(ref); err == nil {
			if nt, ok := n.(reference.NamedTagged); ok {
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
