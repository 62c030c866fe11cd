// Command pack compresses the full binary for the front binary to carry
// (hack/build.sh): pack IN OUT.
package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: pack IN OUT")
		os.Exit(2)
	}
	in, err := os.ReadFile(os.Args[1])
	if err == nil {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if _, err = zw.Write(in); err == nil {
			if err = zw.Close(); err == nil {
				err = os.WriteFile(os.Args[2], buf.Bytes(), 0o644)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pack: %v\n", err)
		os.Exit(1)
	}
}
