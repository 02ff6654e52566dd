/* The nhslogind socket protocol (doc/protocol.md) above its framing (nl_ipc.h): the ops, the
 * statuses and the error words as enums, each with one word table, and the one client that the
 * module, nhsloginctl, the tests and the benchmarks use to talk to the daemon. */
#ifndef NL_PROTO_H
#define NL_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

/* A request's "op". */
enum nl_op {
	NL_OP_UNKNOWN = 0, /* absent, or a word the protocol does not have */
	NL_OP_START,
	NL_OP_WAIT,
	NL_OP_NUMBER,
	NL_OP_CANCEL,
	NL_OP_STATUS,
	NL_OP_FLOWS,       /* root only */
	NL_OP_FLOW_CANCEL, /* root only */
	NL_OP_FLUSH,       /* root only */
};

/* The "status" of an ok reply to start, wait or number (and a flow's "state" in a flows listing). */
enum nl_status {
	NL_STATUS_NONE = 0, /* no status: the reply is not ok, or has no "status" string */
	NL_STATUS_PENDING,
	NL_STATUS_NUMBER, /* number matching: the terminal must send the phone's number */
	NL_STATUS_APPROVED,
	NL_STATUS_DENIED,
	NL_STATUS_OTHER, /* a word this side does not know */
};

/* The "error" of a reply with "ok":false. */
enum nl_error_word {
	NL_EWORD_NONE = 0, /* the reply is ok */
	NL_EWORD_BAD_REQUEST,
	NL_EWORD_FORBIDDEN,
	NL_EWORD_TOO_BIG,
	NL_EWORD_UNKNOWN_OP,
	NL_EWORD_NOT_FOUND,
	NL_EWORD_LIMIT,
	NL_EWORD_UNAVAILABLE, /* provider or configuration trouble: break-glass, never a denial */
	NL_EWORD_INTERNAL,
	NL_EWORD_OTHER, /* not ok, with no error word or one this side does not know */
};

/* The word on the wire for each value (NULL for the UNKNOWN/NONE/OTHER values), and back. */
const char *nl_op_word(enum nl_op op);
enum nl_op nl_op_of(const char *word);
/* Ops only root may use (never a socket_group member). */
bool nl_op_root_only(enum nl_op op);
const char *nl_status_word(enum nl_status st);
enum nl_status nl_status_of(const char *word);
const char *nl_error_word(enum nl_error_word e);
enum nl_error_word nl_error_word_of(const char *word);

/* What a reply says: its status (NL_STATUS_NONE unless "ok" is true), its error word
 * (NL_EWORD_NONE when "ok" is true). */
enum nl_status nl_proto_status(const json_t *reply);
enum nl_error_word nl_proto_error(const json_t *reply);

/* ---- the client ---- */

/* Who may answer on the socket path. */
enum nl_proto_peer {
	NL_PROTO_PEER_ANY = 0, /* no check (nhsloginctl, tests) */
	/* nhslogind runs as root, or as the client's own effective uid (a screen locker's module, the
	 * test suite): anyone else may have bound the path first in a directory others can write to,
	 * and would decide sign-ins. */
	NL_PROTO_PEER_DAEMON,
};

/* One connection to nhslogind, one request at a time. A flow belongs to the connection that
 * started it: closing the connection cancels it. fd is -1 when closed. */
struct nl_proto_client {
	int fd;
	uid_t peer; /* the listener's uid (SO_PEERCRED), (uid_t)-1 if unknown */
};

/* The extra time a wait's reply may take past its long-poll slice. */
#define NL_PROTO_WAIT_GRACE_MS 5000

/* Connect within timeout_ms and check the listener (want). On success c->fd is a blocking,
 * close-on-exec stream socket. NL_ERR_UNAVAILABLE if nothing listens there, NL_ERR_PERM on EACCES
 * or when the peer check fails (c->peer says who answered; the connection is closed),
 * NL_ERR_TOO_BIG for a path that does not fit, NL_ERR_TIMEOUT. */
int nl_proto_open(struct nl_proto_client *c, const char *path, int timeout_ms, enum nl_proto_peer want);
/* Send req and read one reply within timeout_ms each: 0 and a new object in *reply, or a negative
 * nl_err (the connection is then of no further use). If the daemon has already closed the
 * connection, a refusal it wrote first is still read. The read buffer is wiped afterwards:
 * replies carry device codes. */
int nl_proto_call(struct nl_proto_client *c, const json_t *req, int timeout_ms, json_t **reply);
/* Long-poll: ask how the flow of device_code stands, the daemon answering as soon as it ends or
 * after slice_s seconds with pending; the reply is read within slice_s plus
 * NL_PROTO_WAIT_GRACE_MS. As nl_proto_call. */
int nl_proto_wait(struct nl_proto_client *c, const char *device_code, int slice_s, json_t **reply);
/* Close (cancelling any flow the connection owns). c->fd becomes -1; closing twice is fine. */
void nl_proto_close(struct nl_proto_client *c);

#endif
