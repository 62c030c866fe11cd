package agent

import (
	"encoding/json"
	"errors"
	"net/http"
	"path"
	"strings"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
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
	out := []image.Summary{}
	for _, img := range imgs {
		if !matchImage(f, img) {
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

// postImagesCreate imports a rootfs tarball (fromSrc=-). Pulling from
// registries arrives with the images issue.
func (a *Agent) postImagesCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("fromSrc") != "-" {
		if q.Get("fromImage") != "" {
			return kindErr(errInvalid, "pulling images from registries is not supported yet: load or import the image instead")
		}
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

// parseChanges reads Dockerfile-style --change instructions for import.
func parseChanges(changes []string) (storage.ImportConfig, error) {
	var ic storage.ImportConfig
	for _, ch := range changes {
		ch = strings.TrimSpace(ch)
		if ch == "" {
			continue
		}
		instr, rest, _ := strings.Cut(ch, " ")
		rest = strings.TrimSpace(rest)
		list := func() []string {
			var l []string
			if strings.HasPrefix(rest, "[") && json.Unmarshal([]byte(rest), &l) == nil {
				return l
			}
			return []string{"/bin/sh", "-c", rest}
		}
		switch strings.ToUpper(instr) {
		case "CMD":
			ic.Cmd = list()
		case "ENTRYPOINT":
			ic.Entrypoint = list()
		case "ENV":
			k, v, ok := strings.Cut(rest, "=")
			if !ok {
				k, v, _ = strings.Cut(rest, " ")
			}
			ic.Env = append(ic.Env, strings.TrimSpace(k)+"="+strings.Trim(strings.TrimSpace(v), `"`))
		case "WORKDIR":
			ic.WorkingDir = rest
		case "USER":
			ic.User = rest
		case "LABEL":
			if ic.Labels == nil {
				ic.Labels = map[string]string{}
			}
			k, v, _ := strings.Cut(rest, "=")
			ic.Labels[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		case "VOLUME":
			// VOLUME ["/a", "/b"] or VOLUME /a /b
			var vs []string
			if !strings.HasPrefix(rest, "[") || json.Unmarshal([]byte(rest), &vs) != nil {
				vs = strings.Fields(rest)
			}
			for _, v := range vs {
				if !strings.HasPrefix(v, "/") {
					return ic, kindErr(errInvalid, "VOLUME %s: the path must be absolute", v)
				}
				if ic.Volumes == nil {
					ic.Volumes = map[string]struct{}{}
				}
				ic.Volumes[v] = struct{}{}
			}
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				if ic.ExposedPorts == nil {
					ic.ExposedPorts = map[string]struct{}{}
				}
				ic.ExposedPorts[p] = struct{}{}
			}
		case "STOPSIGNAL":
			ic.StopSignal = rest
		case "ONBUILD":
			// Accepted as docker does; it matters only to builds.
		default:
			return ic, kindErr(errInvalid, "%s is not a valid change command", instr)
		}
	}
	return ic, nil
}

func (a *Agent) postImagesLoad(w http.ResponseWriter, r *http.Request) error {
	names, err := a.store.Load(r.Context(), r.Body)
	if err != nil {
		return err
	}
	s := newJSONStream(w)
	for _, n := range names {
		a.imageEvent(events.ActionLoad, n, n)
		s.send(map[string]interface{}{"stream": n + "\n"})
	}
	return nil
}

func (a *Agent) getImagesGet(w http.ResponseWriter, r *http.Request) error {
	return a.saveImages(w, r, r.URL.Query()["names"])
}

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
	w.Header().Set("Content-Type", "application/x-tar")
	if err := a.store.Save(r.Context(), w, names, format); err != nil {
		// Headers may be out already; the client sees a truncated tar.
		a.log.Error("save images", "error", err)
		return nil
	}
	return nil
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
	a.waitLayersDeleted()
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
