package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// BenchmarkDemuxHTTP reads 64 MiB of log frames over HTTP (64 KiB frames,
// as the agent sends them) and demultiplexes them to /dev/null.
func BenchmarkDemuxHTTP(b *testing.B) {
	line := strings.Repeat("0123456789", 9) + "0123456\n"
	var frame bytes.Buffer
	payload := strings.Repeat(line, 64<<10/len(line))
	hdr := [8]byte{1, 0, 0, 0, byte(len(payload) >> 24), byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload))}
	frame.Write(hdr[:])
	frame.WriteString(payload)
	var body bytes.Buffer
	for body.Len() < 64<<20 {
		body.Write(frame.Bytes())
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		data := body.Bytes()
		for len(data) > 0 {
			n := min(256<<10, len(data))
			w.Write(data[:n])
			data = data[n:]
		}
	}))
	defer srv.Close()
	null, err := os.OpenFile("/dev/null", os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	b.SetBytes(int64(body.Len()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := http.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		if err := demux(resp.Body, null, null); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}
