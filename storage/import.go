package storage

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ociv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	cstorage "go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
)

// ImportConfig is the image configuration given to Import, as the
// --change and --message options of docker import give it.
type ImportConfig struct {
	Cmd, Entrypoint, Env []string
	WorkingDir, User     string
	Labels               map[string]string
	// Volumes and ExposedPorts are sets, as in the image configuration.
	Volumes      map[string]struct{}
	ExposedPorts map[string]struct{}
	StopSignal   string
	Message      string
}

// Import creates an image from a root file system tarball (plain, gzip,
// xz, zstd or bzip2), as docker import does; ref "" leaves it untagged.
// The whole tarball is checked before anything is written to the store,
// so a rejected one leaves no layer and no image behind.
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
	// The layer gets the whole stream, trailer included, as it came.
	tee := io.TeeReader(dr, f)
	if err := validateTar(tee); err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return nil, errorf(ErrInvalid, "read tar archive: %v", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}

	layer, _, err := s.s.PutLayer("", "", nil, "", false, nil, f)
	if err != nil {
		return nil, fmt.Errorf("store imported layer: %w", err)
	}
	img, err := s.createImportedImage(layer, named, c)
	if err != nil {
		if derr := s.s.DeleteLayer(layer.ID); derr != nil {
			s.log.Warn("cannot remove the layer of a failed import", "layer", layer.ID, "error", derr)
		}
		return nil, err
	}
	return img, nil
}

// createImportedImage writes the OCI config and manifest of a one-layer
// image in the form the containers/image storage transport reads, so the
// image can be saved like a loaded one.
func (s *Store) createImportedImage(layer *cstorage.Layer, named reference.Named, c ImportConfig) (*Image, error) {
	diffID, size := layer.UncompressedDigest, layer.UncompressedSize
	if diffID == "" || size <= 0 {
		return nil, fmt.Errorf("imported layer %s has no recorded digest", layer.ID)
	}
	now := time.Now().UTC()
	cfg := ociv1.Image{
		Created:  &now,
		Platform: ociv1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config: ociv1.ImageConfig{
			Cmd: c.Cmd, Entrypoint: c.Entrypoint, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User, Labels: c.Labels,
			Volumes: c.Volumes, ExposedPorts: c.ExposedPorts, StopSignal: c.StopSignal,
		},
		RootFS:  ociv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History: []ociv1.History{{Created: &now, CreatedBy: "moss import", Comment: c.Message}},
	}
	if variant := armVariant(); variant != "" {
		cfg.Variant = variant
	}
	cfgBlob, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	layers := []ociv1.Descriptor{{MediaType: ociv1.MediaTypeImageLayer, Digest: diffID, Size: size}}
	return s.storeImage(cfgBlob, layers, layer.ID, "", named, now, "imported")
}

// armVariant is the platform variant Docker records for the build's ARM.
func armVariant() string {
	switch runtime.GOARCH {
	case "arm64":
		return "v8"
	case "arm":
		return "v7"
	}
	return ""
}

// maxSymlinkHops bounds symbolic link resolution, as the kernel's ELOOP.
const maxSymlinkHops = 40

// tarTree follows the symbolic links a tar stream has created so far, to
// tell where a later entry would really land when extracted.
type tarTree struct {
	links map[string]string // resolved path -> symlink target
}

// escapeError says which symbolic link led outside the root.
type escapeError struct{ link, target string }

func (e *escapeError) Error() string {
	if e.link == "" {
		return "its path climbs above the root"
	}
	return fmt.Sprintf("it is reached through the symbolic link %q -> %q, which points outside the image root", e.link, e.target)
}

// resolve returns where the directory p (clean, relative to the root)
// really is once the symbolic links among its components are followed,
// or an *escapeError when that leaves the root. Absolute link targets
// count as leaving: extracted by a process outside the container they
// would point into the host.
func (t *tarTree) resolve(p string) (string, error) {
	var comps []string
	if p != "." && p != "" {
		comps = strings.Split(p, "/")
	}
	cur := "" // resolved so far; "" is the root
	hops := 0
	var via *escapeError // the last link followed, to blame for an escape
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if cur == "" {
				if via != nil {
					return "", via
				}
				return "", &escapeError{}
			}
			cur = parentOf(cur)
			continue
		}
		next := c
		if cur != "" {
			next = cur + "/" + c
		}
		target, isLink := t.links[next]
		if !isLink {
			cur = next
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return "", fmt.Errorf("too many levels of symbolic links at %q", next)
		}
		if path.IsAbs(target) {
			return "", &escapeError{link: next, target: target}
		}
		// A relative target continues from the link's directory (cur).
		via = &escapeError{link: next, target: target}
		comps = append(strings.Split(target, "/"), comps...)
	}
	if cur == "" {
		return ".", nil
	}
	return cur, nil
}

func parentOf(p string) string {
	d := path.Dir(p)
	if d == "." {
		return ""
	}
	return d
}

// entryPath is where a tar entry named name lands: its directory with
// links followed, plus its own last component (never followed: the
// extractor replaces what is there).
func (t *tarTree) entryPath(name string) (string, error) {
	c, ok := inRoot(name)
	if !ok {
		return "", &escapeError{}
	}
	if c == "." {
		return ".", nil
	}
	dir, err := t.resolve(path.Dir(c))
	if err != nil {
		return "", err
	}
	return path.Join(dir, path.Base(c)), nil
}

// validateTar reads a whole tar stream and rejects entries that escape the
// root: names climbing out with "..", entries reached through a symbolic
// link that points outside the root, and hard links to files outside it.
// Absolute symbolic links as leaves (bin/sh -> /bin/busybox) are normal.
func validateTar(r io.Reader) error {
	tr := tar.NewReader(r)
	t := &tarTree{links: map[string]string{}}
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
		p, err := t.entryPath(h.Name)
		if err != nil {
			var esc *escapeError
			if errors.As(err, &esc) && esc.link == "" {
				return errorf(ErrInvalid, "tar entry %q points outside the image root: refusing to import", h.Name)
			}
			return errorf(ErrInvalid, "tar entry %q: %v: refusing to import", h.Name, err)
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			t.links[p] = h.Linkname
		case tar.TypeLink:
			if _, err := t.entryPath(h.Linkname); err != nil {
				return errorf(ErrInvalid, "tar entry %q is a hard link to %q outside the image root: refusing to import", h.Name, h.Linkname)
			}
			delete(t.links, p)
		default:
			// A directory or file replaces a link of the same name.
			delete(t.links, p)
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
