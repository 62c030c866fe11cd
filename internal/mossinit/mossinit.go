// Package mossinit is the minimal init of `run --init`: PID 1 of the
// container, it starts the command, forwards the signals it gets to it and
// reaps every process that ends, and exits with the command's status. It
// is a C constructor of the binary (bind-mounted into the container as
// /sbin/moss-init), running before the Go runtime would start, so the init
// costs a few hundred KiB, not a Go process. It must not depend on anything.
package mossinit

/*
#cgo CFLAGS: -Wall -O2
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

// moss_init runs when the binary is executed as .../moss-init -- CMD ARGS.
__attribute__((constructor)) static void moss_init(int argc, char **argv) {
	if (argc < 1) return;
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	if (strcmp(base, "moss-init") != 0) return;
	int first = 1;
	if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
	if (first >= argc) {
		fprintf(stderr, "moss-init: usage: moss-init -- COMMAND [ARG...]\n");
		_exit(2);
	}
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t child = fork();
	if (child < 0) {
		perror("moss-init: fork");
		_exit(1);
	}
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[first], argv + first);
		int e = errno;
		fprintf(stderr, "moss-init: exec %s: %s\n", argv[first], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0) {
			if (errno == EINTR) continue;
			perror("moss-init: sigwaitinfo");
			_exit(1);
		}
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		int st;
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p != child) continue; // an orphan, reaped
			if (WIFSIGNALED(st)) _exit(128 + WTERMSIG(st));
			_exit(WEXITSTATUS(st));
		}
	}
}
*/
import "C"

// Name is the file name the init is executed by.
const Name = "moss-init"
