package build

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moss-containers/moss/internal/atomicfile"
)

// cache is the layer cache: a step's key — its parent image, the
// instruction and the digest of its inputs — names the image it made,
// one file per key in dir. An entry whose image is gone is a miss.
type cache struct {
	dir string
	b   Backend
}

func (c *cache) key(parent *Image, instr, inputs string) string {
	h := sha256.New()
	id := "scratch"
	if parent != nil {
		id = parent.ID
	}
	fmt.Fprintf(h, "%s\n%s\n%s", id, instr, inputs)
	return hex.EncodeToString(h.Sum(nil))
}

// get returns the cached image of key (nothing with noCache).
func (c *cache) get(key string, noCache bool) *Image {
	if c.dir == "" || noCache {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(c.dir, key))
	if err != nil {
		return nil
	}
	return c.b.Lookup(strings.TrimSpace(string(data)))
}

// put records that key made image id. A failure to record only costs a
// later build the hit.
func (c *cache) put(key, id string) {
	if c.dir == "" {
		return
	}
	if err := os.MkdirAll(c.dir, 0o700); err == nil {
		_ = atomicfile.WriteUnsynced(filepath.Join(c.dir, key), []byte(id+"\n"))
	}
}
