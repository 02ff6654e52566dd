/* The socket protocol framing: one JSON object a line, bounded, with poll-based timeouts.
 * Consumed bytes are wiped: requests and replies carry device codes. */
#include "config.h"
#include "nl_ipc.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_time.h"
#include "nl_wipe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Milliseconds left until deadline (never negative). */
static int remaining_ms(int64_t deadline)
{
	int64_t left = deadline - nl_mono_ms();

	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Wait for events on fd until deadline: 0 when ready, NL_ERR_TIMEOUT, or NL_ERR_IO. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int n;

	for (;;) {
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, remaining_ms(deadline));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return NL_ERR_IO;
		if (n == 0)
			return NL_ERR_TIMEOUT;
		/* POLLHUP/POLLERR: let the following read or write report what happened. */
		return 0;
	}
}

int nl_ipc_send(int fd, const json_t *msg, int timeout_ms)
{
	int64_t deadline = nl_mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	char *text = NULL;
	size_t len = 0, off = 0;
	ssize_t n;
	int r = NL_ERR_INTERNAL;

	if (msg == NULL || !json_is_object(msg)) {
		r = NL_ERR_INVALID;
		goto out;
	}
	/* Compact output has no raw newline: strings escape theirs. */
	if ((text = json_dumps(msg, JSON_COMPACT)) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	len = strlen(text);
	if (len + 1 > NL_IPC_MAX_LINE) {
		r = NL_ERR_TOO_BIG;
		goto out;
	}
	text[len] = '\n'; /* the terminating NUL becomes the newline; len + 1 bytes go out */
	while (off < len + 1) {
		n = send(fd, text + off, len + 1 - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((r = wait_fd(fd, POLLOUT, deadline)) != 0)
				goto out;
			continue;
		}
		r = (n < 0 && (errno == EPIPE || errno == ECONNRESET)) ? NL_ERR_CLOSED : NL_ERR_IO;
		goto out;
	}
	r = 0;
out:
	if (text != NULL)
		nl_free_secret_buf(text, len + 1);
	return r;
}

/* One non-blocking read into buf (room bytes): 1 data, 0 would block, NL_ERR_CLOSED, NL_ERR_IO. */
static int read_some(int fd, char *buf, size_t room, size_t *got)
{
	ssize_t n;

	for (;;) {
		n = recv(fd, buf, room, MSG_DONTWAIT);
		if (n < 0 && errno == ENOTSOCK)
			n = read(fd, buf, room);
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0
		       : errno == ECONNRESET                     ? NL_ERR_CLOSED
		                                                 : NL_ERR_IO;
	if (n == 0)
		return NL_ERR_CLOSED;
	*got = (size_t)n;
	return 1;
}

/* Take one complete line out of buf[0..*len): see nl_linebuf_take. */
static int take_line(char *buf, size_t *len, json_t **out, char *err, size_t errlen)
{
	json_t *v = NULL;
	char *nl;
	size_t line, rest;
	int r;

	if (buf == NULL || (nl = memchr(buf, '\n', *len)) == NULL)
		return 0;
	line = (size_t)(nl - buf);
	r = nl_json_parse(buf, line, NL_IPC_MAX_LINE, NL_JSON_MAX_DEPTH, true, &v, err, errlen);
	/* Consume the line (good or bad) and wipe the bytes that are no longer in use. */
	rest = *len - line - 1;
	memmove(buf, nl + 1, rest);
	nl_wipe(buf + rest, *len - rest);
	*len = rest;
	if (r != 0)
		return NL_ERR_INVALID;
	*out = v;
	return 1;
}

int nl_linebuf_fill(struct nl_linebuf *lb, int fd)
{
	size_t got = 0;
	int r;

	if (lb->len >= sizeof(lb->buf))
		return memchr(lb->buf, '\n', lb->len) != NULL ? 0 : NL_ERR_TOO_BIG;
	if ((r = read_some(fd, lb->buf + lb->len, sizeof(lb->buf) - lb->len, &got)) <= 0)
		return r;
	lb->len += got;
	if (lb->len == sizeof(lb->buf) && memchr(lb->buf, '\n', lb->len) == NULL)
		return NL_ERR_TOO_BIG;
	return 1;
}

int nl_linebuf_take(struct nl_linebuf *lb, json_t **out, char *err, size_t errlen)
{
	return take_line(lb->buf, &lb->len, out, err, errlen);
}

/* ---- the growable reader ---- */

/* Room for at least one more byte: double the buffer (wiping the old one), up to the limit. */
static int dyn_grow(struct nl_linebuf_dyn *lb)
{
	size_t cap = lb->cap == 0 ? NL_LINEBUF_MIN : lb->cap * 2;
	char *nb;

	if (cap > NL_IPC_MAX_LINE)
		cap = NL_IPC_MAX_LINE;
	if ((nb = malloc(cap)) == NULL)
		return NL_ERR_NOMEM;
	if (lb->len > 0)
		memcpy(nb, lb->buf, lb->len);
	if (lb->buf != NULL)
		nl_free_secret_buf(lb->buf, lb->cap);
	lb->buf = nb;
	lb->cap = cap;
	return 0;
}

int nl_linebuf_dyn_fill(struct nl_linebuf_dyn *lb, int fd)
{
	size_t got = 0;
	int r;

	if (lb->len >= NL_IPC_MAX_LINE)
		return memchr(lb->buf, '\n', lb->len) != NULL ? 0 : NL_ERR_TOO_BIG;
	if (lb->len == lb->cap && (r = dyn_grow(lb)) != 0)
		return r;
	if ((r = read_some(fd, lb->buf + lb->len, lb->cap - lb->len, &got)) <= 0) {
		if (lb->len == 0)
			nl_linebuf_dyn_clear(lb); /* nothing held: hold no memory */
		return r;
	}
	lb->len += got;
	if (lb->len == NL_IPC_MAX_LINE && memchr(lb->buf, '\n', lb->len) == NULL)
		return NL_ERR_TOO_BIG;
	return 1;
}

int nl_linebuf_dyn_take(struct nl_linebuf_dyn *lb, json_t **out, char *err, size_t errlen)
{
	int r = take_line(lb->buf, &lb->len, out, err, errlen);

	if (r != 0 && lb->len == 0)
		nl_linebuf_dyn_clear(lb);
	return r;
}

bool nl_linebuf_dyn_full(const struct nl_linebuf_dyn *lb)
{
	return lb->len >= NL_IPC_MAX_LINE;
}

void nl_linebuf_dyn_clear(struct nl_linebuf_dyn *lb)
{
	if (lb->buf != NULL)
		nl_free_secret_buf(lb->buf, lb->cap);
	lb->buf = NULL;
	lb->len = lb->cap = 0;
}

void nl_linebuf_clear(struct nl_linebuf *lb)
{
	nl_wipe(lb->buf, lb->len);
	lb->len = 0;
}

int nl_ipc_recv(int fd, struct nl_linebuf *lb, int timeout_ms, json_t **out)
{
	int64_t deadline = nl_mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	int r;

	for (;;) {
		if ((r = nl_linebuf_take(lb, out, NULL, 0)) != 0)
			return r < 0 ? r : 0;
		if ((r = wait_fd(fd, POLLIN, deadline)) != 0)
			return r;
		if ((r = nl_linebuf_fill(lb, fd)) < 0)
			return r;
	}
}

int nl_ipc_connect(const char *path, int timeout_ms, int *fd_out)
{
	int64_t deadline = nl_mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	struct sockaddr_un sa;
	struct timespec pause = {0, 10 * 1000 * 1000};
	socklen_t sl;
	size_t plen;
	int fd = -1, r = NL_ERR_INTERNAL, soerr;

	if (path == NULL || (plen = strlen(path)) == 0) {
		r = NL_ERR_INVALID;
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	if (plen >= sizeof(sa.sun_path)) {
		r = NL_ERR_TOO_BIG;
		goto out;
	}
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, plen + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
		r = NL_ERR_IO;
		goto out;
	}
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			/* Backlog full: a Unix socket does not signal when it drains, so retry briefly. */
			if (remaining_ms(deadline) == 0) {
				r = NL_ERR_TIMEOUT;
				goto out;
			}
			nanosleep(&pause, NULL);
			continue;
		}
		if (errno == EINPROGRESS) {
			if ((r = wait_fd(fd, POLLOUT, deadline)) != 0)
				goto out;
			sl = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
				r = NL_ERR_IO;
				goto out;
			}
			if (soerr == 0)
				break;
			errno = soerr;
		}
		r = (errno == ENOENT || errno == ECONNREFUSED) ? NL_ERR_UNAVAILABLE
		    : errno == EACCES                          ? NL_ERR_PERM
		                                               : NL_ERR_IO;
		goto out;
	}
	/* Back to blocking: the client calls bound themselves with poll and MSG_DONTWAIT. */
	if (fcntl(fd, F_SETFL, 0) != 0) {
		r = NL_ERR_IO;
		goto out;
	}
	*fd_out = fd;
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}
