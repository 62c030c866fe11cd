// Command mkarchive writes a docker-archive (docker save's format) of one
// image whose layers each hold one file of random bytes, for the pull and
// load figures of hack/bench.sh:
//
//	mkarchive -o image.tar -tag 127.0.0.1:5000/bench/big:1 -layers 5 -size 40
package main

import (
	"archive/tar"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"
)

func main() {
	out := flag.String("o", "image.tar", "archive to write")
	tag := flag.String("tag", "bench/big:1", "the image's name")
	layers := flag.Int("layers", 5, "number of layers")
	size := flag.Int("size", 40, "MB of random data in each layer")
	flag.Parse()
	if err := write(*out, *tag, *layers, int64(*size)<<20); err != nil {
		fmt.Fprintln(os.Stderr, "mkarchive:", err)
		os.Exit(1)
	}
}

var epoch = time.Unix(1700000000, 0)

// layer writes a layer tar of one random file of n bytes to w and returns
// its digest and size.
func layer(w io.Writer, i int, n int64) (string, int64, error) {
	h := sha256.New()
	cw := &counter{w: io.MultiWriter(w, h)}
	tw := tar.NewWriter(cw)
	name := fmt.Sprintf("data/layer%d.bin", i)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: n, Typeflag: tar.TypeReg, ModTime: epoch}); err != nil {
		return "", 0, err
	}
	if _, err := io.CopyN(tw, rand.Reader, n); err != nil {
		return "", 0, err
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func write(out, tag string, layers int, size int64) error {
	tmp, err := os.MkdirTemp("", "mkarchive-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	var diffIDs, paths []string
	var history []map[string]string
	for i := range layers {
		// A layer's size is known only once written: stage it in a file.
		lf, err := os.CreateTemp(tmp, "layer")
		if err != nil {
			return err
		}
		d, n, err := layer(lf, i, size)
		if err != nil {
			lf.Close()
			return err
		}
		if _, err := lf.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: d + "/layer.tar", Mode: 0o644, Size: n, Typeflag: tar.TypeReg, ModTime: epoch}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, lf); err != nil {
			return err
		}
		lf.Close()
		os.Remove(lf.Name())
		diffIDs = append(diffIDs, "sha256:"+d)
		paths = append(paths, d+"/layer.tar")
		history = append(history, map[string]string{"created": epoch.UTC().Format(time.RFC3339), "created_by": fmt.Sprintf("mkarchive layer %d", i+1)})
	}
	cfg, err := json.Marshal(map[string]interface{}{
		"architecture": runtime.GOARCH, "os": "linux", "created": epoch.UTC().Format(time.RFC3339),
		"config":  map[string]interface{}{"Cmd": []string{"/bin/sh"}},
		"rootfs":  map[string]interface{}{"type": "layers", "diff_ids": diffIDs},
		"history": history,
	})
	if err != nil {
		return err
	}
	sum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(sum[:]) + ".json"
	man, err := json.Marshal([]map[string]interface{}{{"Config": cfgName, "RepoTags": []string{tag}, "Layers": paths}})
	if err != nil {
		return err
	}
	for _, e := range []struct {
		name string
		data []byte
	}{{cfgName, cfg}, {"manifest.json", man}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg, ModTime: epoch}); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
