// Package jsonlog reads container logs in Docker's json-file format (one
// JSON object per line: log, stream, time), across rotated files. The
// shim's supervisor writes them (agent/shim/supervisor.go). It owns the
// reading of the format only.
package jsonlog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// Entry is one log line (or a 16 KiB part of a longer one).
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Files returns the existing log files of path, oldest first.
func Files(path string, maxFiles int) []string {
	var out []string
	for i := maxFiles - 1; i > 0; i-- {
		p := path + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return append(out, path)
}

// ReadAll calls fn for each entry in the files, oldest first. A truncated
// last line (a write in progress) is ignored.
func ReadAll(files []string, fn func(Entry) error) error {
	for _, p := range files {
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		err = decode(f, fn)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func decode(r io.Reader, fn func(Entry) error) error {
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var e Entry
		if jerr := json.Unmarshal(line, &e); jerr != nil {
			return fmt.Errorf("corrupt log line: %w", jerr)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}
