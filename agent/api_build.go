package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"

	"github.com/moss-containers/moss/agent/build"
)

// postBuild is POST /build, Docker's legacy builder: the body is the
// context as a tar, the answer a stream of JSON messages.
func (a *Agent) postBuild(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if remote := q.Get("remote"); remote != "" {
		return kindErr(errInvalid, "remote build contexts (%s) are not supported: send the context as the request body", remote)
	}
	o := build.Options{
		Dockerfile: q.Get("dockerfile"), Tags: q["t"], Target: q.Get("target"),
		NoCache: boolParam(r, "nocache"), Pull: boolParam(r, "pull"), Network: q.Get("networkmode"),
		CacheDir: filepath.Join(a.dirs.Data, "build-cache"),
	}
	for _, t := range o.Tags {
		if _, err := reference.ParseNormalizedNamed(t); err != nil {
			return kindErr(errInvalid, "invalid tag %q: %v", t, err)
		}
	}
	if v := q.Get("buildargs"); v != "" {
		if err := json.Unmarshal([]byte(v), &o.BuildArgs); err != nil {
			return kindErr(errInvalid, "invalid buildargs: %v", err)
		}
	}
	if v := q.Get("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &o.Labels); err != nil {
			return kindErr(errInvalid, "invalid labels: %v", err)
		}
	}
	dir, err := os.MkdirTemp(filepath.Join(a.dirs.Data, "tmp"), "build-")
	if errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(filepath.Join(a.dirs.Data, "tmp"), 0o700); err == nil {
			dir, err = os.MkdirTemp(filepath.Join(a.dirs.Data, "tmp"), "build-")
		}
	}
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := unpackContext(r.Body, dir); err != nil {
		return kindErr(errInvalid, "the build context is not a readable tar: %v", err)
	}
	o.ContextDir = dir
	s := newJSONStream(w)
	out := &streamWriter{s: s}
	if boolParam(r, "q") {
		out.quiet = true
	}
	o.Out = out
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	img, err := build.Build(ctx, buildBackend{a}, o)
	if err != nil {
		// As Docker: a failed RUN's exit code, for the client's.
		code := 1
		var ee *build.ExitError
		if errors.As(err, &ee) {
			code = ee.Code
		}
		s.send(map[string]interface{}{"errorDetail": map[string]interface{}{"message": err.Error(), "code": code}, "error": err.Error()})
		return nil
	}
	s.send(map[string]interface{}{"aux": map[string]string{"ID": "sha256:" + img.ID}})
	if out.quiet {
		s.send(map[string]interface{}{"stream": "sha256:" + img.ID + "\n"})
	}
	return nil
}

// unpackContext extracts the context tar (plain or compressed) into dir,
// refusing entries that would leave it.
func unpackContext(r io.Reader, dir string) error {
	rd, err := archive.DecompressStream(r)
	if err != nil {
		return err
	}
	defer rd.Close()
	return chrootarchive.UntarWithRoot(rd, dir, &archive.TarOptions{InUserNS: true, NoLchown: true}, dir)
}

// streamWriter turns the build's output into {"stream": …} messages.
type streamWriter struct {
	mu    sync.Mutex
	s     *jsonStream
	quiet bool
}

func (w *streamWriter) Write(p []byte) (int, error) {
	if w.quiet {
		return len(p), nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s.send(map[string]interface{}{"stream": string(p)})
	return len(p), nil
}

// pullForBuild fetches a FROM image from its registry (missing, or
// --pull), with plain progress lines into the build's output.
func (a *Agent) pullForBuild(ctx context.Context, ref string, out io.Writer) error {
	return a.pullPlain(ctx, ref, out)
}
