// Package agentexe runs the agent's binary from the front binary. bin/moss
// is a light binary (the CLI, the shim and libcontainer's init) that carries
// the full binary (the agent, storage, the namespace holder) compressed
// (gzip: the standard library's, whose package costs no start-up time);
// `moss agent` unpacks it once per version into the runtime directory and
// executes it, telling it where the front binary is so that shims and
// container inits run from the light one (README, Design). It must not
// import anything heavy: the front binary's start-up time is every CLI
// command's.
package agentexe

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// EnvShimBinary names the front binary for the agent: shims run from a
// sealed copy of it. Unset, the agent runs shims from its own binary.
const EnvShimBinary = "MOSS_SHIM_BINARY"

// prefix of unpacked agent binaries in the runtime directory.
const prefix = "moss-agent-"

// Unpack returns the path of the agent binary packed in blob (gzip),
// writing it into dir (the private runtime directory) unless a binary of
// the same content is there already. Binaries of other versions in dir are
// removed: processes running them keep their open file.
func Unpack(blob []byte, dir string) (string, error) {
	if len(blob) == 0 {
		return "", errors.New("this moss binary carries no agent (built without `make build`?)")
	}
	sum := sha256.Sum256(blob)
	name := prefix + hex.EncodeToString(sum[:8])
	path := filepath.Join(dir, name)
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o100 != 0 {
		return path, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		return "", fmt.Errorf("unpack the agent binary: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		return "", fmt.Errorf("unpack the agent binary: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, zr); err != nil {
		tmp.Close()
		return "", fmt.Errorf("unpack the agent binary into %s: %w", dir, err)
	}
	if err := tmp.Chmod(0o700); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	if old, err := filepath.Glob(filepath.Join(dir, prefix+"*")); err == nil {
		for _, o := range old {
			if o != path && strings.HasPrefix(filepath.Base(o), prefix) {
				_ = os.Remove(o)
			}
		}
	}
	return path, nil
}

// Exec replaces the process with the agent binary at path, with args as
// its arguments after argv[0], and the front binary named for its shims.
func Exec(path string, args []string) error {
	front, err := os.Executable()
	if err != nil {
		return err
	}
	env := []string{EnvShimBinary + "=" + front}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvShimBinary+"=") {
			env = append(env, kv)
		}
	}
	err = syscall.Exec(path, append([]string{os.Args[0]}, args...), env)
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("cannot execute %s (is %s mounted noexec? set XDG_RUNTIME_DIR or MOSS_RUNTIME_DIR to a directory that allows execution): %w", path, filepath.Dir(path), err)
	}
	return fmt.Errorf("execute the agent binary %s: %w", path, err)
}
