package cli

import (
	"archive/tar"
	"context"
	"encoding/base64"
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

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

// cpCmd is docker cp: a file or directory from a container to the host or
// back, as tar archives through the API; "-" is a tar on stdin or stdout.
func (a *app) cpCmd() *cobra.Command {
	var archiveMode, follow bool
	c := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  moss cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, src := splitCpArg(args[0])
			dstCtr, dst := splitCpArg(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return &statusError{code: exitFailure, msg: "moss: copying between containers is not supported"}
			case srcCtr == "" && dstCtr == "":
				return &statusError{code: exitFailure, msg: "moss: must specify at least one container source"}
			case srcCtr != "":
				return a.cpFrom(srcCtr, src, dst, follow)
			default:
				return a.cpTo(src, dstCtr, dst, archiveMode, follow)
			}
		},
	}
	c.Flags().BoolVarP(&archiveMode, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	c.Flags().BoolVarP(&follow, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	return c
}

// splitCpArg splits CONTAINER:PATH; a path with a slash before any colon
// (./a:b, /a:b) is local.
func splitCpArg(arg string) (ctr, path string) {
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	if c, p, ok := strings.Cut(arg, ":"); ok && !strings.Contains(c, "/") {
		return c, p
	}
	return "", arg
}

func (a *app) statInContainer(cl *client, ctr, path string) (*container.PathStat, error) {
	resp, err := cl.do(context.Background(), http.MethodHead, "/containers/"+url.PathEscape(ctr)+"/archive", url.Values{"path": {path}}, nil, "")
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusNotFound && !strings.Contains(ae.msg, "No such container") {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return decodeStat(resp.Header.Get("X-Docker-Container-Path-Stat"))
}

func decodeStat(h string) (*container.PathStat, error) {
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("bad path stat from the agent: %w", err)
	}
	var st container.PathStat
	return &st, json.Unmarshal(b, &st)
}

// cpFrom copies CONTAINER:src to the local dst.
func (a *app) cpFrom(ctr, src, dst string, follow bool) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	if follow {
		if st, err := a.statInContainer(cl, ctr, src); err == nil && st.LinkTarget != "" {
			src = st.LinkTarget
		}
	}
	resp, err := cl.do(context.Background(), http.MethodGet, "/containers/"+url.PathEscape(ctr)+"/archive", url.Values{"path": {src}}, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if dst == "-" {
		_, err := io.Copy(a.out, resp.Body)
		return err
	}
	st, err := decodeStat(resp.Header.Get("X-Docker-Container-Path-Stat"))
	if err != nil {
		return err
	}
	// Where the archive's top entry (named st.Name) goes: into dst when
	// it is a directory, else it becomes dst.
	srcIsDir := st.Mode.IsDir()
	dir, rename := dst, ""
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		if strings.HasSuffix(src, "/.") && srcIsDir {
			rename = "." // the directory's contents
		}
	} else if err == nil {
		if srcIsDir {
			return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: cannot copy directory %s to file %s", src, dst)}
		}
		dir, rename = filepath.Dir(dst), filepath.Base(dst)
	} else if errors.Is(err, fs.ErrNotExist) {
		if strings.HasSuffix(dst, "/") && !srcIsDir {
			return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: destination directory %s does not exist", dst)}
		}
		parent := filepath.Dir(filepath.Clean(dst))
		if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
			return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: destination directory %s does not exist", parent)}
		}
		dir, rename = parent, filepath.Base(filepath.Clean(dst))
	} else {
		return err
	}
	return extractTar(resp.Body, dir, st.Name, rename)
}

// extractTar writes the entries of r under dir; the top entry top is named
// rename instead (rename "." puts a directory's contents into dir). It
// refuses entries that would land outside dir, also through a symlink the
// archive itself made.
func extractTar(r io.Reader, dir, top, rename string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the archive: %w", err)
		}
		name := filepath.Clean(h.Name)
		if rename != "" {
			if rest, ok := strings.CutPrefix(name, top); ok && (rest == "" || rest[0] == '/') {
				name = filepath.Join(rename, rest)
			}
		}
		if name == "." && h.Typeflag == tar.TypeDir {
			continue
		}
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("archive entry %q points outside the destination", h.Name)
		}
		target := filepath.Join(dir, name)
		parent, err := securejoin.SecureJoin(dir, filepath.Dir(name))
		if err != nil || parent != filepath.Dir(target) {
			return fmt.Errorf("archive entry %q would be written through a symbolic link", h.Name)
		}
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(target, mode); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := os.Chmod(target, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			old, err := securejoin.SecureJoin(dir, h.Linkname)
			if err != nil {
				return err
			}
			_ = os.Remove(target)
			if err := os.Link(old, target); err != nil {
				return err
			}
		default:
			continue // devices, fifos: not for an unprivileged copy
		}
		if h.Typeflag != tar.TypeSymlink {
			_ = os.Chtimes(target, h.AccessTime, h.ModTime)
		}
	}
}

// cpTo copies the local src into CONTAINER:dst.
func (a *app) cpTo(src, ctr, dst string, archiveMode, follow bool) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	q := url.Values{"noOverwriteDirNonDir": {"true"}}
	if archiveMode {
		q.Set("copyUIDGID", "true")
	}
	put := func(dir string, body io.Reader) error {
		q.Set("path", dir)
		resp, err := cl.do(context.Background(), http.MethodPut, "/containers/"+url.PathEscape(ctr)+"/archive", q, body, "application/x-tar")
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	if src == "-" {
		return put(dst, a.in)
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: %v", err)}
	}
	if follow && fi.Mode()&os.ModeSymlink != 0 {
		if src, err = filepath.EvalSymlinks(src); err != nil {
			return err
		}
		if fi, err = os.Stat(src); err != nil {
			return err
		}
	}
	// The archive's top entry: into dst when it is a directory in the
	// container, else named like dst in its parent.
	dir, name := dst, filepath.Base(filepath.Clean(src))
	st, err := a.statInContainer(cl, ctr, dst)
	switch {
	case err == nil && st.Mode.IsDir():
		if strings.HasSuffix(src, "/.") && fi.IsDir() {
			name = "."
		}
	case err == nil:
		if fi.IsDir() {
			return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: cannot copy directory %s to file %s:%s", src, ctr, dst)}
		}
		dir, name = filepath.Dir(dst), filepath.Base(dst)
	case errors.Is(err, fs.ErrNotExist):
		dir, name = filepath.Dir(filepath.Clean(dst)), filepath.Base(filepath.Clean(dst))
	default:
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, src, name)) }()
	err = put(dir, pr)
	pr.Close()
	return err
}

// writeTar writes src (a file or a directory tree) as a tar archive whose
// top entry is named name ("." for the contents of a directory).
func writeTar(w io.Writer, src, name string) error {
	tw := tar.NewWriter(w)
	root := filepath.Clean(src)
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		entry := filepath.Join(name, rel)
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(entry)
		if fi.IsDir() {
			if entry == "." {
				return nil
			}
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
