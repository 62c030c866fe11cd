package cli

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// defaultDockerfile is the Dockerfile's name in the context when -f is not
// given.
const defaultDockerfile = "Dockerfile"

// buildOptions are the flags of build: those of docker's legacy builder
// that Moss executes.
type buildOptions struct {
	tags, buildArgs, labels    listOpt
	file, target, network      string
	platform, iidfile          string
	noCache, pull, quiet       bool
	rm, forceRm                bool
	contextDir, dockerfileName string // set by prepare
}

// addBuildCommands registers build at the top level and under `moss image`
// (registered before by addImageCommands).
func (a *app) addBuildCommands(root *cobra.Command) {
	root.AddCommand(a.buildCmd())
	for _, c := range root.Commands() {
		if c.Name() == "image" {
			c.AddCommand(a.buildCmd())
		}
	}
}

func (a *app) buildCmd() *cobra.Command {
	o := &buildOptions{
		tags:      listOpt{validate: validateTag},
		buildArgs: listOpt{validate: validateBuildArg},
		labels:    listOpt{validate: validateLabel},
	}
	c := &cobra.Command{
		Use:   "build [OPTIONS] PATH | -",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.build(o, args[0])
		},
	}
	f := c.Flags()
	f.VarP(&o.tags, "tag", "t", `Name and optionally a tag in the "name:tag" format`)
	f.StringVarP(&o.file, "file", "f", "", `Name of the Dockerfile (Default is "PATH/Dockerfile")`)
	f.StringVar(&o.target, "target", "", "Set the target build stage to build.")
	f.Var(&o.buildArgs, "build-arg", "Set build-time variables")
	f.Var(&o.labels, "label", "Set metadata for an image")
	f.BoolVar(&o.noCache, "no-cache", false, "Do not use cache when building the image")
	f.BoolVar(&o.pull, "pull", false, "Always attempt to pull a newer version of the image")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the build output and print image ID on success")
	f.StringVar(&o.network, "network", "default", "Set the networking mode for the RUN instructions during build")
	f.StringVar(&o.platform, "platform", "", "Set platform if server is multi-platform capable")
	f.StringVar(&o.iidfile, "iidfile", "", "Write the image ID to the file")
	f.BoolVar(&o.rm, "rm", true, "Remove intermediate containers after a successful build")
	f.BoolVar(&o.forceRm, "force-rm", false, "Always remove intermediate containers")
	return c
}

// validateTag is docker's: a reference the daemon can resolve, kept as
// written.
func validateTag(v string) (string, error) {
	if err := checkReference(v); err != nil {
		return "", err
	}
	return v, nil
}

// validateBuildArg is docker's ValidateEnv: KEY=VALUE as it is, KEY alone
// takes its value from the environment when set there (else it stays KEY
// and is sent as null: the Dockerfile's default applies).
func validateBuildArg(v string) (string, error) {
	k, _, hasValue := strings.Cut(v, "=")
	if k == "" {
		return "", fmt.Errorf("invalid environment variable: %s", v)
	}
	if !hasValue {
		if env, ok := os.LookupEnv(k); ok {
			return k + "=" + env, nil
		}
	}
	return v, nil
}

// buildArgMap turns the build args into the API's buildargs: KEY alone is
// null.
func buildArgMap(list []string) map[string]*string {
	m := map[string]*string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			m[k] = nil
			continue
		}
		m[k] = &v
	}
	return m
}

// buildQuery is the query of POST /build, as docker's client sends it:
// defaults are left out.
func (o *buildOptions) buildQuery() (url.Values, error) {
	q := url.Values{}
	if len(o.tags.vals) > 0 {
		q["t"] = o.tags.vals
	}
	if o.dockerfileName != "" {
		q.Set("dockerfile", o.dockerfileName)
	}
	if o.target != "" {
		q.Set("target", o.target)
	}
	if len(o.buildArgs.vals) > 0 {
		b, err := json.Marshal(buildArgMap(o.buildArgs.vals))
		if err != nil {
			return nil, err
		}
		q.Set("buildargs", string(b))
	}
	if len(o.labels.vals) > 0 {
		b, err := json.Marshal(labelMap(o.labels.vals))
		if err != nil {
			return nil, err
		}
		q.Set("labels", string(b))
	}
	if o.noCache {
		q.Set("nocache", "1")
	}
	if o.pull {
		q.Set("pull", "1")
	}
	if o.quiet {
		q.Set("q", "1")
	}
	if !o.rm {
		q.Set("rm", "0")
	}
	if o.forceRm {
		q.Set("forcerm", "1")
	}
	if o.network != "" && o.network != "default" {
		q.Set("networkmode", o.network)
	}
	if o.platform != "" {
		q.Set("platform", strings.ToLower(o.platform))
	}
	q.Set("version", "1") // the legacy builder
	return q, nil
}

// failf is an error of build before or after the request: docker exits 1.
func failf(format string, args ...interface{}) error {
	return &statusError{code: exitFailure, msg: "moss: " + fmt.Sprintf(format, args...)}
}

func (a *app) build(o *buildOptions, contextArg string) error {
	if o.file == "-" && contextArg == "-" {
		return failf("invalid argument: can't use stdin for both build context and dockerfile")
	}
	if o.iidfile != "" {
		// No stale ID is left behind should the build fail.
		if err := os.Remove(o.iidfile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return failf("Removing image ID file: %v", err)
		}
	}
	body, err := a.buildContext(o, contextArg)
	if err != nil {
		return err
	}
	defer body.Close()
	q, err := o.buildQuery()
	if err != nil {
		return err
	}
	cl, err := a.client()
	if err != nil {
		return err
	}

	// In quiet mode the output is kept to be shown should the build fail.
	var quietBuf bytes.Buffer
	out := &lockedWriter{w: a.out}
	if o.quiet {
		out.w = &quietBuf
	}
	sent := &countingReader{r: body, done: func(n int64) {
		fmt.Fprintf(out, "Sending build context to Docker daemon %8v\n", units.HumanSize(float64(n)))
	}}
	resp, err := cl.do(context.Background(), http.MethodPost, "/build", q, sent, "application/x-tar")
	if err != nil {
		if cerr := body.err(); cerr != nil {
			return failf("send the build context: %v", cerr)
		}
		return err
	}
	defer resp.Body.Close()
	id, err := buildMessages(resp.Body, out)
	if cerr := body.err(); cerr != nil {
		return failf("send the build context: %v", cerr)
	}
	if o.quiet {
		out.mu.Lock()
		kept := quietBuf.Bytes()
		switch {
		case err != nil:
			a.errw.Write(kept)
		case id != "":
			fmt.Fprintln(a.out, id)
		default:
			a.out.Write(kept)
		}
		out.mu.Unlock()
	}
	if err != nil {
		return err
	}
	if o.iidfile != "" {
		if id == "" {
			return failf("Server did not provide an image ID. Cannot write %s", o.iidfile)
		}
		if err := os.WriteFile(o.iidfile, []byte(id), 0o666); err != nil {
			return failf("%v", err)
		}
	}
	return nil
}

// buildMessages prints the JSON message stream of a build and returns the
// image ID from its aux message. An error message ends the build with its
// code (a failed RUN's exit status), 1 when it has none, as docker.
func buildMessages(r io.Reader, w io.Writer) (string, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	id := ""
	for {
		var m struct {
			Stream      string          `json:"stream"`
			Status      string          `json:"status"`
			ID          string          `json:"id"`
			Aux         json.RawMessage `json:"aux"`
			Error       string          `json:"error"`
			ErrorDetail *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return id, nil
		} else if err != nil {
			return id, fmt.Errorf("read the agent's answer: %w", err)
		}
		if m.ErrorDetail != nil || m.Error != "" {
			code, msg := exitFailure, m.Error
			if m.ErrorDetail != nil {
				if m.ErrorDetail.Code != 0 {
					code = m.ErrorDetail.Code
				}
				if m.ErrorDetail.Message != "" {
					msg = m.ErrorDetail.Message
				}
			}
			return id, &statusError{code: code, msg: "moss: " + msg}
		}
		if len(m.Aux) > 0 {
			var res struct{ ID string }
			if err := json.Unmarshal(m.Aux, &res); err == nil && res.ID != "" {
				id = res.ID
			}
			continue
		}
		if m.Stream != "" {
			fmt.Fprint(w, m.Stream)
		}
		if m.Status != "" {
			if m.ID != "" {
				fmt.Fprintf(w, "%s: %s\n", m.ID, m.Status)
			} else {
				fmt.Fprintln(w, m.Status)
			}
		}
	}
}

// lockedWriter serializes the upload's last line and the build's output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// countingReader calls done with the byte count once r is at its end.
type countingReader struct {
	r    io.Reader
	n    int64
	done func(int64)
	once sync.Once
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF {
		c.once.Do(func() { c.done(c.n) })
	}
	return n, err
}

// contextBody is the request body: a tar stream written by a goroutine (a
// directory context) or read from stdin. Close stops the writer; err is its
// failure, which the request then fails with.
type contextBody struct {
	io.Reader
	pr   *io.PipeReader
	mu   sync.Mutex
	werr error
	wg   sync.WaitGroup
}

var errBuildDone = errors.New("the build request ended")

func (b *contextBody) Close() error {
	if b.pr != nil {
		b.pr.CloseWithError(errBuildDone)
		b.wg.Wait()
	}
	return nil
}

func (b *contextBody) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.werr
}

// buildContext prepares the context as docker does: stdin (a tar archive,
// or a Dockerfile alone) or a directory streamed as a tar, without what
// .dockerignore excludes. Errors are docker's "unable to prepare context".
func (a *app) buildContext(o *buildOptions, contextArg string) (*contextBody, error) {
	if contextArg == "-" {
		return a.stdinContext(o)
	}
	if _, err := os.Stat(contextArg); err != nil {
		if isRemoteContext(contextArg) {
			return nil, failf("unable to prepare context: remote build contexts (URLs and git repositories) are not supported: %s", contextArg)
		}
		return nil, failf("unable to prepare context: path %q not found", contextArg)
	}
	dir, err := contextDirectory(contextArg)
	if err != nil {
		return nil, failf("unable to prepare context: %v", err)
	}
	fromStdin := o.file == "-"
	var dockerfile []byte // the Dockerfile when it is not in the context
	rel := ""
	if fromStdin {
		if dockerfile, err = io.ReadAll(a.in); err != nil {
			return nil, failf("unable to prepare context: read the Dockerfile from stdin: %v", err)
		}
	} else {
		if rel, err = dockerfilePath(dir, o.file); err != nil {
			return nil, failf("unable to prepare context: %v", err)
		}
		if strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			if dockerfile, err = os.ReadFile(o.file); err != nil {
				return nil, failf("unable to open Dockerfile: %v", err)
			}
		}
		rel = filepath.ToSlash(rel)
	}
	excludes, err := readDockerignore(dir)
	if err != nil {
		return nil, failf("%v", err)
	}
	excludes = keepBuildFiles(excludes, rel, fromStdin)
	entries, err := walkContext(dir, excludes)
	if err != nil {
		return nil, failf("error checking context: %v", err)
	}
	var extra *extraFile
	o.dockerfileName = rel
	if dockerfile != nil {
		name, err := randomDockerfileName()
		if err != nil {
			return nil, failf("%v", err)
		}
		extra = &extraFile{name: name, data: dockerfile}
		o.dockerfileName = name
	}
	pr, pw := io.Pipe()
	b := &contextBody{Reader: pr, pr: pr}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		err := writeContextTar(pw, entries, extra)
		if err != nil && !errors.Is(err, errBuildDone) {
			b.mu.Lock()
			b.werr = err
			b.mu.Unlock()
		}
		pw.CloseWithError(err)
	}()
	return b, nil
}

// isRemoteContext tells whether a context that is no local path is one of
// docker's remote kinds (a URL, a git repository).
func isRemoteContext(s string) bool {
	for _, p := range []string{"http://", "https://", "git://", "git@", "github.com/"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// stdinContext reads the context from stdin: a tar archive (possibly
// compressed) is sent as it is, anything else is a Dockerfile, sent alone.
func (a *app) stdinContext(o *buildOptions) (*contextBody, error) {
	br := bufio.NewReaderSize(a.in, 1024)
	head, err := br.Peek(1024)
	if err != nil && err != io.EOF {
		return nil, failf("unable to prepare context: failed to peek context header from STDIN: %v", err)
	}
	if isArchive(head) {
		o.dockerfileName = o.file
		return &contextBody{Reader: br}, nil
	}
	if o.file != "" {
		return nil, failf("unable to prepare context: ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles")
	}
	data, err := io.ReadAll(br)
	if err != nil {
		return nil, failf("unable to prepare context: read the Dockerfile from stdin: %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := writeFileEntry(tw, defaultDockerfile, 0o644, time.Now(), data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	o.dockerfileName = defaultDockerfile
	return &contextBody{Reader: &buf}, nil
}

// isArchive tells whether header starts a tar archive or a compressed
// stream (gzip, bzip2, xz, zstd), which the agent unpacks.
func isArchive(header []byte) bool {
	for _, magic := range [][]byte{{0x1f, 0x8b, 0x08}, []byte("BZh"), {0xfd, '7', 'z', 'X', 'Z', 0x00}, {0x28, 0xb5, 0x2f, 0xfd}} {
		if bytes.HasPrefix(header, magic) {
			return true
		}
	}
	_, err := tar.NewReader(bytes.NewReader(header)).Next()
	return err == nil
}

// contextDirectory is the context's absolute path, symlinks resolved.
func contextDirectory(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("unable to get absolute context directory of given context directory %q: %v", dir, err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return "", fmt.Errorf("unable to evaluate symlinks in context path: %v", err)
	}
	st, err := os.Lstat(abs)
	if err != nil {
		return "", fmt.Errorf("unable to stat context directory %q: %v", abs, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("context must be a directory: %s", abs)
	}
	return abs, nil
}

// dockerfilePath is the Dockerfile's path relative to the context
// directory dir (with "../" when it is outside). A -f path is relative to
// the working directory, as docker's; without one it is dir/Dockerfile, or
// dir/dockerfile when only that exists.
func dockerfilePath(dir, file string) (string, error) {
	var abs string
	if file == "" {
		abs = filepath.Join(dir, defaultDockerfile)
		if _, err := os.Lstat(abs); errors.Is(err, fs.ErrNotExist) {
			alt := filepath.Join(dir, strings.ToLower(defaultDockerfile))
			if _, err := os.Lstat(alt); err == nil {
				abs = alt
			}
		}
	} else {
		var err error
		if abs, err = filepath.Abs(file); err != nil {
			return "", fmt.Errorf("unable to get absolute path to Dockerfile: %v", err)
		}
	}
	abs, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("unable to evaluate symlinks in Dockerfile path: %v", err)
	}
	if _, err := os.Lstat(abs); err != nil {
		return "", fmt.Errorf("unable to stat Dockerfile: %v", err)
	}
	rel, err := filepath.Rel(dir, abs)
	if err != nil {
		return "", fmt.Errorf("unable to get relative Dockerfile path: %v", err)
	}
	return rel, nil
}

// readDockerignore returns the patterns of dir/.dockerignore, none when it
// is missing.
func readDockerignore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return patterns, nil
}

// keepBuildFiles adds exceptions for .dockerignore and the Dockerfile when
// the patterns exclude them: docker sends both anyway (the agent leaves
// them out of what COPY sees). A Dockerfile from stdin is not in the
// context, so one there stays excluded.
func keepBuildFiles(excludes []string, dockerfile string, fromStdin bool) []string {
	if len(excludes) == 0 {
		return excludes
	}
	if ok, _ := patternmatcher.MatchesOrParentMatches(".dockerignore", excludes); ok {
		excludes = append(excludes, "!.dockerignore")
	}
	if dockerfile != "" && !fromStdin {
		if ok, _ := patternmatcher.MatchesOrParentMatches(dockerfile, excludes); ok {
			excludes = append(excludes, "!"+dockerfile)
		}
	}
	return excludes
}

// ctxEntry is one file of the context tar.
type ctxEntry struct {
	path string // on disk
	name string // in the tar: slash-separated, directories end in "/"
	fi   fs.FileInfo
	link string // a symlink's target
}

// walkContext lists the files of the context under dir that excludes do
// not exclude, in lexical order, and checks that each can be read, with
// docker's messages. Symlinks are kept as links, sockets left out.
func walkContext(dir string, excludes []string) ([]ctxEntry, error) {
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return nil, err
	}
	var entries []ctxEntry
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return fmt.Errorf("can't stat '%s'", p)
			}
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("file ('%s') not found or excluded by .dockerignore", p)
			}
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if len(excludes) > 0 {
			skip, err := pm.MatchesOrParentMatches(rel)
			if err != nil {
				return err
			}
			if skip {
				if !d.IsDir() {
					return nil
				}
				// An excluded directory is still walked when an exception
				// may bring back something in it (!dir/file); the
				// directory itself is left out.
				if pm.Exclusions() {
					prefix := rel + string(filepath.Separator)
					for _, pat := range pm.Patterns() {
						if pat.Exclusion() && strings.HasPrefix(pat.String()+string(filepath.Separator), prefix) {
							return nil
						}
					}
				}
				return filepath.SkipDir
			}
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			return err
		}
		e := ctxEntry{path: p, name: filepath.ToSlash(rel), fi: fi}
		switch mode := fi.Mode(); {
		case mode&fs.ModeSocket != 0:
			return nil
		case mode&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		case mode.IsDir():
			e.name += "/"
		case mode.IsRegular():
			if err := unix.Access(p, unix.R_OK); err != nil {
				return fmt.Errorf("no permission to read from '%s'", p)
			}
		}
		entries = append(entries, e)
		return nil
	})
	return entries, err
}

// extraFile is a Dockerfile from outside the context (or stdin), added to
// the tar under a generated name as docker does.
type extraFile struct {
	name string
	data []byte
}

func randomDockerfileName() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return ".dockerfile." + hex.EncodeToString(b), nil
}

// noNames keeps tar.FileInfoHeader from looking up user and group names:
// the entries belong to root, as docker's build contexts.
type noNames struct{ fs.FileInfo }

func (noNames) Uname() (string, error) { return "", nil }
func (noNames) Gname() (string, error) { return "", nil }

// writeContextTar writes entries as a tar to w, as docker's archive
// package: owner 0:0, modes and mtimes (to the second) kept, hard links as
// links, security.capability kept. An extra Dockerfile goes at the end,
// and into .dockerignore so that COPY does not see it.
func writeContextTar(w io.Writer, entries []ctxEntry, extra *extraFile) error {
	tw := tar.NewWriter(w)
	seen := map[[2]uint64]string{} // hard links: device and inode → first name
	wroteIgnore := false
	for _, e := range entries {
		hdr, err := tar.FileInfoHeader(noNames{e.fi}, e.link)
		if err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
		hdr.Name = e.name
		hdr.Format = tar.FormatPAX
		hdr.ModTime = hdr.ModTime.Truncate(time.Second)
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if st, ok := e.fi.Sys().(*syscall.Stat_t); ok && hdr.Typeflag == tar.TypeReg && st.Nlink > 1 {
			key := [2]uint64{uint64(st.Dev), st.Ino}
			if first, ok := seen[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				seen[key] = e.name
			}
		}
		if hdr.Typeflag != tar.TypeSymlink {
			if c := securityCapability(e.path); c != nil {
				hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(c)}
			}
		}
		if extra != nil && e.name == ".dockerignore" && hdr.Typeflag == tar.TypeReg {
			data, err := os.ReadFile(e.path)
			if err != nil {
				return err
			}
			data = append(data, "\n"+extra.name+"\n"...)
			hdr.Size = int64(len(data))
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if _, err := tw.Write(data); err != nil {
				return err
			}
			wroteIgnore = true
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			if err := copyFile(tw, e.path); err != nil {
				return err
			}
		}
	}
	if extra != nil {
		now := time.Now()
		if !wroteIgnore {
			if err := writeFileEntry(tw, ".dockerignore", 0o600, now, []byte(".dockerignore\n"+extra.name+"\n")); err != nil {
				return err
			}
		}
		if err := writeFileEntry(tw, extra.name, 0o600, now, extra.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func writeFileEntry(tw *tar.Writer, name string, mode int64, mtime time.Time, data []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)),
		ModTime: mtime.Truncate(time.Second), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// securityCapability is the file's security.capability attribute (file
// capabilities), which docker's archives carry; nil without one.
func securityCapability(path string) []byte {
	buf := make([]byte, 128)
	n, err := unix.Lgetxattr(path, "security.capability", buf)
	if err != nil || n <= 0 {
		return nil
	}
	return buf[:n]
}
