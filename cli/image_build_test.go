package cli

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

var fixedTime = time.Unix(1700000000, 0)

// tarEntry is what the tests check of an entry of a context tar.
type tarEntry struct {
	name     string
	typeflag byte
	mode     int64
	link     string
	data     string
}

func readTar(t *testing.T, b []byte) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read the context tar: %v", err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d (%q:%q), want 0:0", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		data, _ := io.ReadAll(tr)
		out = append(out, tarEntry{name: h.Name, typeflag: h.Typeflag, mode: h.Mode & 0o7777, link: h.Linkname, data: string(data)})
	}
}

// writeTree creates files under dir: a value "->x" is a symlink to x.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// buildAgent answers POST /build with stream, checking the content type.
func buildAgent(t *testing.T, stream string) *fakeAgent {
	f := newFakeAgent(t)
	f.handle("POST /build", func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "application/x-tar" {
			t.Errorf("Content-Type %q", ct)
		}
		io.WriteString(w, stream)
	})
	return f
}

const okStream = `{"stream":"Step 1/1 : FROM scratch\n"}
{"stream":" ---\u003e abc123\n"}
{"aux":{"ID":"sha256:abc123"}}
{"stream":"Successfully built abc123\n"}
{"stream":"Successfully tagged x:latest\n"}
`

func TestBuildContextTar(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY . /\n",
		// Dockerfile and .dockerignore are sent all the same; *.log is
		// only at the top; secret/ goes but for what ! brings back.
		".dockerignore": "# comment\n*.log\nDockerfile\n.dockerignore\nsecret/\n!secret/keep\n",
		"app.sh":        "echo hi\n",
		"debug.log":     "x",
		"link":          "->app.sh",
		"dangling":      "->nowhere",
		"secret/key":    "k",
		"secret/keep":   "kept",
		"sub/a.log":     "deep",
	})
	os.Chmod(filepath.Join(dir, "app.sh"), 0o751)
	os.Chmod(filepath.Join(dir, "sub"), 0o750)
	if err := os.Link(filepath.Join(dir, "app.sh"), filepath.Join(dir, "app2.sh")); err != nil {
		t.Fatal(err)
	}
	f := buildAgent(t, okStream)
	r := moss("", "build", "-t", "x", dir)
	wantOut := `^Sending build context to Docker daemon +[0-9.]+kB
Step 1/1 : FROM scratch
 ---> abc123
Successfully built abc123
Successfully tagged x:latest
$`
	if r.code != 0 || !regexp.MustCompile(wantOut).MatchString(r.stdout) {
		t.Fatalf("exit %d stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr)
	}
	req, ok := f.find("POST", "/build")
	if !ok {
		t.Fatalf("no build request: %v", f.calls())
	}
	wantQuery := map[string][]string{"t": {"x"}, "dockerfile": {"Dockerfile"}, "version": {"1"}}
	if !reflect.DeepEqual(req.Query, wantQuery) {
		t.Errorf("query %v, want %v", req.Query, wantQuery)
	}
	want := []tarEntry{
		{name: ".dockerignore", typeflag: tar.TypeReg, mode: 0o644, data: "# comment\n*.log\nDockerfile\n.dockerignore\nsecret/\n!secret/keep\n"},
		{name: "Dockerfile", typeflag: tar.TypeReg, mode: 0o644, data: "FROM scratch\nCOPY . /\n"},
		{name: "app.sh", typeflag: tar.TypeReg, mode: 0o751, data: "echo hi\n"},
		{name: "app2.sh", typeflag: tar.TypeLink, mode: 0o751, link: "app.sh"},
		{name: "dangling", typeflag: tar.TypeSymlink, mode: 0o777, link: "nowhere"},
		{name: "link", typeflag: tar.TypeSymlink, mode: 0o777, link: "app.sh"},
		{name: "secret/keep", typeflag: tar.TypeReg, mode: 0o644, data: "kept"},
		{name: "sub/", typeflag: tar.TypeDir, mode: 0o750},
		{name: "sub/a.log", typeflag: tar.TypeReg, mode: 0o644, data: "deep"},
	}
	if got := readTar(t, req.Body); !reflect.DeepEqual(got, want) {
		t.Errorf("context tar:\n%+v\nwant:\n%+v", got, want)
	}
}

func TestBuildRequest(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\n"})
	t.Setenv("MOSS_TEST_ARG", "from env")
	t.Setenv("MOSS_UNSET_ARG", "")
	os.Unsetenv("MOSS_UNSET_ARG")
	f := buildAgent(t, `{"aux":{"ID":"sha256:abc123"}}`+"\n"+`{"stream":"sha256:abc123\n"}`+"\n")
	iid := filepath.Join(dir, "iid")
	os.WriteFile(iid, []byte("stale"), 0o644)
	r := moss("", "build", "-q", "-t", "x", "--tag", "reg:5000/y/z:2", "--target", "stage",
		"--build-arg", "A=1", "--build-arg", "MOSS_TEST_ARG", "--build-arg", "MOSS_UNSET_ARG", "--build-arg", "E=",
		"--label", "a=1", "--label", "b", "--no-cache", "--pull", "--network", "host", "--platform", "Linux/ARM64",
		"--rm=false", "--force-rm", "--iidfile", iid, dir)
	if r.code != 0 || r.stdout != "sha256:abc123\n" || r.stderr != "" {
		t.Fatalf("%+v", r)
	}
	req, _ := f.find("POST", "/build")
	want := map[string][]string{
		"t": {"x", "reg:5000/y/z:2"}, "dockerfile": {"Dockerfile"}, "target": {"stage"},
		"buildargs": {`{"A":"1","E":"","MOSS_TEST_ARG":"from env","MOSS_UNSET_ARG":null}`},
		"labels":    {`{"a":"1","b":""}`},
		"nocache":   {"1"}, "pull": {"1"}, "q": {"1"}, "networkmode": {"host"}, "platform": {"linux/arm64"},
		"rm": {"0"}, "forcerm": {"1"}, "version": {"1"},
	}
	if !reflect.DeepEqual(req.Query, want) {
		t.Errorf("query:\n%v\nwant:\n%v", req.Query, want)
	}
	if data, _ := os.ReadFile(iid); string(data) != "sha256:abc123" {
		t.Errorf("iidfile %q", data)
	}
	// --network default is docker's default: not sent.
	if r := moss("", "build", "--network", "default", dir); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if reqs := f.requests(); reqs[len(reqs)-1].Query["networkmode"] != nil {
		t.Errorf("networkmode sent: %v", reqs[len(reqs)-1].Query)
	}
}

func TestBuildDockerfileElsewhere(t *testing.T) {
	top := t.TempDir()
	ctx := filepath.Join(top, "ctx")
	writeTree(t, top, map[string]string{
		"Dockerfile.out":        "FROM outside\n",
		"ctx/Dockerfile":        "FROM inside\n",
		"ctx/sub/Dockerfile.in": "FROM sub\n",
		"ctx/ignored/Df":        "FROM ignored\n",
		"ctx/ignored/other":     "x",
		"ctx/file":              "f",
	})
	f := buildAgent(t, okStream)
	last := func() request {
		reqs := f.requests()
		return reqs[len(reqs)-1]
	}
	generated := regexp.MustCompile(`^\.dockerfile\.[0-9a-f]{20}$`)

	// Outside the context: added under a generated name, which
	// .dockerignore (made up here) hides from COPY.
	if r := moss("", "build", "-f", filepath.Join(top, "Dockerfile.out"), ctx); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	req := last()
	name := req.Query["dockerfile"][0]
	if !generated.MatchString(name) {
		t.Fatalf("dockerfile=%q", name)
	}
	ents := readTar(t, req.Body)
	n := len(ents)
	if n < 2 || ents[n-2].name != ".dockerignore" || ents[n-2].data != ".dockerignore\n"+name+"\n" || ents[n-2].mode != 0o600 ||
		ents[n-1].name != name || ents[n-1].data != "FROM outside\n" || ents[n-1].mode != 0o600 {
		t.Fatalf("context tar %+v", ents)
	}
	if ents[0].name != "Dockerfile" {
		t.Errorf("the context's own files are sent: %+v", ents)
	}

	// In a subdirectory: its path in the context.
	if r := moss("", "build", "-f", filepath.Join(ctx, "sub", "Dockerfile.in"), ctx); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if req := last(); req.Query["dockerfile"][0] != "sub/Dockerfile.in" {
		t.Errorf("query %v", req.Query)
	}

	// In an ignored directory: sent all the same, alone of it.
	writeTree(t, ctx, map[string]string{".dockerignore": "ignored\n"})
	if r := moss("", "build", "-f", filepath.Join(ctx, "ignored", "Df"), ctx); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	var names []string
	for _, e := range readTar(t, last().Body) {
		names = append(names, e.name)
	}
	if want := []string{".dockerignore", "Dockerfile", "file", "ignored/Df", "sub/", "sub/Dockerfile.in"}; !reflect.DeepEqual(names, want) {
		t.Errorf("entries %v, want %v", names, want)
	}
	if q := last().Query["dockerfile"]; q[0] != "ignored/Df" {
		t.Errorf("dockerfile=%v", q)
	}

	// From stdin with a directory context: an existing .dockerignore
	// gets the generated name appended.
	if r := moss("FROM stdin\n", "build", "-f", "-", ctx); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	req = last()
	name = req.Query["dockerfile"][0]
	ents = readTar(t, req.Body)
	if !generated.MatchString(name) || ents[0].name != ".dockerignore" || ents[0].data != "ignored\n\n"+name+"\n" ||
		ents[len(ents)-1].name != name || ents[len(ents)-1].data != "FROM stdin\n" {
		t.Fatalf("dockerfile=%q tar %+v", name, ents)
	}
}

func TestBuildStdinContext(t *testing.T) {
	f := buildAgent(t, okStream)
	last := func() request {
		reqs := f.requests()
		return reqs[len(reqs)-1]
	}
	// A Dockerfile alone.
	if r := moss("FROM scratch\n", "build", "-"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	req := last()
	want := []tarEntry{{name: "Dockerfile", typeflag: tar.TypeReg, mode: 0o644, data: "FROM scratch\n"}}
	if got := readTar(t, req.Body); !reflect.DeepEqual(got, want) || req.Query["dockerfile"][0] != "Dockerfile" {
		t.Fatalf("tar %+v query %v", got, req.Query)
	}
	// A tar archive, sent as it is.
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	writeFileEntry(tw, "sub/Df", 0o644, fixedTime, []byte("FROM scratch\n"))
	tw.Close()
	if r := moss(b.String(), "build", "-f", "sub/Df", "-"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if req := last(); !bytes.Equal(req.Body, b.Bytes()) || req.Query["dockerfile"][0] != "sub/Df" {
		t.Fatalf("body %d bytes, query %v", len(req.Body), req.Query)
	}
	// A gzip-compressed archive, too.
	gz := "\x1f\x8b\x08\x00rest"
	if r := moss(gz, "build", "-"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if req := last(); string(req.Body) != gz || req.Query["dockerfile"] != nil {
		t.Fatalf("body %q, query %v", req.Body, req.Query)
	}
	if r := moss("FROM scratch\n", "build", "-f", "Df", "-"); r.code != 1 ||
		r.stderr != "moss: unable to prepare context: ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles\n" {
		t.Fatalf("%+v", r)
	}
}

func TestBuildBadInput(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"ctx/Dockerfile": "FROM scratch\n", "empty/.keep": "", "file": "x",
		"badignore/Dockerfile": "FROM scratch\n", "badignore/.dockerignore": "[\n"})
	ctx := filepath.Join(dir, "ctx")
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no path", []string{"build"}, 1, `"moss build" requires exactly 1 argument.`},
		{"two paths", []string{"build", ctx, ctx}, 1, `"moss build" requires exactly 1 argument.`},
		{"missing path", []string{"build", filepath.Join(dir, "nope")}, 1, `moss: unable to prepare context: path "` + filepath.Join(dir, "nope") + `" not found` + "\n"},
		{"url", []string{"build", "https://example.com/ctx.tar"}, 1, "moss: unable to prepare context: remote build contexts (URLs and git repositories) are not supported: https://example.com/ctx.tar\n"},
		{"not a directory", []string{"build", filepath.Join(dir, "file")}, 1, "moss: unable to prepare context: context must be a directory: " + filepath.Join(dir, "file") + "\n"},
		{"no Dockerfile", []string{"build", filepath.Join(dir, "empty")}, 1, "moss: unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat " + filepath.Join(dir, "empty", "Dockerfile") + ": no such file or directory\n"},
		{"missing -f", []string{"build", "-f", filepath.Join(dir, "Nope"), ctx}, 1, "moss: unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat " + filepath.Join(dir, "Nope") + ": no such file or directory\n"},
		{"stdin twice", []string{"build", "-f", "-", "-"}, 1, "moss: invalid argument: can't use stdin for both build context and dockerfile\n"},
		{"bad pattern", []string{"build", filepath.Join(dir, "badignore")}, 1, "moss: error checking context: syntax error in pattern\n"},
		{"upper-case tag", []string{"build", "-t", "Foo", ctx}, 125, `moss: invalid argument "Foo" for "-t, --tag" flag: invalid reference format: repository name must be lowercase` + "\nSee 'moss build --help'.\n"},
		{"bad tag", []string{"build", "-t", "a:b:c", ctx}, 125, `invalid argument "a:b:c" for "-t, --tag" flag: invalid reference format`},
		{"bad build-arg", []string{"build", "--build-arg", "=x", ctx}, 125, `moss: invalid argument "=x" for "--build-arg" flag: invalid environment variable: =x` + "\n"},
		{"bad label", []string{"build", "--label", "=x", ctx}, 125, `moss: invalid argument "=x" for "--label" flag: invalid label '=x': empty name` + "\n"},
		{"unknown flag", []string{"build", "--squash", ctx}, 125, "moss: unknown flag: --squash\n"},
	}
	f := buildAgent(t, okStream)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := moss("", tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) || r.stdout != "" {
				t.Fatalf("exit %d stdout %q stderr:\n%s\nwant exit %d stderr:\n%s", r.code, r.stdout, r.stderr, tc.code, tc.stderr)
			}
		})
	}
	if _, ok := f.find("POST", "/build"); ok {
		t.Fatalf("bad input reached the agent: %v", f.calls())
	}
}

func TestBuildUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\n", "secret": "s", "ignored": "i", ".dockerignore": "ignored\n"})
	os.Chmod(filepath.Join(dir, "secret"), 0)
	os.Chmod(filepath.Join(dir, "ignored"), 0)
	buildAgent(t, okStream)
	r := moss("", "build", dir)
	if r.code != 1 || r.stderr != "moss: error checking context: no permission to read from '"+filepath.Join(dir, "secret")+"'\n" {
		t.Fatalf("%+v", r)
	}
}

func TestBuildFailure(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN false\n"})
	steps := `{"stream":"Step 1/2 : FROM busybox\n"}
{"stream":" ---\u003e abc123\n"}
{"stream":"Step 2/2 : RUN false\n"}
{"stream":" ---\u003e Running in 0123456789ab\n"}
`
	cases := []struct {
		name, tail string
		args       []string
		code       int
		stdout     string
		stderr     string
	}{
		{name: "run fails", tail: `{"errorDetail":{"code":1,"message":"The command '/bin/sh -c false' returned a non-zero code: 1"},"error":"The command '/bin/sh -c false' returned a non-zero code: 1"}`,
			code: 1, stdout: "Step 1/2 : FROM busybox\n ---> abc123\nStep 2/2 : RUN false\n ---> Running in 0123456789ab\n",
			stderr: "moss: The command '/bin/sh -c false' returned a non-zero code: 1\n"},
		{name: "exit status", tail: `{"errorDetail":{"code":3,"message":"The command '/bin/sh -c exit 3' returned a non-zero code: 3"},"error":"The command '/bin/sh -c exit 3' returned a non-zero code: 3"}`,
			code: 3, stderr: "moss: The command '/bin/sh -c exit 3' returned a non-zero code: 3\n"},
		{name: "no code", tail: `{"errorDetail":{"message":"Dockerfile parse error line 3: unknown instruction: FORM"},"error":"Dockerfile parse error line 3: unknown instruction: FORM"}`,
			code: 1, stderr: "moss: Dockerfile parse error line 3: unknown instruction: FORM\n"},
		{name: "error only", tail: `{"error":"COPY failed: file not found in build context: nope"}`,
			code: 1, stderr: "moss: COPY failed: file not found in build context: nope\n"},
		{name: "quiet", args: []string{"-q"}, tail: `{"errorDetail":{"code":1,"message":"boom"},"error":"boom"}`,
			code: 1, stdout: "", stderr: "Step 1/2 : FROM busybox\n ---> abc123\nStep 2/2 : RUN false\n ---> Running in 0123456789ab\nmoss: boom\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			iid := filepath.Join(dir, "iid")
			os.WriteFile(iid, []byte("stale"), 0o644)
			buildAgent(t, steps+tc.tail+"\n")
			r := moss("", append(append([]string{"build", "--iidfile", iid}, tc.args...), dir)...)
			stdout := regexp.MustCompile(`^Sending build context to Docker daemon +\S+\n`).ReplaceAllString(r.stdout, "")
			stderr := regexp.MustCompile(`^Sending build context to Docker daemon +\S+\n`).ReplaceAllString(r.stderr, "")
			quiet := tc.args != nil
			if r.code != tc.code || !strings.HasSuffix(stderr, tc.stderr) ||
				tc.stdout != "" && stdout != tc.stdout || quiet && (r.stdout != "" || stderr != tc.stderr) {
				t.Fatalf("exit %d stdout:\n%s\nstderr:\n%s\nwant exit %d stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
			if _, err := os.Stat(iid); !os.IsNotExist(err) {
				t.Errorf("the stale iidfile is left: %v", err)
			}
		})
	}
	// An error answer before the stream is the daemon's.
	f := newFakeAgent(t)
	f.json("POST /build", http.StatusInternalServerError, apiErr("the build failed to start"))
	if r := moss("", "build", dir); r.code != 1 || r.stderr != "Error response from daemon: the build failed to start\n" {
		t.Fatalf("%+v", r)
	}
	// No aux message: no ID for --iidfile.
	buildAgent(t, `{"stream":"Successfully built abc123\n"}`+"\n")
	iid := filepath.Join(dir, "iid")
	if r := moss("", "build", "--iidfile", iid, dir); r.code != 1 || !strings.Contains(r.stderr, "Server did not provide an image ID. Cannot write "+iid) {
		t.Fatalf("%+v", r)
	}
}

func TestBuildArgs(t *testing.T) {
	t.Setenv("MOSS_TEST_SET", "v=1")
	t.Setenv("MOSS_TEST_EMPTY", "")
	t.Setenv("MOSS_TEST_UNSET", "")
	os.Unsetenv("MOSS_TEST_UNSET")
	for in, want := range map[string]string{
		"A=1": "A=1", "A=": "A=", "A==b": "A==b", "MOSS_TEST_SET": "MOSS_TEST_SET=v=1",
		"MOSS_TEST_EMPTY": "MOSS_TEST_EMPTY=", "MOSS_TEST_UNSET": "MOSS_TEST_UNSET",
	} {
		if got, err := validateBuildArg(in); err != nil || got != want {
			t.Errorf("validateBuildArg(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "=", "=x"} {
		if _, err := validateBuildArg(bad); err == nil {
			t.Errorf("validateBuildArg(%q) accepted", bad)
		}
	}
	one := "1"
	empty := ""
	got := buildArgMap([]string{"A=1", "B=", "C", "A=1"})
	if want := map[string]*string{"A": &one, "B": &empty, "C": nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("buildArgMap = %v", got)
	}
}

func TestWriteContextTarVanishedFile(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\n", "gone": "soon"})
	entries, err := walkContext(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "gone"))
	err = writeContextTar(io.Discard, entries, nil)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "gone")) {
		t.Fatalf("err = %v", err)
	}
}
