// The command lookup of libcontainer's init (Go's exec.LookPath, with the
// PATH of the command's environment) and its messages, for the C code
// that executes a command in a container in libcontainer's place: the warm
// stub and the fast exec. Everything is static: each file of the package
// that includes it has its own copy.
#ifndef MOSS_LOOKPATH_H
#define MOSS_LOOKPATH_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// moss_strerror is errno's text as Go's syscall package has it: the C
// library's (untranslated, and without the locale's locks: the fast
// exec's child shares the memory of a multi-threaded process), lower-cased
// at its start.
static const char *moss_strerror(int e, char *buf, size_t n) {
	const char *d = strerrordesc_np(e);
	if (d) snprintf(buf, n, "%s", d);
	else snprintf(buf, n, "errno %d", e);
	if (buf[0] >= 'A' && buf[0] <= 'Z') buf[0] += 'a' - 'A';
	return buf;
}

// moss_findexec is Go's findExecutable: 0, or the errno that says why not.
static int moss_findexec(const char *path, int *stat_failed) {
	struct stat st;
	*stat_failed = 0;
	if (stat(path, &st) < 0) {
		*stat_failed = 1;
		return errno;
	}
	if (S_ISDIR(st.st_mode)) return EISDIR;
	if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0) return 0;
	int e = errno;
	if (e != ENOSYS && e != EPERM) return e;
	return (st.st_mode & 0111) ? 0 : EACCES;
}

// moss_lookpath finds file as exec.LookPath does with the PATH of envp.
// It returns 0 with the path in *path (which may be file itself, or
// buf), or the exit code docker gives (127 when there is no such
// command, 126 when it cannot be run) with the message in msg.
static int moss_lookpath(const char *file, char *const envp[], char *buf, size_t bufn, const char **path, char *msg, size_t msgn) {
	char ebuf[256];
	int stat_failed;
	if (strchr(file, '/')) {
		int e = moss_findexec(file, &stat_failed);
		if (e) {
			if (stat_failed) snprintf(msg, msgn, "exec: \"%s\": stat %s: %s", file, file, moss_strerror(e, ebuf, sizeof(ebuf)));
			else snprintf(msg, msgn, "exec: \"%s\": %s", file, moss_strerror(e, ebuf, sizeof(ebuf)));
			return e == ENOENT ? 127 : 126;
		}
		*path = file;
		return 0;
	}
	const char *pathenv = "";
	for (char *const *e = envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0) pathenv = *e + 5;
	// Go: an empty PATH has no directories; an empty entry is ".".
	for (const char *d = pathenv; *pathenv;) {
		const char *end = strchr(d, ':');
		size_t dn = end ? (size_t)(end - d) : strlen(d);
		const char *dir = d;
		if (dn == 0) dir = ".", dn = 1;
		if (dn + strlen(file) + 2 <= bufn) {
			memcpy(buf, dir, dn);
			buf[dn] = '/';
			strcpy(buf + dn + 1, file);
			if (moss_findexec(buf, &stat_failed) == 0) {
				if (buf[0] != '/') {
					snprintf(msg, msgn, "exec: \"%s\": cannot run executable found relative to current directory", file);
					return 126;
				}
				*path = buf;
				return 0;
			}
		}
		if (!end) break;
		d = end + 1;
	}
	snprintf(msg, msgn, "exec: \"%s\": executable file not found in $PATH", file);
	return 127;
}

#endif
