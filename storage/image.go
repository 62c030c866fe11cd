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
	// Parent is the image a commit was made from, "" when Moss does not
	// know one (imported, loaded and pulled images).
	Parent string
}

// imageMeta is what Moss keeps in a storage image's Metadata. The
// containers/image storage transport keeps keys of its own there too and
// ignores ours.
type imageMeta struct {
	Parent string `json:"moss-parent,omitempty"`
}

// parentImage reads the parent image ID from a storage image's metadata.
func parentImage(img *cstorage.Image) string {
	if img.Metadata == "" {
		return ""
	}
	var m imageMeta
	if json.Unmarshal([]byte(img.Metadata), &m) != nil {
		return ""
	}
	return m.Parent
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
	out := &Image{ID: img.ID, Names: append([]string{}, img.Names...), Created: img.Created, TopLayer: img.TopLayer, Digest: img.Digest.String(), Parent: parentImage(img)}
	data, err := s.configBlob(img.ID)
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

// configBlob is the image's configuration as stored.
func (s *Store) configBlob(id string) ([]byte, error) {
	data, err := s.s.ImageBigData(id, "sha256:"+id)
	if err != nil {
		// Images whose ID is not their config digest: find the config
		// through the manifest.
		data, err = s.configByManifest(id)
	}
	return data, err
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
	if img := s.bySearch(ref, named); img != nil {
		return img, nil
	}
	if isHex {
		return s.byPrefix(id, notFound)
	}
	return nil, notFound
}

// bySearch finds a short name's image among those pulled from the search
// registries, in their order (as Podman resolves short names locally).
func (s *Store) bySearch(ref string, named reference.Named) *cstorage.Image {
	if len(s.search) == 0 || !IsShortName(ref) {
		return nil
	}
	tagged := reference.TagNameOnly(named)
	tag := "latest"
	if t, ok := tagged.(reference.Tagged); ok {
		tag = t.Tag()
	}
	name := reference.FamiliarName(named)
	for _, reg := range s.search {
		if img, err := s.s.Image(reg + "/" + name + ":" + tag); err == nil {
			return img
		}
	}
	return nil
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
// Nor is an image that commits were made from: by its last name it is
// only untagged, by ID refused. Deleting an image also deletes the untagged
// parents nothing else needs, as docker does.
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
	children, err := s.children(img.ID)
	if err != nil {
		return nil, nil, err
	}
	if len(children) > 0 && byName == nil {
		return nil, nil, errorf(ErrInUse, "conflict: unable to delete %s (cannot be forced) - image has dependent child images", shortID(img.ID))
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
	if len(children) > 0 {
		// By its last name: untagged, kept for its children.
		untagged = familiarNames(img, false)
		if err := s.s.SetNames(img.ID, nil); err != nil {
			return nil, nil, err
		}
		return untagged, nil, nil
	}
	untagged = familiarNames(img, true)
	deleted, err = s.deleteImage(img, ref)
	if err != nil {
		return nil, nil, err
	}
	return untagged, append(deleted, s.deleteUnusedParents(parentImage(img))...), nil
}

// deleteImage deletes an image and the layers only it used, and lists
// them ("sha256:ID").
func (s *Store) deleteImage(img *cstorage.Image, ref string) ([]string, error) {
	layers, err := s.s.DeleteImage(img.ID, true)
	if err != nil {
		if errors.Is(err, cstorage.ErrImageUsedByContainer) {
			return nil, errorf(ErrInUse, "image %s is in use by a container: stop and remove the container or use -f", ref)
		}
		return nil, err
	}
	deleted := []string{"sha256:" + img.ID}
	for _, l := range layers {
		if l != img.ID {
			deleted = append(deleted, "sha256:"+l)
		}
	}
	return deleted, nil
}

// deleteUnusedParents deletes the image id and its ancestors as long as
// they have no name, no other child and no container: what a removed
// commit leaves behind (docker's rmi without --no-prune).
func (s *Store) deleteUnusedParents(id string) []string {
	var deleted []string
	for id != "" {
		img, err := s.s.Image(id)
		if err != nil || len(img.Names) > 0 {
			break
		}
		if ch, err := s.children(id); err != nil || len(ch) > 0 {
			break
		}
		if users, err := s.containersUsing(id); err != nil || len(users) > 0 {
			break
		}
		d, err := s.deleteImage(img, id)
		if err != nil {
			s.log.Debug("cannot delete an unused parent image", "image", id, "error", err)
			break
		}
		deleted = append(deleted, d...)
		id = parentImage(img)
	}
	return deleted
}

// children lists the images committed from the image id.
func (s *Store) children(id string) ([]string, error) {
	imgs, err := s.s.Images()
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range imgs {
		if parentImage(&imgs[i]) == id {
			out = append(out, imgs[i].ID)
		}
	}
	return out, nil
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

// HistoryEntry is one step of an image's history as docker history shows
// it.
type HistoryEntry struct {
	// ID is "sha256:…" for the image itself and the parents Moss knows
	// (commits), else "<missing>".
	ID         string
	Created    time.Time
	CreatedBy  string
	Comment    string
	Size       int64
	Tags       []string
	EmptyLayer bool
}

// History lists the steps of an image's configuration, newest first, each
// with the size of the layer it made, as docker history does.
func (s *Store) History(ref string) ([]HistoryEntry, error) {
	simg, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	img, err := s.toImage(simg)
	if err != nil {
		return nil, err
	}
	layers := s.layerChain(img.TopLayer)
	var out []HistoryEntry
	n := 0
	for _, h := range img.Config.History {
		e := HistoryEntry{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if h.Created != nil {
			e.Created = *h.Created
		}
		if !h.EmptyLayer {
			if n < len(layers) && layers[n].UncompressedSize > 0 {
				e.Size = layers[n].UncompressedSize
			}
			n++
		}
		out = append(out, e)
	}
	slices.Reverse(out)
	// The image and the parents it was committed from have IDs, one a
	// step, as docker's walk of its parent chain gives them.
	cur := img
	for i := range out {
		out[i].ID = "sha256:" + cur.ID
		out[i].Tags = cur.RepoTags
		if cur.Parent == "" {
			break
		}
		p, err := s.s.Image(cur.Parent)
		if err != nil {
			break
		}
		if cur, err = s.toImage(p); err != nil {
			break
		}
	}
	return out, nil
}

// layerChain lists the layers from the base up to top.
func (s *Store) layerChain(top string) []cstorage.Layer {
	var out []cstorage.Layer
	for id := top; id != ""; {
		l, err := s.s.Layer(id)
		if err != nil {
			break
		}
		out = append(out, *l)
		id = l.Parent
	}
	slices.Reverse(out)
	return out
}

// PruneImages removes unused images as docker image prune does: the
// dangling ones (no tag, no child) or, with all, every image no container
// uses; match (nil: all) picks among them by the request's filters. A
// tagged image with children is only untagged; it goes when its last
// child does. It returns what was untagged and deleted, and the bytes of
// the deleted layers.
func (s *Store) PruneImages(all bool, match func(*Image) bool) (untagged, deleted []string, reclaimed uint64, err error) {
	defer s.invalidate()
	imgs, err := s.s.Images()
	if err != nil {
		return nil, nil, 0, err
	}
	layers, err := s.s.Layers()
	if err != nil {
		return nil, nil, 0, err
	}
	sizes := map[string]int64{}
	for _, l := range layers {
		sizes[l.ID] = l.UncompressedSize
	}
	hasChildren := map[string]bool{}
	for i := range imgs {
		if p := parentImage(&imgs[i]); p != "" {
			hasChildren[p] = true
		}
	}
	var candidates []string
	for i := range imgs {
		img, err := s.toImage(&imgs[i])
		if err != nil {
			continue
		}
		dangling := len(img.RepoTags) == 0
		if dangling && hasChildren[img.ID] || !all && !dangling {
			continue
		}
		if match != nil && !match(img) {
			continue
		}
		candidates = append(candidates, img.ID)
	}
	for _, id := range candidates {
		img, err := s.s.Image(id)
		if err != nil {
			continue // deleted as an unused parent meanwhile
		}
		if users, err := s.containersUsing(id); err != nil || len(users) > 0 {
			continue
		}
		if len(img.Names) > 0 {
			if err := s.s.SetNames(id, nil); err != nil {
				s.log.Debug("prune: cannot untag", "image", id, "error", err)
				continue
			}
			untagged = append(untagged, familiarNames(img, true)...)
		}
		if ch, err := s.children(id); err != nil || len(ch) > 0 {
			continue
		}
		d, err := s.deleteImage(img, id)
		if err != nil {
			s.log.Debug("prune: image kept", "image", id, "error", err)
			continue
		}
		deleted = append(deleted, d...)
		deleted = append(deleted, s.deleteUnusedParents(parentImage(img))...)
	}
	counted := map[string]bool{}
	for _, d := range deleted {
		id := strings.TrimPrefix(d, "sha256:")
		if size, ok := sizes[id]; ok && size > 0 && !counted[id] {
			counted[id] = true
			reclaimed += uint64(size)
		}
	}
	return untagged, deleted, reclaimed, nil
}

// ImageUsage is the disk use of the images' layers, as system df counts it.
type ImageUsage struct {
	// LayersSize counts every layer of an image once.
	LayersSize int64
	// Shared is, by image ID, the size of its layers that other images
	// use too.
	Shared map[string]int64
}

// ImagesUsage computes the layer sizes of all images.
func (s *Store) ImagesUsage() (*ImageUsage, error) {
	imgs, err := s.s.Images()
	if err != nil {
		return nil, err
	}
	chains := map[string][]cstorage.Layer{}
	users := map[string]int{} // layer ID -> images using it
	for _, img := range imgs {
		chain := s.layerChain(img.TopLayer)
		chains[img.ID] = chain
		for _, l := range chain {
			users[l.ID]++
		}
	}
	u := &ImageUsage{Shared: map[string]int64{}}
	counted := map[string]bool{}
	for id, chain := range chains {
		var shared int64
		for _, l := range chain {
			size := max(l.UncompressedSize, 0)
			if users[l.ID] > 1 {
				shared += size
			}
			if !counted[l.ID] {
				counted[l.ID] = true
				u.LayersSize += size
			}
		}
		u.Shared[id] = shared
	}
	return u, nil
}

// ContainerSize is the size of what the container's layer changed (docker's
// SizeRw).
func (s *Store) ContainerSize(id string) (int64, error) {
	c, err := s.s.Container(id)
	if err != nil {
		return 0, errorf(ErrNotFound, "no such container layer: %s", id)
	}
	return s.s.DiffSize("", c.LayerID)
}
