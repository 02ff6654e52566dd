/* libFuzzer target: the socket protocol framing over arbitrary bytes arriving in arbitrary pieces,
 * through both line readers: the client's fixed struct nl_linebuf (bytes placed in it directly) and
 * the server's growable struct nl_linebuf_dyn (bytes sent through a socketpair and read with
 * nl_linebuf_dyn_fill), used the way the daemon's loop uses them: fill, take every complete line,
 * drop the connection when 64 KiB arrive without a newline. Each line that parses has its op
 * decoded as the daemon's dispatch does it (nl_op_of); the handlers behind it are the daemon's. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_keys.h"
#include "nl_err.h"
#include "nl_ipc.h"
#include "nl_log.h"
#include "nl_proto.h"

#define PREFILL (NL_IPC_MAX_LINE - 64) /* spaces before the input: reach the limit with small inputs */

static struct nl_linebuf lb;
static int sv[2] = {-1, -1}; /* sv[1]: the "client" writes; sv[0]: the "daemon" reads */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	nl_log_open("fuzz_ipc", NL_LOG_STDERR, false);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	return 0;
}

/* One result of a take, checked against what the callers rely on. */
static void check_take(int r, json_t *msg, const char *err)
{
	if (r == 1) {
		if (!json_is_object(msg))
			abort();
		enum nl_op op = nl_op_of(json_string_value(json_object_get(msg, "op")));
		if (op != NL_OP_UNKNOWN && nl_op_word(op) == NULL)
			abort();
		json_decref(msg);
	} else if (r != NL_ERR_INVALID || msg != NULL || err[0] == '\0') {
		abort();
	}
}

/* ---- the fixed buffer ---- */

static void fixed_drain(void)
{
	char err[256];
	json_t *msg;
	int r;

	for (;;) {
		msg = NULL;
		err[0] = '\0';
		if ((r = nl_linebuf_take(&lb, &msg, err, sizeof(err))) == 0)
			return;
		check_take(r, msg, err);
		if (lb.len > sizeof(lb.buf))
			abort();
	}
}

static void fixed_stream(const uint8_t *data, size_t size, size_t piece_max, bool prefill)
{
	size_t off = 0, piece, room;

	nl_linebuf_clear(&lb);
	if (prefill) {
		memset(lb.buf, ' ', PREFILL);
		lb.len = PREFILL;
	}
	while (off < size) {
		room = sizeof(lb.buf) - lb.len;
		if (room == 0) {
			if (memchr(lb.buf, '\n', lb.len) == NULL)
				nl_linebuf_clear(&lb); /* too_big: the connection is closed */
			else
				fixed_drain();
			continue;
		}
		piece = piece_max < room ? piece_max : room;
		if (piece > size - off)
			piece = size - off;
		memcpy(lb.buf + lb.len, data + off, piece);
		lb.len += piece;
		off += piece;
		fixed_drain();
	}
	fixed_drain();
	nl_linebuf_clear(&lb);
}

/* ---- the growable buffer, through a socket ---- */

static void dyn_check(const struct nl_linebuf_dyn *d)
{
	if (d->len > d->cap || d->cap > NL_IPC_MAX_LINE || (d->buf == NULL) != (d->cap == 0))
		abort();
}

static void dyn_drain(struct nl_linebuf_dyn *d)
{
	char err[256];
	json_t *msg;
	int r;

	for (;;) {
		msg = NULL;
		err[0] = '\0';
		r = nl_linebuf_dyn_take(d, &msg, err, sizeof(err));
		dyn_check(d);
		if (r == 0)
			return;
		check_take(r, msg, err);
	}
}

/* Throw away whatever is still in the socket (a closed connection's unread bytes). */
static void socket_discard(void)
{
	char junk[4096];

	while (recv(sv[0], junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
}

/* Read what the socket holds, as the server's loop does; false once the connection is dropped. */
static bool dyn_read(struct nl_linebuf_dyn *d)
{
	int r;

	for (;;) {
		r = nl_linebuf_dyn_fill(d, sv[0]);
		dyn_check(d);
		if (r == 1) {
			dyn_drain(d);
			continue;
		}
		if (r == 0) {
			if (!nl_linebuf_dyn_full(d))
				return true; /* would block: wait for more */
			dyn_drain(d);        /* full but holding a line: taking it makes room */
			if (nl_linebuf_dyn_full(d))
				abort();
			continue;
		}
		if (r == NL_ERR_TOO_BIG) {
			nl_linebuf_dyn_clear(d);
			socket_discard();
			return false;
		}
		abort(); /* NL_ERR_CLOSED, NL_ERR_IO, NL_ERR_NOMEM: none can happen here */
	}
}

static void dyn_stream(const uint8_t *data, size_t size, size_t piece_max)
{
	struct nl_linebuf_dyn d = {0};
	size_t off = 0, piece;
	ssize_t n;

	dyn_drain(&d); /* a take on an empty reader is legal */
	while (off < size) {
		piece = piece_max < size - off ? piece_max : size - off;
		n = send(sv[1], data + off, piece, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			abort();
		if (n > 0)
			off += (size_t)n;
		if (!dyn_read(&d))
			d = (struct nl_linebuf_dyn){0}; /* a new connection starts empty */
	}
	(void)dyn_read(&d);
	dyn_drain(&d);
	nl_linebuf_dyn_clear(&d);
	dyn_check(&d);
	socket_discard();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A one-byte selector: piece size (low 7 bits + 1) and whether 64 KiB - 64 spaces come first. */
	uint8_t sel = size > 0 ? data[0] : 0;
	size_t piece = (sel & 0x7fu) + 1u;
	bool prefill = (sel & 0x80) != 0;
	uint8_t *all;

	if (size > 0)
		data++, size--;
	fixed_stream(data, size, piece, prefill);
	if (!prefill) {
		dyn_stream(data, size, piece);
		return 0;
	}
	if ((all = malloc(PREFILL + size)) == NULL)
		return 0;
	memset(all, ' ', PREFILL);
	memcpy(all + PREFILL, data, size);
	/* Big pieces for the prefix, so that the socket's buffer and the loop stay small. */
	dyn_stream(all, PREFILL + size, piece * 512);
	free(all);
	return 0;
}
