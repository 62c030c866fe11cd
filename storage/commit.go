package storage

import (
	"archive/tar"
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

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ociv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	cstorage "go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
)

// CommitOptions describe the image Commit makes of a container.
type CommitOptions struct {
	// Ref names the image; "" leaves it untagged.
	Ref string
	// Config is the new image's run configuration, complete: the agent
	// merges the container's, the parent image's and the changes.
	Config dockerspec.DockerOCIImageConfig
	// Author, Comment and CreatedBy go into the history entry (Author
	// into the configuration too).
	Author, Comment, CreatedBy string
	// Exclude lists absolute paths left out of the new layer: the mount
	// points the agent made for a run, which are not the container's
	// changes.
	Exclude map[string]bool
}

// ImageConfig is the image's whole configuration, with the Docker fields
// (healthcheck, ONBUILD, shell) the OCI one lacks.
func (s *Store) ImageConfig(id string) (*dockerspec.DockerOCIImage, error) {
	img, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	data, err := s.configBlob(img.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s has no configuration: %w", shortID(img.ID), err)
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("image %s: bad config: %w", shortID(img.ID), err)
	}
	return &cfg, nil
}

// Commit makes an image of the container's changes: its layer's diff
// against its image becomes a new layer on top of the image's (none when
// it changed nothing, an empty layer in the history as docker records
// it), with the configuration of o and a history entry appended to the
// parent's. The new image remembers its parent, for history and rmi.
// A failed commit leaves no layer and no image behind.
func (s *Store) Commit(ctx context.Context, containerID string, o CommitOptions) (*Image, error) {
	named, err := commitName(o.Ref)
	if err != nil {
		return nil, err
	}
	c, err := s.s.Container(containerID)
	if err != nil {
		return nil, errorf(ErrNotFound, "no such container layer: %s", containerID)
	}
	parent, cfg, err := s.commitBase(c.ImageID)
	if err != nil {
		return nil, err
	}
	cl, err := s.s.Layer(c.LayerID)
	if err != nil {
		return nil, fmt.Errorf("container layer of %s: %w", shortID(containerID), err)
	}

	f, err := os.CreateTemp(s.tmpDir(), "commit-*.tar")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	diff, err := s.s.Diff("", cl.ID, &cstorage.DiffOptions{Compression: ptr(archive.Uncompressed)})
	if err != nil {
		return nil, fmt.Errorf("read the changes of container %s: %w", shortID(containerID), err)
	}
	entries, err := filterTar(f, diff, o.Exclude)
	diff.Close()
	if err != nil {
		return nil, fmt.Errorf("read the changes of container %s: %w", shortID(containerID), err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	top := cl.Parent
	var newLayer *cstorage.Layer
	if entries > 0 {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		if newLayer, _, err = s.s.PutLayer("", cl.Parent, nil, "", false, nil, f); err != nil {
			return nil, fmt.Errorf("store the committed layer: %w", err)
		}
		top = newLayer.ID
	}
	img, err := s.createCommitted(parent, cfg, top, newLayer, named, o)
	if err != nil {
		if newLayer != nil && s.s.Exists(newLayer.ID) {
			if derr := s.s.DeleteLayer(newLayer.ID); derr != nil {
				s.log.Warn("cannot remove the layer of a failed commit", "layer", newLayer.ID, "error", derr)
			}
		}
		return nil, err
	}
	return img, nil
}

func ptr[T any](v T) *T { return &v }

// commitName is the name a commit or derivation gives its image; "" none.
func commitName(ref string) (reference.Named, error) {
	if ref == "" {
		return nil, nil
	}
	named, err := normalize(ref)
	if err != nil {
		return nil, err
	}
	if _, ok := named.(reference.Digested); ok {
		return nil, errorf(ErrInvalid, "refusing to create a tag with a digest reference")
	}
	return named, nil
}

// commitBase is the image a commit or derivation starts from, with its
// configuration; "" is none (FROM scratch): an empty configuration.
func (s *Store) commitBase(id string) (*cstorage.Image, *dockerspec.DockerOCIImage, error) {
	if id == "" {
		cfg := &dockerspec.DockerOCIImage{}
		cfg.Platform = ociv1.Platform{OS: "linux", Architecture: runtime.GOARCH, Variant: armVariant()}
		cfg.RootFS.Type = "layers"
		cfg.RootFS.DiffIDs = []digest.Digest{}
		return nil, cfg, nil
	}
	parent, err := s.s.Image(id)
	if err != nil {
		return nil, nil, errorf(ErrNotFound, "no such image: %s", shortID(id))
	}
	cfg, err := s.ImageConfig(parent.ID)
	if err != nil {
		return nil, nil, err
	}
	return parent, cfg, nil
}

// Derive makes an image that is the image parentID ("" for none) with the
// configuration and history entry of o and no new layer: what a build
// step that changes only the configuration (ENV, CMD, LABEL…) makes.
func (s *Store) Derive(ctx context.Context, parentID string, o CommitOptions) (*Image, error) {
	named, err := commitName(o.Ref)
	if err != nil {
		return nil, err
	}
	parent, cfg, err := s.commitBase(parentID)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	top := ""
	if parent != nil {
		top = parent.TopLayer
	}
	return s.createCommitted(parent, cfg, top, nil, named, o)
}

// createCommitted writes the configuration and an OCI manifest of the
// committed image in the form the containers/image storage transport
// reads, so the image can be saved and pushed like a pulled one.
func (s *Store) createCommitted(parent *cstorage.Image, cfg *dockerspec.DockerOCIImage, top string, layer *cstorage.Layer, named reference.Named, o CommitOptions) (*Image, error) {
	now := time.Now().UTC()
	cfg.Created = &now
	cfg.Author = o.Author
	cfg.Config = o.Config
	// The embedded OCI configuration is shadowed by Config in JSON; keep
	// both the same for code that reads either.
	cfg.Image.Config = o.Config.ImageConfig
	h := ociv1.History{Created: &now, CreatedBy: o.CreatedBy, Author: o.Author, Comment: o.Comment, EmptyLayer: layer == nil}
	if layer != nil {
		if layer.UncompressedDigest == "" {
			return nil, fmt.Errorf("committed layer %s has no recorded digest", layer.ID)
		}
		cfg.RootFS.Type = "layers"
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, layer.UncompressedDigest)
	}
	cfg.History = append(cfg.History, h)
	cfgBlob, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var layers []ociv1.Descriptor
	for _, l := range s.layerChain(top) {
		if l.UncompressedDigest == "" || l.UncompressedSize < 0 {
			return nil, fmt.Errorf("layer %s has no recorded digest", l.ID)
		}
		layers = append(layers, ociv1.Descriptor{MediaType: ociv1.MediaTypeImageLayer, Digest: l.UncompressedDigest, Size: l.UncompressedSize})
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return nil, fmt.Errorf("the committed image would have %d layers but its configuration %d", len(layers), len(cfg.RootFS.DiffIDs))
	}
	var meta []byte
	if parent != nil {
		if meta, err = json.Marshal(imageMeta{Parent: parent.ID}); err != nil {
			return nil, err
		}
	}
	return s.storeImage(cfgBlob, layers, top, string(meta), named, now, "committed")
}

// storeImage records an image of the layers up to top with the
// configuration cfgBlob and an OCI manifest, in the form the
// containers/image storage transport reads (so it saves and pushes like a
// pulled one), and names it. what ("committed", "imported") words errors.
func (s *Store) storeImage(cfgBlob []byte, layers []ociv1.Descriptor, top, meta string, named reference.Named, now time.Time, what string) (*Image, error) {
	cfgDigest := digest.FromBytes(cfgBlob)
	if layers == nil {
		layers = []ociv1.Descriptor{}
	}
	man := ociv1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ociv1.MediaTypeImageManifest,
		Config:    ociv1.Descriptor{MediaType: ociv1.MediaTypeImageConfig, Digest: cfgDigest, Size: int64(len(cfgBlob))},
		Layers:    layers,
	}
	manBlob, err := json.Marshal(man)
	if err != nil {
		return nil, err
	}
	manDigest := digest.FromBytes(manBlob)
	id := cfgDigest.Encoded()
	_, err = s.s.CreateImage(id, nil, top, meta, &cstorage.ImageOptions{
		CreationDate: now,
		Digest:       manDigest,
		BigData: []cstorage.ImageBigDataOption{
			{Key: cfgDigest.String(), Data: cfgBlob, Digest: cfgDigest},
			{Key: cstorage.ImageDigestManifestBigDataNamePrefix + "-" + manDigest.String(), Data: manBlob, Digest: manDigest},
			{Key: cstorage.ImageDigestBigDataKey, Data: manBlob, Digest: manDigest},
		},
	})
	if err != nil {
		if errors.Is(err, cstorage.ErrDuplicateID) {
			return nil, errorf(ErrExists, "image %s already exists", shortID(id))
		}
		return nil, fmt.Errorf("create %s image: %w", what, err)
	}
	if named != nil {
		// AddNames moves the name from an image that had it, as docker
		// commit and import do with a tag in use.
		if err := s.s.AddNames(id, []string{named.String()}); err != nil {
			if _, derr := s.s.DeleteImage(id, true); derr != nil {
				s.log.Warn("cannot remove a half-made image", "image", id, "error", derr)
			}
			return nil, fmt.Errorf("name %s image %s: %w", what, named, err)
		}
	}
	s.invalidate()
	return s.Image(id)
}

// filterTar copies the tar stream r to w without the entries whose paths
// are in exclude, and counts the entries it wrote.
func filterTar(w io.Writer, r io.Reader, exclude map[string]bool) (int, error) {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
		if exclude[path.Clean("/"+strings.TrimPrefix(h.Name, "./"))] {
			continue
		}
		// Let the writer pick a format that holds every field.
		h.Format = tar.FormatUnknown
		if err := tw.WriteHeader(h); err != nil {
			return n, fmt.Errorf("tar entry %q: %w", h.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return n, fmt.Errorf("tar entry %q: %w", h.Name, err)
		}
		n++
	}
	return n, tw.Close()
}
