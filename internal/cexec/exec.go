package cexec

/*
#cgo CFLAGS: -Wall -O2
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lookpath.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#endif
#ifndef PR_CAP_AMBIENT_CLEAR_ALL
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#define MOSS_KEYCTL_JOIN_SESSION_KEYRING 1

struct moss_rlimit { int resource; uint64_t soft, hard; };

// moss_exec is a process to start, everything resolved by the Go side.
struct moss_exec {
	int nns;
	int *ns_fd;        // joined in this order by the child
	int *ns_type;
	const char **ns_name;
	int pidns_fd;      // the container's PID namespace, for the fork; -1 none
	char **argv, **envp;
	const char *cwd;
	uint32_t uid, gid;
	int ngroups;       // -1: no setgroups (rootless)
	gid_t *groups;
	uint32_t caps[4][2]; // bounding, effective, permitted, inheritable
	int last_cap;
	int nnp;
	int umask;         // -1: unchanged
	const char *keyring;
	int nrlimits;
	struct moss_rlimit *rlimits;
	unsigned short seccomp_len; // 0: no filter
	struct sock_filter *seccomp;
	unsigned int seccomp_flags;
	int errfd;
	int stdio[3];      // the process's standard streams
	int ncgroups;
	const char **cgroups; // cgroup.procs files to join
	int pid;           // the process, or -errno (set by the first child)
	void *child_stack; // the process's stack
};

// The descriptor limit the process started with, before the Go runtime
// raised it: libcontainer's init is started with it (os/exec puts it
// back for children), so its exec's process has it.
static struct rlimit moss_nofile;
static int moss_nofile_ok;

__attribute__((constructor)) static void moss_record_nofile(void) {
	moss_nofile_ok = getrlimit(RLIMIT_NOFILE, &moss_nofile) == 0;
}

__attribute__((noreturn, format(printf, 2, 3))) static void child_fail(int fd, const char *fmt, ...) {
	char msg[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(msg) - 1) n = sizeof(msg) - 1;
	if (n > 0) {
		ssize_t w = write(fd, msg, n);
		(void)w;
	}
	_exit(1);
}

#define FAIL(...) child_fail(e->errfd, __VA_ARGS__)
#define ERR(x) moss_strerror((x), ebuf, sizeof(ebuf))

static int load_seccomp(struct moss_exec *e) {
	struct sock_fprog prog = { .len = e->seccomp_len, .filter = e->seccomp };
	// As libcontainer: prctl when there are no flags.
	if (e->seccomp_flags == 0) return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, e->seccomp_flags, &prog);
}

// cloexec_from marks every descriptor from 3 close-on-exec, as
// libcontainer's CloseExecFrom: close_range where the kernel has it, else
// by /proc/self/fd.
static int cloexec_from3(void) {
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
	int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) return -1;
	char buf[4096];
	for (;;) {
		long n = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
		if (n < 0) return -1;
		if (n == 0) break;
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			off += d->d_reclen;
			int fd = atoi(d->d_name);
			if (d->d_name[0] < '0' || d->d_name[0] > '9' || fd < 3 || fd == dfd) continue;
			fcntl(fd, F_SETFD, FD_CLOEXEC);
		}
	}
	close(dfd);
	return 0;
}

static int has_cap(uint32_t set[2], int c) { return (set[c / 32] >> (c % 32)) & 1; }

// moss_exec_child is libcontainer's setns process from the fork on: the
// joins of nsexec's stages, then its setns init. It never returns.
__attribute__((noreturn)) static void moss_exec_child(struct moss_exec *e) {
	char ebuf[256], buf[4096], msg[8192], wd[4096];
	for (int fd = 0; fd < 3; fd++) // out of the way of the others first
		if (e->stdio[fd] < 3 && e->stdio[fd] != fd && (e->stdio[fd] = fcntl(e->stdio[fd], F_DUPFD_CLOEXEC, 3)) < 0)
			FAIL("set up the standard streams: %s", ERR(errno));
	for (int fd = 0; fd < 3; fd++)
		if (e->stdio[fd] != fd && dup2(e->stdio[fd], fd) < 0) FAIL("set up the standard streams: %s", ERR(errno));
	// Into the container's cgroups, as libcontainer puts its init ("0" is
	// the writer).
	for (int i = 0; i < e->ncgroups; i++) {
		int fd = open(e->cgroups[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) < 0)
			FAIL("join the container's cgroup %s: %s", e->cgroups[i], ERR(errno));
		close(fd);
	}
	// Default actions for what the parent catches; all signals stay
	// blocked until the exec.
	for (int s = 1; s < NSIG; s++) {
		struct sigaction sa;
		if (sigaction(s, NULL, &sa) < 0 || sa.sa_handler == SIG_IGN || sa.sa_handler == SIG_DFL) continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(s, &sa, NULL);
	}
	if (moss_nofile_ok) setrlimit(RLIMIT_NOFILE, &moss_nofile);
	for (int i = 0; i < e->nrlimits; i++) {
		struct rlimit rl = { .rlim_cur = e->rlimits[i].soft, .rlim_max = e->rlimits[i].hard };
		if (setrlimit(e->rlimits[i].resource, &rl) < 0)
			FAIL("error setting rlimits for ready process: error setting rlimit type %d: %s", e->rlimits[i].resource, ERR(errno));
	}
	for (int i = 0; i < e->nns; i++)
		if (setns(e->ns_fd[i], e->ns_type[i]) < 0)
			FAIL("failed to setns into %s namespace: %s", e->ns_name[i], ERR(errno));
	// nsexec's last stage: a session of its own, root in the namespace.
	if (setsid() < 0) FAIL("setsid failed: %s", ERR(errno));
	if (syscall(SYS_setuid, 0) < 0) FAIL("setuid failed: %s", ERR(errno));
	if (syscall(SYS_setgid, 0) < 0) FAIL("setgid failed: %s", ERR(errno));
	// The setns init.
	if (e->keyring && syscall(SYS_keyctl, MOSS_KEYCTL_JOIN_SESSION_KEYRING, e->keyring) < 0 && errno != ENOSYS)
		FAIL("unable to join session keyring: unable to create session key: %s", ERR(errno));
	if (e->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) FAIL("%s", ERR(errno));
	if (e->umask >= 0) umask(e->umask);
	// libcontainer resets the CPU affinity of an exec's process: all CPUs
	// (the cgroup's cpuset masks the rest).
	{
		static unsigned char all[64 * 1024 / 8];
		memset(all, 0xff, sizeof(all));
		syscall(SYS_sched_setaffinity, 0, sizeof(all), all);
	}
	if (e->seccomp_len && !e->nnp && load_seccomp(e) < 0)
		FAIL("error loading seccomp filter into kernel: error loading seccomp filter: %s", ERR(errno));
	// finalizeNamespace.
	if (cloexec_from3() < 0) FAIL("error closing exec fds: %s", ERR(errno));
	int chdir_later = 0;
	if (e->cwd[0] && chdir(e->cwd) < 0) {
		if (errno != EACCES && errno != EPERM)
			FAIL("chdir to cwd (\"%s\") set in config.json failed: %s", e->cwd, ERR(errno));
		chdir_later = 1; // perhaps the container's user may
	}
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0) FAIL("unable to apply bounding set: %s", ERR(errno));
	if (data[0].effective & (1u << CAP_SETPCAP)) {
		for (int c = 0; c <= e->last_cap; c++)
			if (!has_cap(e->caps[0], c) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
				FAIL("unable to apply bounding set: %s", ERR(errno));
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) FAIL("unable to set keep caps: %s", ERR(errno));
	// setupUser: the standard streams owned by the user (not /dev/null).
	static const char *stdnames[] = { "/dev/stdin", "/dev/stdout", "/dev/stderr" };
	for (int fd = 0; fd < 3; fd++) {
		struct stat st;
		if (fstat(fd, &st) < 0) FAIL("unable to setup user: fstat %s: %s", stdnames[fd], ERR(errno));
		if (st.st_uid == e->uid || (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3))) continue;
		if (fchown(fd, e->uid, -1) < 0 && errno != EPERM && errno != EROFS)
			FAIL("unable to setup user: chown %s: %s", stdnames[fd], ERR(errno));
	}
	if (e->ngroups >= 0) {
		int deny = 0, fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			deny = n >= 4 && strncmp(buf, "deny", 4) == 0;
		} else if (errno != ENOENT) {
			FAIL("unable to setup user: open /proc/self/setgroups: %s", ERR(errno));
		}
		if (!deny && syscall(SYS_setgroups, e->ngroups, e->groups) < 0)
			FAIL("unable to setup user: setgroups: %s", ERR(errno));
	}
	if (syscall(SYS_setgid, e->gid) < 0) {
		if (errno == EINVAL) FAIL("unable to setup user: cannot setgid to unmapped gid %u in user namespace", e->gid);
		FAIL("unable to setup user: %s", ERR(errno));
	}
	if (syscall(SYS_setuid, e->uid) < 0) {
		if (errno == EINVAL) FAIL("unable to setup user: cannot setuid to unmapped uid %u in user namespace", e->uid);
		FAIL("unable to setup user: %s", ERR(errno));
	}
	if (chdir_later && chdir(e->cwd) < 0)
		FAIL("chdir to cwd (\"%s\") set in config.json failed: %s", e->cwd, ERR(errno));
	// The working directory must be inside the container's root: the
	// kernel's answer starts with "(unreachable)" when it is not.
	wd[0] = 0;
	if (syscall(SYS_getcwd, wd, sizeof(wd)) < 0 && errno != ENOENT)
		FAIL("failed to verify if current working directory is safe: %s", ERR(errno));
	if (wd[0] != '/')
		FAIL("current working directory is outside of container mount namespace root -- possible container breakout detected");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) FAIL("unable to clear keep caps: %s", ERR(errno));
	for (int i = 0; i < 2; i++) {
		data[i].effective = e->caps[1][i];
		data[i].permitted = e->caps[2][i];
		data[i].inheritable = e->caps[3][i];
	}
	if (syscall(SYS_capset, &hdr, data) < 0) FAIL("unable to apply caps: can't apply capabilities: %s", ERR(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		FAIL("unable to apply caps: %s", ERR(errno));
	const char *path;
	if (moss_lookpath(e->argv[0], e->envp, buf, sizeof(buf), &path, msg, sizeof(msg))) FAIL("%s", msg);
	if (e->seccomp_len && e->nnp && load_seccomp(e) < 0)
		FAIL("unable to init seccomp: error loading seccomp filter into kernel: error loading seccomp filter: %s", ERR(errno));
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(path, e->argv, e->envp);
	FAIL("exec %s: %s", path, ERR(errno));
}

static int moss_exec_child_fn(void *arg) { moss_exec_child(arg); }

#define MOSS_CHILD_STACK (256 << 10)

// The first child enters the container's PID namespace for its children
// (unprivileged, it could not come back: the caller's thread is left as
// it was) and starts the process as the caller's child.
static int moss_exec_first_fn(void *arg) {
	struct moss_exec *e = arg;
	if (e->pidns_fd >= 0 && setns(e->pidns_fd, CLONE_NEWPID) < 0) {
		e->pid = -errno;
		_exit(0);
	}
	char *stack = (char *)e->child_stack;
	pid_t pid = clone(moss_exec_child_fn, stack + MOSS_CHILD_STACK, CLONE_VM | CLONE_VFORK | CLONE_PARENT | SIGCHLD, e);
	e->pid = pid < 0 ? -errno : pid;
	_exit(0);
}

// moss_exec_spawn starts the process and returns its PID, once it has
// executed its command or ended; or -errno. Its children share the memory
// of the caller until their exec or end (vfork's CLONE_VM|CLONE_VFORK,
// each with a stack of its own: a fork copied the page tables of the
// caller, 0.6 ms for an exec helper, more for the agent) and nothing
// else: descriptors, file system context and signal actions are theirs.
static int moss_exec_spawn(struct moss_exec *e) {
	char *stacks = mmap(NULL, 2 * MOSS_CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stacks == MAP_FAILED) return -errno;
	e->child_stack = stacks + MOSS_CHILD_STACK;
	e->pid = -ECHILD;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	// The process is not dumpable from its birth in the container's PID
	// namespace to its exec, while it holds the caller's memory and
	// descriptors: the container's processes cannot trace it or open its
	// /proc files (libcontainer's nsexec does the same). Dumpable is the
	// memory's, shared with the children: the caller is not dumpable
	// either until then.
	int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	pid_t first = clone(moss_exec_first_fn, stacks + MOSS_CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, e);
	int rc = first < 0 ? -errno : e->pid;
	if (first > 0) {
		int st;
		while (waitpid(first, &st, 0) < 0 && errno == EINTR) {}
	}
	if (dumpable > 0) prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	munmap(stacks, 2 * MOSS_CHILD_STACK);
	return rc;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Process is an exec's process for Start, with what libcontainer's setns
// init would give it already resolved.
type Process struct {
	// Namespaces are joined in their order; a PID namespace among them is
	// entered by the fork.
	Namespaces []Namespace
	Args, Env  []string
	Cwd        string
	UID, GID   uint32
	Groups     []uint32
	// SetGroups says the groups are set (not for a rootless EUID, as
	// libcontainer).
	SetGroups bool
	// Bounding, Effective, Permitted and Inheritable are capability sets.
	Bounding, Effective, Permitted, Inheritable CapSet
	// LastCap is the kernel's last capability.
	LastCap         int
	NoNewPrivileges bool
	Umask           *uint32
	// SessionKeyring is the session keyring to join, if any.
	SessionKeyring string
	Rlimits        []Rlimit
	Seccomp        *Filter
	// Cgroups are the directories of cgroups to join.
	Cgroups []string
	// Stdin, Stdout and Stderr are the standard streams; nil is
	// /dev/null (read-only for stdin, write-only for the others, as
	// exec.Cmd opens it).
	Stdin, Stdout, Stderr *os.File
}

// Namespace is one to join: its CLONE_NEW* type, its name in messages,
// and a descriptor of it.
type Namespace struct {
	Type int
	Name string
	Fd   int
}

// CapSet is a set of capabilities as the kernel has it: bit n of word
// n/32 for capability n.
type CapSet [2]uint32

// Add adds capability n.
func (s *CapSet) Add(n int) { s[n/32] |= 1 << (n % 32) }

// Rlimit is a resource limit to set.
type Rlimit struct {
	Type       int
	Soft, Hard uint64
}

// Start starts p and returns its PID once it runs its command, or the
// error that stopped it, in libcontainer's words. The process is a child
// of the caller's process.
func Start(p *Process) (int, error) {
	if len(p.Args) == 0 {
		return 0, errors.New("no command")
	}
	std, done, err := Streams([3]*os.File{p.Stdin, p.Stdout, p.Stderr})
	if err != nil {
		return 0, err
	}
	defer done()
	errR, errW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer errR.Close()
	pid, err := spawn(p, std, errW)
	errW.Close()
	if err != nil {
		return 0, err
	}
	// The child closes its end by its exec; before that it says why not.
	msg, _ := io.ReadAll(errR)
	if len(msg) > 0 {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
		return 0, errors.New(string(msg))
	}
	return pid, nil
}

// Streams is std with /dev/null for its nil streams, opened as exec.Cmd
// opens it: read-only for stdin, write-only for the others; done closes
// what it opened.
func Streams(std [3]*os.File) (out [3]*os.File, done func(), err error) {
	var opened []*os.File
	done = func() {
		for _, f := range opened {
			f.Close()
		}
	}
	for i, f := range std {
		if f == nil {
			mode := os.O_WRONLY
			if i == 0 {
				mode = os.O_RDONLY
			}
			if f, err = os.OpenFile(os.DevNull, mode, 0); err != nil {
				done()
				return out, nil, err
			}
			opened = append(opened, f)
		}
		out[i] = f
	}
	return out, done, nil
}

var spawnMu sync.Mutex

// cmem holds C copies of Go values for the child, freed together.
type cmem []unsafe.Pointer

func (m *cmem) alloc(n int) unsafe.Pointer {
	p := C.calloc(1, C.size_t(n))
	*m = append(*m, p)
	return p
}

func (m *cmem) str(s string) *C.char {
	p := C.CString(s)
	*m = append(*m, unsafe.Pointer(p))
	return p
}

func (m *cmem) strs(list []string) **C.char {
	out := unsafe.Slice((**C.char)(m.alloc((len(list)+1)*int(unsafe.Sizeof(uintptr(0))))), len(list)+1)
	for i, s := range list {
		out[i] = m.str(s)
	}
	return &out[0]
}

func (m *cmem) free() {
	for _, p := range *m {
		C.free(p)
	}
}

func spawn(p *Process, std [3]*os.File, errW *os.File) (int, error) {
	var m cmem
	defer m.free()
	e := (*C.struct_moss_exec)(m.alloc(int(unsafe.Sizeof(C.struct_moss_exec{}))))
	e.pidns_fd = -1
	var joined []Namespace
	for _, ns := range p.Namespaces {
		if ns.Type == unix.CLONE_NEWPID {
			e.pidns_fd = C.int(ns.Fd)
			continue
		}
		joined = append(joined, ns)
	}
	e.nns = C.int(len(joined))
	if len(joined) > 0 {
		fds := unsafe.Slice((*C.int)(m.alloc(len(joined)*4)), len(joined))
		types := unsafe.Slice((*C.int)(m.alloc(len(joined)*4)), len(joined))
		names := unsafe.Slice((**C.char)(m.alloc(len(joined)*8)), len(joined))
		for i, ns := range joined {
			fds[i], types[i], names[i] = C.int(ns.Fd), C.int(ns.Type), m.str(ns.Name)
		}
		e.ns_fd, e.ns_type, e.ns_name = &fds[0], &types[0], &names[0]
	}
	e.argv, e.envp = m.strs(p.Args), m.strs(p.Env)
	e.cwd = m.str(p.Cwd)
	e.uid, e.gid = C.uint32_t(p.UID), C.uint32_t(p.GID)
	e.ngroups = -1
	if p.SetGroups {
		e.ngroups = C.int(len(p.Groups))
		if len(p.Groups) > 0 {
			gs := unsafe.Slice((*C.gid_t)(m.alloc(len(p.Groups)*4)), len(p.Groups))
			for i, g := range p.Groups {
				gs[i] = C.gid_t(g)
			}
			e.groups = &gs[0]
		}
	}
	for i, set := range []CapSet{p.Bounding, p.Effective, p.Permitted, p.Inheritable} {
		e.caps[i][0], e.caps[i][1] = C.uint32_t(set[0]), C.uint32_t(set[1])
	}
	e.last_cap = C.int(p.LastCap)
	if p.NoNewPrivileges {
		e.nnp = 1
	}
	e.umask = -1
	if p.Umask != nil {
		e.umask = C.int(*p.Umask)
	}
	if p.SessionKeyring != "" {
		e.keyring = m.str(p.SessionKeyring)
	}
	if n := len(p.Rlimits); n > 0 {
		rl := unsafe.Slice((*C.struct_moss_rlimit)(m.alloc(n*int(unsafe.Sizeof(C.struct_moss_rlimit{})))), n)
		for i, r := range p.Rlimits {
			rl[i].resource, rl[i].soft, rl[i].hard = C.int(r.Type), C.uint64_t(r.Soft), C.uint64_t(r.Hard)
		}
		e.nrlimits, e.rlimits = C.int(n), &rl[0]
	}
	if f := p.Seccomp; f != nil && len(f.Prog) > 0 {
		if len(f.Prog) > 0xffff {
			return 0, errors.New("seccomp filter too long")
		}
		prog := unsafe.Slice((*C.struct_sock_filter)(m.alloc(len(f.Prog)*8)), len(f.Prog))
		for i, ins := range f.Prog {
			prog[i].code, prog[i].jt, prog[i].jf, prog[i].k = C.__u16(ins.Code), C.__u8(ins.Jt), C.__u8(ins.Jf), C.__u32(ins.K)
		}
		e.seccomp_len, e.seccomp, e.seccomp_flags = C.ushort(len(f.Prog)), &prog[0], C.uint(f.Flags)
	}
	e.errfd = C.int(errW.Fd())
	for i, f := range std {
		e.stdio[i] = C.int(f.Fd())
	}
	if n := len(p.Cgroups); n > 0 {
		procs := unsafe.Slice((**C.char)(m.alloc(n*8)), n)
		for i, dir := range p.Cgroups {
			procs[i] = m.str(filepath.Join(dir, "cgroup.procs"))
		}
		e.ncgroups, e.cgroups = C.int(n), &procs[0]
	}

	// One at a time: a spawn makes the process not dumpable and back, and
	// another's child must not be born in between.
	spawnMu.Lock()
	rc := int(C.moss_exec_spawn(e))
	spawnMu.Unlock()
	runtime.KeepAlive(p)
	if rc < 0 {
		return 0, fmt.Errorf("start the process: %w", syscall.Errno(-rc))
	}
	return rc, nil
}
