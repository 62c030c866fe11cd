package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"

	"github.com/moss-containers/moss/storage"
)

// registries is the [registries] configuration in storage's terms.
func (a *Agent) registries() storage.Registries {
	return storage.Registries{Search: a.cfg.Registries.Search, Insecure: a.cfg.Registries.Insecure}
}

// registryAuth reads a request's credentials: Docker's X-Registry-Auth
// header (base64url JSON; empty or "{}" means none) and Moss's authfile
// parameter (the auth file to read when the header brings none).
func registryAuth(r *http.Request) (storage.Auth, error) {
	var out storage.Auth
	if f := r.URL.Query().Get("authfile"); f != "" {
		if !filepath.IsAbs(f) {
			return out, kindErr(errInvalid, "authfile %q: must be an absolute path", f)
		}
		out.File = f
	}
	h := strings.TrimSpace(r.Header.Get(registry.AuthHeader))
	if h == "" {
		return out, nil
	}
	var data []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if data, err = enc.DecodeString(h); err == nil {
			break
		}
	}
	if err != nil {
		return out, kindErr(errInvalid, "invalid X-Registry-Auth header: not base64url: %v", err)
	}
	var ac registry.AuthConfig
	if len(strings.TrimSpace(string(data))) > 0 {
		if err := json.Unmarshal(data, &ac); err != nil {
			return out, kindErr(errInvalid, "invalid X-Registry-Auth header: %v", err)
		}
	}
	return authFromConfig(ac, out.File)
}

// authFromConfig takes the credentials of a Docker AuthConfig, whose
// "auth" field is base64 "user:password" when the others are empty.
func authFromConfig(ac registry.AuthConfig, file string) (storage.Auth, error) {
	out := storage.Auth{Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken, File: file}
	if out.Username == "" && ac.Auth != "" {
		b, err := base64.StdEncoding.DecodeString(ac.Auth)
		if err != nil {
			return out, kindErr(errInvalid, "invalid auth field: not base64: %v", err)
		}
		u, p, ok := strings.Cut(string(b), ":")
		if !ok {
			return out, kindErr(errInvalid, "invalid auth field: want base64 of user:password")
		}
		out.Username, out.Password = u, p
	}
	return out, nil
}

// writeRegistryError answers an error that came before any progress:
// wrong credentials are 401 as Docker's (its CLI then asks for others).
func writeRegistryError(w http.ResponseWriter, err error) error {
	if errors.Is(err, storage.ErrUnauthorized) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": err.Error()})
		return nil
	}
	return err
}

// splitTag splits a trailing ":tag" off a name (not a registry's port).
func splitTag(name string) (string, string) {
	i := strings.LastIndex(name, ":")
	if i < 0 || strings.Contains(name[i:], "/") {
		return name, ""
	}
	return name[:i], name[i+1:]
}

// pullName combines /images/create's fromImage and tag as Docker does:
// a digest in fromImage wins, then the tag parameter (a tag or a digest),
// then a tag in fromImage; neither means every tag.
func pullName(fromImage, tag string) (name string, allTags bool) {
	if strings.Contains(fromImage, "@") {
		return fromImage, false
	}
	if tag != "" {
		repo, _ := splitTag(fromImage)
		if strings.Contains(tag, ":") {
			return repo + "@" + tag, false
		}
		return repo + ":" + tag, false
	}
	if _, t := splitTag(fromImage); t != "" {
		return fromImage, false
	}
	return fromImage, true
}

// lazyStream is a JSON message stream whose headers go out with its
// first message, so that an error before any progress is still an HTTP
// error status.
type lazyStream struct {
	w http.ResponseWriter
	s *jsonStream
}

func (l *lazyStream) started() bool { return l.s != nil }

func (l *lazyStream) send(m map[string]interface{}) {
	if l.s == nil {
		l.s = newJSONStream(l.w)
	}
	l.s.send(m)
}

// progressMessage is a Docker JSON progress message for p.
func progressMessage(p storage.Progress) map[string]interface{} {
	if p.Aux != nil {
		return map[string]interface{}{"progressDetail": map[string]interface{}{}, "aux": p.Aux}
	}
	m := map[string]interface{}{"status": p.Status}
	if p.ID == "" {
		return m
	}
	m["id"] = p.ID
	if strings.HasPrefix(p.Status, "Pulling from ") {
		return m
	}
	detail := map[string]interface{}{}
	if p.Current > 0 || p.Total > 0 {
		detail["current"] = p.Current
		if p.Total > 0 {
			detail["total"] = p.Total
		}
		m["progress"] = progressBar(p.Current, p.Total)
	}
	m["progressDetail"] = detail
	return m
}

// progressBar is Docker's progress string: "[=====>     ]  1.2MB/4MB".
func progressBar(cur, total int64) string {
	size := func(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }
	if total <= 0 {
		return fmt.Sprintf("%8v", size(cur))
	}
	const width = 50
	n := int(float64(width) * float64(cur) / float64(total))
	n = max(0, min(n, width))
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("[%s] %8v/%v", bar, size(cur), size(total))
}

// familiar is Docker's short form of a full name (busybox:latest).
func familiar(full string) string {
	for _, p := range []string{"docker.io/library/", "docker.io/"} {
		if s, ok := strings.CutPrefix(full, p); ok && !strings.Contains(strings.SplitN(s, "/", 2)[0], ".") {
			return s
		}
	}
	return full
}

// postImagesPull pulls fromImage (POST /images/create?fromImage=&tag=&platform=),
// streaming Docker's progress messages.
func (a *Agent) postImagesPull(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	name, allTags := pullName(q.Get("fromImage"), q.Get("tag"))
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	p, err := a.store.PreparePull(ctx, name, storage.PullOptions{
		AllTags: allTags, Platform: q.Get("platform"), Auth: auth, Registries: a.registries(),
	})
	if err != nil {
		a.log.Debug("pull refused", "name", name, "error", err)
		return writeRegistryError(w, err)
	}
	s := &lazyStream{w: w}
	results, err := p.Run(ctx, func(pr storage.Progress) { s.send(progressMessage(pr)) })
	for _, res := range results {
		s.send(map[string]interface{}{"status": "Digest: " + res.Digest})
		a.imageEvent(events.ActionPull, res.Name, res.Name)
		if !allTags {
			status := "Status: Downloaded newer image for "
			if res.UpToDate {
				status = "Status: Image is up to date for "
			}
			s.send(map[string]interface{}{"status": status + familiar(res.Name)})
		}
	}
	if err != nil {
		a.log.Info("pull failed", "name", name, "error", err)
		s.send(map[string]interface{}{"errorDetail": map[string]string{"message": err.Error()}, "error": err.Error()})
		return nil
	}
	if allTags {
		status := "Status: Image is up to date for "
		for _, res := range results {
			if !res.UpToDate {
				status = "Status: Downloaded newer image for "
			}
		}
		s.send(map[string]interface{}{"status": status + familiar(p.Repository())})
	}
	for _, res := range results {
		// For programs: the full name and the ID (docker's CLI ignores aux).
		s.send(map[string]interface{}{"progressDetail": map[string]interface{}{}, "aux": map[string]string{"Name": res.Name, "ID": "sha256:" + res.Image.ID}})
	}
	return nil
}

// postPush pushes an image (POST /images/{name}/push?tag=); no tag pushes
// every local tag of the repository, as Docker does.
func (a *Agent) postPush(w http.ResponseWriter, r *http.Request, name string) error {
	tag := r.URL.Query().Get("tag")
	repo, t := splitTag(name)
	ref, allTags := name, false
	switch {
	case tag != "":
		ref = repo + ":" + tag
	case t == "":
		allTags = true
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	s := &lazyStream{w: w}
	results, err := a.store.Push(r.Context(), ref, storage.PushOptions{AllTags: allTags, Auth: auth, Registries: a.registries()},
		func(pr storage.Progress) { s.send(progressMessage(pr)) })
	for _, res := range results {
		a.imageEvent(events.ActionPush, repo+":"+res.Tag, repo+":"+res.Tag)
	}
	if err != nil {
		a.log.Info("push failed", "name", ref, "error", err)
		if !s.started() {
			if errors.Is(err, storage.ErrNotFound) {
				return kindErr(errNotFound, "%s", err.Error())
			}
			return writeRegistryError(w, err)
		}
		s.send(map[string]interface{}{"errorDetail": map[string]string{"message": err.Error()}, "error": err.Error()})
	}
	return nil
}

// postAuth checks credentials with a registry (POST /auth) without saving
// them: Docker's CLI saves them itself.
func (a *Agent) postAuth(w http.ResponseWriter, r *http.Request) error {
	var ac registry.AuthConfig
	if err := decodeBody(r, &ac); err != nil {
		return err
	}
	auth, err := authFromConfig(ac, "")
	if err != nil {
		return err
	}
	if auth.Username == "" && auth.IdentityToken == "" {
		return kindErr(errInvalid, "no credentials given: username and password are required")
	}
	if _, _, err := a.store.Login(r.Context(), ac.ServerAddress, auth, a.registries(), false); err != nil {
		return writeRegistryError(w, err)
	}
	writeJSON(w, http.StatusOK, registry.AuthResponse{Status: "Login Succeeded"})
	return nil
}

// mossLoginRequest is the body of /moss/v1/login and /moss/v1/logout.
type mossLoginRequest struct {
	registry.AuthConfig
	// AuthFile is the auth file to use instead of the user's default.
	AuthFile string `json:"authfile,omitempty"`
	// All logs out of every registry.
	All bool `json:"all,omitempty"`
}

// postMossLogin checks credentials with a registry and saves them in the
// user's auth file (moss login); without a user name it checks the saved
// ones.
func (a *Agent) postMossLogin(w http.ResponseWriter, r *http.Request) error {
	var req mossLoginRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.AuthFile != "" && !filepath.IsAbs(req.AuthFile) {
		return kindErr(errInvalid, "authfile %q: must be an absolute path", req.AuthFile)
	}
	auth, err := authFromConfig(req.AuthConfig, req.AuthFile)
	if err != nil {
		return err
	}
	existing := auth.Username == "" && auth.IdentityToken == ""
	key, where, err := a.store.Login(r.Context(), req.ServerAddress, auth, a.registries(), true)
	if err != nil {
		return writeRegistryError(w, err)
	}
	writeJSON(w, http.StatusOK, map[string]interface{}{"Status": "Login Succeeded", "Registry": key, "File": where, "Existing": existing})
	return nil
}

// postMossLogout removes saved credentials (moss logout).
func (a *Agent) postMossLogout(w http.ResponseWriter, r *http.Request) error {
	var req mossLoginRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.AuthFile != "" && !filepath.IsAbs(req.AuthFile) {
		return kindErr(errInvalid, "authfile %q: must be an absolute path", req.AuthFile)
	}
	key, removed, err := a.store.Logout(req.ServerAddress, req.All, req.AuthFile, a.registries())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]interface{}{"Registry": key, "Removed": removed})
	return nil
}

// getResolve lists what a pull of a name may mean (GET
// /moss/v1/images/resolve?name=): the CLI asks on a terminal when a short
// name has several candidates.
func (a *Agent) getResolve(w http.ResponseWriter, r *http.Request) error {
	c, err := a.registries().Candidates(r.URL.Query().Get("name"))
	if err != nil {
		return err
	}
	names := make([]string, len(c))
	for i, n := range c {
		names[i] = n.String()
	}
	writeJSON(w, http.StatusOK, map[string]interface{}{"Candidates": names, "Short": storage.IsShortName(r.URL.Query().Get("name"))})
	return nil
}

// pullPlain pulls ref, writing plain progress lines (no byte counts) to
// out, for a build's base image. A short name resolves through the search
// registries, as a pull without a terminal does.
func (a *Agent) pullPlain(ctx context.Context, ref string, out io.Writer) error {
	p, err := a.store.PreparePull(ctx, ref, storage.PullOptions{Registries: a.registries()})
	if err != nil {
		return err
	}
	results, err := p.Run(ctx, func(pr storage.Progress) {
		switch {
		case pr.Aux != nil, pr.Status == "Downloading":
		case pr.ID != "":
			fmt.Fprintf(out, "%s: %s\n", pr.ID, pr.Status)
		default:
			fmt.Fprintln(out, pr.Status)
		}
	})
	for _, res := range results {
		fmt.Fprintf(out, "Digest: %s\nStatus: Downloaded newer image for %s\n", res.Digest, familiar(res.Name))
		a.imageEvent(events.ActionPull, res.Name, res.Name)
	}
	return err
}
