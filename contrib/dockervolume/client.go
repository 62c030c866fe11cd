package dockervolume

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moss-containers/moss/plugins"
)

// Mimetype is the version of the plugin protocol Docker speaks, sent in
// the Accept header of every call.
const Mimetype = "application/vnd.docker.plugins.v1.2+json"

// Spec is a Docker plugin's JSON spec file (NAME.json in a plugin
// directory): where the plugin listens and, for https, how to reach it.
type Spec struct {
	Name      string
	Addr      string
	TLSConfig *TLSConfig `json:",omitempty"`
}

// TLSConfig is the TLS part of a Spec, as Docker reads it.
type TLSConfig struct {
	InsecureSkipVerify bool
	CAFile             string
	CertFile           string
	KeyFile            string
}

// client calls one Docker plugin.
type client struct {
	addr string // as given, for messages
	base string // scheme://host of the requests
	http *http.Client
}

// newClient makes a client for addr: unix:///abs/path.sock, an absolute
// socket path, tcp://host:port, http(s)://host:port, or the absolute path
// of a .spec or .json spec file (read now, so a plugin that rewrites its
// spec when it restarts is found at its new address by the next start of
// the adapter). As Docker, a URL's path is ignored: calls go to
// /Plugin.Activate and /VolumeDriver.* of its host.
func newClient(addr string) (*client, error) {
	var spec Spec
	switch {
	case strings.HasPrefix(addr, "/") && (strings.HasSuffix(addr, ".spec") || strings.HasSuffix(addr, ".json")):
		s, err := ReadSpec(addr)
		if err != nil {
			return nil, err
		}
		spec = *s
	default:
		spec.Addr = addr
	}
	tr := &http.Transport{
		// One connection a call: a plugin that went away and came back
		// is never sent a call on a connection it no longer has, and a
		// failed call is one that reached the plugin or never dialled.
		DisableKeepAlives: true,
	}
	c := &client{addr: spec.Addr, http: &http.Client{Transport: tr}}
	a := spec.Addr
	if strings.HasPrefix(a, "/") {
		a = "unix://" + a
	}
	u, err := url.Parse(a)
	if err != nil || u.Scheme == "" {
		return nil, plugins.Invalid("plugin address %q: want unix:///path.sock, /path.sock, tcp://host:port, http(s)://host:port or a .spec/.json file", spec.Addr)
	}
	var dialer net.Dialer
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if u.Host != "" || !filepath.IsAbs(sock) {
			return nil, plugins.Invalid("plugin address %q: a unix socket needs an absolute path (unix:///path.sock)", spec.Addr)
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", sock)
		}
		c.base = "http://plugin"
	case "tcp", "http", "https":
		if u.Host == "" {
			return nil, plugins.Invalid("plugin address %q names no host", spec.Addr)
		}
		scheme := u.Scheme
		if scheme == "tcp" {
			scheme = "http"
		}
		tr.DialContext = dialer.DialContext
		tr.Proxy = http.ProxyFromEnvironment
		c.base = scheme + "://" + u.Host
	default:
		return nil, plugins.Invalid("plugin address %q: unknown scheme %q (want unix, tcp, http or https)", spec.Addr, u.Scheme)
	}
	if strings.HasPrefix(c.base, "https:") || spec.TLSConfig != nil {
		tc, err := tlsConfig(spec.TLSConfig)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	return c, nil
}

// tlsConfig is Docker's reading of a spec's TLSConfig: without one (a
// .spec file, a bare address) or without a CA file the plugin's
// certificate is not verified — Docker's local plugins are trusted by
// where their address comes from.
func tlsConfig(s *TLSConfig) (*tls.Config, error) {
	if s == nil || s.CAFile == "" {
		c := &tls.Config{InsecureSkipVerify: true}
		if s != nil {
			return c, clientCert(c, s)
		}
		return c, nil
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, fmt.Errorf("plugin TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, plugins.Invalid("plugin TLS CA %s: no PEM certificate in it", s.CAFile)
	}
	c := &tls.Config{RootCAs: pool, InsecureSkipVerify: s.InsecureSkipVerify}
	return c, clientCert(c, s)
}

func clientCert(c *tls.Config, s *TLSConfig) error {
	if s.CertFile == "" && s.KeyFile == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		return fmt.Errorf("plugin TLS client certificate: %w", err)
	}
	c.Certificates = []tls.Certificate{cert}
	return nil
}

// ReadSpec reads a Docker plugin spec file: NAME.spec holds an address
// (unix:///path.sock, tcp://host:port, http(s)://…), NAME.json a Spec.
func ReadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plugin spec: %w", err)
	}
	var s Spec
	if strings.HasSuffix(path, ".json") {
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, plugins.Invalid("plugin spec %s: %v", path, err)
		}
	} else {
		s.Addr = strings.TrimSpace(string(data))
	}
	if s.Addr == "" {
		return nil, plugins.Invalid("plugin spec %s names no address", path)
	}
	return &s, nil
}

// httpError is a call answered with a status other than 200.
type httpError struct {
	status int
	msg    string // the plugin's Err, or its body
	err    bool   // msg is the plugin's Err
}

func (e *httpError) Error() string { return e.msg }

// badAnswer is an answer that is not the protocol's.
type badAnswer struct{ err error }

func (e *badAnswer) Error() string { return e.err.Error() }
func (e *badAnswer) Unwrap() error { return e.err }

// unreachable is a call that never reached the plugin: nothing listens
// at its address (yet, or any more).
type unreachable struct{ err error }

func (e *unreachable) Error() string { return e.err.Error() }
func (e *unreachable) Unwrap() error { return e.err }

// call POSTs args (nil: an empty body) to /method and decodes the answer
// into ret. It retries while the plugin cannot be dialled, up to wait
// (and ctx); a call that reached the plugin is never repeated. The
// errors are *unreachable (the plugin is not there), *httpError (the
// plugin answered with an error status), *badAnswer (not the protocol's
// JSON), the context's, or others (the connection broke under the call).
func (c *client) call(ctx context.Context, method string, args, ret any, wait time.Duration) error {
	var body []byte
	if args != nil {
		var err error
		if body, err = json.Marshal(args); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(wait)
	backoff := 50 * time.Millisecond
	for {
		err := c.once(ctx, method, body, ret)
		var dial *net.OpError
		if err == nil || !errors.As(err, &dial) || dial.Op != "dial" {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return &unreachable{err}
		}
		select {
		case <-ctx.Done():
			return &unreachable{err}
		case <-time.After(min(backoff, left)):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (c *client) once(ctx context.Context, method string, body []byte, ret any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Accept", Mimetype)
	resp, err := c.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			// "Post \"http://plugin/VolumeDriver.Mount\": …" says less
			// than the cause.
			err = uerr.Err
		}
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// As Docker: the message is the answer's Err, or else its body.
		var e struct{ Err string }
		herr := &httpError{status: resp.StatusCode, msg: strings.TrimSpace(string(data))}
		if json.Unmarshal(data, &e) == nil && e.Err != "" {
			herr.msg, herr.err = e.Err, true
		}
		if len(herr.msg) > 1024 {
			herr.msg = herr.msg[:1024] + "…"
		}
		if herr.msg == "" {
			herr.msg = resp.Status
		}
		return herr
	}
	if ret == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, ret); err != nil {
		return &badAnswer{fmt.Errorf("the answer is not the protocol's JSON: %w", err)}
	}
	return nil
}
