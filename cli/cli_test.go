package cli

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain doubles as a fake agent: when the CLI under test auto-starts
// "<test binary> agent", the helper serves a minimal API on the socket.
func TestMain(m *testing.M) {
	if sock := os.Getenv("MOSS_CLI_TEST_AGENT"); sock != "" {
		os.Exit(helperAgent(sock))
	}
	os.Exit(m.Run())
}

// helperAgent answers /_ping and /info on sock until it has been idle for
// a while; it records its PID next to the socket so the test can stop it.
func helperAgent(sock string) int {
	if err := os.WriteFile(sock+".pid", []byte(fmt.Sprint(os.Getpid())), 0o600); err != nil {
		return 1
	}
	time.Sleep(30 * time.Millisecond) // the CLI polls until the socket appears
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "OK") })
	mux.HandleFunc("GET /v1.43/info", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"Warnings":["single-ID mapping"]}`)
	})
	mux.HandleFunc("GET /v1.43/containers/json", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `[]`) })
	go func() { _ = http.Serve(l, mux) }()
	time.Sleep(20 * time.Second)
	return 0
}

// request is one request the fake agent received.
type request struct {
	Method, Path string // Path without the version prefix
	Query        map[string][]string
	Body         []byte
}

// fakeAgent is an HTTP server on a unix socket that records requests and
// answers with per-route handlers.
type fakeAgent struct {
	t    *testing.T
	sock string
	dir  string
	mux  *http.ServeMux
	mu   sync.Mutex
	reqs []request
	// handlers by pattern: a test may replace one.
	handlers map[string]http.HandlerFunc
}

var versionRe = regexp.MustCompile(`^/v[0-9.]+/`)

// newFakeAgent serves on <MOSS_RUNTIME_DIR>/moss.sock, the socket the CLI
// finds by default, so no auto-start happens.
func newFakeAgent(t *testing.T) *fakeAgent {
	t.Helper()
	dir := shortTempDir(t)
	t.Setenv("MOSS_RUNTIME_DIR", dir)
	t.Setenv("MOSS_DATA_DIR", filepath.Join(dir, "data"))
	t.Setenv("MOSS_HOST", "")
	f := &fakeAgent{t: t, dir: dir, sock: filepath.Join(dir, "moss.sock"), mux: http.NewServeMux()}
	l, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	f.handle("GET /_ping", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "OK") })
	f.handle("GET /info", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{}`) })
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_ping" {
			body, _ := io.ReadAll(r.Body)
			path := versionRe.ReplaceAllString(r.URL.Path, "/")
			f.mu.Lock()
			f.reqs = append(f.reqs, request{Method: r.Method, Path: path, Query: r.URL.Query(), Body: body})
			f.mu.Unlock()
			r.URL.Path = path
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		f.mux.ServeHTTP(w, r)
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return f
}

// shortTempDir is a temporary directory whose socket paths fit the 108
// bytes of sun_path.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mosscli")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// handle sets the handler of pattern, replacing an earlier one.
func (f *fakeAgent) handle(pattern string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handlers == nil {
		f.handlers = map[string]http.HandlerFunc{}
	}
	if _, ok := f.handlers[pattern]; !ok {
		f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			h := f.handlers[pattern]
			f.mu.Unlock()
			h(w, r)
		})
	}
	f.handlers[pattern] = h
}

// json answers v with status code.
func (f *fakeAgent) json(pattern string, code int, v interface{}) {
	f.handle(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	})
}

func (f *fakeAgent) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

// find returns the first recorded request to method and path.
func (f *fakeAgent) find(method, path string) (request, bool) {
	for _, r := range f.requests() {
		if r.Method == method && r.Path == path {
			return r, true
		}
	}
	return request{}, false
}

// calls lists "METHOD /path" of every recorded request.
func (f *fakeAgent) calls() []string {
	var out []string
	for _, r := range f.requests() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

type result struct {
	code           int
	stdout, stderr string
}

// moss runs the CLI in-process with args and stdin.
func moss(stdin string, args ...string) result {
	var out, errb bytes.Buffer
	a := &app{out: &out, errw: &errb, in: strings.NewReader(stdin)}
	code := a.main(args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func apiErr(msg string) map[string]string { return map[string]string{"message": msg} }

func frame(stream byte, s string) []byte {
	h := make([]byte, 8)
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
	return append(h, s...)
}
