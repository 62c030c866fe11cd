// Package jsonlog writes and reads container logs in Docker's json-file
// format (one JSON object per line: log, stream, time), with size-based
// rotation. It owns the file format only.
package jsonlog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// Entry is one log line.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Writer appends entries to a log file, rotating it when it grows over
// MaxSize (0: never), keeping MaxFiles files in all (path, path.1, …).
type Writer struct {
	mu       sync.Mutex
	path     string
	f        *os.File
	size     int64
	maxSize  int64
	maxFiles int
	buf      []byte
}

// Open opens path for appending.
func Open(path string, maxSize int64, maxFiles int) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if maxFiles < 1 {
		maxFiles = 1
	}
	return &Writer{path: path, f: f, size: st.Size(), maxSize: maxSize, maxFiles: maxFiles}, nil
}

// Write records one chunk of a stream as one entry.
func (w *Writer) Write(stream string, p []byte, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.buf[:0]
	b = append(b, `{"log":`...)
	lb, _ := json.Marshal(string(p))
	b = append(b, lb...)
	b = append(b, `,"stream":"`...)
	b = append(b, stream...)
	b = append(b, `","time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, "\"}\n"...)
	w.buf = b
	if w.maxSize > 0 && w.size+int64(len(b)) > w.maxSize && w.size > 0 {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	return err
}

func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return err
	}
	if w.maxFiles == 1 {
		if err := os.Truncate(w.path, 0); err != nil {
			return err
		}
	} else {
		for i := w.maxFiles - 1; i > 0; i-- {
			from := w.path
			if i > 1 {
				from = w.path + "." + strconv.Itoa(i-1)
			}
			if err := os.Rename(from, w.path+"."+strconv.Itoa(i)); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	w.f, w.size = f, 0
	return nil
}

// Close closes the file.
func (w *Writer) Close() error { return w.f.Close() }

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
