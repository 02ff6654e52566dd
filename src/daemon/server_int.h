/* What the files of the nhslogind socket server share (server.c: the event loop; server_ops.c:
 * replies and the op handlers; server_start.c: the start op; server_setup.c: the socket and the
 * server's life). Not for anything outside src/daemon/server*.c. */
#ifndef NL_SERVER_INT_H
#define NL_SERVER_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "nl_ipc.h"
#include "nl_proto.h"
#include "server.h"

#define WAIT_BUCKETS    8192 /* parked waits by flow tag (a power of two) */
#define NO_HEAP         SIZE_MAX
#define START_WORKERS   4    /* provider fetches at once for starts (a slow provider delays these only) */
#define START_QUEUE_MAX 1024 /* starts waiting for a worker; past it, "unavailable" */

/* epoll_data.ptr of the fixed fds: the address of one of these markers (a conn is anything else). */
extern char srv_mark_listen, srv_mark_notify, srv_mark_stop, srv_mark_signal, srv_mark_jobs;

struct start_job;

struct conn {
	int fd;
	uint64_t id;
	uid_t uid;
	bool admin, dead, close_after, parked, on_dead_list;
	unsigned starts; /* start requests this connection made */
	struct nl_linebuf_dyn lb;
	size_t counted; /* lb.cap as counted in the server's bufbytes */
	char *out;      /* pending reply bytes (may hold a device_code: wiped) */
	size_t outlen, outoff;
	char *wait_code;   /* secret, while parked */
	uint64_t wait_tag; /* the flow's wake-up tag, while parked */
	int64_t wait_deadline, idle_deadline;
	struct start_job *job;      /* a start waiting on the provider (off the loop), or NULL */
	uint32_t events;            /* what epoll watches for now */
	size_t heap_ix;             /* place in the deadline heap, or NO_HEAP */
	struct conn *prev, *next;   /* every connection */
	struct conn *wprev, *wnext; /* parked waits of one bucket */
	struct conn *next_dead;
};

struct nl_server {
	struct nl_server_ctx ctx;
	struct nl_jobs *jobs; /* provider I/O for starts, off the loop */
	int listen_fd, stop_fd, ep_fd;
	char *path;
	dev_t sock_dev;
	ino_t sock_ino;
	struct conn *conns; /* every connection, newest first */
	struct conn *dead;  /* to be freed at the end of this round */
	size_t nconns, nconns_public, max_conns;
	struct conn **heap; /* min-heap of connections by deadline (wait or idle) */
	size_t heap_n, heap_cap;
	struct conn *wait_bucket[WAIT_BUCKETS];
	size_t bufbytes; /* input buffered over every connection */
	uint64_t next_id;
	int64_t started_ms, next_sweep, accept_resume;
	bool stopping, accept_paused;
};

/* ---- server.c: the event loop ---- */

/* Answer the complete lines c has, one at a time (not while a wait is parked, a start waits on
 * the provider or a reply is still going out). */
void srv_process(struct nl_server *s, struct conn *c);
/* After anything happened to c: deadline and epoll interest brought up to date, or, dead, onto the
 * list of connections freed at the end of the round. */
void srv_settle(struct nl_server *s, struct conn *c);
/* Close c now: its flows cancelled, its wait unparked, its bytes wiped. */
void srv_conn_free(struct nl_server *s, struct conn *c);

/* ---- server_ops.c: replies, request fields, the ops ---- */

/* Send what c has queued, as far as the socket takes it. */
void srv_flush(struct conn *c);
/* Send msg (consumed); secret_name/secret_value, if given, are spliced in without passing through
 * jansson's heap. */
void srv_reply(struct conn *c, json_t *msg, const char *secret_name, const char *secret_value);
void srv_reply_error(struct conn *c, enum nl_error_word e, const char *message);
/* The reply for an nl_err from the flows table (what: the bad_request message). */
void srv_reply_flow_error(struct conn *c, int r, const char *what);
/* A string of at most max bytes without control characters. */
bool srv_plain_string(const char *s, size_t max);
/* An optional string member: absent is fine (NULL), anything but a short string is not. */
bool srv_optional_field(const json_t *req, const char *key, const char **out);
/* Answer c's wait if its flow has an outcome (or on timeout); true if answered. */
bool srv_wait_check(struct nl_server *s, struct conn *c, const char *device_code, bool timed_out,
                    uint64_t *tag);
/* Take c's wait off its bucket and wipe its device code. */
void srv_unpark(struct nl_server *s, struct conn *c);
/* One request: decoded once into an enum nl_op, handed to its handler. */
void srv_dispatch(struct nl_server *s, struct conn *c, const json_t *req);

/* ---- server_start.c: start, with the provider's part on a worker ---- */

void srv_handle_start(struct nl_server *s, struct conn *c, const json_t *req);
/* On the loop: answer the starts whose worker part finished. */
void srv_take_jobs(struct nl_server *s);
/* c is closing: a start of its still on a worker is answered to nobody. */
void srv_start_forget(struct conn *c);
/* Free a start job (also the jobs queue's free function). */
void srv_start_job_free(void *arg);

#endif
