/* The socket protocol framing: one JSON object a line, at most NL_IPC_MAX_LINE bytes
 * (newline included). See doc/protocol.md for the messages. */
#ifndef NL_IPC_H
#define NL_IPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define NL_IPC_MAX_LINE (64 * 1024)

/* A line reader over a stream fd with a fixed buffer of NL_IPC_MAX_LINE (no growth). */
struct nl_linebuf {
	char buf[NL_IPC_MAX_LINE];
	size_t len;
};

/* Blocking client side: send one message (a JSON object, as one line) within timeout_ms.
 * NL_ERR_TOO_BIG if it would exceed NL_IPC_MAX_LINE, NL_ERR_CLOSED if the peer has gone,
 * NL_ERR_TIMEOUT. Never raises SIGPIPE. */
int nl_ipc_send(int fd, const json_t *msg, int timeout_ms);
/* Blocking client side: read one line within timeout_ms (poll), parse it as a JSON object.
 * NL_ERR_TOO_BIG if a line exceeds the limit, NL_ERR_CLOSED on EOF, NL_ERR_TIMEOUT,
 * NL_ERR_INVALID for a line that is not a JSON object (consumed). lb must start zeroed and
 * keeps any bytes after the line for the next call. */
int nl_ipc_recv(int fd, struct nl_linebuf *lb, int timeout_ms, json_t **out);
/* Non-blocking server side: read what is available into lb. Returns 1 if data arrived,
 * 0 if it would block (or lb is full but holds a complete line: take it first), NL_ERR_CLOSED on EOF,
 * NL_ERR_TOO_BIG when the buffer is full without a newline, or NL_ERR_IO. */
int nl_linebuf_fill(struct nl_linebuf *lb, int fd);
/* Take one complete line out of lb, if any: returns 1 and a parsed object in *out, 0 if no
 * complete line yet, or NL_ERR_INVALID (the bad line is consumed). Wipes consumed bytes. */
int nl_linebuf_take(struct nl_linebuf *lb, json_t **out, char *err, size_t errlen);
/* Wipe whatever lb still holds and empty it (before closing a connection or reusing lb). */
void nl_linebuf_clear(struct nl_linebuf *lb);

/* The server's line reader: the same framing as struct nl_linebuf, but it holds no memory while
 * empty and grows on demand (NL_LINEBUF_MIN, doubling, up to NL_IPC_MAX_LINE), so that thousands
 * of idle connections cost next to nothing. A zeroed struct is an empty buffer. Every growth,
 * take and clear wipes the bytes it gives up; once empty the buffer is freed. */
#define NL_LINEBUF_MIN 512
struct nl_linebuf_dyn {
	char *buf;
	size_t len, cap;
};
/* As nl_linebuf_fill: 1 data arrived, 0 would block (or full but a complete line is held),
 * NL_ERR_CLOSED, NL_ERR_TOO_BIG (NL_IPC_MAX_LINE bytes without a newline), NL_ERR_NOMEM, NL_ERR_IO. */
int nl_linebuf_dyn_fill(struct nl_linebuf_dyn *lb, int fd);
/* As nl_linebuf_take. */
int nl_linebuf_dyn_take(struct nl_linebuf_dyn *lb, json_t **out, char *err, size_t errlen);
/* True when lb holds NL_IPC_MAX_LINE bytes: read no more until a line is taken. */
bool nl_linebuf_dyn_full(const struct nl_linebuf_dyn *lb);
/* Wipe, free and empty (lb stays usable). */
void nl_linebuf_dyn_clear(struct nl_linebuf_dyn *lb);
/* Connect to a Unix socket path with a timeout. On success *fd is a blocking, close-on-exec
 * stream socket. NL_ERR_UNAVAILABLE if nothing listens there (missing path, refused),
 * NL_ERR_PERM on EACCES, NL_ERR_TOO_BIG if the path does not fit sun_path, NL_ERR_TIMEOUT. */
int nl_ipc_connect(const char *path, int timeout_ms, int *fd);

#endif
