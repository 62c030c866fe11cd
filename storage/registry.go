package storage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/distribution/registry/api/errcode"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/docker/config"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
)

// Registry error kinds, besides ErrInvalid (a malformed reference) and
// ErrNotFound (no such image or tag in the registry).
var (
	// ErrUnauthorized: the registry refused the credentials, or wants some.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnreachable: no connection to the registry.
	ErrUnreachable = errors.New("registry unreachable")
)

const (
	// dialTimeout bounds the connection check made before each operation,
	// so that an unreachable registry fails in seconds, naming its address,
	// rather than after the transport's 30 s per scheme.
	dialTimeout = 5 * time.Second
	// prepareTimeout bounds the first exchanges with the registry (ping,
	// authentication, manifest, configuration) of a pull or login.
	prepareTimeout = 60 * time.Second
	// stallTimeout ends a transfer when no byte has moved for that long
	// while layers are in flight.
	stallTimeout = 60 * time.Second
	// progressInterval is how often a transfer's progress is reported.
	progressInterval = 200 * time.Millisecond
	// maxParallelDownloads is how many layers are downloaded at once
	// (containers/image's own default, as Podman and Docker's 3-5).
	maxParallelDownloads = 6
)

// Registries is the registry configuration: [registries] in moss.toml.
type Registries struct {
	// Search are the registries a short name is looked for in.
	Search []string
	// Insecure are registries (host:port, host for any port, or a CIDR
	// range of addresses) reached over plain HTTP or unverified HTTPS.
	Insecure []string
}

// IsShortName reports whether a name, as given, names no registry: its
// first component is not a host (no ".", no ":", not "localhost"), as
// for "busybox", "library/busybox" or "user/app:1".
func IsShortName(name string) bool {
	first, _, hasSlash := strings.Cut(name, "/")
	if !hasSlash {
		return true
	}
	return !strings.ContainsAny(first, ".:") && first != "localhost" && strings.ToLower(first) == first
}

// parseName parses a name as given into a reference, tag "latest" when
// it has neither tag nor digest and withLatest is set.
func parseName(name string, withLatest bool) (reference.Named, error) {
	if name == "" {
		return nil, errorf(ErrInvalid, "invalid reference format: the image name is empty")
	}
	if strings.Contains(name, "://") {
		return nil, errorf(ErrInvalid, "invalid reference format %q: give the image as [REGISTRY/]REPOSITORY[:TAG|@DIGEST], without a scheme", name)
	}
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, errorf(ErrInvalid, "invalid reference format %q: %v", name, err)
	}
	if withLatest {
		n = reference.TagNameOnly(n)
	}
	return n, nil
}

// Candidates lists the fully qualified references a pull of name may
// mean: the name itself when it names a registry, else one per search
// registry, in order (as Podman's unqualified-search-registries). A short
// name without search registries is an error saying what to do.
func (r Registries) Candidates(name string) ([]reference.Named, error) {
	if _, err := parseName(name, false); err != nil {
		return nil, err
	}
	if !IsShortName(name) {
		n, _ := parseName(name, true)
		return []reference.Named{n}, nil
	}
	if len(r.Search) == 0 {
		return nil, errorf(ErrInvalid, "short name %q names no registry and no search registries are configured: pull a fully qualified name (REGISTRY/%s, such as docker.io/library/%s), or list registries in [registries] search = [...] in ~/.config/moss/moss.toml", name, name, strings.TrimPrefix(name, "library/"))
	}
	var out []reference.Named
	for _, reg := range r.Search {
		n, err := parseName(reg+"/"+name, true)
		if err != nil {
			return nil, errorf(ErrInvalid, "short name %q with search registry %q: %v", name, reg, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// Resolve resolves name to the one reference a pull without a terminal
// uses: several search registries make a short name ambiguous.
func (r Registries) Resolve(name string) (reference.Named, error) {
	c, err := r.Candidates(name)
	if err != nil {
		return nil, err
	}
	if len(c) > 1 {
		names := make([]string, len(c))
		for i, n := range c {
			names[i] = n.String()
		}
		return nil, errorf(ErrInvalid, "short name %q is ambiguous: it could be %s ([registries] search); pull one of them by its full name, or from a terminal, which asks", name, strings.Join(names, " or "))
	}
	return c[0], nil
}

// AllowsInsecure reports whether the registry at domain (host[:port], as
// in a reference) may be reached over plain HTTP: loopback registries
// always, others when listed in Insecure.
func (r Registries) AllowsInsecure(domain string) bool {
	host, port := splitHostPort(domain)
	if isLoopback(host) {
		return true
	}
	addr, addrErr := netip.ParseAddr(host)
	for _, e := range r.Insecure {
		if pfx, err := netip.ParsePrefix(e); err == nil {
			if addrErr == nil && pfx.Contains(addr.Unmap()) {
				return true
			}
			continue
		}
		eh, ep := splitHostPort(e)
		if strings.EqualFold(eh, host) && (ep == "" || ep == port) {
			return true
		}
	}
	return false
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port".
func splitHostPort(s string) (host, port string) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		return h, p
	}
	return strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), ""
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// Auth is the credentials of a registry operation. Without a user name
// or token, the user's auth files are read: File when set, else
// $XDG_RUNTIME_DIR/containers/auth.json, then Docker's config.json
// ($DOCKER_CONFIG or ~/.docker), as Podman does.
type Auth struct {
	Username, Password string
	// IdentityToken is an OAuth refresh token, RegistryToken a bearer
	// token, as Docker's X-Registry-Auth carries them.
	IdentityToken, RegistryToken string
	File                         string
}

func (a Auth) explicit() bool {
	return a.Username != "" || a.IdentityToken != "" || a.RegistryToken != ""
}

// registrySys is the system context for talking to the registry at
// domain: Moss's own registry settings, never /etc/containers' (as for
// storage.conf: a Podman configuration must not change Moss).
func (s *Store) registrySys(domain string, regs Registries, auth Auth) *types.SystemContext {
	sys := s.sys()
	none := filepath.Join(s.s.GraphRoot(), "no-registries.d")
	sys.SystemRegistriesConfPath = "/dev/null"
	sys.SystemRegistriesConfDirPath = none
	sys.RegistriesDirPath = none
	if regs.AllowsInsecure(domain) {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	switch {
	case auth.explicit():
		if auth.Username != "" || auth.IdentityToken != "" {
			sys.DockerAuthConfig = &types.DockerAuthConfig{Username: auth.Username, Password: auth.Password, IdentityToken: auth.IdentityToken}
		}
		sys.DockerBearerRegistryToken = auth.RegistryToken
	case auth.File != "":
		sys.AuthFilePath = auth.File
	}
	return sys
}

// probe checks that the registry at domain takes connections, so that an
// unreachable one fails fast with its address. Through a proxy it checks
// nothing: the proxy is what is dialled.
func probe(ctx context.Context, domain string, insecure bool) error {
	host, port := splitHostPort(domain)
	if domain == "docker.io" || domain == "index.docker.io" {
		host = "registry-1.docker.io"
	}
	ports := []string{port}
	if port == "" {
		ports = []string{"443"}
		if insecure {
			ports = append(ports, "80")
		}
	}
	if u, err := http.ProxyFromEnvironment(&http.Request{URL: &url.URL{Scheme: "https", Host: domain}}); err == nil && u != nil {
		return nil
	}
	d := net.Dialer{Timeout: dialTimeout}
	var first error
	for _, p := range ports {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, p))
		if err == nil {
			c.Close()
			return nil
		}
		if first == nil {
			first = err
		}
	}
	var ne net.Error
	if errors.As(first, &ne) && ne.Timeout() {
		return errorf(ErrUnreachable, "registry %s is unreachable: no answer within %v (%v)", domain, dialTimeout, first)
	}
	return errorf(ErrUnreachable, "registry %s is unreachable: %v", domain, first)
}

// registryError turns an error of containers/image into one of the
// registry kinds with a message naming the registry and what to do.
func registryError(err error, what, domain string) error {
	if err == nil {
		return nil
	}
	var ke *kindError
	if errors.As(err, &ke) {
		return err
	}
	var unauth docker.ErrUnauthorizedForCredentials
	if errors.As(err, &unauth) {
		return errorf(ErrUnauthorized, "%s: unauthorized: %s refused the credentials (%v): log in with moss login %s", what, domain, unauth.Err, domain)
	}
	status := 0
	msg := err.Error()
	var ec errcode.Error
	var hs docker.UnexpectedHTTPStatusError
	switch {
	case errors.As(err, &ec):
		status = ec.Code.Descriptor().HTTPStatusCode
		// The registry's own words ("authentication required", "manifest
		// unknown"), without containers/image's chain of contexts.
		if ec.Message != "" {
			msg = ec.Message
		}
	case errors.As(err, &hs):
		status = hs.StatusCode
	}
	switch {
	case status == http.StatusUnauthorized:
		return errorf(ErrUnauthorized, "%s: unauthorized: %s: %s wants credentials or refused the ones given: log in with moss login %s", what, msg, domain, domain)
	case status == http.StatusForbidden:
		return errorf(ErrUnauthorized, "%s: denied: %s", what, msg)
	case status == http.StatusNotFound:
		return errorf(ErrNotFound, "%s: not found in %s: %s", what, domain, msg)
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return errorf(ErrUnreachable, "%s: %s speaks plain HTTP: add it to [registries] insecure in ~/.config/moss/moss.toml if that is intended (%v)", what, domain, msg)
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
		return errorf(ErrUnreachable, "%s: TLS with %s failed: %v (a registry without a valid certificate must be listed in [registries] insecure)", what, domain, msg)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Progress is one step of a pull or push, in the terms of Docker's
// progress messages: Status "Pulling fs layer", "Downloading", "Download
// complete", "Already exists", "Pull complete", "Preparing", "Pushing",
// "Pushed", "Layer already exists", or a line of its own (ID empty).
type Progress struct {
	// ID is a layer's short digest, or the tag being pulled.
	ID     string
	Status string
	// Current and Total are bytes, for Downloading and Pushing.
	Current, Total int64
	// Aux, when set, is a result for programs (Docker's "aux"): a push's
	// {Tag, Digest, Size}.
	Aux map[string]interface{}
}

// PullOptions configure a pull.
type PullOptions struct {
	// AllTags pulls every tag of the repository.
	AllTags bool
	// Platform is "os/arch[/variant]"; empty is this machine's.
	Platform   string
	Auth       Auth
	Registries Registries
}

// Pull is a pull whose reference has been resolved and whose registry
// answered (PreparePull); Run transfers it.
type Pull struct {
	s        *Store
	repo     reference.Named // the repository, without tag
	domain   string
	sys      *types.SystemContext
	platform bool // a platform was asked for
	allTags  bool
	tags     []string  // of an all-tags pull
	first    *pullItem // prepared by PreparePull
}

// pullItem is one image to pull: its reference and what its manifest says.
type pullItem struct {
	ref            reference.Named // tagged or digested
	manifestDigest digest.Digest   // of the manifest (or list) the reference names
	layers         []types.BlobInfo
	diffIDs        []digest.Digest
}

// Repository is the resolved repository, fully qualified.
func (p *Pull) Repository() string { return p.repo.Name() }

// parsePlatform sets the system context's platform from "os/arch[/variant]".
func parsePlatform(sys *types.SystemContext, platform string) error {
	parts := strings.Split(platform, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return errorf(ErrInvalid, "invalid platform %q: want os/arch[/variant], such as linux/arm64", platform)
	}
	sys.OSChoice, sys.ArchitectureChoice = parts[0], parts[1]
	if len(parts) == 3 {
		sys.VariantChoice = parts[2]
	}
	return nil
}

// PreparePull resolves name (short names through the search registries),
// checks that the registry answers and reads the image's manifest and
// configuration: the errors a client must see before any progress
// (a malformed reference, an ambiguous short name, an unreachable
// registry, wrong credentials, no such image) come from here, and leave
// the store unchanged.
func (s *Store) PreparePull(ctx context.Context, name string, o PullOptions) (*Pull, error) {
	named, err := o.Registries.Resolve(name)
	if err != nil {
		return nil, err
	}
	if o.AllTags {
		if !reference.IsNameOnly(trimLatest(name, named)) {
			return nil, errorf(ErrInvalid, "tag can't be used with --all-tags/-a")
		}
		named = reference.TrimNamed(named)
	}
	domain := reference.Domain(named)
	p := &Pull{s: s, repo: reference.TrimNamed(named), domain: domain, allTags: o.AllTags, platform: o.Platform != ""}
	p.sys = s.registrySys(domain, o.Registries, o.Auth)
	if o.Platform != "" {
		if err := parsePlatform(p.sys, o.Platform); err != nil {
			return nil, err
		}
	}
	if err := probe(ctx, domain, p.sys.DockerInsecureSkipTLSVerify == types.OptionalBoolTrue); err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeoutCause(ctx, prepareTimeout, errorf(ErrUnreachable, "registry %s did not answer within %v", domain, prepareTimeout))
	defer cancel()
	first := named
	if o.AllTags {
		ref, err := docker.NewReference(reference.TagNameOnly(named))
		if err != nil {
			return nil, errorf(ErrInvalid, "%v", err)
		}
		tags, err := docker.GetRepositoryTags(pctx, p.sys, ref)
		if err != nil {
			return nil, registryError(causeOr(pctx, err), "list the tags of "+named.Name(), domain)
		}
		if len(tags) == 0 {
			return nil, errorf(ErrNotFound, "repository %s has no tags", named.Name())
		}
		slices.Sort(tags)
		p.tags = tags
		first, _ = reference.WithTag(named, tags[0])
	}
	it, err := p.prepare(pctx, first)
	if err != nil {
		return nil, err
	}
	p.first = it
	return p, nil
}

// trimLatest is the name as given, parsed without the "latest" a bare
// name gets, so that --all-tags can refuse a tag that was given.
func trimLatest(name string, resolved reference.Named) reference.Named {
	if n, err := reference.ParseNormalizedNamed(name); err == nil {
		return n
	}
	return resolved
}

func causeOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		if c := context.Cause(ctx); c != nil {
			return c
		}
	}
	return err
}

// prepare reads one image's manifest (choosing the platform's instance
// of a list) and configuration.
func (p *Pull) prepare(ctx context.Context, named reference.Named) (*pullItem, error) {
	what := "pull " + named.String()
	ref, err := docker.NewReference(named)
	if err != nil {
		return nil, errorf(ErrInvalid, "%v", err)
	}
	src, err := ref.NewImageSource(ctx, p.sys)
	if err != nil {
		return nil, registryError(causeOr(ctx, err), what, p.domain)
	}
	defer src.Close()
	man, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, registryError(causeOr(ctx, err), what, p.domain)
	}
	it := &pullItem{ref: named}
	if it.manifestDigest, err = manifest.Digest(man); err != nil {
		return nil, err
	}
	var instance *digest.Digest
	if manifest.MIMETypeIsMultiImage(mt) {
		list, err := manifest.ListFromBlob(man, mt)
		if err != nil {
			return nil, fmt.Errorf("%s: bad manifest list: %w", what, err)
		}
		d, err := list.ChooseInstance(p.sys)
		if err != nil {
			return nil, errorf(ErrNotFound, "%s: %v", what, err)
		}
		instance = &d
	}
	img, err := image.FromUnparsedImage(ctx, p.sys, image.UnparsedInstance(src, instance))
	if err != nil {
		return nil, registryError(causeOr(ctx, err), what, p.domain)
	}
	cfg, err := img.OCIConfig(ctx)
	if err != nil {
		return nil, registryError(causeOr(ctx, err), what+": read the image configuration", p.domain)
	}
	if p.platform && instance == nil {
		want := p.sys.OSChoice + "/" + p.sys.ArchitectureChoice
		got := cfg.OS + "/" + cfg.Architecture
		if cfg.OS != p.sys.OSChoice || cfg.Architecture != p.sys.ArchitectureChoice || (p.sys.VariantChoice != "" && cfg.Variant != "" && cfg.Variant != p.sys.VariantChoice) {
			return nil, errorf(ErrNotFound, "image with reference %s was found but does not match the specified platform: wanted %s, actual: %s", named, want, got)
		}
	}
	it.layers = img.LayerInfos()
	it.diffIDs = cfg.RootFS.DiffIDs
	return it, nil
}

// PullResult is one image a pull stored.
type PullResult struct {
	// Name is the pulled reference, fully qualified.
	Name string
	// Digest is the manifest digest the reference named.
	Digest string
	Image  *Image
	// UpToDate is set when the store had the image under that name already.
	UpToDate bool
}

func shortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// Run transfers the image (every tag of an all-tags pull) into the store,
// reporting progress as it goes. Layers already stored are not fetched
// again; up to maxParallelDownloads layers are fetched at once.
func (p *Pull) Run(ctx context.Context, report func(Progress)) ([]PullResult, error) {
	if report == nil {
		report = func(Progress) {}
	}
	if !p.allTags {
		r, err := p.runOne(ctx, p.first, report)
		if err != nil {
			return nil, err
		}
		return []PullResult{r}, nil
	}
	var out []PullResult
	for i, tag := range p.tags {
		it := p.first
		if i > 0 {
			named, _ := reference.WithTag(p.repo, tag)
			pctx, cancel := context.WithTimeoutCause(ctx, prepareTimeout, errorf(ErrUnreachable, "registry %s did not answer within %v", p.domain, prepareTimeout))
			var err error
			it, err = p.prepare(pctx, named)
			cancel()
			if err != nil {
				return out, err
			}
		}
		r, err := p.runOne(ctx, it, report)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// existingLayers tells which of an image's layers the store holds already,
// as containers/image reuses them: the same content on the same parents.
func (s *Store) existingLayers(diffIDs []digest.Digest) []bool {
	have := make([]bool, len(diffIDs))
	parent := ""
	for i, d := range diffIDs {
		ls, err := s.s.LayersByUncompressedDigest(d)
		if err != nil {
			break
		}
		found := ""
		for _, l := range ls {
			if l.Parent == parent {
				found = l.ID
				break
			}
		}
		if found == "" {
			break
		}
		have[i] = true
		parent = found
	}
	return have
}

// transfer tracks the blobs of one copy for the progress messages and the
// stall watchdog.
type transfer struct {
	mu       sync.Mutex
	inFlight map[digest.Digest]bool
	last     time.Time
}

// watch reads copy's progress events, reports them through fn and cancels
// the copy (with a cause naming the registry) when blobs are in flight
// and none moved for stallTimeout. It returns when events is closed.
func watch(events <-chan types.ProgressProperties, cancel func(error), domain string, fn func(types.ProgressProperties)) {
	t := &transfer{inFlight: map[digest.Digest]bool{}, last: time.Now()}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			t.mu.Lock()
			t.last = time.Now()
			switch ev.Event {
			case types.ProgressEventNewArtifact, types.ProgressEventRead:
				t.inFlight[ev.Artifact.Digest] = true
			case types.ProgressEventDone, types.ProgressEventSkipped:
				delete(t.inFlight, ev.Artifact.Digest)
			}
			t.mu.Unlock()
			fn(ev)
		case <-tick.C:
			t.mu.Lock()
			stalled := len(t.inFlight) > 0 && time.Since(t.last) > stallTimeout
			t.mu.Unlock()
			if stalled {
				cancel(errorf(ErrUnreachable, "no data from registry %s for %v: transfer abandoned", domain, stallTimeout))
			}
		}
	}
}

func (p *Pull) runOne(ctx context.Context, it *pullItem, report func(Progress)) (PullResult, error) {
	s := p.s
	idTag := ""
	if t, ok := it.ref.(reference.Tagged); ok {
		idTag = t.Tag()
	} else if d, ok := it.ref.(reference.Digested); ok {
		idTag = d.Digest().String()
	}
	report(Progress{ID: idTag, Status: "Pulling from " + reference.Path(it.ref)})
	oldID := ""
	if img, err := s.lookup(it.ref.String()); err == nil {
		oldID = img.ID
	}
	// Layer lines, in manifest order, as docker shows them.
	layerIdx := map[digest.Digest]int{}
	have := s.existingLayers(it.diffIDs)
	said := make([]string, len(it.layers))
	for i, l := range it.layers {
		layerIdx[l.Digest] = i
		st := "Pulling fs layer"
		if i < len(have) && have[i] {
			st = "Already exists"
		}
		said[i] = st
		report(Progress{ID: shortDigest(l.Digest), Status: st})
	}
	srcRef, err := docker.NewReference(it.ref)
	if err != nil {
		return PullResult{}, errorf(ErrInvalid, "%v", err)
	}
	destRef, err := istorage.Transport.NewStoreReference(s.s, it.ref, "")
	if err != nil {
		return PullResult{}, err
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	events := make(chan types.ProgressProperties, 64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		watch(events, cancel, p.domain, func(ev types.ProgressProperties) {
			i, ok := layerIdx[ev.Artifact.Digest]
			if !ok {
				return // the configuration
			}
			id := shortDigest(ev.Artifact.Digest)
			switch ev.Event {
			case types.ProgressEventRead:
				said[i] = "Downloading"
				report(Progress{ID: id, Status: "Downloading", Current: int64(ev.Offset), Total: ev.Artifact.Size})
			case types.ProgressEventDone:
				said[i] = "Download complete"
				report(Progress{ID: id, Status: "Download complete"})
			case types.ProgressEventSkipped:
				if said[i] != "Already exists" {
					said[i] = "Already exists"
					report(Progress{ID: id, Status: "Already exists"})
				}
			}
		})
	}()
	pc, err := policy()
	if err != nil {
		close(events)
		wg.Wait()
		return PullResult{}, err
	}
	dsys := s.sys()
	_, err = func() ([]byte, error) {
		defer s.invalidate()
		return copy.Image(cctx, pc, destRef, srcRef, &copy.Options{
			SourceCtx: p.sys, DestinationCtx: dsys, ReportWriter: nil,
			Progress: events, ProgressInterval: progressInterval,
			MaxParallelDownloads: maxParallelDownloads,
		})
	}()
	pc.Destroy()
	close(events)
	wg.Wait()
	if err != nil {
		if c := context.Cause(cctx); c != nil && cctx.Err() != nil && ctx.Err() == nil {
			err = c
		}
		return PullResult{}, registryError(err, "pull "+it.ref.String(), p.domain)
	}
	for i, l := range it.layers {
		if said[i] != "Already exists" {
			report(Progress{ID: shortDigest(l.Digest), Status: "Pull complete"})
		}
	}
	simg, err := istorage.Transport.GetStoreImage(s.s, destRef)
	if err != nil {
		return PullResult{}, fmt.Errorf("find the pulled image %s: %w", it.ref, err)
	}
	img, err := s.toImage(simg)
	if err != nil {
		return PullResult{}, err
	}
	return PullResult{Name: it.ref.String(), Digest: it.manifestDigest.String(), Image: img, UpToDate: oldID == img.ID}, nil
}

// PushOptions configure a push.
type PushOptions struct {
	// AllTags pushes every local tag of the repository.
	AllTags    bool
	Auth       Auth
	Registries Registries
}

// PushResult is one tag a push sent.
type PushResult struct {
	Tag    string
	Digest string
	Size   int
}

// Push sends the image named ref (a local name: repository[:tag], the
// registry its first component, docker.io without one) to its registry,
// every local tag of the repository with AllTags.
func (s *Store) Push(ctx context.Context, ref string, o PushOptions, report func(Progress)) ([]PushResult, error) {
	if report == nil {
		report = func(Progress) {}
	}
	named, err := parseName(ref, !o.AllTags)
	if err != nil {
		return nil, err
	}
	if _, ok := named.(reference.Digested); ok {
		return nil, errorf(ErrInvalid, "cannot push a digest reference %q: push a tag", ref)
	}
	var targets []reference.NamedTagged
	if o.AllTags {
		if !reference.IsNameOnly(named) {
			return nil, errorf(ErrInvalid, "tag can't be used with --all-tags/-a")
		}
		imgs, err := s.s.Images()
		if err != nil {
			return nil, err
		}
		for _, img := range imgs {
			for _, n := range img.Names {
				nn, err := reference.ParseNormalizedNamed(n)
				if err != nil || nn.Name() != named.Name() {
					continue
				}
				if t, ok := nn.(reference.NamedTagged); ok {
					targets = append(targets, t)
				}
			}
		}
		slices.SortFunc(targets, func(a, b reference.NamedTagged) int { return strings.Compare(a.Tag(), b.Tag()) })
		if len(targets) == 0 {
			return nil, errorf(ErrNotFound, "An image does not exist locally with the tag: %s", reference.FamiliarName(named))
		}
	} else {
		if _, err := s.lookup(named.String()); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, errorf(ErrNotFound, "An image does not exist locally with the tag: %s", reference.FamiliarString(named))
			}
			return nil, err
		}
		targets = []reference.NamedTagged{named.(reference.NamedTagged)}
	}
	domain := reference.Domain(named)
	sys := s.registrySys(domain, o.Registries, o.Auth)
	report(Progress{Status: "The push refers to repository [" + named.Name() + "]"})
	if err := probe(ctx, domain, sys.DockerInsecureSkipTLSVerify == types.OptionalBoolTrue); err != nil {
		return nil, err
	}
	var out []PushResult
	for _, t := range targets {
		r, err := s.pushOne(ctx, t, domain, sys, report)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *Store) pushOne(ctx context.Context, named reference.NamedTagged, domain string, sys *types.SystemContext, report func(Progress)) (PushResult, error) {
	what := "push " + named.String()
	img, err := s.lookup(named.String())
	if err != nil {
		return PushResult{}, err
	}
	srcRef, err := istorage.Transport.NewStoreReference(s.s, named, img.ID)
	if err != nil {
		return PushResult{}, err
	}
	layers, err := s.pushLayers(ctx, srcRef)
	if err != nil {
		return PushResult{}, fmt.Errorf("%s: read the local image: %w", what, err)
	}
	layerIdx := map[digest.Digest]int{}
	for i, l := range layers {
		layerIdx[l.Digest] = i
		report(Progress{ID: shortDigest(l.Digest), Status: "Preparing"})
	}
	destRef, err := docker.NewReference(named)
	if err != nil {
		return PushResult{}, errorf(ErrInvalid, "%v", err)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	events := make(chan types.ProgressProperties, 64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		watch(events, cancel, domain, func(ev types.ProgressProperties) {
			if _, ok := layerIdx[ev.Artifact.Digest]; !ok {
				return
			}
			id := shortDigest(ev.Artifact.Digest)
			switch ev.Event {
			case types.ProgressEventRead:
				report(Progress{ID: id, Status: "Pushing", Current: int64(ev.Offset), Total: ev.Artifact.Size})
			case types.ProgressEventDone:
				report(Progress{ID: id, Status: "Pushed"})
			case types.ProgressEventSkipped:
				report(Progress{ID: id, Status: "Layer already exists"})
			}
		})
	}()
	pc, err := policy()
	if err != nil {
		close(events)
		wg.Wait()
		return PushResult{}, err
	}
	man, err := copy.Image(cctx, pc, destRef, srcRef, &copy.Options{
		SourceCtx: s.sys(), DestinationCtx: sys,
		Progress: events, ProgressInterval: progressInterval,
	})
	pc.Destroy()
	close(events)
	wg.Wait()
	if err != nil {
		if c := context.Cause(cctx); c != nil && cctx.Err() != nil && ctx.Err() == nil {
			err = c
		}
		return PushResult{}, registryError(err, what, domain)
	}
	d := digest.FromBytes(man)
	r := PushResult{Tag: named.Tag(), Digest: d.String(), Size: len(man)}
	report(Progress{Status: fmt.Sprintf("%s: digest: %s size: %d", r.Tag, r.Digest, r.Size)})
	report(Progress{Aux: map[string]interface{}{"Tag": r.Tag, "Digest": r.Digest, "Size": r.Size}})
	return r, nil
}

// pushLayers lists the blobs a push of the stored image reads, as its
// progress events name them.
func (s *Store) pushLayers(ctx context.Context, ref types.ImageReference) ([]types.BlobInfo, error) {
	src, err := ref.NewImageSource(ctx, s.sys())
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if infos, err := src.LayerInfosForCopy(ctx, nil); err == nil && infos != nil {
		return infos, nil
	}
	img, err := image.FromUnparsedImage(ctx, s.sys(), image.UnparsedInstance(src, nil))
	if err != nil {
		return nil, err
	}
	return img.LayerInfos(), nil
}

// loginKey normalizes a login server ("https://index.docker.io/v1/",
// "http://127.0.0.1:5000", "quay.io/org") to the auth file's key and the
// registry to check: empty means the first search registry.
func loginKey(server string, regs Registries) (key, registry string, err error) {
	s := strings.TrimSpace(server)
	if s == "" {
		if len(regs.Search) == 0 {
			return "", "", errorf(ErrInvalid, "no registry given and no search registries configured: name the registry to log in to")
		}
		s = regs.Search[0]
	}
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s = strings.TrimSuffix(s, "/")
	for _, suf := range []string{"/v1", "/v2"} {
		s = strings.TrimSuffix(s, suf)
	}
	if s == "index.docker.io" || s == "registry-1.docker.io" {
		s = "docker.io"
	}
	host, _, _ := strings.Cut(s, "/")
	if host == "" || strings.ContainsAny(s, " \t@") {
		return "", "", errorf(ErrInvalid, "invalid registry %q: want host[:port][/namespace]", server)
	}
	return s, host, nil
}

// Login checks credentials with the registry server and, with store,
// saves them in the auth file (auth.File, or the user's default). Without
// a user name it checks the credentials already saved for the server.
// It returns the registry's key and, when stored, where.
func (s *Store) Login(ctx context.Context, server string, auth Auth, regs Registries, store bool) (key, where string, err error) {
	key, registry, err := loginKey(server, regs)
	if err != nil {
		return "", "", err
	}
	sys := s.registrySys(registry, regs, Auth{File: auth.File})
	if auth.Username == "" && auth.IdentityToken == "" {
		saved, err := config.GetCredentials(sys, key)
		if err != nil {
			return key, "", fmt.Errorf("read the saved credentials for %s: %w", key, err)
		}
		if saved.Username == "" && saved.IdentityToken == "" {
			return key, "", errorf(ErrUnauthorized, "not logged in to %s: give a user name and password", key)
		}
		auth.Username, auth.Password, auth.IdentityToken = saved.Username, saved.Password, saved.IdentityToken
		store = false
	}
	if err := probe(ctx, registry, sys.DockerInsecureSkipTLSVerify == types.OptionalBoolTrue); err != nil {
		return key, "", err
	}
	pctx, cancel := context.WithTimeoutCause(ctx, prepareTimeout, errorf(ErrUnreachable, "registry %s did not answer within %v", registry, prepareTimeout))
	defer cancel()
	if err := docker.CheckAuth(pctx, sys, auth.Username, auth.Password, registry); err != nil {
		err = causeOr(pctx, err)
		var unauth docker.ErrUnauthorizedForCredentials
		if errors.As(err, &unauth) {
			return key, "", errorf(ErrUnauthorized, "login to %s: unauthorized: wrong user name or password (%v)", registry, unauth.Err)
		}
		return key, "", registryError(err, "login to "+registry, registry)
	}
	if !store {
		return key, "", nil
	}
	where, err = config.SetCredentials(sys, key, auth.Username, auth.Password)
	if err != nil {
		return key, "", fmt.Errorf("save the credentials for %s: %w", key, err)
	}
	return key, where, nil
}

// Logout removes the saved credentials for server (every server's with
// all) from the auth file. It reports false when there were none.
func (s *Store) Logout(server string, all bool, file string, regs Registries) (key string, removed bool, err error) {
	sys := s.registrySys("", regs, Auth{File: file})
	if all {
		return "", true, config.RemoveAllAuthentication(sys)
	}
	key, _, err = loginKey(server, regs)
	if err != nil {
		return "", false, err
	}
	err = config.RemoveAuthentication(sys, key)
	if errors.Is(err, config.ErrNotLoggedIn) {
		return key, false, nil
	}
	return key, err == nil, err
}
