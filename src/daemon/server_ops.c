/* The nhslogind socket server's replies and op handlers (doc/protocol.md): output with secrets
 * kept out of jansson's heap, request fields, wait (long-polled, parked until the flow changes),
 * number, cancel, status, the admin ops, and the dispatch of each op to its handler. */
#include "config.h"
#include "server_int.h"
#include "hostauth.h"
#include "store.h"
#include "mapping.h"
#include "nl_text.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "oidc.h"
#include "tokcache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DEVICE_CODE_MAX 512

/* ---- output ---- */

void srv_flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n =
		    send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->dead = true;
			break;
		}
		c->outoff += (size_t)n;
	}
	nl_free_secret_buf(c->out, c->outlen);
	c->out = NULL;
	c->outlen = c->outoff = 0;
	if (c->close_after)
		c->dead = true;
}

/* Queue text (a JSON object without its newline) as one line, then try to send it. */
static void queue_text(struct conn *c, const char *text)
{
	size_t n = strlen(text);
	char *buf;

	if (c->dead)
		return;
	if ((buf = malloc(c->outlen + n + 1)) == NULL) {
		c->dead = true;
		return;
	}
	if (c->outlen > 0)
		memcpy(buf, c->out, c->outlen);
	memcpy(buf + c->outlen, text, n);
	buf[c->outlen + n] = '\n';
	nl_free_secret_buf(c->out, c->outlen);
	c->out = buf;
	c->outlen += n + 1;
	srv_flush(c);
}

/* Send msg (consumed). secret_name/secret_value, if given, are spliced in as the first member so
 * that the secret never passes through jansson's (unwiped) heap. */
void srv_reply(struct conn *c, json_t *msg, const char *secret_name, const char *secret_value)
{
	char *text = msg != NULL ? nl_json_dump(msg) : NULL, *full = NULL;

	json_decref(msg);
	if (text == NULL) {
		queue_text(c, "{\"ok\":false,\"error\":\"internal\",\"message\":\"out of memory\"}");
		return;
	}
	if (secret_name != NULL && secret_value != NULL && text[0] == '{') {
		/* Both are base64url/identifier characters: no JSON escaping needed. One exact
		 * allocation: asprintf would free its growing buffers, secret and all, unwiped. */
		size_t len = strlen(secret_name) + strlen(secret_value) + strlen(text) + 7;
		if ((full = malloc(len)) != NULL)
			snprintf(full, len, "{\"%s\":\"%s\",%s", secret_name, secret_value, text + 1);
		if (full == NULL) {
			free(text);
			queue_text(c, "{\"ok\":false,\"error\":\"internal\",\"message\":\"out of memory\"}");
			return;
		}
		queue_text(c, full);
		nl_free_secret(full);
	} else {
		queue_text(c, text);
	}
	free(text);
}

void srv_reply_error(struct conn *c, enum nl_error_word e, const char *message)
{
	const char *word = nl_error_word(e);

	srv_reply(c,
	          json_pack("{sbssss}", "ok", 0, "error", word, "message", message != NULL ? message : word),
	          NULL, NULL);
}

static void reply_ok(struct conn *c)
{
	srv_reply(c, json_pack("{sb}", "ok", 1), NULL, NULL);
}

void srv_reply_flow_error(struct conn *c, int r, const char *what)
{
	switch (r) {
	case NL_ERR_NOT_FOUND:
		srv_reply_error(c, NL_EWORD_NOT_FOUND, "no such sign-in (unknown, finished or expired)");
		break;
	case NL_ERR_LIMIT:
		srv_reply_error(c, NL_EWORD_LIMIT, "too many sign-ins in progress; try again later");
		break;
	case NL_ERR_UNAVAILABLE:
		srv_reply_error(c, NL_EWORD_UNAVAILABLE, "nhslogind has no room for another sign-in now");
		break;
	case NL_ERR_INVALID:
		srv_reply_error(c, NL_EWORD_BAD_REQUEST, what);
		break;
	default:
		srv_reply_error(c, NL_EWORD_INTERNAL, nl_strerror(r));
		break;
	}
}

/* ---- request fields ---- */

bool srv_plain_string(const char *s, size_t max)
{
	size_t n;
	if (s == NULL || (n = strnlen(s, max + 1)) > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (nl_text_is_control((unsigned char)s[i]))
			return false;
	return true;
}

/* An optional string member: absent is fine (NULL), anything but a short string is not. */
bool srv_optional_field(const json_t *req, const char *key, const char **out)
{
	const json_t *v = json_object_get(req, key);
	*out = NULL;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_string(v) || !srv_plain_string(json_string_value(v), NL_FIELD_MAX))
		return false;
	*out = json_string_value(v);
	return true;
}

static const char *device_code_of(const json_t *req)
{
	const char *dc = nl_json_str(req, "device_code");
	return srv_plain_string(dc, DEVICE_CODE_MAX) && dc[0] != '\0' ? dc : NULL;
}

/* ---- wait ---- */

void srv_unpark(struct nl_server *s, struct conn *c)
{
	if (c->parked) {
		if (c->wprev != NULL)
			c->wprev->wnext = c->wnext;
		else
			s->wait_bucket[c->wait_tag & (WAIT_BUCKETS - 1)] = c->wnext;
		if (c->wnext != NULL)
			c->wnext->wprev = c->wprev;
		c->wprev = c->wnext = NULL;
	}
	nl_free_secret(c->wait_code);
	c->wait_code = NULL;
	c->parked = false;
}

static void park(struct nl_server *s, struct conn *c, uint64_t tag)
{
	struct conn **b = &s->wait_bucket[tag & (WAIT_BUCKETS - 1)];

	c->wait_tag = tag;
	c->wprev = NULL;
	c->wnext = *b;
	if (*b != NULL)
		(*b)->wprev = c;
	*b = c;
	c->parked = true;
}

/* Answer c's wait if its flow has an outcome (or on timeout); true if answered. *tag gets the
 * flow's wake-up tag. */
bool srv_wait_check(struct nl_server *s, struct conn *c, const char *device_code, bool timed_out,
                    uint64_t *tag)
{
	struct nl_flow_status st;
	int r;

	if ((r = nl_flows_status(s->ctx.flows, device_code, &st)) != 0) {
		srv_reply_flow_error(c, r, "");
		return true;
	}
	*tag = st.tag;
	if (st.state == NL_FLOW_PENDING && st.want_number) {
		srv_reply(c,
		          json_pack("{sbsssi}", "ok", 1, "status", nl_status_word(NL_STATUS_NUMBER),
		                    "expires_in", st.expires_in),
		          NULL, NULL);
	} else if (st.state == NL_FLOW_PENDING) {
		if (!timed_out)
			return false;
		srv_reply(c,
		          json_pack("{sbsssi}", "ok", 1, "status", nl_status_word(NL_STATUS_PENDING),
		                    "expires_in", st.expires_in),
		          NULL, NULL);
	} else if (st.state == NL_FLOW_APPROVED) {
		srv_reply(c,
		          json_pack("{sbssss}", "ok", 1, "status", nl_status_word(NL_STATUS_APPROVED), "user",
		                    st.user),
		          NULL, NULL);
	} else {
		srv_reply(c,
		          json_pack("{sbssssss}", "ok", 1, "status", nl_status_word(NL_STATUS_DENIED),
		                    "reason", nl_reason_word(st.reason), "message", st.message),
		          NULL, NULL);
	}
	return true;
}

static void handle_wait(struct nl_server *s, struct conn *c, const json_t *req)
{
	const char *dc = device_code_of(req);
	const json_t *tv = json_object_get(req, "timeout");
	long long timeout = NL_SERVER_DEFAULT_WAIT;
	uint64_t tag = 0;

	if (dc == NULL) {
		srv_reply_error(c, NL_EWORD_BAD_REQUEST, "device_code is required");
		return;
	}
	if (tv != NULL && !json_is_integer(tv)) {
		srv_reply_error(c, NL_EWORD_BAD_REQUEST, "timeout must be an integer");
		return;
	}
	if (tv != NULL)
		timeout = json_integer_value(tv);
	if (timeout < 1)
		timeout = 1;
	if (timeout > (long long)s->ctx.cfg->wait_max)
		timeout = s->ctx.cfg->wait_max;
	if (srv_wait_check(s, c, dc, false, &tag))
		return;
	if ((c->wait_code = strdup(dc)) == NULL) {
		srv_reply_error(c, NL_EWORD_INTERNAL, "out of memory");
		return;
	}
	park(s, c, tag);
	c->wait_deadline = nl_mono_ms() + timeout * 1000;
}

/* ---- number ---- */

/* The number the person typed at the terminal (number matching). The answer is the flow's outcome,
 * as a wait would give it: approved, or denied with wrong_number. */
static void handle_number(struct nl_server *s, struct conn *c, const json_t *req)
{
	const char *dc = device_code_of(req), *typed = nl_json_str(req, "number");
	uint64_t tag = 0;
	int r;

	if (dc == NULL || typed == NULL || !srv_plain_string(typed, 8)) {
		srv_reply_error(c, NL_EWORD_BAD_REQUEST,
		                "device_code and number (a short string) are required");
		return;
	}
	r = nl_flows_enter_number(s->ctx.flows, dc, typed);
	if (r == NL_ERR_INVALID) {
		srv_reply_error(c, NL_EWORD_BAD_REQUEST, "this sign-in is not waiting for a number");
		return;
	}
	if (r != 0 && r != NL_ERR_DENIED && r != NL_ERR_EXPIRED) {
		srv_reply_flow_error(c, r, "");
		return;
	}
	(void)srv_wait_check(s, c, dc, true, &tag);
}

/* ---- the small ops ---- */

static void handle_cancel(struct nl_server *s, struct conn *c, const json_t *req)
{
	const char *dc = device_code_of(req);
	int r;
	if (dc == NULL) {
		srv_reply_error(c, NL_EWORD_BAD_REQUEST, "device_code is required");
		return;
	}
	if ((r = nl_flows_cancel(s->ctx.flows, dc)) != 0)
		srv_reply_flow_error(c, r, "");
	else
		reply_ok(c);
}

static json_t *age_or_null(time_t at, time_t now)
{
	return at > 0 ? json_integer(now > at ? (json_int_t)(now - at) : 0) : json_null();
}

/* role = bridge: the store (one ROLE command, within store_timeout_ms) and its counters, and the
 * enrolled workstations. */
static json_t *bridge_status(const struct nl_server_ctx *ctx)
{
	struct nl_store_status st;
	struct nl_hostauth_error e = {0};
	char **files = NULL;
	size_t n = 0;
	bool cut = false;
	long long pending = 0, instances = 0;
	int r, rp, ri;

	memset(&st, 0, sizeof(st));
	r = nl_store_status(ctx->store, &st);
	rp = r == 0 ? nl_store_flows_pending(ctx->store, &pending) : r;
	ri = r == 0 ? nl_store_instances(ctx->store, &instances) : r;
	st.role[sizeof(st.role) - 1] = st.addr[sizeof(st.addr) - 1] = '\0';
	if (ctx->hosts != NULL && nl_hostauth_hosts_list(ctx->hosts, 100000, &files, &n, &cut, &e) == 0)
		nl_hostauth_files_free(files, n);
	else
		n = 0;
	return json_pack(
	    "{ss ss ss* sI sI sI sI sI sb so so sI}", "store_role", r == 0 ? st.role : "unreachable",
	    "store_addr", st.addr, "store_error", r == 0 ? NULL : nl_strerror(r), "store_commands",
	    (json_int_t)st.commands, "store_setup_commands", (json_int_t)st.setup_commands, "store_connects",
	    (json_int_t)st.connects, "store_unavailable", (json_int_t)st.unavailable, "hosts", (json_int_t)n,
	    "hosts_more", cut, "flows_pending", rp == 0 ? json_integer((json_int_t)pending) : json_null(),
	    "instances", ri == 0 ? json_integer((json_int_t)instances) : json_null(), "starts_limited",
	    (json_int_t)st.limited);
}

static void handle_status(struct nl_server *s, struct conn *c, const json_t *req)
{
	const struct nl_config *cfg = s->ctx.cfg;
	struct nl_oidc_stats st;
	time_t now = nl_now();
	json_t *m;

	(void)req;
	if (!c->admin) {
		/* Whether anyone signed in lately, or how many sign-ins wait, is not a caller's business
		 * unless it is root. */
		srv_reply(c,
		          json_pack("{sb ss ss}", "ok", 1, "environment",
		                    cfg->environment ? cfg->environment : "", "issuer",
		                    cfg->env.issuer ? cfg->env.issuer : ""),
		          NULL, NULL);
		return;
	}
	memset(&st, 0, sizeof(st));
	if (s->ctx.oidc != NULL)
		nl_oidc_get_stats(s->ctx.oidc, &st);
	st.last_error[sizeof(st.last_error) - 1] = '\0';
	m = json_pack("{sb ss ss sI sI so so sI ss* sI}", "ok", 1, "environment",
	              cfg->environment ? cfg->environment : "", "issuer",
	              cfg->env.issuer ? cfg->env.issuer : "", "flows",
	              (json_int_t)nl_flows_count(s->ctx.flows), "flows_max", (json_int_t)cfg->max_flows,
	              "discovery_age", age_or_null(st.discovery_fetched_at, now), "jwks_age",
	              age_or_null(st.jwks_fetched_at, now), "cached_signins",
	              (json_int_t)(s->ctx.tc != NULL ? nl_tokcache_count(s->ctx.tc) : 0), "last_error",
	              st.last_error[0] ? st.last_error : NULL, "uptime",
	              (json_int_t)((nl_mono_ms() - s->started_ms) / 1000));
	if (m != NULL && s->ctx.agent != NULL) {
		struct nl_agent_info ai;
		nl_agent_info(s->ctx.agent, &ai);
		json_object_set_new(m, "role", json_string("agent"));
		json_object_set_new(m, "bridge_url", json_string(ai.bridge_url));
		json_object_set_new(m, "workstation", json_string(ai.name));
		json_object_set_new(m, "agent_error",
		                    ai.last_error[0] ? json_string(ai.last_error) : json_null());
		json_object_set_new(m, "agent_error_age", age_or_null(ai.last_error_at, now));
		/* where the keys that check the bridge's tokens come from */
		json_object_set_new(m, "jwks_source",
		                    json_string(cfg->agent_jwks_file != NULL ? "file" : "issuer"));
		if (cfg->agent_jwks_file != NULL) {
			json_object_set_new(m, "jwks_file", json_string(cfg->agent_jwks_file));
			json_object_set_new(m, "jwks_keys", json_integer((json_int_t)st.jwks_pinned_keys));
		}
	}
	if (m != NULL && s->ctx.store != NULL)
		(void)json_object_set_new(m, "bridge", bridge_status(&s->ctx));
	srv_reply(c, m, NULL, NULL);
}

static const char *state_word(enum nl_flow_state st)
{
	return nl_status_word(st == NL_FLOW_PENDING    ? NL_STATUS_PENDING
	                      : st == NL_FLOW_APPROVED ? NL_STATUS_APPROVED
	                                               : NL_STATUS_DENIED);
}

static void handle_flows(struct nl_server *s, struct conn *c, const json_t *req)
{
	struct nl_flow_info *info = calloc(NL_SERVER_MAX_LISTED, sizeof(*info));
	json_t *arr = json_array();
	size_t n;

	(void)req;
	if (info == NULL || arr == NULL) {
		free(info);
		json_decref(arr);
		srv_reply_error(c, NL_EWORD_INTERNAL, "out of memory");
		return;
	}
	n = nl_flows_list(s->ctx.flows, info, NL_SERVER_MAX_LISTED);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr,
		                      json_pack("{sssssssssssi}", "flow", info[i].id, "user", info[i].user,
		                                "service", info[i].service, "rhost", info[i].rhost, "state",
		                                state_word(info[i].state), "expires_in", info[i].expires_in));
	free(info);
	srv_reply(c, json_pack("{sbso}", "ok", 1, "flows", arr), NULL, NULL);
}

static void handle_flow_cancel(struct nl_server *s, struct conn *c, const json_t *req)
{
	const char *id = nl_json_str(req, "flow");
	int r;
	if (!srv_plain_string(id, NL_FLOW_ID_LEN)) {
		srv_reply_error(c, NL_EWORD_BAD_REQUEST, "flow is required");
		return;
	}
	enum nl_flow_state was = NL_FLOW_PENDING;

	if ((r = nl_flows_cancel_id(s->ctx.flows, id, &was)) != 0) {
		srv_reply_flow_error(c, r, "");
		return;
	}
	/* A sign-in that had already ended stays as it ended: say so, and log no cancellation. */
	if (was != NL_FLOW_PENDING) {
		srv_reply(c, json_pack("{sbsbss}", "ok", 1, "cancelled", 0, "state", state_word(was)), NULL,
		          NULL);
		return;
	}
	nl_notice("flow %s cancelled by an administrator", id);
	srv_reply(c, json_pack("{sbsb}", "ok", 1, "cancelled", 1), NULL, NULL);
}

static void handle_flush(struct nl_server *s, struct conn *c, const json_t *req)
{
	(void)req;
	if (s->ctx.oidc != NULL)
		nl_oidc_flush(s->ctx.oidc);
	if (s->ctx.tc != NULL)
		nl_tokcache_flush(s->ctx.tc);
	nl_map_cache_flush(); /* the map file and the directory's answers: a change there counts now */
	nl_notice("discovery, JWKS, token and identity caches flushed by an administrator");
	reply_ok(c);
}

/* ---- dispatch ---- */

void srv_dispatch(struct nl_server *s, struct conn *c, const json_t *req)
{
	const char *name = nl_json_str(req, "op");
	enum nl_op op = nl_op_of(name);

	if (name == NULL) {
		srv_reply_error(c, NL_EWORD_BAD_REQUEST, "op is required");
		return;
	}
	if (nl_op_root_only(op) && !c->admin) {
		srv_reply_error(c, NL_EWORD_FORBIDDEN, "this operation is for root only");
		return;
	}
	switch (op) {
	case NL_OP_START:
		if (s->ctx.cfg->role == NL_ROLE_BRIDGE)
			srv_reply_error(c, NL_EWORD_UNAVAILABLE, "this nhslogind is a bridge");
		else
			srv_handle_start(s, c, req);
		break;
	case NL_OP_WAIT:
		handle_wait(s, c, req);
		break;
	case NL_OP_NUMBER:
		handle_number(s, c, req);
		break;
	case NL_OP_CANCEL:
		handle_cancel(s, c, req);
		break;
	case NL_OP_STATUS:
		handle_status(s, c, req);
		break;
	case NL_OP_FLOWS:
		handle_flows(s, c, req);
		break;
	case NL_OP_FLOW_CANCEL:
		handle_flow_cancel(s, c, req);
		break;
	case NL_OP_FLUSH:
		handle_flush(s, c, req);
		break;
	case NL_OP_UNKNOWN:
		srv_reply_error(c, NL_EWORD_UNKNOWN_OP, "unknown op");
		break;
	}
}
