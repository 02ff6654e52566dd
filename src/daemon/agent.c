/* The agent role: the signed requests to the bridge (doc/bridge.md, "The API"), one poller thread
 * a flow, and the agent's own verdict on what the bridge hands over. The bridge's word about a
 * sign-in is never taken: approval needs an ID token that nl_oidc_verify_tokens accepts with our
 * nonce, mapped here to the flow's user by nl_signin_complete. */
#include "config.h"
#include "agent.h"
#include "hostauth.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_reason.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "signin.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nl_agent {
	const struct nl_config *cfg;
	struct nl_flows *fl;
	struct nl_oidc *oidc;
	struct nl_tokcache *tc;
	cjose_jwk_t *key;
	char name[NL_HOSTAUTH_NAME_MAX + 1];
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC; signalled at stop and when a poller ends */
	atomic_bool stop;
	size_t running; /* poller threads alive */
	time_t last_error_at;
	char last_error[256];
};

/* One flow being polled: owned by its thread. */
struct poll_job {
	struct nl_agent *a;
	char flow_id[NL_FLOW_ID_LEN];
	char user[NL_USER_MAX + 1];
	char bflow[NL_AGENT_FLOW_MAX + 1];
	char nonce[64];
	bool number_match;
	bool forget; /* only tell the bridge that this flow will not be used (nl_agent_forget) */
	int64_t deadline_ms;
};

/* ---- pure helpers ---- */

bool nl_agent_flow_id_ok(const char *s)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > NL_AGENT_FLOW_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

enum nl_outcome nl_agent_outcome_of(const char *reason)
{
	enum nl_reason r;

	if (reason == NULL || !nl_reason_from_word(reason, &r))
		return NL_OUT_DENIED;
	switch (r) {
	case NL_REASON_EXPIRED:
	case NL_REASON_CANCELLED:
		return NL_OUT_EXPIRED;
	case NL_REASON_INVALID_TOKEN:
		return NL_OUT_INVALID_TOKEN;
	case NL_REASON_LEVEL:
		return NL_OUT_LEVEL;
	case NL_REASON_UNAVAILABLE:
	case NL_REASON_RESTARTED:
	case NL_REASON_MISCONFIGURED:
		return NL_OUT_UNAVAILABLE;
	default:
		/* denied, and the words only an agent can decide (mismatch, no_mapping, wrong_number...):
		 * a bridge has no business saying them, and they end the flow denied either way */
		return NL_OUT_DENIED;
	}
}

int nl_agent_target(const char *bridge_url, const char *suffix, char **url, char **path)
{
	CURLU *u = NULL;
	char *p = NULL;
	size_t n;
	int r = NL_ERR_INVALID;

	*url = *path = NULL;
	if (bridge_url == NULL || suffix == NULL || suffix[0] != '/' || (u = curl_url()) == NULL)
		return NL_ERR_INVALID;
	if (curl_url_set(u, CURLUPART_URL, bridge_url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &p, 0) != CURLUE_OK)
		goto out;
	r = NL_ERR_NOMEM;
	n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	if (asprintf(path, "%.*s%s", (int)n, p, suffix) < 0) {
		*path = NULL;
		goto out;
	}
	n = strlen(bridge_url);
	while (n > 0 && bridge_url[n - 1] == '/')
		n--;
	if (asprintf(url, "%.*s%s", (int)n, bridge_url, suffix) < 0) {
		*url = NULL;
		goto out;
	}
	r = 0;
out:
	if (r != 0) {
		free(*path);
		*path = NULL;
	}
	curl_free(p);
	curl_url_cleanup(u);
	return r;
}

/* ---- the object ---- */

static void note_error(struct nl_agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(struct nl_agent *a, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&a->mu);
	va_start(ap, fmt);
	vsnprintf(a->last_error, sizeof(a->last_error), fmt, ap);
	va_end(ap);
	a->last_error_at = nl_now();
	pthread_mutex_unlock(&a->mu);
}

int nl_agent_new(const struct nl_config *cfg, struct nl_flows *fl, struct nl_oidc *oidc,
                 struct nl_tokcache *tc, struct nl_agent **out, char *err, size_t errlen)
{
	const char *path = cfg->agent_host_key != NULL ? cfg->agent_host_key : NL_AGENT_HOST_KEY_DEFAULT;
	struct nl_agent *a;
	pthread_condattr_t ca;
	char kerr[300] = "";
	int r;

	if (cfg->agent_bridge_url == NULL || !nl_url_allowed(cfg->agent_bridge_url))
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "[agent] bridge_url must be an https URL (http only to loopback)");
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NL_ERR_NOMEM;
	a->cfg = cfg;
	a->fl = fl;
	a->oidc = oidc;
	a->tc = tc;
	if (cfg->agent_name != NULL) {
		snprintf(a->name, sizeof(a->name), "%s", cfg->agent_name);
	} else if (nl_hostauth_default_name(a->name) != 0) {
		r = nl_errf(err, errlen, NL_ERR_CONFIG,
		            "the host name is not a workstation name: set [agent] name to the enrolled name");
		free(a);
		return r;
	}
	if (!nl_hostauth_name_ok(a->name)) {
		free(a);
		return nl_errf(err, errlen, NL_ERR_CONFIG, "[agent] name is not a workstation name");
	}
	if ((r = nl_hostauth_key_load(path, &a->key, kerr, sizeof(kerr))) != 0) {
		free(a);
		return nl_errf(
		    err, errlen, r,
		    "the workstation key %s cannot be used (%s): an agent signs every request to the "
		    "bridge with it; run nhsloginctl enroll and register what it prints at the bridge",
		    path, kerr);
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = a;
	return 0;
}

void nl_agent_stop(struct nl_agent *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	atomic_store(&a->stop, true);
	pthread_cond_broadcast(&a->cv);
	/* Each poller sees stop within about a second (libcurl's progress callback), or when the ID
	 * token check it may be in (at most http_timeout a request) returns. */
	while (a->running > 0)
		pthread_cond_wait(&a->cv, &a->mu);
	pthread_mutex_unlock(&a->mu);
	cjose_jwk_release(a->key);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

size_t nl_agent_count(struct nl_agent *a)
{
	size_t n;

	if (a == NULL)
		return 0;
	pthread_mutex_lock(&a->mu);
	n = a->running;
	pthread_mutex_unlock(&a->mu);
	return n;
}

void nl_agent_info(struct nl_agent *a, struct nl_agent_info *out)
{
	memset(out, 0, sizeof(*out));
	if (a == NULL)
		return;
	snprintf(out->bridge_url, sizeof(out->bridge_url), "%s", a->cfg->agent_bridge_url);
	snprintf(out->name, sizeof(out->name), "%s", a->name);
	pthread_mutex_lock(&a->mu);
	out->last_error_at = a->last_error_at;
	snprintf(out->last_error, sizeof(out->last_error), "%s", a->last_error);
	pthread_mutex_unlock(&a->mu);
}

void nl_agent_flow_clear(struct nl_agent_flow *f)
{
	if (f == NULL)
		return;
	free(f->user_code);
	free(f->verification_uri);
	free(f->verification_uri_complete);
	nl_wipe(f, sizeof(*f));
}

/* ---- one request ---- */

struct call {
	struct nl_agent *a;
	struct poll_job *job; /* NULL at start: then only stop aborts */
};

/* libcurl asks about once a second: give up at stop, and when the person gave up (the local flow
 * is no longer pending), so that a 25 s long-poll does not hold either. */
static bool call_abort(void *ctx)
{
	const struct call *c = ctx;

	if (atomic_load(&c->a->stop))
		return true;
	return c->job != NULL && !nl_flows_pending_id(c->a->fl, c->job->flow_id);
}

/* One signed request: method to suffix (with query, if any) of the bridge, body JSON or NULL. The
 * transfer is bounded by wait_s + http_timeout. */
static int bridge_call(struct nl_agent *a, struct poll_job *job, const char *method, const char *suffix,
                       const char *body, unsigned wait_s, struct nl_http_resp *resp, char *err, size_t errlen)
{
	struct call c = {.a = a, .job = job};
	struct nl_http_opts o = {0};
	char *url = NULL, *path = NULL, *auth = NULL;
	size_t blen = body != NULL ? strlen(body) : 0;
	int r;

	memset(resp, 0, sizeof(*resp));
	if ((r = nl_agent_target(a->cfg->agent_bridge_url, suffix, &url, &path)) != 0) {
		snprintf(err, errlen, "%s %s: bad bridge URL", method, a->cfg->agent_bridge_url);
		goto out;
	}
	if ((r = nl_hostauth_sign(a->key, a->name, method, path, body != NULL ? body : "", blen,
	                          a->cfg->agent_bridge_url, nl_now(), &auth)) != 0) {
		snprintf(err, errlen, "%s %s: cannot sign the request: %s", method, path, nl_strerror(r));
		goto out;
	}
	o.ca_file = a->cfg->agent_ca_file;
	o.connect_timeout_ms = (long)a->cfg->http_timeout * 1000;
	o.total_timeout_ms = (long)(wait_s + a->cfg->http_timeout) * 1000;
	o.max_body = NL_AGENT_MAX_BODY;
	o.authorization = auth;
	o.abort_cb = call_abort;
	o.abort_ctx = &c;
	r = nl_http_request(method, url, body != NULL ? "application/json" : NULL, body, blen, &o, resp, err,
	                    errlen);
out:
	nl_free_secret(auth);
	free(url);
	free(path);
	return r;
}

/* The JSON object of a response; NULL if it is not one (duplicate keys refused: "two tokens"). */
static json_t *resp_json(const struct nl_http_resp *resp)
{
	json_t *m;

	if (resp->body == NULL || resp->body_len == 0)
		return NULL;
	m = json_loadb(resp->body, resp->body_len, JSON_REJECT_DUPLICATES, NULL);
	if (m != NULL && !json_is_object(m)) {
		json_decref(m);
		m = NULL;
	}
	return m;
}

/* ---- start ---- */

static int new_nonce(char out[64])
{
	unsigned char raw[NL_AGENT_NONCE_BYTES];
	char *enc = NULL;
	int r;

	if ((r = nl_random_bytes(raw, sizeof(raw))) != 0)
		return r;
	r = nl_b64url_encode(raw, sizeof(raw), &enc);
	nl_wipe(raw, sizeof(raw));
	if (r != 0)
		return r;
	snprintf(out, 64, "%s", enc);
	nl_free_secret(enc);
	return 0;
}

static char *dup_str(const json_t *m, const char *key, size_t max)
{
	const char *v = nl_json_str(m, key);
	return v != NULL && v[0] != '\0' && strlen(v) <= max ? strdup(v) : NULL;
}

/* The 201 answer to a start, checked field by field. */
static int parse_created(const struct nl_http_resp *resp, struct nl_agent_flow *out)
{
	json_t *m = resp_json(resp);
	long long exp = 0;
	int r = NL_ERR_HTTP;

	if (m == NULL)
		return NL_ERR_HTTP;
	if (!nl_agent_flow_id_ok(nl_json_str(m, "flow")) || nl_json_int(m, "expires_in", &exp) != 0 ||
	    exp <= 0 || exp > 86400)
		goto out;
	snprintf(out->flow, sizeof(out->flow), "%s", nl_json_str(m, "flow"));
	out->expires_in = (int)exp;
	out->user_code = dup_str(m, "user_code", 32);
	out->verification_uri = dup_str(m, "verification_uri", 1024);
	out->verification_uri_complete = dup_str(m, "verification_uri_complete", 1024);
	if (out->user_code == NULL || out->verification_uri == NULL)
		goto out;
	if (out->verification_uri_complete == NULL &&
	    (out->verification_uri_complete = strdup(out->verification_uri)) == NULL)
		goto out;
	r = 0;
out:
	json_decref(m);
	return r;
}

int nl_agent_create(struct nl_agent *a, const struct nl_agent_start *st, struct nl_agent_flow *out, char *err,
                    size_t errlen)
{
	struct nl_http_resp resp = {0};
	char herr[256] = "", *body = NULL;
	json_t *req = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = new_nonce(out->nonce)) != 0)
		return nl_errf(err, errlen, r, "no random nonce");
	req = json_pack("{ss ss* ss* ss* ss sb si}", "user", st->user, "service", st->service, "rhost",
	                st->rhost, "tty", st->tty, "nonce", out->nonce, "number_match", st->number_match,
	                "ttl", (int)st->ttl);
	if (req == NULL || (body = json_dumps(req, JSON_COMPACT)) == NULL) {
		r = nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* One more try, signed afresh, when the way to the bridges failed rather than a bridge: an
	 * instance that died under the load balancer (no answer, 502, 504). A start that was made all
	 * the same is never collected and expires at the bridge. 503 is the bridges' own "unavailable"
	 * (Redis down): answered at once, so that break-glass is at once too. */
	for (int attempt = 0; attempt < 2; attempt++) {
		nl_http_resp_free(&resp);
		r = bridge_call(a, NULL, "POST", "/agent/v1/flows", body, 0, &resp, herr, sizeof(herr));
		if (r == 0 && resp.status != 502 && resp.status != 504)
			break;
	}
	if (r != 0) {
		r = nl_errf(err, errlen, NL_ERR_UNAVAILABLE, "the bridge could not be reached: %s", herr);
		goto out;
	}
	if (resp.status == 201 && parse_created(&resp, out) == 0) {
		r = 0;
		goto out;
	}
	if (resp.status == 429)
		r = nl_errf(err, errlen, NL_ERR_LIMIT,
		            "the bridge %s refused the start (429): too many sign-ins in progress from this "
		            "workstation",
		            a->cfg->agent_bridge_url);
	else if (resp.status == 401)
		r = nl_errf(err, errlen, NL_ERR_UNAVAILABLE,
		            "the bridge %s refused this workstation's signature (401): is %s enrolled there "
		            "with this key (nhsloginctl enroll)?",
		            a->cfg->agent_bridge_url, a->name);
	else
		r = nl_errf(err, errlen, NL_ERR_UNAVAILABLE,
		            "the bridge %s answered the start with status %ld%s", a->cfg->agent_bridge_url,
		            resp.status, resp.status == 201 ? " but not the API's answer" : "");
out:
	if (r != 0) {
		note_error(a, "%s", err);
		nl_agent_flow_clear(out);
	}
	nl_free_secret(body);
	json_decref(req);
	nl_http_resp_free(&resp);
	return r;
}

/* ---- polling ---- */

/* Wait ms, or less if the agent stops or the flow ends. */
static void backoff_wait(struct poll_job *j, int ms)
{
	struct nl_agent *a = j->a;
	int64_t until = nl_mono_ms() + ms;

	while (!atomic_load(&a->stop) && nl_mono_ms() < until && nl_flows_pending_id(a->fl, j->flow_id)) {
		struct timespec ts;
		int64_t t;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 100;
		ts.tv_sec = t / 1000;
		ts.tv_nsec = (long)(t % 1000) * 1000000;
		pthread_mutex_lock(&a->mu);
		if (!atomic_load(&a->stop))
			pthread_cond_timedwait(&a->cv, &a->mu, &ts);
		pthread_mutex_unlock(&a->mu);
	}
}

/* The person gave up (or the flow expired here): tell the bridge, once, briefly. */
static void send_delete(struct poll_job *j)
{
	struct nl_http_resp resp;
	char suffix[128], err[256] = "";

	snprintf(suffix, sizeof(suffix), "/agent/v1/flows/%s", j->bflow);
	/* no job: the flow's end does not abort this one (it is why we are here); stop still does */
	if (bridge_call(j->a, NULL, "DELETE", suffix, NULL, 0, &resp, err, sizeof(err)) != 0)
		nl_info("flow %s: could not tell the bridge that the sign-in ended: %s", j->flow_id, err);
	else if (resp.status != 204 && resp.status != 404)
		nl_info("flow %s: the bridge answered the cancel with status %ld", j->flow_id, resp.status);
	nl_http_resp_free(&resp);
}

/* An approved answer: our own verdict on the tokens, then the decision. */
static void end_approved(struct poll_job *j, const json_t *m)
{
	struct nl_agent *a = j->a;
	struct nl_grant_result res;
	const char *idt = nl_json_str(m, "id_token"), *at = nl_json_str(m, "access_token");
	long long number = 0;
	char detail[400];

	if (nl_oidc_verify_tokens(a->oidc, idt, at, j->nonce, &res) != 0 || res.outcome != NL_OUT_OK) {
		enum nl_outcome oc = res.outcome == NL_OUT_OK ? NL_OUT_INVALID_TOKEN : res.outcome;
		snprintf(detail, sizeof(detail), "the bridge %s approved, but: %s", a->cfg->agent_bridge_url,
		         res.error[0] ? res.error : "no usable ID token");
		nl_warn("flow %s: %s", j->flow_id, detail);
		note_error(a, "flow %s: %s", j->flow_id, detail);
		nl_signin_complete(a->cfg, a->fl, a->tc, j->flow_id, j->user, oc, NULL, detail);
		nl_grant_result_clear(&res);
		return;
	}
	if (j->number_match) {
		if (nl_json_int(m, "number", &number) == 0 && number >= 10 && number <= 99)
			(void)nl_flows_set_number(a->fl, j->flow_id, (unsigned)number);
		else /* our own number then: the phone does not show it, so the sign-in cannot end approved */
			nl_warn("flow %s: the bridge approved without the number its phone shows",
			        j->flow_id);
	}
	snprintf(detail, sizeof(detail), "through the bridge %s", a->cfg->agent_bridge_url);
	nl_signin_complete(a->cfg, a->fl, a->tc, j->flow_id, j->user, NL_OUT_OK, &res.id, detail);
	nl_grant_result_clear(&res);
}

/* An answer refused for a duplicate field that says "approved": a bridge that sends two tokens
 * (doc/bridge.md, rule 5) ends the flow invalid_token rather than unavailable. */
static bool approved_twice(const struct nl_http_resp *resp)
{
	json_t *m = resp->body != NULL ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
	const char *st = m != NULL ? nl_json_str(m, "status") : NULL;
	bool yes = st != NULL && strcmp(st, "approved") == 0;

	json_decref(m);
	return yes;
}

/* What one answer to a poll means. */
enum poll_next { POLL_AGAIN, POLL_RETRY, POLL_DONE };

static enum poll_next judge(struct poll_job *j, const struct nl_http_resp *resp)
{
	struct nl_agent *a = j->a;
	const char *status, *reason;
	char detail[400];
	json_t *m;

	if (resp->status == 502 || resp->status == 503 || resp->status == 504)
		return POLL_RETRY; /* an instance down behind the balancer: the next poll finds another */
	if (resp->status == 404) {
		/* the bridge no longer knows the flow: it expired there, was handed over already, or
		 * the bridges' store lost it (doc/bridge.md, "Faults"): a new sign-in is the way on */
		nl_signin_complete(a->cfg, a->fl, a->tc, j->flow_id, j->user, NL_OUT_EXPIRED, NULL,
		                   "the bridge no longer knows the flow (404)");
		return POLL_DONE;
	}
	if (resp->status == 401) {
		snprintf(
		    detail, sizeof(detail),
		    "the bridge %s refused this workstation's signature (401): is %s enrolled there with "
		    "this key (nhsloginctl enroll)?",
		    a->cfg->agent_bridge_url, a->name);
		nl_err("flow %s: %s", j->flow_id, detail);
		note_error(a, "%s", detail);
		nl_signin_complete(a->cfg, a->fl, a->tc, j->flow_id, j->user, NL_OUT_UNAVAILABLE, NULL,
		                   detail);
		return POLL_DONE;
	}
	m = resp->status == 200 ? resp_json(resp) : NULL;
	if (m == NULL && resp->status == 200 && approved_twice(resp)) {
		snprintf(detail, sizeof(detail),
		         "the bridge %s approved with a field given twice (two tokens?)",
		         a->cfg->agent_bridge_url);
		nl_warn("flow %s: %s", j->flow_id, detail);
		note_error(a, "flow %s: %s", j->flow_id, detail);
		nl_signin_complete(a->cfg, a->fl, a->tc, j->flow_id, j->user, NL_OUT_INVALID_TOKEN, NULL,
		                   detail);
		return POLL_DONE;
	}
	status = m != NULL ? nl_json_str(m, "status") : NULL;
	if (status != NULL && strcmp(status, "pending") == 0) {
		json_decref(m);
		return POLL_AGAIN;
	}
	if (status != NULL && strcmp(status, "approved") == 0) {
		end_approved(j, m);
	} else if (status != NULL && strcmp(status, "denied") == 0) {
		reason = nl_json_str(m, "reason");
		snprintf(detail, sizeof(detail), "the bridge said %.64s", reason != NULL ? reason : "denied");
		nl_signin_complete(a->cfg, a->fl, a->tc, j->flow_id, j->user, nl_agent_outcome_of(reason),
		                   NULL, detail);
	} else {
		snprintf(detail, sizeof(detail),
		         "the bridge %s answered a poll with status %ld and no API answer",
		         a->cfg->agent_bridge_url, resp->status);
		note_error(a, "flow %s: %s", j->flow_id, detail);
		nl_signin_complete(a->cfg, a->fl, a->tc, j->flow_id, j->user, NL_OUT_UNAVAILABLE, NULL,
		                   detail);
	}
	json_decref(m);
	return POLL_DONE;
}

static void poll_flow(struct poll_job *j)
{
	struct nl_agent *a = j->a;
	struct nl_http_resp resp;
	char suffix[160], err[256];
	int backoff = NL_AGENT_BACKOFF_MS, r;

	while (!atomic_load(&a->stop)) {
		int64_t left = j->deadline_ms - nl_mono_ms();
		unsigned wait;
		enum poll_next next;

		if (!nl_flows_pending_id(a->fl, j->flow_id)) {
			send_delete(j); /* cancelled, expired, or the number is wanted now (we ended it) */
			return;
		}
		if (left <= 0) {
			nl_signin_complete(a->cfg, a->fl, a->tc, j->flow_id, j->user, NL_OUT_EXPIRED, NULL,
			                   "the bridge gave no answer before the flow expired");
			send_delete(j);
			return;
		}
		wait = left / 1000 < NL_AGENT_WAIT ? (unsigned)(left / 1000) : NL_AGENT_WAIT;
		snprintf(suffix, sizeof(suffix), "/agent/v1/flows/%s?wait=%u", j->bflow, wait);
		err[0] = '\0';
		r = bridge_call(a, j, "GET", suffix, NULL, wait, &resp, err, sizeof(err));
		if (r == NL_ERR_CLOSED) { /* aborted: stop, or the flow ended (the loop's test says) */
			nl_http_resp_free(&resp);
			continue;
		}
		next = r != 0 ? POLL_RETRY : judge(j, &resp);
		if (next == POLL_RETRY) {
			if (r == 0)
				snprintf(err, sizeof(err), "the bridge %s answered status %ld",
				         a->cfg->agent_bridge_url, resp.status);
			nl_warn("flow %s: poll failed (%s); asking again in %d ms", j->flow_id, err, backoff);
			note_error(a, "flow %s: %s", j->flow_id, err);
		}
		nl_http_resp_free(&resp);
		if (next == POLL_DONE)
			return;
		if (next == POLL_RETRY) {
			backoff_wait(j, backoff);
			backoff = backoff * 2 > NL_AGENT_BACKOFF_MAX ? NL_AGENT_BACKOFF_MAX : backoff * 2;
		} else {
			backoff = NL_AGENT_BACKOFF_MS;
		}
	}
}

static void *poll_thread(void *arg)
{
	struct poll_job *j = arg;
	struct nl_agent *a = j->a;

	if (j->forget)
		send_delete(j);
	else
		poll_flow(j);
	nl_wipe(j, sizeof(*j));
	free(j);
	pthread_mutex_lock(&a->mu);
	a->running--;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* Run j on a detached thread counted in running (at most max_flows; stop waits for them). Takes j. */
static int spawn_job(struct nl_agent *a, struct poll_job *j)
{
	pthread_attr_t at;
	pthread_t t;
	int r = NL_ERR_LIMIT;

	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&a->mu);
	if (!atomic_load(&a->stop) && a->running < a->cfg->max_flows) {
		if (pthread_create(&t, &at, poll_thread, j) == 0) {
			a->running++;
			j = NULL;
			r = 0;
		} else {
			r = NL_ERR_INTERNAL;
		}
	}
	pthread_mutex_unlock(&a->mu);
	pthread_attr_destroy(&at);
	if (j != NULL) {
		nl_wipe(j, sizeof(*j));
		free(j);
	}
	return r;
}

int nl_agent_add(struct nl_agent *a, const char *flow_id, const struct nl_agent_start *st,
                 struct nl_agent_flow *af)
{
	struct poll_job *j;

	if (a == NULL || flow_id == NULL || st == NULL || af == NULL)
		return NL_ERR_INTERNAL;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NL_ERR_NOMEM;
	j->a = a;
	snprintf(j->flow_id, sizeof(j->flow_id), "%s", flow_id);
	snprintf(j->user, sizeof(j->user), "%s", st->user);
	snprintf(j->bflow, sizeof(j->bflow), "%s", af->flow);
	memcpy(j->nonce, af->nonce, sizeof(j->nonce));
	nl_wipe(af->nonce, sizeof(af->nonce));
	j->number_match = st->number_match;
	/* the local flow's own expiry ends it; this is the backstop, a little after */
	j->deadline_ms = nl_mono_ms() + ((int64_t)st->ttl + 5) * 1000;
	return spawn_job(a, j);
}

void nl_agent_forget(struct nl_agent *a, struct nl_agent_flow *af)
{
	struct poll_job *j;

	if (a == NULL || af == NULL || af->flow[0] == '\0')
		return;
	nl_wipe(af->nonce, sizeof(af->nonce));
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return;
	j->a = a;
	j->forget = true;
	snprintf(j->flow_id, sizeof(j->flow_id), "(not started here)");
	snprintf(j->bflow, sizeof(j->bflow), "%s", af->flow);
	if (spawn_job(a, j) != 0)
		nl_info("bridge flow %s was not used here and could not be cancelled now; it holds its "
		        "place at the bridge until it expires",
		        af->flow);
}
