package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	ociv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	cstorage "go.podman.io/storage"
)

// Image is a stored image.
type Image struct {
	ID string
	// Names are fully normalized ("docker.io/library/busybox:latest").
	Names []string
	// RepoTags are the familiar forms ("busybox:latest").
	RepoTags    []string
	RepoDigests []string
	Created     time.Time
	Size        int64
	TopLayer    string
	Config      ociv1.Image
	Digest      string
}

var hexID = regexp.MustCompile(`^[0-9a-f]{1,64}$`)

// normalize turns a user's image name into the stored form.
func normalize(name string) (reference.Named, error) {
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, errorf(ErrInvalid, "invalid reference format %q: %v", name, err)
	}
	return reference.TagNameOnly(n), nil
}

func (s *Store) invalidate() {
	s.mu.Lock()
	s.images = map[string]*Image{}
	s.mu.Unlock()
}

// toImage parses a storage image, using the cache.
func (s *Store) toImage(img *cstorage.Image) (*Image, error) {
	s.mu.Lock()
	if c, ok := s.images[img.ID]; ok && sameNames(c.Names, img.Names) {
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	out := &Image{ID: img.ID, Names: append([]string{}, img.Names...), Created: img.Created, TopLayer: img.TopLayer, Digest: img.Digest.String()}
	data, err := s.s.ImageBigData(img.ID, "sha256:"+img.ID)
	if err != nil {
		// Images whose ID is not their config digest: find the config
		// through the manifest.
		data, err = s.configByManifest(img.ID)
	}
	if err == nil {
		if err := json.Unmarshal(data, &out.Config); err != nil {
			return nil, fmt.Errorf("image %s: bad config: %w", img.ID, err)
		}
		if out.Config.Created != nil {
			out.Created = *out.Config.Created
		}
	}
	for _, n := range img.Names {
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			continue
		}
		if _, ok := named.(reference.Tagged); ok {
			out.RepoTags = append(out.RepoTags, reference.FamiliarString(named))
		}
		if img.Digest != "" {
			if cn, err := reference.WithDigest(reference.TrimNamed(named), img.Digest); err == nil {
				out.RepoDigests = append(out.RepoDigests, reference.FamiliarString(cn))
			}
		}
	}
	out.Size = s.layerChainSize(img.TopLayer)
	s.mu.Lock()
	s.images[img.ID] = out
	s.mu.Unlock()
	return out, nil
}

func (s *Store) configByManifest(id string) ([]byte, error) {
	m, err := s.s.ImageBigData(id, "manifest")
	if err != nil {
		return nil, err
	}
	var man ociv1.Manifest
	if err := json.Unmarshal(m, &man); err != nil {
		return nil, err
	}
	return s.s.ImageBigData(id, man.Config.Digest.String())
}

func (s *Store) layerChainSize(top string) int64 {
	var size int64
	for id := top; id != ""; {
		l, err := s.s.Layer(id)
		if err != nil {
			break
		}
		if l.UncompressedSize > 0 {
			size += l.UncompressedSize
		}
		id = l.Parent
	}
	return size
}

func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Images lists all images.
func (s *Store) Images() ([]Image, error) {
	imgs, err := s.s.Images()
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(imgs))
	for i := range imgs {
		img, err := s.toImage(&imgs[i])
		if err != nil {
			s.log.Warn("skipping unreadable image", "id", imgs[i].ID, "error", err)
			continue
		}
		out = append(out, *img)
	}
	return out, nil
}

// Image finds an image by name, ID, ID prefix or digest reference.
func (s *Store) Image(ref string) (*Image, error) {
	img, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	return s.toImage(img)
}

// lookup finds an image as docker does: a full ID (with or without
// "sha256:"), then a name (familiar or full, tag "latest" by default, or
// name@digest), then a unique ID prefix.
func (s *Store) lookup(ref string) (*cstorage.Image, error) {
	notFound := errorf(ErrNotFound, "no such image: %s", ref)
	if ref == "" {
		return nil, notFound
	}
	id := strings.TrimPrefix(ref, "sha256:")
	isHex := hexID.MatchString(id)
	if isHex && (len(id) == 64 || id != ref) {
		// A full ID, or "sha256:" and a prefix; the store's index takes
		// unique prefixes.
		img, err := s.s.Image(id)
		if err == nil && strings.HasPrefix(img.ID, id) {
			return img, nil
		}
		return nil, notFound
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		if isHex {
			return s.byPrefix(id, notFound)
		}
		return nil, errorf(ErrInvalid, "invalid reference format %q: %v", ref, err)
	}
	if dg, ok := named.(reference.Digested); ok {
		imgs, err := s.s.ImagesByDigest(dg.Digest())
		if err != nil {
			return nil, err
		}
		for i := range imgs {
			for _, n := range imgs[i].Names {
				if nn, err := reference.ParseNormalizedNamed(n); err == nil && nn.Name() == named.Name() {
					return imgs[i], nil
				}
			}
		}
		return nil, notFound
	}
	img, err := s.s.Image(reference.TagNameOnly(named).String())
	if err == nil {
		return img, nil
	}
	if !errors.Is(err, cstorage.ErrImageUnknown) {
		return nil, err
	}
	if isHex {
		return s.byPrefix(id, notFound)
	}
	return nil, notFound
}

func (s *Store) byPrefix(prefix string, notFound error) (*cstorage.Image, error) {
	img, err := s.s.Image(prefix)
	if err == nil && strings.HasPrefix(img.ID, prefix) {
		return img, nil
	}
	return nil, notFound
}

// Tag adds newRef as a name of the image ref names.
func (s *Store) Tag(ref, newRef string) error {
	img, err := s.lookup(ref)
	if err != nil {
		return err
	}
	named, err := normalize(newRef)
	if err != nil {
		return err
	}
	if _, ok := named.(reference.Digested); ok {
		return errorf(ErrInvalid, "refusing to create a tag with a digest reference")
	}
	defer s.invalidate()
	return s.s.AddNames(img.ID, []string{named.String()})
}

// RemoveImage untags or deletes an image as docker rmi does: a name of
// an image with several names is only untagged; an ID (or the last name)
// deletes the image, which needs force when it has several names. An image
// a container stands on is never deleted: without force that is ErrInUse,
// with force its names are removed and the image stays for the container.
func (s *Store) RemoveImage(ref string, force bool) (untagged, deleted []string, err error) {
	img, err := s.lookup(ref)
	if err != nil {
		return nil, nil, err
	}
	defer s.invalidate()
	var byName reference.Named
	if n, err := normalize(ref); err == nil && slices.Contains(img.Names, n.String()) {
		byName = n
	}
	if byName != nil && len(img.Names) > 1 {
		if err := s.s.RemoveNames(img.ID, []string{byName.String()}); err != nil {
			return nil, nil, err
		}
		return []string{reference.FamiliarString(byName)}, nil, nil
	}
	if byName == nil && len(img.Names) > 1 && !force {
		return nil, nil, errorf(ErrInUse, "conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(img.ID))
	}
	users, err := s.containersUsing(img.ID)
	if err != nil {
		return nil, nil, err
	}
	if len(users) > 0 {
		if !force {
			return nil, nil, errorf(ErrInUse, "image %s is in use by container %s: stop and remove the container or use -f", ref, shortID(users[0]))
		}
		// Forced: untag, but keep the image the containers stand on.
		untagged = familiarNames(img, false)
		if err := s.s.SetNames(img.ID, nil); err != nil {
			return nil, nil, err
		}
		return untagged, nil, nil
	}
	untagged = familiarNames(img, true)
	layers, err := s.s.DeleteImage(img.ID, true)
	if err != nil {
		if errors.Is(err, cstorage.ErrImageUsedByContainer) {
			return nil, nil, errorf(ErrInUse, "image %s is in use by a container: stop and remove the container or use -f", ref)
		}
		return nil, nil, err
	}
	deleted = append(deleted, "sha256:"+img.ID)
	for _, l := range layers {
		if l != img.ID {
			deleted = append(deleted, "sha256:"+l)
		}
	}
	return untagged, deleted, nil
}

// familiarNames lists an image's names as docker shows them untagged,
// with their digest references if withDigests.
func familiarNames(img *cstorage.Image, withDigests bool) []string {
	var out []string
	for _, n := range img.Names {
		nn, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			continue
		}
		out = append(out, reference.FamiliarString(nn))
		if !withDigests {
			continue
		}
		for _, d := range img.Digests {
			if cn, err := reference.WithDigest(reference.TrimNamed(nn), d); err == nil && !slices.Contains(out, reference.FamiliarString(cn)) {
				out = append(out, reference.FamiliarString(cn))
			}
		}
	}
	return out
}

func (s *Store) containersUsing(imageID string) ([]string, error) {
	ctrs, err := s.s.Containers()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range ctrs {
		if c.ImageID == imageID {
			out = append(out, c.ID)
		}
	}
	return out, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
