package cexec

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Filter is a seccomp program and the flags it is loaded with.
type Filter struct {
	Prog  []unix.SockFilter
	Flags uint
}

// ErrUnsupported says a configuration needs libcontainer's own path.
var ErrUnsupported = errors.New("not supported by the fast exec")

// CaptureFilter returns the program, and its flags, that libcontainer
// loads for config: libcontainer's own code (seccomp.InitSeccomp, with
// its -ENOSYS patch of libseccomp's program) compiles it, on a thread of
// its own whose loads of a filter are trapped (a seccomp filter of ours
// that hands them to us with SECCOMP_RET_USER_NOTIF) and answered as done
// without loading anything. The thread ends with the capture, and its
// trap with it. Compiling takes milliseconds; loading the program takes
// microseconds.
func CaptureFilter(config *configs.Seccomp) (*Filter, error) {
	if config == nil {
		return nil, nil
	}
	if config.ListenerPath != "" || config.DefaultAction == configs.Notify {
		return nil, ErrUnsupported
	}
	for _, call := range config.Syscalls {
		if call != nil && call.Action == configs.Notify {
			return nil, ErrUnsupported
		}
	}
	arch, ok := auditArch[runtime.GOARCH]
	if !ok {
		return nil, ErrUnsupported
	}
	// libseccomp probes the kernel once, on its first use: not trapped.
	if _, err := libseccomp.GetAPI(); err != nil {
		return nil, err
	}
	captured := make(chan capture, 1)
	compiled := make(chan error, 1)
	onThrowawayThread(func() {
		listener, err := installTrap(arch)
		if err != nil {
			compiled <- err
			captured <- capture{}
			return
		}
		go func() { captured <- serveTrap(listener) }()
		_, err = seccomp.InitSeccomp(config)
		compiled <- err
	})
	if err := <-compiled; err != nil {
		r := <-captured
		if r.err == nil {
			r.err = err
		}
		return nil, r.err
	}
	r := <-captured
	if r.err == nil && r.f == nil {
		r.err = errors.New("seccomp: the filter was not loaded")
	}
	return r.f, r.err
}

// onThrowawayThread runs f on an OS thread of its own that ends with it.
// Not the main thread, which Go cannot end (it would keep the thread
// parked, and what f did to it).
func onThrowawayThread(f func()) {
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if unix.Gettid() != unix.Getpid() {
			f()
			return
		}
		// The main thread: held here, so that the next goroutine has another.
		done := make(chan struct{})
		onThrowawayThread(func() { defer close(done); f() })
		<-done
		runtime.UnlockOSThread()
	}()
}

var auditArch = map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}

// The trap: prctl(PR_SET_SECCOMP, ...) and seccomp(SECCOMP_SET_MODE_FILTER,
// ...) go to the listener, everything else runs.
func installTrap(arch uint32) (*os.File, error) {
	const (
		ldw    = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret    = unix.BPF_RET | unix.BPF_K
		offNr  = 0
		offArc = 4
		offA0  = 16 // low half of args[0], little-endian
	)
	prog := []unix.SockFilter{
		{Code: ldw, K: offArc},                                     // 0
		{Code: jeq, Jt: 0, Jf: 7, K: arch},                         // 1: else allow
		{Code: ldw, K: offNr},                                      // 2
		{Code: jeq, Jt: 0, Jf: 2, K: unix.SYS_PRCTL},               // 3: else 6
		{Code: ldw, K: offA0},                                      // 4
		{Code: jeq, Jt: 4, Jf: 3, K: unix.PR_SET_SECCOMP},          // 5: notify, else allow
		{Code: jeq, Jt: 0, Jf: 2, K: unix.SYS_SECCOMP},             // 6: else allow
		{Code: ldw, K: offA0},                                      // 7
		{Code: jeq, Jt: 1, Jf: 0, K: unix.SECCOMP_SET_MODE_FILTER}, // 8: notify, else allow
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},                     // 9
		{Code: ret, K: unix.SECCOMP_RET_USER_NOTIF},                // 10
	}
	// The trap needs no_new_privs, here a thread's own.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("seccomp trap: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return nil, fmt.Errorf("seccomp trap: %w", errno)
	}
	return os.NewFile(fd, "seccomp-listener"), nil
}

// capture is what the trap caught, or why not.
type capture struct {
	f   *Filter
	err error
}

// The kernel's struct seccomp_notif and seccomp_notif_resp.
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// serveTrap answers the trapped calls until the trapped thread is gone,
// and returns the filter that was to be loaded.
func serveTrap(listener *os.File) (r capture) {
	defer listener.Close()
	fd := int(listener.Fd())
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			r.err = err
			return r
		}
		if pfd[0].Revents&unix.POLLIN == 0 {
			return r // the thread ended
		}
		var n seccompNotif
		if err := ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&n)); err != nil {
			if err == unix.EINTR || err == unix.ENOENT {
				continue
			}
			r.err = err
			return r
		}
		resp := seccompNotifResp{ID: n.ID}
		// prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog) or
		// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog).
		flags, ptr := uint(0), n.Args[2]
		if n.Nr == unix.SYS_SECCOMP {
			flags = uint(n.Args[1])
		}
		if ptr == 0 {
			// libseccomp's probes of a flag (no program): the kernel answers.
			resp.Flags = unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE
		} else if f, err := readFilter(ptr); err != nil {
			r.err, resp.Error = err, -int32(unix.EFAULT)
		} else {
			f.Flags = flags
			r.f = f
		}
		if err := ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp)); err != nil && err != unix.ENOENT {
			r.err = err
		}
	}
}

func ioctl(fd int, req uint, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

// readFilter reads a struct sock_fprog, and its program, at addr in our
// memory (by process_vm_readv: the address comes from the kernel, as a
// number).
func readFilter(addr uint64) (*Filter, error) {
	var fp struct {
		Len uint16
		_   [6]byte
		Ptr uint64
	}
	if err := readMem(addr, unsafe.Slice((*byte)(unsafe.Pointer(&fp)), unsafe.Sizeof(fp))); err != nil {
		return nil, err
	}
	if fp.Len == 0 || fp.Ptr == 0 {
		return nil, errors.New("seccomp: empty filter")
	}
	prog := make([]unix.SockFilter, fp.Len)
	if err := readMem(fp.Ptr, unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(prog)*8)); err != nil {
		return nil, err
	}
	return &Filter{Prog: prog}, nil
}

func readMem(addr uint64, buf []byte) error {
	local := []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	n, err := unix.ProcessVMReadv(os.Getpid(), local, remote, 0)
	if err != nil {
		return fmt.Errorf("seccomp: read the filter: %w", err)
	}
	if n != len(buf) {
		return errors.New("seccomp: short read of the filter")
	}
	return nil
}
