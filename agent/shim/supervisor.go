package shim

/*
The long-lived half of the shim, in C. Once its container runs, a shim only
copies output to the log and to attached clients, answers wait and kill, and
records the exit status. The Go half (libcontainer's create and start) hands
its descriptors over and re-executes the binary with _MOSS_SUPERVISOR set;
this constructor then runs before the Go runtime starts and never returns, so
the supervisor does not pay for the Go runtime and the package initialisers
of the whole binary (measured: 22 MiB RSS and 3.6 MiB private for a Go shim).

Descriptors (their numbers in MOSS_SV_FDS): stdout pipe, stderr pipe,
listening socket, log file, the write end of the container's stdin (-1
without -i); attached clients and waiters handed over are listed in the
environment too. An attached client that asked for stdin sends the
container's input on its connection after the request; with
MOSS_SV_STDINONCE=1 the container's stdin closes when that input ends.
With MOSS_SV_TTY=1 the container runs on a terminal: the "stdout pipe" and
the "stdin" are its master (there is no stderr), attached clients get the
raw output without frame headers, and resize requests set its size.
The request protocol is the Go client's (client.go): one JSON object per
connection, answered with one JSON line. A warm container's supervisor
(MOSS_SV_STUB, its stub's control socket) starts before the command: its
start request is followed by the stub's message, which it passes on.
*/

/*
#cgo CFLAGS: -Wall -O2
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <stdint.h>
#include <unistd.h>

#define SV_MAXC 256
#define SV_LINEMAX 16384
enum { C_REQ, C_ATTACH, C_WAIT };
struct sv_client { int id, fd, kind, out, err, in, ineof, len; char buf[1024]; };

static struct sv_client sv_c[SV_MAXC];
static int sv_nextid, sv_n, sv_pid, sv_exited, sv_code, sv_sig, sv_pipe_open[2] = {1, 1};
static int sv_fd[2] = {-1, -1}, sv_listen = -1, sv_logfd = -1, sv_maxfiles = 1;
static long long sv_logsize, sv_maxsize;
static const char *sv_logpath, *sv_bundle, *sv_socket, *sv_statedir, *sv_cgroups;
static char sv_finished[64];
// The container's stdin: input read from one client at a time, written as
// the pipe takes it (non-blocking, so that a container that does not read
// its input cannot stall its output).
static int sv_stdin = -1, sv_stdin_once, sv_stdin_closing, sv_tty;
// A warm container's stub, waiting for its command (-1: none, or given).
static int sv_stub = -1;
static char sv_inbuf[65536];
static size_t sv_inlen, sv_inoff;

// sv_timeout bounds writes to an attached client, so a stalled client
// cannot stall the log.
static void sv_timeout(int fd) {
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void sv_add(int fd, int kind, int out, int err, int in) {
	if (sv_n >= SV_MAXC) { close(fd); return; }
	struct sv_client *c = &sv_c[sv_n++];
	memset(c, 0, sizeof(*c));
	c->id = ++sv_nextid; c->fd = fd; c->kind = kind; c->out = out; c->err = err; c->in = in;
	if (kind == C_ATTACH) sv_timeout(fd);
}

static void sv_stdin_close(void) {
	if (sv_stdin >= 0) close(sv_stdin);
	sv_stdin = -1;
	sv_inlen = sv_inoff = 0;
}

// sv_stdin_flush writes what the pipe takes of the pending input.
static void sv_stdin_flush(void) {
	while (sv_stdin >= 0 && sv_inlen > 0) {
		ssize_t w = write(sv_stdin, sv_inbuf + sv_inoff, sv_inlen);
		if (w < 0) {
			if (errno == EINTR) continue;
			if (errno == EAGAIN) return;
			sv_stdin_close(); // the container closed its stdin or ended
			return;
		}
		sv_inoff += w; sv_inlen -= w;
	}
	sv_inoff = 0;
	if (sv_stdin_closing) sv_stdin_close();
}

static void sv_drop(int i) {
	close(sv_c[i].fd);
	sv_c[i] = sv_c[--sv_n];
}

static int sv_writeall(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) { if (errno == EINTR) continue; return -1; }
		p += w; n -= w;
	}
	return 0;
}

static void sv_now(char *out, size_t n) {
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t l = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + l, n - l, ".%09ldZ", ts.tv_nsec);
}

static void sv_rotate(void) {
	char from[4200], to[4200];
	close(sv_logfd);
	if (sv_maxfiles <= 1) {
		if (truncate(sv_logpath, 0) < 0) perror("truncate log");
	} else {
		for (int i = sv_maxfiles - 1; i > 0; i--) {
			if (i > 1) snprintf(from, sizeof(from), "%s.%d", sv_logpath, i - 1);
			else snprintf(from, sizeof(from), "%s", sv_logpath);
			snprintf(to, sizeof(to), "%s.%d", sv_logpath, i);
			rename(from, to);
		}
	}
	sv_logfd = open(sv_logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	sv_logsize = 0;
}

// sv_log writes one json-file entry: {"log":…,"stream":…,"time":…}.
static void sv_log(const char *stream, const char *p, size_t n) {
	static char line[6 * SV_LINEMAX + 256];
	size_t l = 0;
	l += sprintf(line, "{\"log\":\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = p[i];
		switch (ch) {
		case '"': line[l++] = '\\'; line[l++] = '"'; break;
		case '\\': line[l++] = '\\'; line[l++] = '\\'; break;
		case '\n': line[l++] = '\\'; line[l++] = 'n'; break;
		case '\r': line[l++] = '\\'; line[l++] = 'r'; break;
		case '\t': line[l++] = '\\'; line[l++] = 't'; break;
		default:
			if (ch < 0x20) l += sprintf(line + l, "\\u%04x", ch);
			else line[l++] = ch;
		}
	}
	char ts[64];
	sv_now(ts, sizeof(ts));
	l += sprintf(line + l, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", stream, ts);
	if (sv_maxsize > 0 && sv_logsize > 0 && sv_logsize + (long long)l > sv_maxsize) sv_rotate();
	if (sv_logfd >= 0 && sv_writeall(sv_logfd, line, l) == 0) sv_logsize += l;
}

// Per stream, the part of a line not yet logged: the log holds one entry
// per line, as Docker's json-file does, and partial entries of 16 KiB for
// longer lines.
static char sv_part[2][SV_LINEMAX];
static size_t sv_partlen[2];

static void sv_lines(int which, const char *p, size_t n, int eof) {
	const char *stream = which == 0 ? "stdout" : "stderr";
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) + 1 : n;
		if (sv_partlen[which] + take > SV_LINEMAX) take = SV_LINEMAX - sv_partlen[which];
		memcpy(sv_part[which] + sv_partlen[which], p, take);
		sv_partlen[which] += take;
		p += take; n -= take;
		if (sv_part[which][sv_partlen[which] - 1] == '\n' || sv_partlen[which] == SV_LINEMAX) {
			sv_log(stream, sv_part[which], sv_partlen[which]);
			sv_partlen[which] = 0;
		}
	}
	if (eof && sv_partlen[which] > 0) {
		sv_log(stream, sv_part[which], sv_partlen[which]);
		sv_partlen[which] = 0;
	}
}

static void sv_output(int which, const char *p, size_t n) {
	sv_lines(which, p, n, 0);
	unsigned char hdr[8] = {which == 0 ? 1 : 2, 0, 0, 0, n >> 24, n >> 16, n >> 8, n};
	for (int i = 0; i < sv_n; i++) {
		struct sv_client *c = &sv_c[i];
		if (c->kind != C_ATTACH || (which == 0 && !c->out) || (which == 1 && !c->err)) continue;
		if ((!sv_tty && sv_writeall(c->fd, (char *)hdr, 8) < 0) || sv_writeall(c->fd, p, n) < 0) { sv_drop(i); i--; }
	}
}

// sv_oom_killed reports whether the kernel's OOM killer ended a process
// of the container's cgroups: "oom_kill N" in memory.events (v2) or
// memory.oom_control (v1), read before the cgroups are removed.
static int sv_oom_killed(void) {
	if (!sv_cgroups || !*sv_cgroups) return 0;
	int oom = 0;
	char *list = strdup(sv_cgroups), *save = NULL;
	for (char *p = strtok_r(list, "\n", &save); p && !oom; p = strtok_r(NULL, "\n", &save)) {
		static const char *files[] = {"memory.events", "memory.oom_control"};
		for (int i = 0; i < 2 && !oom; i++) {
			char path[4200], buf[1024];
			snprintf(path, sizeof(path), "%s/%s", p, files[i]);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0) continue;
			ssize_t n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (n <= 0) continue;
			buf[n] = 0;
			char *k = strstr(buf, "oom_kill ");
			if (k && (k == buf || k[-1] == '\n') && atol(k + 9) > 0) oom = 1;
		}
	}
	free(list);
	return oom;
}

static void sv_exit_json(char *out, size_t n) {
	snprintf(out, n, "{\"code\":%d,\"signal\":%d,\"oom_killed\":%s,\"finished_at\":\"%s\"}", sv_code, sv_sig,
		 sv_oom_killed() ? "true" : "false", sv_finished);
}

static void sv_reply(int fd, const char *s) {
	sv_writeall(fd, s, strlen(s));
}

static int sv_field_bool(const char *req, const char *key) {
	const char *p = strstr(req, key);
	return p && strncmp(p + strlen(key), "true", 4) == 0;
}

// sv_await_exec waits (at most 2 s) until the container's init has
// executed the command: the start is answered when libcontainer's init has
// passed its exec fifo, a moment before its execve, and a signal to that Go
// process as PID 1 would end it with status 2 instead of reaching the
// command (seen with a stop right after run -d).
static void sv_await_exec(void) {
	char path[64], comm[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", sv_pid);
	// 200 ms was not always enough on a loaded machine: the HUP of
	// TestKill reached the Go init, and the command never saw it.
	for (int i = 0; i < 2000 && !sv_exited; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) return;
		ssize_t n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (n <= 0) return;
		comm[n] = 0;
		if (strncmp(comm, "runc:[2:INIT]", 13) != 0) return;
		usleep(1000);
	}
}

// sv_readfull reads n bytes (blocking); 0 on success.
static int sv_readfull(int fd, char *p, size_t n) {
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) return -1;
		p += r; n -= r;
	}
	return 0;
}

// sv_start_stub gives a warm container's stub its command: the message of
// len bytes that follows the request (part of it read with the request
// into c->buf). The stub executes it, which closes its control socket, or
// sends why it could not.
static void sv_start_stub(struct sv_client *c, long len) {
	static const char prefix[] = "unable to start container process: error during container init: ";
	char resp[20000], text[8192];
	char *msg = len > 0 && len <= (64L << 20) ? malloc(len) : NULL;
	if (!msg) { sv_reply(c->fd, "{\"error\":\"bad start request\"}\n"); return; }
	char *end = strchr(c->buf, '}');
	size_t have = end ? (size_t)(c->len - (end + 1 - c->buf)) : 0;
	if (have > (size_t)len) have = len;
	if (have) memcpy(msg, end + 1, have);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sv_readfull(c->fd, msg + have, len - have) < 0 || sv_writeall(sv_stub, msg, len) < 0) {
		free(msg);
		sv_reply(c->fd, "{\"error\":\"send the command to the warm container failed\"}\n");
		return;
	}
	free(msg);
	uint32_t tl = 0;
	ssize_t r;
	do r = read(sv_stub, &tl, 4); while (r < 0 && errno == EINTR);
	if (r == 0) { // executed
		close(sv_stub);
		sv_stub = -1;
		snprintf(resp, sizeof(resp), "{\"pid\":%d}\n", sv_pid);
		sv_reply(c->fd, resp);
		return;
	}
	size_t n = 0;
	if (r == 4 && tl < sizeof(text) && sv_readfull(sv_stub, text, tl) == 0) n = tl;
	text[n] = 0;
	close(sv_stub);
	sv_stub = -1;
	size_t l = snprintf(resp, sizeof(resp), "{\"error\":\"%s", prefix);
	for (size_t i = 0; i < n && l < sizeof(resp) - 16; i++) {
		unsigned char ch = text[i];
		if (ch == '"' || ch == '\\') { resp[l++] = '\\'; resp[l++] = ch; }
		else if (ch < 0x20) l += snprintf(resp + l, sizeof(resp) - l, "\\u%04x", ch);
		else resp[l++] = ch;
	}
	snprintf(resp + l, sizeof(resp) - l, "\"}\n");
	sv_reply(c->fd, resp);
}

// sv_request answers one complete request; it returns 1 when the client
// stays connected (attach, wait).
static int sv_request(struct sv_client *c) {
	char *req = c->buf, resp[512];
	if (strstr(req, "\"op\":\"start\"")) {
		const char *l = strstr(req, "\"len\":");
		if (sv_stub >= 0 && l) {
			sv_start_stub(c, atol(l + 6));
			return 0;
		}
		snprintf(resp, sizeof(resp), "{\"pid\":%d}\n", sv_pid);
		sv_reply(c->fd, resp);
		return 0;
	}
	if (strstr(req, "\"op\":\"attach\"")) {
		if (sv_exited && !sv_pipe_open[0] && !sv_pipe_open[1]) return 0;
		sv_reply(c->fd, "{}\n");
		c->kind = C_ATTACH;
		sv_timeout(c->fd);
		c->out = sv_field_bool(req, "\"stdout\":");
		c->err = sv_field_bool(req, "\"stderr\":");
		c->in = sv_field_bool(req, "\"stdin\":");
		return 1;
	}
	if (strstr(req, "\"op\":\"wait\"")) {
		c->kind = C_WAIT;
		return 1;
	}
	if (strstr(req, "\"op\":\"resize\"")) {
		const char *h = strstr(req, "\"height\":"), *w = strstr(req, "\"width\":");
		struct winsize ws = {.ws_row = h ? atoi(h + 9) : 0, .ws_col = w ? atoi(w + 8) : 0};
		if (!sv_tty) sv_reply(c->fd, "{\"error\":\"the container has no TTY\"}\n");
		else if (ioctl(sv_fd[0], TIOCSWINSZ, &ws) < 0) {
			snprintf(resp, sizeof(resp), "{\"error\":\"resize: %s\"}\n", strerror(errno));
			sv_reply(c->fd, resp);
		} else sv_reply(c->fd, "{}\n");
		return 0;
	}
	if (strstr(req, "\"op\":\"kill\"")) {
		const char *p = strstr(req, "\"signal\":");
		int sig = p ? atoi(p + 9) : SIGKILL;
		sv_await_exec();
		if (!sv_exited && kill(sv_pid, sig) < 0) {
			snprintf(resp, sizeof(resp), "{\"error\":\"kill: %s\"}\n", strerror(errno));
			sv_reply(c->fd, resp);
		} else {
			sv_reply(c->fd, "{}\n");
		}
		return 0;
	}
	sv_reply(c->fd, "{\"error\":\"unknown op\"}\n");
	return 0;
}

static void sv_reap(void) {
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p != sv_pid) continue;
		sv_exited = 1;
		if (WIFSIGNALED(st)) { sv_sig = WTERMSIG(st); sv_code = 128 + sv_sig; }
		else sv_code = WEXITSTATUS(st);
		sv_now(sv_finished, sizeof(sv_finished));
	}
}

static void sv_finish(void) {
	char json[256], path[4200], tmp[4300];
	sv_exit_json(json, sizeof(json));
	snprintf(path, sizeof(path), "%s/exit.json", sv_bundle);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	// The file is in place (rename) before the waiters hear the status, so
	// an agent that misses the reply finds it; it reaches the disk (fsync)
	// after the reply, off the path of `run --rm`. A machine crash in
	// between can lose the status: the container then shows exit code 255,
	// as one whose supervisor died.
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		sv_writeall(fd, json, strlen(json));
		rename(tmp, path);
	}
	if (sv_logfd >= 0) close(sv_logfd);
	char line[300];
	snprintf(line, sizeof(line), "{\"exit\":%s}\n", json);
	for (int i = 0; i < sv_n; i++) {
		if (sv_c[i].kind == C_WAIT) sv_reply(sv_c[i].fd, line);
		close(sv_c[i].fd);
	}
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	// libcontainer's Destroy, for a stopped container: its state and the
	// cgroups it made (none when they were not delegated).
	if (sv_cgroups && *sv_cgroups) {
		char *list = strdup(sv_cgroups), *save = NULL;
		for (char *p = strtok_r(list, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) rmdir(p);
		free(list);
	}
	if (sv_statedir && *sv_statedir) {
		snprintf(path, sizeof(path), "%s/state.json", sv_statedir); unlink(path);
		snprintf(path, sizeof(path), "%s/exec.fifo", sv_statedir); unlink(path);
		rmdir(sv_statedir);
	}
	if (sv_socket) unlink(sv_socket);
	_exit(0);
}

static void sv_handoff(const char *list, int kind) {
	if (!list) return;
	char *copy = strdup(list), *save = NULL;
	for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		int fd = -1, out = 0, err = 0, in = 0;
		if (sscanf(p, "%d:%d:%d:%d", &fd, &out, &err, &in) >= 1 && fd >= 0) {
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			sv_add(fd, kind, out, err, in);
		}
	}
	free(copy);
}

__attribute__((constructor)) static void moss_supervisor(void) {
	const char *on = getenv("_MOSS_SUPERVISOR");
	if (!on || !*on) return;
	sv_pid = atoi(getenv("MOSS_SV_PID") ?: "0");
	sv_bundle = getenv("MOSS_SV_BUNDLE");
	sv_logpath = getenv("MOSS_SV_LOG");
	sv_socket = getenv("MOSS_SV_SOCKET");
	sv_statedir = getenv("MOSS_SV_STATEDIR");
	sv_cgroups = getenv("MOSS_SV_CGROUPS");
	sv_maxsize = atoll(getenv("MOSS_SV_MAXSIZE") ?: "0");
	sv_maxfiles = atoi(getenv("MOSS_SV_MAXFILES") ?: "1");
	if (sv_pid <= 0 || !sv_bundle || !sv_logpath) {
		fprintf(stderr, "supervisor: incomplete environment\n");
		_exit(2);
	}
	if (sscanf(getenv("MOSS_SV_FDS") ?: "", "%d,%d,%d,%d,%d", &sv_fd[0], &sv_fd[1], &sv_listen, &sv_logfd, &sv_stdin) != 5) {
		fprintf(stderr, "supervisor: bad MOSS_SV_FDS\n");
		_exit(2);
	}
	int fds[4] = {sv_fd[0], sv_fd[1], sv_listen, sv_logfd};
	for (int i = 0; i < 4; i++) fcntl(fds[i], F_SETFD, FD_CLOEXEC);
	if (sv_stdin >= 0) {
		fcntl(sv_stdin, F_SETFD, FD_CLOEXEC);
		fcntl(sv_stdin, F_SETFL, fcntl(sv_stdin, F_GETFL) | O_NONBLOCK);
	}
	sv_stdin_once = atoi(getenv("MOSS_SV_STDINONCE") ?: "0");
	sv_tty = atoi(getenv("MOSS_SV_TTY") ?: "0");
	sv_stub = atoi(getenv("MOSS_SV_STUB") ?: "-1");
	if (sv_stub >= 0) fcntl(sv_stub, F_SETFD, FD_CLOEXEC);
	if (sv_fd[1] < 0) sv_pipe_open[1] = 0;
	struct stat st;
	if (fstat(sv_logfd, &st) == 0) sv_logsize = st.st_size;
	sv_handoff(getenv("MOSS_SV_ATTACH"), C_ATTACH);
	sv_handoff(getenv("MOSS_SV_WAIT"), C_WAIT);
	signal(SIGPIPE, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	sv_reap();
	static char buf[32768];
	for (;;) {
		if (sv_exited && !sv_pipe_open[0] && !sv_pipe_open[1]) sv_finish();
		struct pollfd pfd[SV_MAXC + 8];
		int ids[SV_MAXC]; // the client each pfd slot from base on was for
		int n = 0, base;
		pfd[n++] = (struct pollfd){.fd = sv_pipe_open[0] ? sv_fd[0] : -1, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = sv_pipe_open[1] ? sv_fd[1] : -1, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = sv_listen, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = sv_inlen > 0 ? sv_stdin : -1, .events = POLLOUT};
		base = n;
		for (int i = 0; i < sv_n; i++) {
			struct sv_client *c = &sv_c[i];
			short ev = 0;
			if (c->kind == C_REQ) ev = POLLIN;
			// Input is read while the pipe has taken all of the last.
			else if (c->kind == C_ATTACH && c->in && !c->ineof && sv_stdin >= 0 && sv_inlen == 0) ev = POLLIN;
			ids[n - base] = c->id;
			pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR) continue;
			perror("poll");
			_exit(1);
		}
		if (pfd[3].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) break;
			sv_reap();
		}
		if (pfd[4].revents) sv_stdin_flush();
		for (int w = 0; w < 2; w++) {
			if (!pfd[w].revents) continue;
			ssize_t r = read(sv_fd[w], buf, sizeof(buf));
			if (r > 0) sv_output(w, buf, r);
			else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
				sv_lines(w, NULL, 0, 1);
				close(sv_fd[w]);
				sv_pipe_open[w] = 0;
			}
		}
		if (pfd[2].revents & POLLIN) {
			int fd = accept4(sv_listen, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0) sv_add(fd, C_REQ, 0, 0, 0);
		}
		// Clients: requests to read, input, hang-ups of attached ones. The
		// output above may have dropped clients (sv_drop moves the last
		// entry into the gap, and a new one may reuse a descriptor): each
		// poll result goes to the client it was for, found by its id.
		int clients = n - base;
		for (int s = clients - 1; s >= 0; s--) {
			short re = pfd[base + s].revents;
			if (!re) continue;
			int k = -1;
			for (int j = 0; j < sv_n; j++) if (sv_c[j].id == ids[s]) { k = j; break; }
			if (k < 0) continue; // dropped meanwhile
			struct sv_client *c = &sv_c[k];
			if (c->kind == C_ATTACH && (re & POLLIN) && sv_stdin >= 0 && sv_inlen == 0) {
				ssize_t r = read(c->fd, sv_inbuf, sizeof(sv_inbuf));
				if (r > 0) {
					sv_inlen = r;
					sv_inoff = 0;
					sv_stdin_flush();
				} else if (r == 0) {
					// The client's input ended (it half-closed).
					c->ineof = 1;
					// As docker: a TTY's input stays open (a detach ends it).
					if (sv_stdin_once && !sv_tty) { sv_stdin_closing = 1; sv_stdin_flush(); }
				} else if (errno != EINTR && errno != EAGAIN) {
					sv_drop(k);
				}
				continue;
			}
			if (c->kind != C_REQ) {
				if (re & (POLLHUP | POLLERR)) sv_drop(k);
				continue;
			}
			ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
			if (r <= 0) { sv_drop(k); continue; }
			c->len += r;
			c->buf[c->len] = 0;
			if (!strchr(c->buf, '}') && c->len < (int)sizeof(c->buf) - 1) continue;
			if (!sv_request(c)) sv_drop(k);
			else if (c->kind == C_WAIT && sv_exited && !sv_pipe_open[0] && !sv_pipe_open[1]) sv_finish();
		}
	}
}
*/
import "C"

// envSupervisor makes the re-executed binary run the C supervisor.
const envSupervisor = "_MOSS_SUPERVISOR"
