// The warm stub is the first process of a warm container: a container
// that the agent creates in advance, with everything libcontainer does for
// a start (namespaces, root file system, mounts, cgroups, capabilities,
// seccomp) already done, for the next `run` of the same image and options.
// libcontainer's init executes this binary (passed as descriptor 3) as the
// container's PID 1; it waits on descriptor 4 for the command's arguments
// and environment, and executes the command in its own place, so the
// container's PID 1 is the command, as after a cold start. The lookup of
// the command follows libcontainer's (Go's exec.LookPath, with the PATH of
// the command's environment) and reports failures in its words; a
// successful exec closes descriptor 4 (close-on-exec), which is how the
// shim knows. It is a C constructor, running before the Go runtime would
// start, and must not depend on anything.

package cexec

/*
#cgo CFLAGS: -Wall -O2
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lookpath.h"

// Env is the variable that makes the binary the stub; Ctl its descriptor.
#define MOSS_STUB_ENV "_MOSS_WARM_STUB"
#define MOSS_STUB_CTL 4

static int stub_readall(int fd, void *buf, size_t n) {
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) return -1;
		got += (size_t)r;
	}
	return 0;
}

static void stub_fail(const char *msg, int code) {
	size_t n = strlen(msg);
	uint32_t len = (uint32_t)n;
	// One message: its length, then the text.
	char *out = malloc(4 + n);
	if (out) {
		memcpy(out, &len, 4);
		memcpy(out + 4, msg, n);
		ssize_t w = write(MOSS_STUB_CTL, out, 4 + n);
		(void)w;
	}
	_exit(code);
}

__attribute__((constructor)) static void moss_warm_stub(void) {
	if (!getenv(MOSS_STUB_ENV)) return;
	// This binary (3) and the control socket (4) do not reach the command.
	fcntl(3, F_SETFD, FD_CLOEXEC);
	fcntl(MOSS_STUB_CTL, F_SETFD, FD_CLOEXEC);
	uint32_t hdr[3]; // total length, argc, envc
	if (stub_readall(MOSS_STUB_CTL, hdr, sizeof(hdr)) < 0) _exit(0); // discarded
	if (hdr[0] > (64u << 20) || hdr[1] == 0 || hdr[1] > (1u << 20) || hdr[2] > (1u << 20)) stub_fail("bad process message", 126);
	char *data = malloc(hdr[0] + 1);
	char **argv = calloc(hdr[1] + 1, sizeof(char *));
	char **envp = calloc(hdr[2] + 1, sizeof(char *));
	if (!data || !argv || !envp) stub_fail("out of memory", 126);
	if (stub_readall(MOSS_STUB_CTL, data, hdr[0]) < 0) _exit(0);
	data[hdr[0]] = 0;
	// NUL-terminated strings: the arguments, then the environment.
	char *p = data, *end = data + hdr[0];
	for (uint32_t i = 0; i < hdr[1] + hdr[2]; i++) {
		if (p >= end) stub_fail("bad process message", 126);
		if (i < hdr[1]) argv[i] = p; else envp[i - hdr[1]] = p;
		p += strlen(p) + 1;
	}
	char msg[8192], buf[4096], ebuf[256];
	const char *path;
	int code = moss_lookpath(argv[0], envp, buf, sizeof(buf), &path, msg, sizeof(msg));
	if (code) stub_fail(msg, code);
	execve(path, argv, envp);
	int e = errno;
	snprintf(msg, sizeof(msg), "exec %s: %s", path, moss_strerror(e, ebuf, sizeof(ebuf)));
	stub_fail(msg, e == ENOENT ? 127 : 126);
}
*/
import "C"

// StubEnv, set in a warm container's first process, makes the binary the
// stub.
const StubEnv = "_MOSS_WARM_STUB"
