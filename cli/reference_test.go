package cli

import (
	"math/rand"
	"strings"
	"testing"

	"go.podman.io/image/v5/docker/reference"
)

// TestCheckReferenceMatchesLibrary holds checkReference to the library's
// ParseNormalizedNamed: the same inputs accepted, the same errors.
func TestCheckReferenceMatchesLibrary(t *testing.T) {
	hex64 := strings.Repeat("ab12", 16)
	cases := []string{
		"", "a", "A", "busybox", "busybox:latest", "Busybox", "library/busybox", "docker.io/busybox",
		"index.docker.io/x", "localhost/x", "localhost:5000/x:1", "127.0.0.1:5000/a/b:c", "my.reg/Org/x",
		"My.Reg/org/x", "a:b:c", "a::b", ":a", "a:", "a/", "/a", "a//b", "a_b", "a__b", "a___b", "a--b",
		"a-b", "a.b", "a..b", "-a", "a-", "_a", "a.", "x:" + strings.Repeat("t", 128), "x:" + strings.Repeat("t", 129),
		"x:.t", "x:t.", "x:-t", "x:_t", "x:T", hex64, hex64 + ":tag", "x/" + hex64, strings.ToUpper(hex64),
		"x@sha256:" + hex64 + hex64[:0], "x@sha256:" + strings.Repeat("a", 64), "x:t@sha256:" + strings.Repeat("a", 64),
		"x@sha256:" + strings.Repeat("A", 64), "x@sha256:abc", "x@md5:" + strings.Repeat("a", 32), "x@sha512:" + strings.Repeat("a", 128),
		"x@sha256", "x@:" + strings.Repeat("a", 64), "x@1sha:" + strings.Repeat("a", 64), "x@sha+256:" + strings.Repeat("a", 64),
		"reg:port/x", "reg:5000", "reg:5000/", "a-.b/x", "a.-b/x", "a-b.c/x", "UPPER/Case", "Not/A Name",
		"http://127.0.0.1:5000/x", "127.0.0.1:5000/x::1", "x y", "x\ty", "ünï", strings.Repeat("a", 250) + "/b",
		strings.Repeat("a", 256), "docker.io/library/" + strings.Repeat("a", 240),
	}
	r := rand.New(rand.NewSource(1))
	const alphabet = "aAz09._-:/@"
	for i := 0; i < 20000; i++ {
		b := make([]byte, 1+r.Intn(14))
		for j := range b {
			b[j] = alphabet[r.Intn(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	accepted, kinds := 0, map[string]bool{}
	for _, s := range cases {
		_, want := reference.ParseNormalizedNamed(s)
		got := checkReference(s)
		if (want == nil) != (got == nil) || (want != nil && want.Error() != got.Error()) {
			t.Errorf("%q: library %v, checkReference %v", s, want, got)
		}
		if want == nil {
			accepted++
		} else {
			kinds[strings.SplitN(want.Error(), " (", 2)[0]] = true
		}
	}
	// Both answers, and every kind of error, were exercised.
	if accepted < 500 || len(kinds) < 6 {
		t.Fatalf("%d of %d accepted, errors %v: the corpus does not exercise the grammar", accepted, len(cases), kinds)
	}
}
