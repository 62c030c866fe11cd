package escape

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestParse(t *testing.T) {
	for in, want := range map[string][]byte{
		"":              {16, 17},
		"ctrl-p,ctrl-q": {16, 17},
		"ctrl-a,x":      {1, 'x'},
		"ctrl-@,ctrl-_": {0, 31},
		"CTRL-X":        {24},
	} {
		got, err := Parse(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "ab", "ctrl-p,", ","} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func read(t *testing.T, r io.Reader) ([]byte, error) {
	t.Helper()
	var out []byte
	buf := make([]byte, 3)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
}

func TestReader(t *testing.T) {
	keys := []byte{16, 17}
	cases := []struct {
		in, want string
		err      error
	}{
		{"hello", "hello", io.EOF},
		{"ab\x10\x11cd", "ab", ErrDetached},
		{"\x10x\x10\x10\x11", "\x10x\x10", ErrDetached},
		{"ab\x10", "ab\x10", io.EOF},
		{"\x10\x10\x10y", "\x10\x10\x10y", io.EOF},
	}
	for _, c := range cases {
		for name, src := range map[string]io.Reader{
			"whole": bytes.NewReader([]byte(c.in)),
			"bytes": iotest.OneByteReader(bytes.NewReader([]byte(c.in))),
		} {
			got, err := read(t, NewReader(src, keys))
			if string(got) != c.want || !errors.Is(err, c.err) {
				t.Errorf("%s %q: %q, %v; want %q, %v", name, c.in, got, err, c.want, c.err)
			}
		}
	}
	// No keys: everything passes.
	got, err := read(t, NewReader(bytes.NewReader([]byte("a\x10\x11b")), nil))
	if string(got) != "a\x10\x11b" || err != io.EOF {
		t.Errorf("no keys: %q %v", got, err)
	}
}
