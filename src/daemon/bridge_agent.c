/* The agent API of a bridge (doc/bridge.md): POST /agent/v1/flows, GET /agent/v1/flows/{flow}?wait=N
 * (the long poll, woken through the store's subscriber), DELETE /agent/v1/flows/{flow}. Every request
 * is signed by an enrolled workstation (libnlhostauth); a flow is visible to the name that made it
 * only. Runs on the bridge's thread-per-connection listener: a parked poll holds only its thread. */
#include "config.h"
#include "bridge_int.h"
#include "flows_store.h"
#include "hostauth.h"
#include "store.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"

#define FLOWS_PATH "/agent/v1/flows"

/* ---- wake-ups ---- */

static void on_store_event(void *arg, enum nl_store_event ev, const char *id)
{
	struct bridge_waiters *w = arg;

	pthread_mutex_lock(&w->mu);
	w->seq++;
	if (ev == NL_STORE_ENDED && id != NULL) {
		size_t i = (size_t)(w->seq % BRIDGE_WAKE_RING);
		w->ring[i].seq = w->seq;
		snprintf(w->ring[i].id, sizeof(w->ring[i].id), "%s", id);
	} else if (ev == NL_STORE_LOST) {
		w->lost = true;
		w->all_seq = w->seq; /* re-read now: Redis may be gone (503 at once, not at the poll's end) */
	} else if (ev == NL_STORE_SUBSCRIBED && w->lost) {
		w->lost = false;
		w->all_seq = w->seq; /* messages of the gap are lost */
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int bridge_agent_init(struct nl_bridge *b, char *err, size_t errlen)
{
	pthread_condattr_t ca;
	int r;

	if (pthread_condattr_init(&ca) != 0)
		return nl_errf(err, errlen, NL_ERR_INTERNAL, "bridge: condition variable");
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&b->w.mu, NULL) != 0 || pthread_cond_init(&b->w.cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		return nl_errf(err, errlen, NL_ERR_INTERNAL, "bridge: condition variable");
	}
	pthread_condattr_destroy(&ca);
	b->w_init = true;
	if ((r = nl_store_subscribe(b->store, on_store_event, &b->w, &b->sub)) != 0)
		return nl_errf(err, errlen, r, "bridge: cannot start the store's subscriber: %s",
		               nl_strerror(r));
	return 0;
}

void bridge_agent_stop(struct nl_bridge *b)
{
	if (b == NULL || !b->w_init)
		return;
	nl_store_sub_stop(b->sub);
	b->sub = NULL;
	pthread_mutex_lock(&b->w.mu);
	b->w.stopping = true;
	pthread_cond_broadcast(&b->w.cv);
	pthread_mutex_unlock(&b->w.mu);
}

/* Wait until flow id may have changed (true), or deadline (monotonic ms) passes (false). *seen is
 * the last event this waiter has looked at. */
static bool wait_for(struct bridge_waiters *w, const char *id, uint64_t *seen, int64_t deadline)
{
	bool news = false;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		if (w->stopping || w->all_seq > *seen || w->seq - *seen >= BRIDGE_WAKE_RING) {
			news = true;
		} else {
			for (uint64_t s = *seen + 1; s <= w->seq && !news; s++) {
				size_t i = (size_t)(s % BRIDGE_WAKE_RING);
				news = w->ring[i].seq == s && strcmp(w->ring[i].id, id) == 0;
			}
		}
		*seen = w->seq;
		if (news)
			break;
		int64_t left = deadline - nl_mono_ms();
		if (left <= 0)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(left / 1000);
		ts.tv_nsec += (long)(left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
	return news;
}

/* ---- answers ---- */

static mhd_result send_json(struct MHD_Connection *conn, unsigned status, json_t *o)
{
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	struct MHD_Response *resp;
	mhd_result ret;

	json_decref(o);
	if (s == NULL)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_COPY);
	nl_free_secret(s); /* an approved answer holds the tokens */
	if (resp == NULL)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static mhd_result send_error(struct MHD_Connection *conn, unsigned status, const char *word, const char *msg)
{
	return send_json(conn, status, json_pack("{s:s, s:s}", "error", word, "message", msg));
}

static mhd_result send_store_error(struct MHD_Connection *conn, int r)
{
	if (r == NL_ERR_NOT_FOUND)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such flow");
	return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
	                  "the bridge's store cannot be reached");
}

/* ---- the requests ---- */

static enum nl_hostauth_replay replay_note(void *ctx, const char *name, const char *jti, time_t expires_at)
{
	struct nl_bridge *b = ctx;
	time_t now = nl_now();
	char id[NL_STORE_KEY_MAX + 1];
	bool seen = true;
	int n = snprintf(id, sizeof(id), "host:%s:%s", name, jti);

	if (n < 0 || (size_t)n >= sizeof(id))
		return NL_HOSTAUTH_REPLAY_ERROR;
	if (nl_store_replay_note(b->store, id, expires_at > now ? (unsigned)(expires_at - now) + 1 : 1,
	                         &seen) != 0)
		return NL_HOSTAUTH_REPLAY_ERROR;
	return seen ? NL_HOSTAUTH_REPLAY_SEEN : NL_HOSTAUTH_REPLAY_NEW;
}

static const char *json_str_or_null(const json_t *o, const char *key, bool *bad)
{
	const json_t *v = json_object_get(o, key);

	if (v == NULL || json_is_null(v))
		return NULL;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		*bad = true;
	return json_string_value(v);
}

static bool nonce_ok(const char *s)
{
	return s != NULL && strlen(s) == 43 &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43;
}

static mhd_result post_flow(struct nl_bridge *b, struct MHD_Connection *conn, const char *host,
                            const struct req *rq)
{
	struct nl_flow_request fr = {.host = host};
	struct nl_flow_made made;
	char *uri = NULL, *uri_c = NULL;
	json_error_t jerr;
	json_t *in, *v;
	bool bad = false;
	mhd_result ret;
	int r;

	in = json_loadb(rq->body != NULL ? rq->body : "", rq->agent_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(in)) {
		json_decref(in);
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request", "the body is not a JSON object");
	}
	fr.user = json_str_or_null(in, "user", &bad);
	fr.service = json_str_or_null(in, "service", &bad);
	fr.rhost = json_str_or_null(in, "rhost", &bad);
	fr.tty = json_str_or_null(in, "tty", &bad);
	fr.nonce = json_str_or_null(in, "nonce", &bad);
	if ((v = json_object_get(in, "number_match")) != NULL && !json_is_null(v)) {
		bad = bad || !json_is_boolean(v);
		fr.number_match = json_is_true(v);
	}
	if ((v = json_object_get(in, "ttl")) != NULL && !json_is_null(v)) {
		bad =
		    bad || !json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 86400;
		fr.ttl = json_is_integer(v) ? (unsigned)json_integer_value(v) : 0;
	}
	if (bad || fr.user == NULL || !nonce_ok(fr.nonce)) {
		json_decref(in);
		return send_error(
		    conn, MHD_HTTP_BAD_REQUEST, "bad_request",
		    "user and nonce (43 characters of base64url) are needed; fields are strings");
	}
	r = nl_flows_store_create(b->fl, &fr, &made);
	json_decref(in);
	if (r == NL_ERR_INVALID)
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
		                  "a field is too long or not printable");
	if (r == NL_ERR_LIMIT) /* logged by nl_flows_store_create */
		return send_error(conn, MHD_HTTP_TOO_MANY_REQUESTS, "limit",
		                  "too many sign-ins in progress from this workstation");
	if (r != 0) {
		nl_err("bridge: flow for workstation %s not started: %s", host, nl_strerror(r));
		return send_store_error(conn, NL_ERR_UNAVAILABLE);
	}
	if ((r = nl_bridge_verification_uri(b, made.user_code, &uri, &uri_c)) != 0)
		return send_store_error(conn, NL_ERR_UNAVAILABLE);
	ret = send_json(conn, MHD_HTTP_CREATED,
	                json_pack("{s:s, s:s, s:s, s:s, s:i}", "flow", made.id, "user_code", made.user_code,
	                          "verification_uri", uri, "verification_uri_complete", uri_c, "expires_in",
	                          made.expires_in));
	free(uri);
	free(uri_c);
	return ret;
}

/* 0..BRIDGE_AGENT_WAIT_MAX from ?wait=, -1 if it is anything else. */
static int wait_param(struct MHD_Connection *conn)
{
	const char *w = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "wait");
	size_t n;

	if (w == NULL)
		return 0;
	n = strlen(w);
	if (n == 0 || n > 2 || strspn(w, "0123456789") != n || atoi(w) > BRIDGE_AGENT_WAIT_MAX)
		return -1;
	return atoi(w);
}

static mhd_result get_flow(struct nl_bridge *b, struct MHD_Connection *conn, const char *host, const char *id)
{
	int wait = wait_param(conn), left = 0, r;
	int64_t deadline;
	uint64_t seen;
	json_t *outcome = NULL;

	if (wait < 0)
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request", "wait is 0..25 seconds");
	deadline = nl_mono_ms() + (int64_t)wait * 1000;
	pthread_mutex_lock(&b->w.mu);
	seen = b->w.seq;
	pthread_mutex_unlock(&b->w.mu);
	for (;;) {
		if ((r = nl_flows_store_read(b->fl, id, host, &outcome, &left)) != 0)
			return send_store_error(conn, r);
		if (outcome != NULL)
			break;
		if (!wait_for(&b->w, id, &seen, deadline))
			return send_json(conn, MHD_HTTP_OK,
			                 json_pack("{s:s, s:i}", "status", "pending", "expires_in", left));
		if (b->w.stopping)
			return send_store_error(conn, NL_ERR_UNAVAILABLE);
	}
	/* Handed over once: of two polls that read the end, only the one whose delete removed it answers. */
	if ((r = nl_store_flow_delete(b->store, id)) != 0) {
		json_decref(outcome);
		return send_store_error(conn, r);
	}
	nl_info("bridge: flow %s: outcome (%s) handed to workstation %s", id,
	        json_string_value(json_object_get(outcome, "status")) != NULL
	            ? json_string_value(json_object_get(outcome, "status"))
	            : "?",
	        host);
	return send_json(conn, MHD_HTTP_OK, outcome);
}

static mhd_result delete_flow(struct nl_bridge *b, struct MHD_Connection *conn, const char *host,
                              const char *id)
{
	struct MHD_Response *resp;
	mhd_result ret;
	int r = nl_flows_store_cancel(b->fl, id, host);

	if (r != 0)
		return send_store_error(conn, r);
	if ((resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT)) == NULL)
		return MHD_NO;
	ret = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, resp);
	MHD_destroy_response(resp);
	return ret;
}

static bool flow_id_ok(const char *id)
{
	size_t n = strlen(id);
	return n >= 1 && n < NL_FLOW_ID_LEN &&
	       strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* A whole request: its signature first, then the route. */
static mhd_result dispatch(struct nl_bridge *b, struct MHD_Connection *conn, const char *url,
                           const char *method, struct req *rq)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *aud =
	    b->cfg->public_url != NULL && b->cfg->public_url[0] != '\0' ? b->cfg->public_url : b->base_url;
	struct nl_hostauth_error e = {0};
	char host[NL_HOSTAUTH_NAME_MAX + 1] = "";
	bool is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0,
	     is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0,
	     is_del = strcmp(method, MHD_HTTP_METHOD_DELETE) == 0;
	int r;

	if (rq->agent_too_big)
		return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_big", "the body is over 16 KiB");
	if (rq->target == NULL)
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
		                  "the request target is too long");
	r = nl_hostauth_verify(b->hosts, auth, method, rq->target, rq->body != NULL ? rq->body : "",
	                       rq->agent_len, aud, nl_now(), replay_note, b, host, &e);
	if (r != 0) {
		if (e.reason == NL_HOSTAUTH_E_REPLAY_STORE) {
			nl_err("bridge: agent request not checked: the replay cache (Redis) does not answer");
			return send_store_error(conn, NL_ERR_UNAVAILABLE);
		}
		nl_notice("bridge: agent request %s refused (%s): %s", method,
		          nl_hostauth_reason_word(e.reason), e.detail);
		return send_error(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized",
		                  "not signed by an enrolled workstation");
	}
	if (strcmp(url, FLOWS_PATH) == 0 && is_post)
		return post_flow(b, conn, host, rq);
	if (strncmp(url, FLOWS_PATH "/", sizeof(FLOWS_PATH)) == 0 && (is_get || is_del)) {
		const char *id = url + sizeof(FLOWS_PATH);
		if (!flow_id_ok(id))
			return send_store_error(conn, NL_ERR_NOT_FOUND);
		return is_get ? get_flow(b, conn, host, id) : delete_flow(b, conn, host, id);
	}
	return send_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such resource");
}

mhd_result bridge_agent_request(struct nl_bridge *b, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *upload_data, size_t *upload_data_size,
                                struct req *rq)
{
	if (!rq->pp_checked) {
		const char *cl =
		    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		rq->pp_checked = true;
		if (cl != NULL && strtoull(cl, NULL, 10) > BRIDGE_AGENT_BODY_MAX)
			return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_big",
			                  "the body is over 16 KiB");
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		if (rq->agent_len + *upload_data_size > BRIDGE_AGENT_BODY_MAX) {
			rq->agent_too_big = true;
		} else {
			if (rq->body == NULL && (rq->body = calloc(1, BRIDGE_AGENT_BODY_MAX + 1)) == NULL)
				return MHD_NO;
			memcpy(rq->body + rq->agent_len, upload_data, *upload_data_size);
			rq->agent_len += *upload_data_size;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	(void)upload_data;
	return dispatch(b, conn, url, method, rq);
}
