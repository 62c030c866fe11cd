// Package jsonlog reads container logs in Docker's json-file format (one
// JSON object per line: log, stream, time), across rotated files. The
// shim's supervisor writes them (agent/shim/supervisor.go). It owns the
// reading of the format only.
package jsonlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
	"unicode/utf8"
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

// Raw is an entry as Scan reads it: Log may point into the reader's
// buffer, valid only during the callback.
type Raw struct {
	Log    []byte
	Stream string
	Time   time.Time
}

// Entry copies r.
func (r *Raw) Entry() Entry { return Entry{Log: string(r.Log), Stream: r.Stream, Time: r.Time} }

// ReadAll calls fn for each entry in the files, oldest first. A truncated
// last line (a write in progress) is ignored.
func ReadAll(files []string, fn func(Entry) error) error {
	return Scan(files, func(r *Raw) error { return fn(r.Entry()) })
}

// Scan is ReadAll without copies: for reading a whole log, where a string
// per entry was a good part of the cost.
func Scan(files []string, fn func(*Raw) error) error {
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

func decode(r io.Reader, fn func(*Raw) error) error {
	br := bufio.NewReaderSize(r, 256*1024)
	// One Raw for all lines: fn's pointer made it escape, an allocation a
	// line.
	var raw Raw
	var tc timeCache
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull { // a line longer than the buffer
			long := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if raw, err = parse(line, &tc); err != nil {
			return err
		}
		if err := fn(&raw); err != nil {
			return err
		}
	}
}

// Parse reads one line of a json-file log; Log may point into line, whose
// bytes it may then have rewritten (the escaped newline ending a line
// becomes a newline in place).
func Parse(line []byte) (Raw, error) { return parse(line, nil) }

func parse(line []byte, tc *timeCache) (Raw, error) {
	if raw, ok := parseRaw(line, tc); ok {
		return raw, nil
	}
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		return Raw{}, fmt.Errorf("corrupt log line: %w", err)
	}
	return Raw{Log: []byte(e.Log), Stream: e.Stream, Time: e.Time}, nil
}

// parseLine reads a line in the supervisor's exact layout,
// {"log":"…","stream":"…","time":"…"}, without reflection: reading a log
// of millions of lines through encoding/json took 7 µs a line. It reports
// false for anything else, which encoding/json then reads.
func parseLine(line []byte) (Entry, bool) {
	r, ok := parseRaw(line, nil)
	return r.Entry(), ok
}

// parseRaw is parseLine with Log pointing into line when it needs no
// unescaping but of a trailing \n (most lines): that one is rewritten in
// place, once the whole line has been read.
func parseRaw(line []byte, tc *timeCache) (Raw, bool) {
	const pre = `{"log":"`
	if !bytes.HasPrefix(line, []byte(pre)) {
		return Raw{}, false
	}
	rest := line[len(pre):]
	msg, n, nl, ok := unquote(rest)
	if !ok {
		return Raw{}, false
	}
	rest = rest[n:]
	const mid = `,"stream":"`
	if !bytes.HasPrefix(rest, []byte(mid)) {
		return Raw{}, false
	}
	rest = rest[len(mid):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return Raw{}, false
	}
	var stream string
	switch s := rest[:end]; {
	case bytes.Equal(s, []byte("stdout")):
		stream = "stdout"
	case bytes.Equal(s, []byte("stderr")):
		stream = "stderr"
	default:
		stream = string(s)
	}
	rest = rest[end+1:]
	const tpre = `,"time":"`
	if !bytes.HasPrefix(rest, []byte(tpre)) {
		return Raw{}, false
	}
	rest = rest[len(tpre):]
	end = bytes.IndexByte(rest, '"')
	if end < 0 || !bytes.HasPrefix(rest[end:], []byte(`"}`)) {
		return Raw{}, false
	}
	t, ok := tc.parse(rest[:end])
	if !ok {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, string(rest[:end])); err != nil {
			return Raw{}, false
		}
	}
	if nl { // msg ends before the backslash of \n
		msg = msg[:len(msg)+1]
		msg[len(msg)-1] = '\n'
	}
	return Raw{Log: msg, Stream: stream, Time: t}, true
}

// timeCache keeps the seconds of the last time parseTime read: lines
// written within a second share them, and reading the date and time of
// each was a fifth of the cost of reading a log.
type timeCache struct {
	prefix [19]byte
	sec    int64
	valid  bool
}

// parse is parseTime, through the cache (c may be nil).
func (c *timeCache) parse(b []byte) (time.Time, bool) {
	if c == nil || len(b) != 30 || b[19] != '.' || b[29] != 'Z' {
		return parseTime(b)
	}
	if c.valid && string(b[:19]) == string(c.prefix[:]) {
		ns, ok := digits(b[20:29])
		if !ok {
			return time.Time{}, false
		}
		return time.Unix(c.sec, int64(ns)).UTC(), true
	}
	t, ok := parseTime(b)
	if ok {
		copy(c.prefix[:], b[:19])
		c.sec, c.valid = t.Unix(), true
	}
	return t, ok
}

// digits reads a decimal number.
func digits(s []byte) (int, bool) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// parseTime reads the supervisor's own timestamps,
// 2006-01-02T15:04:05.000000000Z, without allocating; other forms are
// left to time.Parse.
func parseTime(b []byte) (time.Time, bool) {
	if len(b) != 30 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[19] != '.' || b[29] != 'Z' {
		return time.Time{}, false
	}
	var v [7]int
	for i, r := range [7][2]int{{0, 4}, {5, 7}, {8, 10}, {11, 13}, {14, 16}, {17, 19}, {20, 29}} {
		n, ok := digits(b[r[0]:r[1]])
		if !ok {
			return time.Time{}, false
		}
		v[i] = n
	}
	if v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 59 {
		// Out of range: time.Date's normalisation.
		return time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], v[6], time.UTC), true
	}
	// time.Date was a tenth of the cost of reading a log: days from the
	// civil date (H. Hinnant's algorithm), then time.Unix.
	y, m := v[0], v[1]
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 { // year 0000, January or February
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + v[2] - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := era*146097 + doe - 719468
	sec := int64(days)*86400 + int64(v[3]*3600+v[4]*60+v[5])
	return time.Unix(sec, int64(v[6])).UTC(), true
}

// unquote reads a JSON string's contents up to its closing quote and
// returns it with the number of bytes consumed (the quote included). With
// nl, the only escape is a \n ending the string, which the contents stop
// before: the caller appends the newline (in place, over the backslash).
func unquote(b []byte) (_ []byte, _ int, nl, _ bool) {
	q := bytes.IndexByte(b, '"')
	if q < 0 {
		return nil, 0, false, false
	}
	i := bytes.IndexByte(b[:q], '\\')
	if i < 0 { // no escapes
		return b[:q], q + 1, false, true
	}
	if i == q-2 && b[q-1] == 'n' { // only the newline: the common case
		return b[:i], q + 1, true, true
	}
	out, n, ok := unescape(b, i)
	return out, n, false, ok
}

// unescape is unquote's general case, from the first backslash at i.
func unescape(b []byte, i int) ([]byte, int, bool) {
	out := make([]byte, 0, len(b))
	out = append(out, b[:i]...)
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			return out, i + 1, true
		case c != '\\':
			out = append(out, c)
			continue
		}
		if i+1 >= len(b) {
			return nil, 0, false
		}
		i++
		switch b[i] {
		case '"', '\\', '/':
			out = append(out, b[i])
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'u':
			if i+4 >= len(b) {
				return nil, 0, false
			}
			v, err := strconv.ParseUint(string(b[i+1:i+5]), 16, 16)
			if err != nil || (v >= 0xd800 && v < 0xe000) { // surrogates: leave to encoding/json
				return nil, 0, false
			}
			out = utf8.AppendRune(out, rune(v))
			i += 4
		default:
			return nil, 0, false
		}
	}
	return nil, 0, false
}
