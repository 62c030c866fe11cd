package cli

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/moby/moby/api/types/container"

	"github.com/moss-containers/moss/internal/escape"
)

// attachOptions say what attachWait connects and how it waits.
type attachOptions struct {
	stdin, stdout, stderr bool
	tty                   bool   // the output is one raw stream, not multiplexed
	removed               bool   // wait until the container is removed (--rm)
	sigProxy              bool   // forward this process's signals to the container
	start                 bool   // start the container once attached (run, start -a)
	detachKeys            string // with a TTY: the sequence that detaches
}

// attachWait does what docker run and docker attach do for an attached
// container: attach to its streams, send the wait request (answered with
// headers at once), start it when asked, copy the output until the stream
// ends, and return the exit status. With a TTY, stdin is in raw mode, the
// container's terminal follows this one's size, and the detach keys end
// the attach with the container left running (detached is then true).
func (a *app) attachWait(id string, o attachOptions) (code int, detached bool, err error) {
	cl, err := a.client()
	if err != nil {
		return 0, false, err
	}
	keys, err := escape.Parse(o.detachKeys)
	if err != nil {
		return 0, false, &statusError{code: exitDaemon, msg: "moss: " + err.Error()}
	}
	q := url.Values{"stream": {"1"}, "stdin": {b(o.stdin)}, "stdout": {b(o.stdout)}, "stderr": {b(o.stderr)}}
	if o.detachKeys != "" {
		q.Set("detachKeys", o.detachKeys)
	}
	conn, br, err := cl.hijack("/containers/"+id+"/attach", q, nil)
	if err != nil {
		return 0, false, runFailure(err)
	}
	defer conn.Close()
	cond := "next-exit"
	if o.removed {
		cond = "removed"
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitResp, err := cl.do(ctx, http.MethodPost, "/containers/"+id+"/wait", url.Values{"condition": {cond}}, nil, "")
	if err != nil {
		return 0, false, runFailure(err)
	}
	defer waitResp.Body.Close()

	copied := a.copyOutput(br, o.tty)
	if o.tty && o.stdin {
		restore := a.rawInput()
		defer restore()
	}
	if o.start {
		if err := cl.call(http.MethodPost, "/containers/"+id+"/start", nil, nil, nil); err != nil {
			return 0, false, runFailure(err)
		}
	}
	if o.tty {
		stop := a.followSize(func(h, w uint) {
			q := url.Values{"h": {strconv.Itoa(int(h))}, "w": {strconv.Itoa(int(w))}}
			_ = cl.call(http.MethodPost, "/containers/"+id+"/resize", q, nil, nil)
		})
		defer stop()
	}
	detach := make(chan struct{})
	if o.stdin {
		in := a.input()
		if o.tty {
			in = escape.NewReader(in, keys)
		}
		go func() {
			if a.copyInput(conn, in) {
				close(detach)
			}
		}()
	}
	if o.sigProxy && !o.tty {
		stop := a.proxySignals(cl, id)
		defer stop()
	}

	var w container.WaitResponse
	waited := make(chan error, 1)
	go func() { waited <- json.NewDecoder(waitResp.Body).Decode(&w) }()
	var werr error
	select {
	case <-detach:
		return 0, true, nil
	case werr = <-waited:
	}
	<-copied
	if werr != nil {
		return exitDaemon, false, &statusError{code: exitDaemon, msg: fmt.Sprintf("moss: wait for container %s: %v", shortID(id), werr)}
	}
	if w.Error != nil && w.Error.Message != "" {
		return exitDaemon, false, &statusError{code: exitDaemon, msg: "moss: error waiting for container: " + w.Error.Message}
	}
	return int(w.StatusCode), false, nil
}

// copyOutput copies an attach or exec stream to this process's stdout and
// stderr, raw with a TTY, else demultiplexed; the channel has the result.
func (a *app) copyOutput(r io.Reader, tty bool) <-chan error {
	copied := make(chan error, 1)
	go func() {
		if tty {
			_, err := io.Copy(a.out, r)
			copied <- err
			return
		}
		copied <- demux(r, a.out, a.errw)
	}()
	return copied
}

// copyInput sends in to conn and half-closes it at the end; it reports
// whether in ended with the detach keys (escape.Reader).
func (a *app) copyInput(conn net.Conn, in io.Reader) (detached bool) {
	_, err := io.Copy(conn, in)
	if errors.Is(err, escape.ErrDetached) {
		return true
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return false
}

// proxiedSignals are forwarded to an attached container (docker's
// --sig-proxy forwards all but SIGCHLD, SIGPIPE, SIGURG and SIGWINCH).
var proxiedSignals = []os.Signal{
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGCONT,
}

// proxySignals forwards this process's signals to the container until the
// returned function is called.
func (a *app) proxySignals(cl *client, id string) func() {
	ch := make(chan os.Signal, 8)
	done := make(chan struct{})
	signal.Notify(ch, proxiedSignals...)
	go func() {
		for {
			select {
			case s := <-ch:
				n, ok := s.(syscall.Signal)
				if !ok {
					continue
				}
				q := url.Values{"signal": {strconv.Itoa(int(n))}}
				if err := cl.call(http.MethodPost, "/containers/"+id+"/kill", q, nil, nil); err != nil {
					fmt.Fprintf(a.errw, "moss: forward signal %v: %v\n", s, err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

func b(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

// demux copies Docker's multiplexed stream to stdout and stderr: each frame
// has an 8-byte header, byte 0 the stream (0 stdin, 1 stdout, 2 stderr,
// 3 a system error), bytes 4–7 the big-endian payload length.
func demux(r io.Reader, stdout, stderr io.Writer) error {
	// Output is written in batches: what the reader has buffered goes out
	// in one write, flushed before the reader may block (so a follow or an
	// attach shows lines as they come) and when the stream switches (so
	// stdout and stderr keep their order).
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 256<<10)
	}
	bo, be := bufio.NewWriterSize(stdout, 64<<10), bufio.NewWriterSize(stderr, 64<<10)
	defer bo.Flush()
	defer be.Flush()
	var last *bufio.Writer
	var hdr [8]byte
	for {
		if br.Buffered() == 0 {
			if err := bo.Flush(); err != nil {
				return err
			}
			if err := be.Flush(); err != nil {
				return err
			}
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read the output stream: %w", err)
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		var w *bufio.Writer
		var direct io.Writer
		switch hdr[0] {
		case 0, 1:
			w, direct = bo, stdout
		case 2:
			w, direct = be, stderr
		case 3:
			msg, _ := io.ReadAll(io.LimitReader(br, n))
			return fmt.Errorf("error from the agent: %s", msg)
		default:
			return fmt.Errorf("read the output stream: unknown stream %d in frame header", hdr[0])
		}
		if last != nil && last != w {
			if err := last.Flush(); err != nil {
				return err
			}
		}
		last = w
		// The payload goes out from br's buffer: small frames (a line
		// each, from attach) through w, large ones (the agent batches
		// logs into frames of up to 64 KiB) in one write of their own.
		for n > 0 {
			if br.Buffered() == 0 {
				if _, err := br.Peek(1); err != nil {
					if errors.Is(err, io.EOF) {
						return fmt.Errorf("read the output stream: %w", io.ErrUnexpectedEOF)
					}
					return err
				}
			}
			p, _ := br.Peek(int(min(n, int64(br.Buffered()))))
			var err error
			if len(p) >= directWrite {
				if err = w.Flush(); err == nil {
					_, err = direct.Write(p)
				}
			} else {
				_, err = w.Write(p)
			}
			if err != nil {
				return err
			}
			br.Discard(len(p))
			n -= int64(len(p))
		}
	}
}

// directWrite is the size from which demux writes a frame's payload
// without copying it to its buffered writers first.
const directWrite = 16 << 10
