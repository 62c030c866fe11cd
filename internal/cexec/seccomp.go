package cexec

/*
#cgo CFLAGS: -Wall -O2
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

// moss_trap is the answering side of the trap: what the trapped thread
// was to load.
struct moss_trap {
	int fd; // the listener
	int ctl[2]; // carries it to the thread
	int started;
	pthread_t thread;
	int err; // errno of a failure
	unsigned int flags;
	unsigned short len;
	struct sock_filter *prog; // malloc'd
};

static int moss_readmem(void *dst, uint64_t addr, size_t n) {
	struct iovec local = { .iov_base = dst, .iov_len = n };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = n };
	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n ? 0 : -1;
}

// moss_trap_serve answers the trapped calls until the trapped thread is
// gone: a load is answered as done, with its program copied; a probe of
// a flag (no program, libseccomp's) is left to the kernel.
static void *moss_trap_serve(void *arg) {
	struct moss_trap *t = arg;
	int fd;
	while (read(t->ctl[0], &fd, sizeof(fd)) < 0 && errno == EINTR) {}
	if (fd < 0) return NULL;
	t->fd = fd;
	for (;;) {
		struct pollfd p = { .fd = t->fd, .events = POLLIN };
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR) continue;
			t->err = errno;
			return NULL;
		}
		if (!(p.revents & POLLIN)) return NULL;
		struct seccomp_notif n;
		memset(&n, 0, sizeof(n));
		if (ioctl(t->fd, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) {
			if (errno == EINTR || errno == ENOENT) continue;
			t->err = errno;
			return NULL;
		}
		struct seccomp_notif_resp r;
		memset(&r, 0, sizeof(r));
		r.id = n.id;
		// prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog) or
		// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog).
		uint64_t addr = n.data.args[2];
		struct sock_fprog fp;
		if (addr == 0) {
			r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		} else if (moss_readmem(&fp, addr, sizeof(fp)) < 0 || fp.len == 0 || !fp.filter) {
			t->err = EFAULT;
			r.error = -EFAULT;
		} else {
			struct sock_filter *prog = malloc(fp.len * sizeof(*prog));
			if (!prog || moss_readmem(prog, (uintptr_t)fp.filter, fp.len * sizeof(*prog)) < 0) {
				free(prog);
				t->err = prog ? EFAULT : ENOMEM;
				r.error = -t->err;
			} else {
				free(t->prog);
				t->prog = prog;
				t->len = fp.len;
				t->flags = n.data.nr == SYS_seccomp ? (unsigned int)n.data.args[1] : 0;
			}
		}
		ioctl(t->fd, SECCOMP_IOCTL_NOTIF_SEND, &r); // ENOENT: interrupted, and asked again
	}
}

// moss_trap_start starts the answering thread before the trap is set: a
// thread inherits its creator's filters, and one with the trap would keep
// the trap in use (no end to wait for). moss_trap_listen gives it the
// listener (or -1: no trap).
static int moss_trap_start(struct moss_trap *t) {
	t->fd = -1;
	if (pipe2(t->ctl, O_CLOEXEC) < 0) return errno;
	int rc = pthread_create(&t->thread, NULL, moss_trap_serve, t);
	if (rc != 0) {
		close(t->ctl[0]);
		close(t->ctl[1]);
	}
	return rc;
}

static void moss_trap_listen(struct moss_trap *t, int fd) {
	ssize_t w = write(t->ctl[1], &fd, sizeof(fd));
	(void)w;
}

static void moss_trap_join(struct moss_trap *t) {
	pthread_join(t->thread, NULL);
	close(t->ctl[0]);
	close(t->ctl[1]);
	if (t->fd >= 0) close(t->fd);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
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
	// The trapped calls are answered by a C thread: the trapped one may
	// be in a raw system call (libcontainer loads with flags so), which
	// keeps its P; a garbage collection then waits for that P, and no
	// goroutine would run to answer.
	t := (*C.struct_moss_trap)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_moss_trap{}))))
	defer C.free(unsafe.Pointer(t))
	compiled := make(chan error, 1)
	onThrowawayThread(func() {
		if rc := C.moss_trap_start(t); rc != 0 {
			compiled <- fmt.Errorf("seccomp trap: %w", syscall.Errno(rc))
			return
		}
		t.started = 1
		listener, err := installTrap(arch)
		if err != nil {
			C.moss_trap_listen(t, -1)
			compiled <- err
			return
		}
		C.moss_trap_listen(t, C.int(listener))
		_, err = seccomp.InitSeccomp(config)
		compiled <- err
	})
	err := <-compiled
	if t.started != 0 {
		C.moss_trap_join(t) // once the trapped thread has ended
	}
	defer C.free(unsafe.Pointer(t.prog))
	switch {
	case err != nil:
		return nil, err
	case t.err != 0:
		return nil, fmt.Errorf("seccomp trap: %w", syscall.Errno(t.err))
	case t.len == 0:
		return nil, errors.New("seccomp: the filter was not loaded")
	}
	prog := make([]unix.SockFilter, int(t.len))
	for i, ins := range unsafe.Slice(t.prog, int(t.len)) {
		prog[i] = unix.SockFilter{Code: uint16(ins.code), Jt: uint8(ins.jt), Jf: uint8(ins.jf), K: uint32(ins.k)}
	}
	return &Filter{Prog: prog, Flags: uint(t.flags)}, nil
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
func installTrap(arch uint32) (int, error) {
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
		return -1, fmt.Errorf("seccomp trap: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return -1, fmt.Errorf("seccomp trap: %w", errno)
	}
	return int(fd), nil
}
