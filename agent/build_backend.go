package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"

	"github.com/moss-containers/moss/agent/build"
	"github.com/moss-containers/moss/storage"
)

// buildBackend is what agent/build needs of the agent: images from the
// store, containers of the agent's own runtime for RUN, storage layers
// for COPY.
type buildBackend struct {
	a *Agent
}

var _ build.Backend = buildBackend{}

func (b buildBackend) Lookup(id string) *build.Image {
	cfg, err := b.a.store.ImageConfig(id)
	if err != nil {
		return nil
	}
	img, err := b.a.store.Image(id)
	if err != nil {
		return nil
	}
	return &build.Image{ID: img.ID, Config: cfg.Config}
}

func (b buildBackend) Base(ctx context.Context, ref string, pull bool, out io.Writer) (*build.Image, error) {
	if pull || !b.haveImage(ref) {
		if err := b.a.pullForBuild(ctx, ref, out); err != nil {
			return nil, err
		}
	}
	img, err := b.a.store.Image(ref)
	if err != nil {
		return nil, imageErr(err, ref)
	}
	if im := b.Lookup(img.ID); im != nil {
		return im, nil
	}
	return nil, fmt.Errorf("image %s has no configuration", ref)
}

func (b buildBackend) haveImage(ref string) bool {
	_, err := b.a.store.Image(ref)
	return err == nil
}

func (b buildBackend) Derive(ctx context.Context, base *build.Image, cfg build.Config, createdBy string) (*build.Image, error) {
	parent := ""
	if base != nil {
		parent = base.ID
	}
	img, err := b.a.store.Derive(ctx, parent, storage.CommitOptions{Config: cfg, CreatedBy: createdBy})
	if err != nil {
		return nil, err
	}
	return &build.Image{ID: img.ID, Config: cfg}, nil
}

func (b buildBackend) Root(ctx context.Context, img *build.Image) (string, func(), error) {
	s := &buildStep{a: b.a, base: img}
	root, err := s.mount()
	if err != nil {
		return "", nil, err
	}
	return root, s.Discard, nil
}

func (b buildBackend) Start(ctx context.Context, base *build.Image) (build.Step, error) {
	return &buildStep{a: b.a, base: base}, nil
}

func (b buildBackend) Remove(id string) error {
	b.a.releaseImages()
	_, _, err := b.a.store.RemoveImage(id, false)
	return err
}

func (b buildBackend) Tag(id, ref string) error {
	if err := b.a.store.Tag(id, ref); err != nil {
		return imageErr(err, ref)
	}
	b.a.imageEvent("tag", "sha256:"+id, ref)
	return nil
}

// buildStep is the working container of one step: a storage layer of its
// own for COPY (mount), or an agent container for RUN (Run).
type buildStep struct {
	a    *Agent
	base *build.Image
	// id is the storage container; c the agent's, when it ran.
	id   string
	c    *Container
	root string
	// exclude are mount points a RUN left that are not its changes.
	exclude map[string]bool
}

func (s *buildStep) Root() string {
	root, err := s.mount()
	if err != nil {
		// Copies into "" fail with the reason's path; logged here.
		s.a.log.Warn("build: mount the step's root", "error", err)
	}
	return root
}

func (s *buildStep) mount() (string, error) {
	if s.root != "" {
		return s.root, nil
	}
	id := newID()
	base := ""
	if s.base != nil {
		base = s.base.ID
	}
	if err := s.a.store.CreateContainer(id, base, true); err != nil {
		return "", err
	}
	root, err := s.a.store.Mount(id)
	if err != nil {
		_ = s.a.store.DeleteContainer(id)
		return "", err
	}
	s.id, s.root = id, root
	return root, nil
}

// runMountPoints are the files a container's start binds over: when the
// image lacks them, libcontainer makes empty ones, which are no change of
// the RUN's.
var runMountPoints = []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}

func (s *buildStep) Run(ctx context.Context, argv, env []string, cfg build.Config, network string, out io.Writer) error {
	if s.base == nil {
		return errors.New("RUN in an empty image (FROM scratch) has no shell to run: COPY a program in first")
	}
	if network == "" || network == "default" {
		network = "bridge"
	}
	s.exclude = map[string]bool{}
	root, release, err := (buildBackend{s.a}).Root(ctx, s.base)
	if err != nil {
		return err
	}
	for _, p := range runMountPoints {
		if t, err := securejoin.SecureJoin(root, p); err == nil {
			if _, err := os.Lstat(t); errors.Is(err, os.ErrNotExist) {
				s.exclude[p] = true
			}
		}
	}
	release()
	ccfg := &container.Config{
		Image: s.base.ID, Entrypoint: argv[:1], Cmd: argv[1:], Env: env,
		User: cfg.User, WorkingDir: cfg.WorkingDir,
	}
	host := &container.HostConfig{NetworkMode: container.NetworkMode(network)}
	c, _, err := s.a.createContainer("", ccfg, host, nil)
	if err != nil {
		return err
	}
	s.c = c
	c.mu.Lock()
	c.noWarm = true // a build's next step runs another image
	c.mu.Unlock()
	if err := s.a.start(c); err != nil {
		return err
	}
	// The output while it runs; the log ends when it exits.
	if err := s.a.streamLogs(ctx, c, logOptions{stdout: true, stderr: true, follow: true, raw: true, tail: -1}, out, func() {
		if f, ok := out.(interface{ Flush() }); ok {
			f.Flush()
		}
	}); err != nil {
		return err
	}
	exited := func(st State) bool { return st.Status != "running" }
	s.a.waitFor(c, exited, 365*24*time.Hour)
	c.mu.Lock()
	code := c.State.ExitCode
	c.mu.Unlock()
	if code != 0 {
		return &build.ExitError{Code: code}
	}
	return nil
}

func (s *buildStep) Commit(ctx context.Context, cfg build.Config, createdBy string) (*build.Image, error) {
	id := s.id
	if s.c != nil {
		id = s.c.ID
	}
	if id == "" {
		// Nothing was touched: no new layer.
		img, err := (buildBackend{s.a}).Derive(ctx, s.base, cfg, createdBy)
		s.Discard()
		return img, err
	}
	if s.root != "" {
		if err := s.a.store.Unmount(s.id, true); err != nil {
			s.Discard()
			return nil, err
		}
		s.root = ""
	}
	img, err := s.a.store.Commit(ctx, id, storage.CommitOptions{Config: cfg, CreatedBy: createdBy, Exclude: s.exclude})
	s.Discard()
	if err != nil {
		return nil, err
	}
	return &build.Image{ID: img.ID, Config: cfg}, nil
}

func (s *buildStep) Discard() {
	if s.c != nil {
		if err := s.a.remove(s.c, removal{force: true}); err != nil {
			s.a.log.Warn("build: remove a step's container", "id", s.c.ID, "error", err)
		}
		s.c = nil
	}
	if s.id != "" {
		if s.root != "" {
			_ = s.a.store.Unmount(s.id, true)
		}
		if err := s.a.store.DeleteContainer(s.id); err != nil {
			s.a.log.Warn("build: remove a step's layer", "id", s.id, "error", err)
		}
		s.id, s.root = "", ""
	}
}
