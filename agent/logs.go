package agent

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/moss-containers/moss/agent/jsonlog"
	"github.com/moss-containers/moss/agent/shim"
)

type logOptions struct {
	stdout, stderr, timestamps, follow bool
	// raw: a TTY container's log goes out as it is, without frames (as
	// Docker's; one stream only).
	raw          bool
	tail         int
	since, until time.Time
}

func (o logOptions) want(stream string, t time.Time) bool {
	if stream == "stdout" && !o.stdout || stream == "stderr" && !o.stderr {
		return false
	}
	if !o.since.IsZero() && t.Before(o.since) {
		return false
	}
	if !o.until.IsZero() && t.After(o.until) {
		return false
	}
	return true
}

// Frames are batched: consecutive entries of a stream go out as one frame
// of up to maxFrame bytes, and frames as writes of about flushSize. A
// frame per line, each its own three writes, was most of the cost of
// reading a big log; demultiplexers (moss's, Docker's stdcopy) take any
// frame size, and the payload is the same.
const (
	maxFrame  = 64 << 10
	flushSize = 256 << 10
)

// logWriter writes log entries as multiplexed frames.
type logWriter struct {
	w               io.Writer
	timestamps, raw bool
	buf             []byte
	// open is where the header of the frame being filled starts in buf,
	// or -1; stream is its stream.
	open   int
	stream byte
	err    error
}

func newLogWriter(w io.Writer, timestamps, raw bool) *logWriter {
	return &logWriter{w: w, timestamps: timestamps, raw: raw, buf: make([]byte, 0, flushSize+maxFrame), open: -1}
}

// write adds one entry (with its time first, for timestamps).
func (f *logWriter) write(e *jsonlog.Raw) error {
	if f.err != nil {
		return f.err
	}
	id := byte(1)
	if e.Stream == "stderr" {
		id = 2
	}
	n := len(e.Log)
	if f.timestamps {
		n += len("2006-01-02T15:04:05.000000000Z ")
	}
	if f.raw {
		if len(f.buf) >= flushSize {
			if err := f.writeOut(); err != nil {
				return err
			}
		}
	} else if f.open >= 0 && (f.stream != id || len(f.buf)-f.open-8+n > maxFrame) {
		f.close()
	}
	if f.open < 0 && !f.raw {
		if len(f.buf) >= flushSize {
			if err := f.writeOut(); err != nil {
				return err
			}
		}
		f.open, f.stream = len(f.buf), id
		f.buf = append(f.buf, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	if f.timestamps {
		f.buf = e.Time.UTC().AppendFormat(f.buf, "2006-01-02T15:04:05.000000000Z07:00")
		f.buf = append(f.buf, ' ')
	}
	f.buf = append(f.buf, e.Log...)
	return nil
}

// close ends the frame being filled.
func (f *logWriter) close() {
	if f.open >= 0 {
		hdr := frameHeader(f.stream, len(f.buf)-f.open-8)
		copy(f.buf[f.open:], hdr[:])
		f.open = -1
	}
}

func (f *logWriter) writeOut() error {
	if len(f.buf) > 0 {
		_, f.err = f.w.Write(f.buf)
		f.buf = f.buf[:0]
	}
	return f.err
}

// flush writes out all entries so far.
func (f *logWriter) flush() error {
	if f.err != nil {
		return f.err
	}
	f.close()
	return f.writeOut()
}

// frameHeader is the 8-byte header of a multiplexed frame: the stream
// (1 stdout, 2 stderr), then the big-endian payload length.
func frameHeader(stream byte, n int) [8]byte {
	return [8]byte{stream, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// streamLogs writes c's log as multiplexed frames. With follow it keeps
// reading the current file until the container stops.
func (a *Agent) streamLogs(ctx context.Context, c *Container, o logOptions, out io.Writer, flushOut func()) error {
	w := newLogWriter(out, o.timestamps, o.raw)
	flush := func() error {
		err := w.flush()
		if err == nil {
			flushOut()
		}
		return err
	}
	path := filepath.Join(a.bundle(c.ID), shim.LogFile)
	_, maxFiles := logLimits(c.HostConfig.LogConfig.Config)
	// Without --tail every entry goes out as it is read; with it, the last
	// ones are kept in a ring.
	var ring []jsonlog.Raw
	next := 0
	err := jsonlog.Scan(jsonlog.Files(path, maxFiles), func(e *jsonlog.Raw) error {
		if !o.want(e.Stream, e.Time) {
			return nil
		}
		switch {
		case o.tail < 0:
			return w.write(e)
		case o.tail == 0:
		case len(ring) < o.tail:
			ring = append(ring, jsonlog.Raw{Log: append([]byte(nil), e.Log...), Stream: e.Stream, Time: e.Time})
		default:
			ring[next] = jsonlog.Raw{Log: append(ring[next].Log[:0], e.Log...), Stream: e.Stream, Time: e.Time}
			next = (next + 1) % o.tail
		}
		return nil
	})
	if err != nil {
		// The client left, or the log is corrupt: what was sent stands.
		a.log.Debug("logs", "id", c.ID, "error", err)
		return nil
	}
	for i := range ring {
		if err := w.write(&ring[(next+i)%len(ring)]); err != nil {
			return nil
		}
	}
	if flush() != nil || !o.follow {
		return nil
	}
	return a.followLog(ctx, c, path, o, w, flush)
}

// followLog tails the current log file from its end until the container is
// no longer running (or, with --until, that time has passed). When the
// file is rotated, the rest of the old one is read before the new one.
func (a *Agent) followLog(ctx context.Context, c *Container, path string, o logOptions, w *logWriter, flush func() error) error {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer func() { f.Close() }()
	off, _ := f.Seek(0, io.SeekEnd)
	br := bufio.NewReader(f)
	var partial []byte
	// drain sends the complete entries up to the end of f; it reports
	// false when the client is gone.
	drain := func() bool {
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 && line[len(line)-1] == '\n' {
				line = append(partial, line...)
				partial = nil
				off += int64(len(line))
				if e, err := jsonlog.Parse(line); err == nil && o.want(e.Stream, e.Time) {
					if w.write(&e) != nil {
						return false
					}
				}
				continue
			}
			partial = append(partial, line...)
			if err != nil {
				return true
			}
		}
	}
	for {
		c.mu.Lock()
		running := c.State.Status == "running"
		changed := c.changed
		c.mu.Unlock()
		if !drain() {
			return nil
		}
		// Rotation: the file was replaced or truncated; what the old one
		// got meanwhile comes first, then the new one from its start.
		if st, err := os.Stat(path); err == nil {
			if fst, ferr := f.Stat(); ferr == nil && (!os.SameFile(st, fst) || st.Size() < off) {
				if os.SameFile(st, fst) { // truncated in place: nothing more to read there
					partial = nil
				} else if !drain() {
					return nil
				}
				f.Close()
				if f, err = os.Open(path); err != nil {
					return nil
				}
				br.Reset(f)
				off, partial = 0, nil
				if !drain() {
					return nil
				}
			}
		}
		if flush() != nil {
			return nil
		}
		if !running || (!o.until.IsZero() && time.Now().After(o.until)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
}
