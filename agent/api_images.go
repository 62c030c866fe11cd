package agent

import (
	"encoding/json"
	"errors"
	"net/http"
	"path"
	"strings"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"

	"github.com/moss-containers/moss/storage"
)

func (a *Agent) getImages(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	imgs, err := a.store.Images()
	if err != nil {
		return err
	}
	// As docker: without all, untagged parents of other images (a
	// build's intermediate images) are left out.
	parents := map[string]bool{}
	for _, img := range imgs {
		if img.Parent != "" {
			parents[img.Parent] = true
		}
	}
	all := boolParam(r, "all")
	out := []image.Summary{}
	for _, img := range imgs {
		if !matchImage(f, img) || (!all && len(img.RepoTags) == 0 && parents[img.ID]) {
			continue
		}
		s := image.Summary{
			ID: "sha256:" + img.ID, Created: img.Created.Unix(), Size: img.Size, SharedSize: -1,
			Containers: -1, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests, Labels: img.Config.Config.Labels,
		}
		if s.RepoTags == nil {
			s.RepoTags = []string{}
		}
		if s.RepoDigests == nil {
			s.RepoDigests = []string{}
		}
		out = append(out, s)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func matchImage(f map[string][]string, img storage.Image) bool {
	for k, vals := range f {
		ok := false
		for _, v := range vals {
			switch k {
			case "dangling":
				ok = ok || (v == "true") == (len(img.RepoTags) == 0)
			case "reference":
				for _, t := range img.RepoTags {
					repo, _, _ := strings.Cut(t, ":")
					if matched, _ := pathMatch(v, t); matched || v == repo {
						ok = true
					}
				}
			case "label":
				ok = ok || matchLabels([]string{v}, img.Config.Config.Labels)
			default:
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func pathMatch(pattern, s string) (bool, error) {
	if !strings.Contains(pattern, ":") {
		s, _, _ = strings.Cut(s, ":")
	}
	return path.Match(pattern, s)
}

func (a *Agent) getImage(w http.ResponseWriter, r *http.Request, name string) error {
	img, err := a.store.Image(name)
	if err != nil {
		return imageErr(err, name)
	}
	cfg := img.Config
	resp := image.InspectResponse{
		ID: "sha256:" + img.ID, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests,
		Created: rfc3339(img.Created), Author: cfg.Author, Architecture: cfg.Architecture,
		Variant: cfg.Variant, Os: cfg.OS, Size: img.Size,
		Config: &dockerspec.DockerOCIImageConfig{ImageConfig: cfg.Config},
		RootFS: image.RootFS{Type: cfg.RootFS.Type},
	}
	if full, err := a.store.ImageConfig(img.ID); err == nil {
		// With Docker's fields (HEALTHCHECK, ONBUILD, SHELL).
		c := full.Config
		resp.Config = &c
	}
	for _, d := range cfg.RootFS.DiffIDs {
		resp.RootFS.Layers = append(resp.RootFS.Layers, d.String())
	}
	if len(cfg.History) > 0 {
		resp.Comment = cfg.History[len(cfg.History)-1].Comment
	}
	if resp.RepoTags == nil {
		resp.RepoTags = []string{}
	}
	if resp.RepoDigests == nil {
		resp.RepoDigests = []string{}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func imageErr(err error, name string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return kindErr(errNotFound, "No such image: %s", name)
	}
	return err
}

// jsonStream writes Docker's JSON message stream.
type jsonStream struct {
	w   http.ResponseWriter
	enc *json.Encoder
}

func newJSONStream(w http.ResponseWriter) *jsonStream {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return &jsonStream{w: w, enc: json.NewEncoder(w)}
}

func (s *jsonStream) send(v map[string]interface{}) {
	_ = s.enc.Encode(v)
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *jsonStream) fail(err error) {
	s.send(map[string]interface{}{"errorDetail": map[string]string{"message": err.Error()}, "error": err.Error()})
}

// postImagesCreate pulls an image (fromImage=, api_registry.go) or imports
// a rootfs tarball (fromSrc=-).
func (a *Agent) postImagesCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("fromImage") != "" {
		return a.postImagesPull(w, r)
	}
	if q.Get("fromSrc") != "-" {
		return kindErr(errInvalid, "importing from a URL is not supported: use fromSrc=- with the archive as the body")
	}
	ref := q.Get("repo")
	if ref != "" && q.Get("tag") != "" {
		ref += ":" + q.Get("tag")
	}
	ic, err := parseChanges(q["changes"])
	if err != nil {
		return err
	}
	ic.Message = q.Get("message")
	img, err := a.store.Import(r.Context(), r.Body, ref, ic)
	if err != nil {
		return err
	}
	a.imageEvent(events.ActionImport, "sha256:"+img.ID, ref)
	s := newJSONStream(w)
	s.send(map[string]interface{}{"status": "sha256:" + img.ID})
	return nil
}

// parseChanges reads Dockerfile-style --change instructions for import,
// as commit does (applyChanges, api_commit.go).
func parseChanges(changes []string) (storage.ImportConfig, error) {
	var cfg container.Config
	if err := applyChanges(&cfg, changes); err != nil {
		return storage.ImportConfig{}, err
	}
	ic := imageConfigOf(&cfg)
	return storage.ImportConfig{
		Cmd: ic.Cmd, Entrypoint: ic.Entrypoint, Env: ic.Env, WorkingDir: ic.WorkingDir, User: ic.User,
		Labels: ic.Labels, Volumes: ic.Volumes, ExposedPorts: ic.ExposedPorts, StopSignal: ic.StopSignal,
	}, nil
}

func (a *Agent) postImagesLoad(w http.ResponseWriter, r *http.Request) error {
	lines, err := a.store.Load(r.Context(), r.Body)
	if err != nil {
		return err
	}
	s := newJSONStream(w)
	for _, l := range lines {
		ref := strings.TrimPrefix(strings.TrimPrefix(l, "Loaded image ID: "), "Loaded image: ")
		a.imageEvent(events.ActionLoad, ref, ref)
		s.send(map[string]interface{}{"stream": l + "\n"})
	}
	return nil
}

func (a *Agent) getImagesGet(w http.ResponseWriter, r *http.Request) error {
	return a.saveImages(w, r, r.URL.Query()["names"])
}

// saveImages sends the archive of docker save (several names, each
// image once). The store makes the whole archive before it writes a
// byte, so its errors are answered as errors.
func (a *Agent) saveImages(w http.ResponseWriter, r *http.Request, names []string) error {
	if len(names) == 0 {
		return kindErr(errInvalid, "no image names given")
	}
	for _, n := range names {
		if _, err := a.store.Image(n); err != nil {
			return imageErr(err, n)
		}
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "docker-archive"
	}
	tw := &tarAnswer{w: w}
	if err := a.store.Save(r.Context(), tw, names, format); err != nil {
		if !tw.started {
			return err
		}
		// The client sees a truncated tar.
		a.log.Error("save images", "error", err)
	}
	return nil
}

// tarAnswer writes the headers of a tar answer with its first byte.
type tarAnswer struct {
	w       http.ResponseWriter
	started bool
}

func (t *tarAnswer) Write(p []byte) (int, error) {
	if !t.started {
		t.started = true
		t.w.Header().Set("Content-Type", "application/x-tar")
		t.w.WriteHeader(http.StatusOK)
	}
	return t.w.Write(p)
}

func (a *Agent) postTag(w http.ResponseWriter, r *http.Request, name string) error {
	repo, tag := r.URL.Query().Get("repo"), r.URL.Query().Get("tag")
	if repo == "" {
		return kindErr(errInvalid, "repository name must have at least one component")
	}
	ref := repo
	if tag != "" {
		ref += ":" + tag
	}
	if err := a.store.Tag(name, ref); err != nil {
		return imageErr(err, name)
	}
	a.imageEvent(events.ActionTag, name, ref)
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (a *Agent) deleteImage(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	// An image whose last container is gone must not be refused as in use.
	a.releaseImages()
	untagged, deleted, err := a.store.RemoveImage(name, boolParam(r, "force"))
	if err != nil {
		return imageErr(err, name)
	}
	out := []image.DeleteResponse{}
	for _, u := range untagged {
		out = append(out, image.DeleteResponse{Untagged: u})
		a.imageEvent(events.ActionUnTag, u, u)
	}
	for _, d := range deleted {
		if !strings.HasPrefix(d, "sha256:") {
			d = "sha256:" + d
		}
		out = append(out, image.DeleteResponse{Deleted: d})
		a.imageEvent(events.ActionDelete, d, "")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
