package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
	"github.com/moby/sys/user"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
	"go.podman.io/storage/pkg/idtools"
)

// copySpec is a COPY or ADD.
type copySpec struct {
	sources  []string
	contents []instructions.SourceContent // heredocs
	dest     string
	from     string
	chown    string
	chmod    string
	excludes []string
	add      bool
}

// source is one file tree a COPY takes: Path is absolute on the host,
// Rel its name relative to its root (for the cache digest), Dir whether
// its content (not itself) is copied.
type source struct {
	path, rel string
	dir       bool
	url       string // ADD URL
	data      *instructions.SourceContent
}

func (bl *builder) copy(ctx context.Context, st *stageState, cfg Config, c copySpec) error {
	what := "COPY"
	if c.add {
		what = "ADD"
	}
	root, ignore := bl.o.ContextDir, bl.ignore
	if c.from != "" {
		if c.add {
			return invalid("ADD has no --from")
		}
		img, err := bl.fromImage(ctx, c.from)
		if err != nil {
			return err
		}
		r, release, err := bl.b.Root(ctx, img)
		if err != nil {
			return err
		}
		defer release()
		root, ignore = r, nil
	}
	var excl *patternmatcher.PatternMatcher
	if len(c.excludes) > 0 {
		var err error
		if excl, err = patternmatcher.New(c.excludes); err != nil {
			return invalid("%s --exclude: %v", what, err)
		}
	}
	var srcs []source
	for _, s := range c.sources {
		if c.add && (strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")) {
			srcs = append(srcs, source{url: s})
			continue
		}
		found, err := glob(root, s, ignore, excl)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return invalid("%s failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", what, s)
		}
		srcs = append(srcs, found...)
	}
	for i := range c.contents {
		srcs = append(srcs, source{rel: c.contents[i].Path, data: &c.contents[i]})
	}
	if len(srcs) == 0 {
		return invalid("%s failed: no source files were specified", what)
	}
	dest := c.dest
	if !path.IsAbs(dest) {
		dest = path.Join("/", cfg.WorkingDir, dest) + trailingSlash(dest)
	}
	intoDir := strings.HasSuffix(dest, "/") || len(srcs) > 1 || strings.HasSuffix(c.dest, "/.") || c.dest == "."
	var mode *os.FileMode
	if c.chmod != "" {
		m, err := strconv.ParseUint(c.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return invalid("%s --chmod=%s: want an octal mode", what, c.chmod)
		}
		fm := os.FileMode(m)
		mode = &fm
	}
	digest := sha256.New()
	fmt.Fprintf(digest, "chown=%s chmod=%s dest=%s\n", c.chown, c.chmod, dest)
	for _, s := range srcs {
		if err := s.digest(digest); err != nil {
			return err
		}
	}
	sum := hex.EncodeToString(digest.Sum(nil))
	createdBy := fmt.Sprintf("/bin/sh -c #(nop) %s file:%s in %s", what, sum, c.dest)
	return bl.layer(ctx, st, cfg, createdBy, "", func(s Step) error {
		uid, gid, err := resolveChown(s.Root(), c.chown)
		if err != nil {
			return err
		}
		cp := &copier{root: s.Root(), uid: uid, gid: gid, mode: mode}
		for _, src := range srcs {
			if err := cp.copy(ctx, src, dest, intoDir, c.add); err != nil {
				return fmt.Errorf("%s failed: %w", what, err)
			}
		}
		return nil
	})
}

func trailingSlash(p string) string {
	if strings.HasSuffix(p, "/") {
		return "/"
	}
	return ""
}

// fromImage is the image COPY --from names: a stage (by name or index),
// else an image.
func (bl *builder) fromImage(ctx context.Context, from string) (*Image, error) {
	if i, ok := bl.names[strings.ToLower(from)]; ok {
		return bl.stages[i], nil
	}
	if _, err := strconv.Atoi(from); err == nil {
		return nil, invalid("COPY --from=%s: there is no such stage before this one", from)
	}
	return bl.b.Base(ctx, from, false, bl.out)
}

// glob finds the files a source pattern names under root, less those
// .dockerignore or --exclude leave out.
func glob(root, pattern string, ignore, excl *patternmatcher.PatternMatcher) ([]source, error) {
	clean := path.Clean("/" + pattern)
	matches := []string{clean}
	if strings.ContainsAny(clean, "*?[") {
		var err error
		full := filepath.Join(root, clean)
		if matches, err = filepath.Glob(full); err != nil {
			return nil, invalid("bad pattern %q: %v", pattern, err)
		}
		for i, m := range matches {
			rel, err := filepath.Rel(root, m)
			if err != nil || strings.HasPrefix(rel, "..") {
				return nil, invalid("%s is outside the build context", pattern)
			}
			matches[i] = "/" + rel
		}
	}
	var out []source
	for _, m := range matches {
		rel := strings.TrimPrefix(m, "/")
		if rel != "" && (skip(ignore, rel) || skip(excl, rel)) {
			continue
		}
		p, err := securejoin.SecureJoin(root, m)
		if err != nil {
			return nil, err
		}
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, source{path: p, rel: rel, dir: fi.IsDir()})
	}
	return out, nil
}

func skip(pm *patternmatcher.PatternMatcher, rel string) bool {
	if pm == nil {
		return false
	}
	ok, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
	return err == nil && ok
}

// digest adds the source's names, modes and contents to h: the cache key
// of a COPY changes with any of them.
func (s source) digest(h hash.Hash) error {
	switch {
	case s.url != "":
		// Fetched at each build that misses the cache by its URL.
		fmt.Fprintf(h, "url %s\n", s.url)
		return nil
	case s.data != nil:
		fmt.Fprintf(h, "data %s %d\n", s.data.Path, len(s.data.Data))
		io.WriteString(h, s.data.Data)
		return nil
	}
	return filepath.WalkDir(s.path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.path, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %s %o %d\n", s.rel, rel, fi.Mode(), fi.Size())
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			io.WriteString(h, target)
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			f.Close()
			return err
		}
		return nil
	})
}

// resolveChown reads --chown=USER[:GROUP] against the image's /etc/passwd
// and /etc/group; numeric IDs need neither. Without --chown files belong
// to root, as Docker's COPY.
func resolveChown(root, spec string) (int, int, error) {
	if spec == "" {
		return 0, 0, nil
	}
	passwd, _ := securejoin.SecureJoin(root, "/etc/passwd")
	group, _ := securejoin.SecureJoin(root, "/etc/group")
	u, g, hasGroup := strings.Cut(spec, ":")
	eu, err := user.GetExecUserPath(u, &user.ExecUser{}, passwd, group)
	if err != nil {
		return 0, 0, invalid("--chown=%s: %v", spec, err)
	}
	uid, gid := eu.Uid, eu.Gid
	if hasGroup {
		geu, err := user.GetExecUserPath("0:"+g, &user.ExecUser{}, passwd, group)
		if err != nil {
			return 0, 0, invalid("--chown=%s: %v", spec, err)
		}
		gid = geu.Gid
	}
	return uid, gid, nil
}

// copier writes sources into a container's root.
type copier struct {
	root     string
	uid, gid int
	mode     *os.FileMode
}

func (cp *copier) target(p string) (string, error) {
	return securejoin.SecureJoin(cp.root, p)
}

// mkdirs makes dir and its missing parents in the root.
func (cp *copier) mkdirs(dir string) (string, error) {
	p, err := cp.target(dir)
	if err != nil {
		return "", err
	}
	return p, os.MkdirAll(p, 0o755)
}

func (cp *copier) copy(ctx context.Context, s source, dest string, intoDir, add bool) error {
	switch {
	case s.url != "":
		return cp.fetch(ctx, s.url, dest, intoDir)
	case s.data != nil:
		name := dest
		if intoDir {
			name = path.Join(dest, path.Base(s.data.Path))
		}
		return cp.writeFile(name, strings.NewReader(s.data.Data), 0o644)
	case s.dir:
		if _, err := cp.mkdirs(dest); err != nil {
			return err
		}
		return cp.tree(s.path, dest)
	}
	if add && isArchive(s.path) {
		d, err := cp.mkdirs(dest)
		if err != nil {
			return err
		}
		f, err := os.Open(s.path)
		if err != nil {
			return err
		}
		defer f.Close()
		opts := &archive.TarOptions{InUserNS: true, NoLchown: false}
		if cp.uid != 0 || cp.gid != 0 {
			opts.ChownOpts = &idtools.IDPair{UID: cp.uid, GID: cp.gid}
		}
		return chrootarchive.UntarWithRoot(f, d, opts, cp.root)
	}
	name := dest
	if intoDir {
		name = path.Join(dest, filepath.Base(s.path))
	} else if t, err := cp.target(dest); err == nil {
		if fi, err := os.Stat(t); err == nil && fi.IsDir() {
			name = path.Join(dest, filepath.Base(s.path))
		}
	}
	return cp.entry(s.path, name)
}

// tree copies the content of the host directory src into dest.
func (cp *copier) tree(src, dest string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			t, err := cp.target(dest)
			if err != nil {
				return err
			}
			return cp.own(t, d)
		}
		return cp.entry(p, path.Join(dest, filepath.ToSlash(rel)))
	})
}

// entry copies one file, directory or symlink of the host to name in the
// root.
func (cp *copier) entry(src, name string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if _, err := cp.mkdirs(path.Dir(name)); err != nil {
		return err
	}
	t, err := cp.target(name)
	if err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		if err := os.MkdirAll(t, 0o755); err != nil {
			return err
		}
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		_ = os.Remove(t)
		if err := os.Symlink(target, t); err != nil {
			return err
		}
		return os.Lchown(t, cp.uid, cp.gid)
	case fi.Mode().IsRegular():
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		return cp.writeFile(name, f, fi.Mode().Perm()|fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky))
	default:
		return fmt.Errorf("%s: only files, directories and symlinks can be copied", src)
	}
	return cp.own(t, fs.FileInfoToDirEntry(fi))
}

func (cp *copier) own(t string, d fs.DirEntry) error {
	if err := os.Lchown(t, cp.uid, cp.gid); err != nil {
		return err
	}
	fi, err := d.Info()
	if err != nil {
		return err
	}
	m := fi.Mode().Perm() | fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)
	if cp.mode != nil {
		m = *cp.mode
	}
	return os.Chmod(t, m)
}

// writeFile writes r as the file name in the root.
func (cp *copier) writeFile(name string, r io.Reader, perm os.FileMode) error {
	if _, err := cp.mkdirs(path.Dir(name)); err != nil {
		return err
	}
	t, err := cp.target(name)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(t); err == nil && !fi.Mode().IsRegular() {
		if err := os.RemoveAll(t); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(t, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Lchown(t, cp.uid, cp.gid); err != nil {
		return err
	}
	if cp.mode != nil {
		perm = *cp.mode
	}
	return os.Chmod(t, perm)
}

// fetch downloads an ADD URL.
func (cp *copier) fetch(ctx context.Context, raw, dest string, intoDir bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("ADD %s: %v", raw, err)
	}
	name := dest
	if intoDir {
		base := path.Base(u.Path)
		if base == "/" || base == "." || base == "" {
			return invalid("ADD %s: cannot name the file: give a destination file name", raw)
		}
		name = path.Join(dest, base)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ADD %s: %w", raw, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ADD %s: %s", raw, resp.Status)
	}
	return cp.writeFile(name, resp.Body, 0o600)
}

// isArchive: ADD extracts local tar archives (plain or compressed).
func isArchive(p string) bool { return archive.IsArchivePath(p) }
