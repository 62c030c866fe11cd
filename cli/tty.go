package cli

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// terminalFd returns the descriptor of f when it is a terminal.
func terminalFd(f interface{}) (int, bool) {
	file, ok := f.(*os.File)
	if !ok || !term.IsTerminal(int(file.Fd())) {
		return -1, false
	}
	return int(file.Fd()), true
}

// consoleSize is the size of the terminal on this process's output, as the
// create request's HostConfig.ConsoleSize ([height, width]), or nil.
func (a *app) consoleSize() *[2]uint {
	fd, ok := terminalFd(a.out)
	if !ok {
		return nil
	}
	w, h, err := term.GetSize(fd)
	if err != nil || w <= 0 || h <= 0 {
		return nil
	}
	return &[2]uint{uint(h), uint(w)}
}

// rawInput puts the terminal on this process's stdin into raw mode (the
// container's TTY does the line editing and echo) and returns the function
// that restores it; a no-op when stdin is not a terminal.
func (a *app) rawInput() func() {
	fd, ok := terminalFd(a.in)
	if !ok {
		return func() {}
	}
	st, err := term.MakeRaw(fd)
	if err != nil {
		return func() {}
	}
	return func() { _ = term.Restore(fd, st) }
}

// followSize calls resize with the terminal's size now and whenever it
// changes (SIGWINCH), until the returned function is called.
func (a *app) followSize(resize func(h, w uint)) func() {
	if _, ok := terminalFd(a.out); !ok {
		return func() {}
	}
	send := func() {
		if s := a.consoleSize(); s != nil {
			resize(s[0], s[1])
		}
	}
	send()
	ch := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(ch, syscall.SIGWINCH)
	go func() {
		for {
			select {
			case <-ch:
				send()
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

// input is this process's stdin for an attach. A terminal is shared with
// other processes (the shell, earlier commands), and one of them may leave
// it in non-blocking mode: reads then fail with EAGAIN, which would end
// the attach's input. input waits for data instead (poll) and reads again.
func (a *app) input() io.Reader {
	f, ok := a.in.(*os.File)
	if !ok {
		return a.in
	}
	return &pollReader{f: f, fd: int(f.Fd())} // Fd: blocking mode, as a terminal normally is
}

type pollReader struct {
	f  *os.File
	fd int
}

func (r *pollReader) Read(p []byte) (int, error) {
	for {
		n, err := r.f.Read(p)
		if n == 0 && errors.Is(err, syscall.EAGAIN) {
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}}, -1)
			continue
		}
		return n, err
	}
}
