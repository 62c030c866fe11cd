package cli

import (
	"errors"
	"fmt"
	"strings"
)

// checkReference answers as docker's reference.ParseNormalizedNamed does
// (the containers/image copy the agent uses), without it: its package
// compiles a dozen regular expressions when any process of the front
// binary starts, about 1.5 ms of every moss command, for the one check of
// build's tags. The agent checks them again with the library;
// reference_test.go holds the two to the same answers.
func checkReference(s string) error {
	if len(s) == 64 && isHex(s, false) {
		return fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)
	}
	domain, remainder := splitDockerDomain(s)
	remote := remainder
	if i := strings.IndexByte(remainder, ':'); i >= 0 {
		remote = remainder[:i]
	}
	if strings.ToLower(remote) != remote {
		return errors.New("invalid reference format: repository name must be lowercase")
	}
	full := domain + "/" + remainder
	name, tag, digest, ok := splitReference(full)
	if !ok {
		if _, _, _, lower := splitReference(strings.ToLower(full)); lower {
			return errors.New("repository name must be lowercase")
		}
		return errors.New("invalid reference format")
	}
	_ = tag
	if len(name) > 255 {
		return errors.New("repository name must not be more than 255 characters")
	}
	if digest != "" {
		return checkDigest(digest)
	}
	return nil
}

// splitDockerDomain is the library's.
func splitDockerDomain(name string) (domain, remainder string) {
	i := strings.IndexByte(name, '/')
	if i == -1 || (!strings.ContainsAny(name[:i], ".:") && name[:i] != "localhost") {
		domain, remainder = "docker.io", name
	} else {
		domain, remainder = name[:i], name[i+1:]
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.Contains(remainder, "/") {
		remainder = "library/" + remainder
	}
	return domain, remainder
}

// splitReference matches the reference grammar, name[:tag][@digest], and
// returns its parts.
func splitReference(s string) (name, tag, digest string, ok bool) {
	name, digest, hasDigest := strings.Cut(s, "@")
	if hasDigest && !validDigestSyntax(digest) {
		return "", "", "", false
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.Contains(name[i:], "/") {
		if validTag(name[i+1:]) && validName(name[:i]) {
			return name[:i], name[i+1:], digest, true
		}
	}
	// Without a tag, a last colon must be a domain's port.
	return name, "", digest, validName(name)
}

// validName: [domain "/"] component ("/" component)*.
func validName(n string) bool {
	parts := strings.Split(n, "/")
	for i, p := range parts {
		if !validComponent(p) && (i > 0 || len(parts) == 1 || !validDomain(p)) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isHex(s string, upper bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || upper && c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// validComponent: [a-z0-9]+ ((\.|_|__|-*) [a-z0-9]+)*
func validComponent(c string) bool {
	i := 0
	alnum := func() bool {
		j := i
		for i < len(c) && isAlnum(c[i]) {
			i++
		}
		return i > j
	}
	if !alnum() {
		return false
	}
	for i < len(c) {
		switch {
		case strings.HasPrefix(c[i:], "__"):
			i += 2
		case c[i] == '.' || c[i] == '_':
			i++
		case c[i] == '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return false
		}
		if !alnum() {
			return false
		}
	}
	return true
}

// validTag: [\w][\w.-]{0,127}
func validTag(t string) bool {
	if len(t) == 0 || len(t) > 128 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		word := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
		if !word && (i == 0 || c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// validDomain: label ("." label)* [":" port], a label [a-zA-Z0-9] or
// [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9].
func validDomain(d string) bool {
	host := d
	if i := strings.IndexByte(d, ':'); i >= 0 {
		port := d[i+1:]
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return false
		}
		host = d[:i]
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validDigestSyntax: [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)* ":"
// [[:xdigit:]]{32,}
func validDigestSyntax(d string) bool {
	alg, enc, ok := strings.Cut(d, ":")
	if !ok || len(enc) < 32 || !isHex(enc, true) {
		return false
	}
	start := true
	for i := 0; i < len(alg); i++ {
		c := alg[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		switch {
		case start && !letter:
			return false
		case start:
			start = false
		case strings.IndexByte("-_+.", c) >= 0:
			start = true
		case !letter && !(c >= '0' && c <= '9'):
			return false
		}
	}
	return !start
}

// checkDigest is go-digest's Parse for the algorithms it knows.
func checkDigest(d string) error {
	alg, enc, _ := strings.Cut(d, ":")
	size := map[string]int{"sha256": 64, "sha384": 96, "sha512": 128}[alg]
	if size == 0 {
		return errors.New("unsupported digest algorithm")
	}
	if len(enc) != size {
		return errors.New("invalid checksum digest length")
	}
	if !isHex(enc, false) {
		return errors.New("invalid checksum digest format")
	}
	return nil
}
