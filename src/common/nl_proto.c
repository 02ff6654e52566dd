/* The socket protocol's words (one table each for ops, statuses and error words) and the one
 * client of nhslogind: connect, peer check, call, long-poll. */
#include "config.h"
#include "nl_proto.h"
#include "nl_err.h"
#include "nl_ipc.h"
#include "nl_wipe.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Indexed by enum nl_op. */
static const struct {
	const char *word;
	bool root_only;
} ops[] = {
    [NL_OP_UNKNOWN] = {NULL, false},    [NL_OP_START] = {"start", false},
    [NL_OP_WAIT] = {"wait", false},     [NL_OP_NUMBER] = {"number", false},
    [NL_OP_CANCEL] = {"cancel", false}, [NL_OP_STATUS] = {"status", false},
    [NL_OP_FLOWS] = {"flows", true},    [NL_OP_FLOW_CANCEL] = {"flow_cancel", true},
    [NL_OP_FLUSH] = {"flush", true},
};

/* Indexed by enum nl_status. */
static const char *const statuses[] = {
    [NL_STATUS_NONE] = NULL,           [NL_STATUS_PENDING] = "pending", [NL_STATUS_NUMBER] = "number",
    [NL_STATUS_APPROVED] = "approved", [NL_STATUS_DENIED] = "denied",   [NL_STATUS_OTHER] = NULL,
};

/* Indexed by enum nl_error_word. */
static const char *const error_words[] = {
    [NL_EWORD_NONE] = NULL,
    [NL_EWORD_BAD_REQUEST] = "bad_request",
    [NL_EWORD_FORBIDDEN] = "forbidden",
    [NL_EWORD_TOO_BIG] = "too_big",
    [NL_EWORD_UNKNOWN_OP] = "unknown_op",
    [NL_EWORD_NOT_FOUND] = "not_found",
    [NL_EWORD_LIMIT] = "limit",
    [NL_EWORD_UNAVAILABLE] = "unavailable",
    [NL_EWORD_INTERNAL] = "internal",
    [NL_EWORD_OTHER] = NULL,
};

/* The index of word in a table of n words (NULL entries never match), or -1. */
static int index_of(const char *const *words, size_t n, const char *word)
{
	for (size_t i = 0; word != NULL && i < n; i++)
		if (words[i] != NULL && strcmp(word, words[i]) == 0)
			return (int)i;
	return -1;
}

const char *nl_op_word(enum nl_op op)
{
	return (size_t)op < N_OF(ops) ? ops[op].word : NULL;
}

enum nl_op nl_op_of(const char *word)
{
	for (size_t i = 0; word != NULL && i < N_OF(ops); i++)
		if (ops[i].word != NULL && strcmp(word, ops[i].word) == 0)
			return (enum nl_op)i;
	return NL_OP_UNKNOWN;
}

bool nl_op_root_only(enum nl_op op)
{
	return (size_t)op < N_OF(ops) && ops[op].root_only;
}

const char *nl_status_word(enum nl_status st)
{
	return (size_t)st < N_OF(statuses) ? statuses[st] : NULL;
}

enum nl_status nl_status_of(const char *word)
{
	int i = index_of(statuses, N_OF(statuses), word);
	return i >= 0 ? (enum nl_status)i : word != NULL ? NL_STATUS_OTHER : NL_STATUS_NONE;
}

const char *nl_error_word(enum nl_error_word e)
{
	return (size_t)e < N_OF(error_words) ? error_words[e] : NULL;
}

enum nl_error_word nl_error_word_of(const char *word)
{
	int i = index_of(error_words, N_OF(error_words), word);
	return i >= 0 ? (enum nl_error_word)i : NL_EWORD_OTHER;
}

enum nl_status nl_proto_status(const json_t *reply)
{
	if (!json_is_true(json_object_get(reply, "ok")))
		return NL_STATUS_NONE;
	return nl_status_of(json_string_value(json_object_get(reply, "status")));
}

enum nl_error_word nl_proto_error(const json_t *reply)
{
	if (json_is_true(json_object_get(reply, "ok")))
		return NL_EWORD_NONE;
	return nl_error_word_of(json_string_value(json_object_get(reply, "error")));
}

/* ---- the client ---- */

/* The listener's uid into *peer; 0 if want accepts it, else NL_ERR_PERM. */
static int check_peer(int fd, enum nl_proto_peer want, uid_t *peer)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr))
		return want == NL_PROTO_PEER_ANY ? 0 : NL_ERR_PERM;
	*peer = cr.uid;
	if (want == NL_PROTO_PEER_ANY)
		return 0;
	return cr.uid == 0 || cr.uid == geteuid() ? 0 : NL_ERR_PERM;
}

int nl_proto_open(struct nl_proto_client *c, const char *path, int timeout_ms, enum nl_proto_peer want)
{
	int r;

	c->fd = -1;
	c->peer = (uid_t)-1;
	if ((r = nl_ipc_connect(path, timeout_ms, &c->fd)) != 0)
		return r;
	if ((r = check_peer(c->fd, want, &c->peer)) != 0)
		nl_proto_close(c);
	return r;
}

int nl_proto_call(struct nl_proto_client *c, const json_t *req, int timeout_ms, json_t **reply)
{
	struct nl_linebuf *lb;
	int r;

	*reply = NULL;
	if (c->fd < 0)
		return NL_ERR_CLOSED;
	/* The line buffer lives for one call only: nothing of a reply stays behind once read. */
	if ((lb = malloc(sizeof(*lb))) == NULL)
		return NL_ERR_NOMEM;
	lb->len = 0;
	if ((r = nl_ipc_send(c->fd, req, timeout_ms)) == 0)
		r = nl_ipc_recv(c->fd, lb, timeout_ms, reply);
	else if (r == NL_ERR_CLOSED && nl_ipc_recv(c->fd, lb, timeout_ms, reply) == 0)
		r = 0; /* the daemon closed the connection after writing a refusal: that is the reply */
	nl_free_secret_buf(lb, sizeof(*lb));
	return r;
}

int nl_proto_wait(struct nl_proto_client *c, const char *device_code, int slice_s, json_t **reply)
{
	json_t *req = json_pack("{s:s,s:s,s:i}", "op", nl_op_word(NL_OP_WAIT), "device_code", device_code,
	                        "timeout", slice_s);
	int r;

	*reply = NULL;
	if (req == NULL)
		return NL_ERR_NOMEM;
	r = nl_proto_call(c, req, slice_s * 1000 + NL_PROTO_WAIT_GRACE_MS, reply);
	json_decref(req);
	return r;
}

void nl_proto_close(struct nl_proto_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}
