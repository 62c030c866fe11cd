// Package escape finds Docker's detach key sequence (default Ctrl-P
// Ctrl-Q) in the input of an attached TTY: the agent and the CLI both stop
// an attach there, as Docker's daemon and CLI do. It must not know about
// containers or the API.
package escape

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// DefaultKeys is Docker's detach sequence.
const DefaultKeys = "ctrl-p,ctrl-q"

// ErrDetached is returned by Reader when the sequence was typed.
var ErrDetached = errors.New("read escape sequence")

// Parse reads a detach sequence as Docker writes it: comma-separated keys,
// each a single character or ctrl-<letter> (also ctrl-@, ctrl-[, ctrl-\,
// ctrl-], ctrl-^, ctrl-_). The empty string is the default.
func Parse(keys string) ([]byte, error) {
	if keys == "" {
		keys = DefaultKeys
	}
	var out []byte
	for _, k := range strings.Split(keys, ",") {
		lk := strings.ToLower(k)
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(lk, "ctrl-") && len(lk) == 6:
			c := lk[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@':
				out = append(out, 0)
			case c == '[', c == '\\', c == ']', c == '^', c == '_':
				out = append(out, c-'@')
			default:
				return nil, invalid(keys)
			}
		default:
			return nil, invalid(keys)
		}
	}
	return out, nil
}

func invalid(keys string) error {
	return fmt.Errorf("Invalid detach keys (%s) provided: use comma-separated keys, each a character or ctrl-<value> with value one of a-z, @, ^, [, \\, ], _", keys)
}

// Reader passes r's bytes through until the sequence keys appears; then it
// returns ErrDetached, without the sequence. Bytes that begin the sequence
// are held back until it is clear whether the rest follows.
type Reader struct {
	r       io.Reader
	keys    []byte
	held    []byte // a prefix of keys read but not passed on
	pending []byte // bytes to pass on before reading more
	err     error  // to return once pending is passed on
}

// NewReader returns a Reader of r that stops at keys (none: never).
func NewReader(r io.Reader, keys []byte) *Reader { return &Reader{r: r, keys: keys} }

func (e *Reader) Read(p []byte) (int, error) {
	if len(e.pending) > 0 {
		n := copy(p, e.pending)
		e.pending = e.pending[n:]
		return n, nil
	}
	if e.err != nil {
		return 0, e.err
	}
	if len(e.keys) == 0 {
		return e.r.Read(p)
	}
	buf := make([]byte, len(p))
	n, err := e.r.Read(buf)
	var out []byte
	for _, b := range buf[:n] {
		if b == e.keys[len(e.held)] {
			e.held = append(e.held, b)
			if len(e.held) == len(e.keys) {
				e.held, e.err = nil, ErrDetached
				break
			}
			continue
		}
		// A mismatch: what was held is ordinary input after all; the
		// byte may itself begin the sequence.
		if len(e.held) > 0 {
			out = append(out, e.held...)
			e.held = e.held[:0]
			if b == e.keys[0] {
				e.held = append(e.held, b)
				continue
			}
		}
		out = append(out, b)
	}
	if err != nil && e.err == nil {
		out = append(out, e.held...) // the input ended inside a prefix
		e.held, e.err = nil, err
	}
	k := copy(p, out)
	e.pending = append(e.pending, out[k:]...)
	if len(e.pending) == 0 && e.err != nil {
		return k, e.err
	}
	return k, nil
}
