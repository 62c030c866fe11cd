package agent

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/moby/moby/api/types/container"
	"github.com/moss-containers/moss/agent/shim"
	"github.com/moss-containers/moss/internal/paths"
)

// benchLog is the log of BenchmarkLogs: MOSS_BENCH_LOG, or 20 MB of the
// lines of README's measurement.
func benchLog(b testing.TB, dir string) (string, int64) {
	if p := os.Getenv("MOSS_BENCH_LOG"); p != "" {
		st, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		return p, st.Size()
	}
	p := filepath.Join(dir, "src.log")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	line := `{"log":"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456\n","stream":"stdout","time":"2026-12-01T09:45:05.177729879Z"}` + "\n"
	var n int64
	for n < 20<<20 {
		f.WriteString(line)
		n += int64(len(line))
	}
	f.Close()
	return p, n
}

func newLogsAgent(b testing.TB, src string) (*Agent, *httptest.Server) {
	dir := b.TempDir()
	id := fmt.Sprintf("%064d", 1)
	a := &Agent{log: hclog.NewNullLogger(), dirs: paths.Dirs{Data: dir}, containers: map[string]*Container{}}
	c := &Container{ID: id, HostConfig: &container.HostConfig{}, changed: make(chan struct{})}
	c.State.Status = "exited"
	a.containers[id] = c
	if err := os.MkdirAll(a.bundle(id), 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink(src, filepath.Join(a.bundle(id), shim.LogFile)); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		if err := a.getLogs(w, r); err != nil {
			b.Error(err)
		}
	})
	return a, httptest.NewServer(mux)
}

// BenchmarkLogs reads a whole log over HTTP, as `moss logs` does.
func BenchmarkLogs(b *testing.B) {
	src, size := benchLog(b, b.TempDir())
	_, srv := newLogsAgent(b, src)
	defer srv.Close()
	_ = size
	b.ResetTimer()
	var out int64
	for i := 0; i < b.N; i++ {
		resp, err := http.Get(srv.URL + "/containers/" + fmt.Sprintf("%064d", 1) + "/logs?stdout=1&stderr=1")
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out += n
	}
	// MB/s of output, as README's measurement
	b.ReportMetric(float64(out)/1e6/b.Elapsed().Seconds(), "outMB/s")
}
