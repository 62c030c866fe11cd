// Package nsjoin joins the namespace holder's user and mount namespaces
// before the Go runtime starts. setns(2) into a user namespace is refused to
// multi-threaded processes, so it must happen in a C constructor, as
// libcontainer's nsenter and Podman's rootless join do. It is inert unless
// the environment variable named by EnvPID is set; it then removes that
// variable so children of the joined process do not try to join again.
package nsjoin

/*
#cgo CFLAGS: -Wall
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int moss_join_one(const char *pid, const char *ns, int type) {
	char path[64];
	snprintf(path, sizeof(path), "/proc/%s/ns/%s", pid, ns);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "moss: open %s: %s: the namespace holder is gone; run the command again to start a new one\n", path, strerror(errno));
		return -1;
	}
	if (setns(fd, type) < 0) {
		fprintf(stderr, "moss: join %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

__attribute__((constructor)) static void moss_nsjoin(void) {
	const char *pid = getenv("_MOSS_NSJOIN_PID");
	if (pid == NULL || *pid == '\0')
		return;
	char copy[32];
	snprintf(copy, sizeof(copy), "%s", pid);
	unsetenv("_MOSS_NSJOIN_PID");
	if (moss_join_one(copy, "user", CLONE_NEWUSER) < 0 || moss_join_one(copy, "mnt", CLONE_NEWNS) < 0)
		_exit(125);
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
		fprintf(stderr, "moss: become root in the user namespace: %s\n", strerror(errno));
		_exit(125);
	}
}
*/
import "C"

// EnvPID names the environment variable holding the PID whose user and mount
// namespaces a freshly executed moss joins.
const EnvPID = "_MOSS_NSJOIN_PID"
