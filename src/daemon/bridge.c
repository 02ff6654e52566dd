/* The bridge web listener on libmicrohttpd: the code entry page (/d), the hop to the provider's
 * /authorize, and the redirect_uri callback that exchanges the code and finishes the flow. One
 * thread per connection, because a callback blocks for up to http_timeout on the exchange.
 * This file: URLs, responses, the callback, the libmicrohttpd glue, start and stop; bridge_entry.c
 * reads the code entry form and the phone's address, bridge_confirm.c holds the confirmation page. */
#include "config.h"
#include "bridge_int.h"
#include "signin.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nl_b64.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_text.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "pages.h"
#include "flows_store.h"
#include "nl_reason.h"

#include <openssl/hmac.h>

/* ---- URLs and origins ---- */

/* "scheme://host[:port]" of url into out, or "" if it has characters a CSP source cannot hold. */
void bridge_url_origin(const char *url, char *out, size_t outlen)
{
	const char *p, *end;
	size_t n;

	out[0] = '\0';
	if (url == NULL || (p = strstr(url, "://")) == NULL)
		return;
	end = p + 3 + strcspn(p + 3, "/?#");
	n = (size_t)(end - url);
	if (n >= outlen || end == p + 3)
		return;
	for (const char *c = url; c < end; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      strchr(".-:/[]", *c) != NULL))
			return;
	memcpy(out, url, n);
	out[n] = '\0';
}

/* The path of redirect_uri ("/" if it has none). New string, or NULL. */
static char *url_path(const char *url)
{
	const char *p = url != NULL ? strstr(url, "://") : NULL;
	size_t n;

	if (p == NULL)
		return NULL;
	p += 3;
	p += strcspn(p, "/?#");
	if (*p != '/')
		return strdup("/");
	n = strcspn(p, "?#");
	return strndup(p, n);
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
	return false;
}

/* HOST:PORT or [V6]:PORT into a resolved address (numeric port). */
static int parse_listen(const char *listen, struct addrinfo **out, char *host, size_t hostlen, char *err,
                        size_t errlen)
{
	struct addrinfo hints = {0};
	const char *colon, *h = listen;
	size_t hlen;
	int rc;

	if (listen == NULL || (colon = strrchr(listen, ':')) == NULL || colon[1] == '\0')
		return nl_errf(err, errlen, NL_ERR_CONFIG, "bridge: listen must be HOST:PORT");
	hlen = (size_t)(colon - listen);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= hostlen)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "bridge: listen must be HOST:PORT");
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if ((rc = getaddrinfo(host, colon + 1, &hints, out)) != 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "bridge: listen %s: %s", listen, gai_strerror(rc));
	return 0;
}

/* ---- responses ---- */

static void csp_header(struct nl_bridge *b, char *out, size_t len)
{
	char authz[BRIDGE_ORIGIN_MAX];

	pthread_mutex_lock(&b->mu);
	memcpy(authz, b->authz_origin, sizeof(authz));
	pthread_mutex_unlock(&b->mu);
	/* form-action governs the redirect after POST /d too, so it names the provider */
	snprintf(out, len,
	         "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'%s%s%s%s; "
	         "frame-ancestors 'none'; base-uri 'none'",
	         b->issuer_origin[0] != '\0' ? " " : "", b->issuer_origin,
	         authz[0] != '\0' && strcmp(authz, b->issuer_origin) != 0 ? " " : "",
	         authz[0] != '\0' && strcmp(authz, b->issuer_origin) != 0 ? authz : "");
}

/* Queue html (taken; NULL means out of memory) with status and the security headers on every
 * page; location (may be NULL) makes it a redirect; set_cookie (may be NULL) is a Set-Cookie value
 * (a secret: never logged). */
mhd_result bridge_send_page_c(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url, unsigned status, char *html, const char *location,
                              const char *set_cookie)
{
	static char oom[] = "<!DOCTYPE html><title>Error</title><p>Something went wrong. Try again.</p>";
	struct MHD_Response *resp;
	char csp[3 * BRIDGE_ORIGIN_MAX];
	mhd_result ret;

	if (html == NULL) {
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		location = NULL;
		resp = MHD_create_response_from_buffer(strlen(oom), oom, MHD_RESPMEM_PERSISTENT);
	} else {
		resp = MHD_create_response_from_buffer(strlen(html), html, MHD_RESPMEM_MUST_FREE);
	}
	if (resp == NULL) {
		free(html);
		return MHD_NO;
	}
	csp_header(b, csp, sizeof(csp));
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8") !=
	        MHD_YES ||
	    MHD_add_response_header(resp, "Content-Security-Policy", csp) != MHD_YES ||
	    MHD_add_response_header(resp, "X-Frame-Options", "DENY") != MHD_YES ||
	    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") != MHD_YES ||
	    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
	    (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST") != MHD_YES) ||
	    (b->tls &&
	     MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000") != MHD_YES) ||
	    (location != NULL &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location) != MHD_YES) ||
	    (set_cookie != NULL &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, set_cookie) != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	/* the path only: query strings carry codes and never reach a log */
	nl_debug("bridge: %s %.128s -> %u", method, url, status);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

mhd_result bridge_send_page(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                            const char *url, unsigned status, char *html, const char *location)
{
	return bridge_send_page_c(b, conn, method, url, status, html, location, NULL);
}

mhd_result bridge_send_message(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                               const char *url, unsigned status, const char *title, const char *text, bool ok,
                               bool again)
{
	return bridge_send_page(b, conn, method, url, status, nl_page_message(title, text, ok, again), NULL);
}

/* ---- the callback ---- */

/* An OAuth error word for the log: [a-z_] only, else "other". */
static const char *error_word(const char *e)
{
	size_t i;

	for (i = 0; e[i] != '\0'; i++)
		if (i >= 64 || !((e[i] >= 'a' && e[i] <= 'z') || e[i] == '_'))
			return "other";
	return i > 0 ? e : "other";
}

/* Number matching: signed in at NHS login; the terminal must now type this number. The person at
 * the terminal reads it here; a phishing victim, who is not at the terminal, cannot finish. */
static mhd_result number_page(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url, unsigned number)
{
	char text[512];

	snprintf(text, sizeof(text),
	         "You have signed in with NHS login. To finish, type this number at the computer: %u. "
	         "If you are not at the computer where this sign-in started, do not type it anywhere: "
	         "someone may be trying to use your account, so tell your IT service desk.",
	         number);
	return bridge_send_message(b, conn, method, url, MHD_HTTP_OK, "Type the number at the computer", text,
	                           true, false);
}

/* How the sign-in ended, as the phone's result page says it (the texts are nl_reason.c's). */
static mhd_result result_page(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url, enum nl_reason reason)
{
	const struct nl_reason_row *row = nl_reason_row(reason);

	return bridge_send_message(b, conn, method, url, (unsigned)row->phone_status, row->phone_title,
	                           row->phone_text, row->phone_ok, false);
}

/* The authorization response in the callback's query (RFC 6749 4.1.2, 4.1.2.1; RFC 9207), as
 * libmicrohttpd split and unescaped it. Values point into libmicrohttpd's copy of the request. */
struct cb_params {
	const char *state, *code, *error, *error_description, *iss;
	bool has_iss;
	const char *names[BRIDGE_CB_PARAMS_MAX];
	size_t lens[BRIDGE_CB_PARAMS_MAX], n;
	const char *repeated; /* RFC 6749 3.1: the first name seen twice (a word we know), or NULL */
	bool state_repeated, too_many, nul;
};

/* A parameter name fit for the log: one of the response's own, else a neutral word. */
static const char *param_word(const char *key, size_t len)
{
	static const char *const known[] = {
	    "code", "state", "iss", "error", "error_description", "error_uri", "session_state", "scope"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == len && memcmp(known[i], key, len) == 0)
			return known[i];
	return "a parameter";
}

static mhd_result on_cb_param(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                              const char *value, size_t value_size)
{
	struct cb_params *p = cls;
	const char *v = value != NULL ? value : "";

	(void)kind;
	if (p->n >= BRIDGE_CB_PARAMS_MAX) {
		p->too_many = true;
		return MHD_NO;
	}
	for (size_t i = 0; i < p->n; i++)
		if (p->lens[i] == key_size && memcmp(p->names[i], key, key_size) == 0 && p->repeated == NULL)
			p->repeated = param_word(key, key_size);
	p->names[p->n] = key;
	p->lens[p->n++] = key_size;
	/* "%00" would make a value end early for strcmp: "iss=https://x%00.evil" is not the issuer */
	if (value != NULL && strlen(value) != value_size)
		p->nul = true;
	if (key_size == 5 && memcmp(key, "state", 5) == 0) {
		p->state_repeated = p->state_repeated || p->state != NULL;
		p->state = v;
	} else if (key_size == 4 && memcmp(key, "code", 4) == 0 && p->code == NULL) {
		p->code = v;
	} else if (key_size == 5 && memcmp(key, "error", 5) == 0 && p->error == NULL) {
		p->error = v;
	} else if (key_size == 17 && memcmp(key, "error_description", 17) == 0 &&
	           p->error_description == NULL) {
		p->error_description = v;
	} else if (key_size == 3 && memcmp(key, "iss", 3) == 0 && !p->has_iss) {
		p->iss = v;
		p->has_iss = true;
	}
	return MHD_YES;
}

/* Why a callback for a known flow is not an authorization response we may act on, or NULL.
 * RFC 6749 3.1: no parameter twice. RFC 9207 2.4: iss, when present, is exactly the issuer, and
 * it must be present when discovery says the provider sends it. */
static const char *cb_params_refused(struct nl_bridge *b, const struct cb_params *p, char *why, size_t whylen)
{
	if (p->repeated != NULL) {
		snprintf(why, whylen, "callback repeats %s (RFC 6749 3.1)", p->repeated);
		return why;
	}
	if (p->nul) {
		snprintf(why, whylen, "callback has a NUL byte in a value");
		return why;
	}
	if (p->has_iss && (b->cfg->env.issuer == NULL || strcmp(p->iss, b->cfg->env.issuer) != 0)) {
		snprintf(why, whylen, "callback iss is not the issuer (RFC 9207)");
		return why;
	}
	if (!p->has_iss && nl_oidc_iss_param_required(b->oidc)) {
		snprintf(why, whylen, "callback without the iss that discovery promises (RFC 9207)");
		return why;
	}
	return NULL;
}

/* The flow state names, if this browser is the one that continued it (NL_ERR_PERM otherwise: the
 * flow goes on untouched, its code unexchanged). */
static int take_state(struct nl_bridge *b, struct MHD_Connection *conn, const char *state,
                      struct nl_flow_exchange *x, struct nl_flow_claim_info *info)
{
	const char *cookie = bridge_request_cookie(conn);
	unsigned char browser[NL_FLOW_BROWSER_LEN];
	char client[NI_MAXHOST];
	bool have = cookie != NULL && bridge_browser_hash(cookie, browser) == 0;
	int r;

	bridge_client_address(b, conn, client, sizeof(client));
	if (b->store != NULL)
		r = nl_flows_store_claim(b->fl, state, have ? browser : NULL, client, x, info);
	else
		r = nl_flows_take_state_bound(b->fl, state, have ? browser : NULL, client, x);
	nl_wipe(browser, sizeof(browser));
	return r;
}

/* role = bridge: a bridge maps no identity and approves nothing itself. It ends the flow in the
 * store with what NHS login said: the raw tokens, which the agent checks with its own nonce and maps
 * on the workstation (doc/bridge.md), or the reason; and logs one line (never a token). */
static mhd_result cluster_decide(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                                 const char *url, const struct nl_flow_exchange *x,
                                 const struct nl_flow_claim_info *info, enum nl_outcome outcome,
                                 const struct nl_grant_result *res, const char *detail)
{
	enum nl_reason reason = nl_signin_reason_of(outcome);
	unsigned char rnd = 0;
	unsigned number = 0;
	json_t *o;
	int r;

	if (reason == NL_REASON_NONE && (res->raw_id_token == NULL || res->raw_access_token == NULL))
		reason = NL_REASON_UNAVAILABLE; /* never an approval without the tokens the agent checks */
	if (reason == NL_REASON_NONE && info->number_match) {
		do {
			if (nl_random_bytes(&rnd, 1) != 0)
				return result_page(b, conn, method, url, NL_REASON_UNAVAILABLE);
		} while (rnd >= 180);
		number = 10 + rnd % 90;
	}
	if (reason == NL_REASON_NONE)
		o = json_pack("{s:s, s:s, s:s}", "status", "approved", "id_token", res->raw_id_token,
		              "access_token", res->raw_access_token);
	else
		o = json_pack("{s:s, s:s, s:s}", "status", "denied", "reason", nl_reason_word(reason),
		              "message", nl_reason_row(reason)->phone_text);
	if (o != NULL && number != 0 && json_object_set_new(o, "number", json_integer(number)) != 0) {
		json_decref(o);
		o = NULL;
	}
	if (o == NULL)
		return result_page(b, conn, method, url, NL_REASON_UNAVAILABLE);
	r = nl_flows_store_end(b->fl, x->id, o);
	json_decref(o);
	if (r != 0) {
		nl_notice("bridge: flow %s from workstation %s: %s not recorded: %s", x->id, info->host,
		          reason == NL_REASON_NONE ? "approval" : "denial", nl_strerror(r));
		return result_page(b, conn, method, url,
		                   r == NL_ERR_EXPIRED || r == NL_ERR_NOT_FOUND ? NL_REASON_EXPIRED
		                                                                : NL_REASON_UNAVAILABLE);
	}
	if (reason == NL_REASON_NONE)
		nl_info("bridge: flow %s from workstation %s: approved at NHS login, tokens handed to the "
		        "workstation to check%s",
		        x->id, info->host, number != 0 ? " (number matching)" : "");
	else
		nl_info("bridge: flow %s from workstation %s: denied (%s)%s%s", x->id, info->host,
		        nl_reason_word(reason), detail != NULL && detail[0] != '\0' ? ": " : "",
		        detail != NULL ? detail : "");
	if (number != 0)
		return number_page(b, conn, method, url, number);
	return result_page(b, conn, method, url, reason);
}

static mhd_result handle_callback(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                                  const char *url)
{
	struct cb_params p;
	const char *state, *code, *error;
	struct nl_flow_exchange x = {0};
	struct nl_flow_claim_info info = {0};
	struct nl_grant_result res = {0};
	enum nl_outcome outcome = NL_OUT_UNAVAILABLE;
	enum nl_reason reason;
	char err[256] = "";
	unsigned number;
	int r;

	memset(&p, 0, sizeof(p));
	(void)MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, on_cb_param, &p);
	state = p.state, code = p.code, error = p.error;
	if (p.state_repeated || p.too_many)
		nl_notice("bridge: callback %s; refused without looking up a flow",
		          p.too_many ? "with too many parameters" : "repeats state (RFC 6749 3.1)");
	if (p.state_repeated || p.too_many || state == NULL || state[0] == '\0' ||
	    strlen(state) > BRIDGE_PARAM_MAX)
		return bridge_send_message(b, conn, method, url, MHD_HTTP_BAD_REQUEST,
		                           "This sign-in link is not valid",
		                           "Start again at your workstation.", false, false);
	r = take_state(b, conn, state, &x, &info);
	if (r == NL_ERR_PERM) {
		nl_flow_exchange_clear(&x);
		return bridge_send_message(
		    b, conn, method, url, MHD_HTTP_FORBIDDEN, "This sign-in was started in another browser",
		    "A sign-in can only be finished in the browser where its code was entered and "
		    "confirmed, so nothing has been signed in. If someone sent you a link to NHS login, do "
		    "not "
		    "use it: tell your IT service desk.",
		    false, false);
	}
	if (r == NL_ERR_NOT_FOUND || r == NL_ERR_INVALID) {
		nl_notice("bridge: callback with an unknown or used state");
		return bridge_send_message(b, conn, method, url, MHD_HTTP_BAD_REQUEST,
		                           "This sign-in link has already been used or has expired",
		                           "Start again at your workstation.", false, false);
	}
	if (r == NL_ERR_EXPIRED)
		return result_page(b, conn, method, url, NL_REASON_EXPIRED);
	if (r != 0) {
		nl_err("bridge: callback: %s", nl_strerror(r));
		return result_page(b, conn, method, url, NL_REASON_UNAVAILABLE);
	}
	if (cb_params_refused(b, &p, err, sizeof(err)) != NULL) {
		/* the response cannot be trusted, nor its code exchanged: the flow ends here */
		outcome = NL_OUT_INVALID_TOKEN;
	} else if (error != NULL) {
		const char *w = error_word(error);
		outcome = strcmp(w, "server_error") == 0 || strcmp(w, "temporarily_unavailable") == 0
		              ? NL_OUT_UNAVAILABLE
		              : NL_OUT_DENIED;
		/* the description is for the administrator (NHS login's words, e.g. why a person was
		 * refused); printable ASCII only and cut short, as it came through the browser */
		char desc[121] = "";
		if (p.error_description != NULL)
			nl_text_ascii_copy(p.error_description, desc, sizeof(desc));
		snprintf(err, sizeof(err), "NHS login answered error=%s%s%s%s", w,
		         desc[0] != '\0' ? " (" : "", desc, desc[0] != '\0' ? ")" : "");
	} else if (code == NULL || code[0] == '\0' || strlen(code) > BRIDGE_PARAM_MAX) {
		snprintf(err, sizeof(err), "callback without a usable code");
	} else {
		r = nl_oidc_exchange_code(b->oidc, code, x.code_verifier, x.nonce, &res);
		/* never approve on an error */
		outcome = r != 0 && res.outcome == NL_OUT_OK ? NL_OUT_UNAVAILABLE : res.outcome;
		snprintf(err, sizeof(err), "%s", res.error);
	}
	if (b->store != NULL) {
		mhd_result ret = cluster_decide(b, conn, method, url, &x, &info, outcome, &res, err);
		nl_grant_result_clear(&res);
		nl_flow_exchange_clear(&x);
		return ret;
	}
	reason = nl_signin_complete(b->cfg, b->fl, b->tc, x.id, x.user, outcome,
	                            outcome == NL_OUT_OK ? &res.id : NULL, err);
	nl_grant_result_clear(&res);
	if (reason == NL_REASON_NONE && nl_flows_number_of(b->fl, x.id, &number) == 0) {
		nl_flow_exchange_clear(&x);
		return number_page(b, conn, method, url, number);
	}
	nl_flow_exchange_clear(&x);
	return result_page(b, conn, method, url, reason);
}

/* ---- libmicrohttpd glue ---- */

/* Append a chunk of a form field to buf (cap bytes with the NUL); past it, *bad is set. */
static mhd_result append_field(char *buf, size_t cap, size_t *len, const char *data, size_t size, bool *bad)
{
	if (*len + size >= cap) {
		*bad = true;
		return MHD_YES;
	}
	memcpy(buf + *len, data, size);
	*len += size;
	buf[*len] = '\0';
	return MHD_YES;
}

static mhd_result on_post_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                const char *content_type, const char *transfer_encoding, const char *data,
                                uint64_t off, size_t size)
{
	struct req *rq = cls;

	(void)kind, (void)filename, (void)content_type, (void)transfer_encoding, (void)off;
	if (key != NULL && strcmp(key, "flow") == 0)
		return append_field(rq->flow, sizeof(rq->flow), &rq->flow_len, data, size, &rq->confirm_bad);
	if (key != NULL && strcmp(key, "token") == 0)
		return append_field(rq->token, sizeof(rq->token), &rq->token_len, data, size,
		                    &rq->confirm_bad);
	if (key != NULL && strcmp(key, "answer") == 0)
		return append_field(rq->answer, sizeof(rq->answer), &rq->answer_len, data, size,
		                    &rq->confirm_bad);
	if (key == NULL || strcmp(key, "code") != 0)
		return MHD_YES;
	if (rq->code_len + size > BRIDGE_CODE_MAX) {
		rq->code_too_long = true;
		return MHD_YES;
	}
	memcpy(rq->code + rq->code_len, data, size);
	rq->code_len += size;
	rq->code[rq->code_len] = '\0';
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls, (void)conn, (void)toe;
	if (rq == NULL)
		return;
	if (rq->pp != NULL)
		MHD_destroy_post_processor(rq->pp);
	free(rq->target);
	if (rq->body != NULL)
		nl_free_secret_buf(rq->body, BRIDGE_AGENT_BODY_MAX + 1);
	nl_wipe(rq, sizeof(*rq));
	free(rq);
	*con_cls = NULL;
}

/* First call of a POST to /d: refuse a declared oversize body before reading it. */
static mhd_result post_begin(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                             const char *url, struct req *rq)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (cl != NULL && strtoull(cl, NULL, 10) > BRIDGE_BODY_MAX)
		return bridge_send_message(
		    b, conn, method, url, MHD_HTTP_CONTENT_TOO_LARGE, "Too much data",
		    "That was more than a code. Enter the code shown on your workstation screen.", false,
		    true);
	rq->pp = MHD_create_post_processor(conn, 1024, on_post_field, rq);
	/* NULL: not a form encoding; the code stays empty and the page says so */
	return MHD_YES;
}

static mhd_result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                             const char *version, const char *upload_data, size_t *upload_data_size,
                             void **con_cls)
{
	struct nl_bridge *b = cls;
	struct req *rq = *con_cls;
	bool is_form = strcmp(url, "/d") == 0, is_cb = strcmp(url, b->cb_path) == 0;
	bool is_confirm = strcmp(url, "/d/confirm") == 0;
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

	(void)version;
	if (rq == NULL) {
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		*con_cls = rq;
	}
	if (!rq->started) {
		rq->started = true;
		rq->agent = b->store != NULL && strncmp(url, "/agent/", 7) == 0;
	}
	if (rq->agent)
		return bridge_agent_request(b, conn, url, method, upload_data, upload_data_size, rq);
	if (!rq->pp_checked) {
		rq->pp_checked = true;
		if ((is_form || is_confirm) && post)
			return post_begin(b, conn, method, url, rq);
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		rq->body_len += *upload_data_size;
		if (rq->body_len > BRIDGE_BODY_MAX)
			return MHD_NO; /* a chunked body past the bound: drop the connection */
		if (rq->pp != NULL && MHD_post_process(rq->pp, upload_data, *upload_data_size) != MHD_YES)
			rq->code_too_long = rq->confirm_bad = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (is_form && (get || post))
		return bridge_handle_form(b, conn, method, url, rq);
	if (is_confirm && post)
		return bridge_handle_confirm(b, conn, method, url, rq);
	if (is_cb && strcmp(method, MHD_HTTP_METHOD_GET) == 0)
		return handle_callback(b, conn, method, url);
	if (strcmp(url, "/") == 0 && get)
		return bridge_send_page(
		    b, conn, method, url, MHD_HTTP_FOUND,
		    nl_page_message("Enter your code", "Go to the code entry page.", true, true), "/d");
	if (is_form || is_confirm || is_cb || strcmp(url, "/") == 0)
		return bridge_send_message(b, conn, method, url, MHD_HTTP_METHOD_NOT_ALLOWED, "Not allowed",
		                           "This page cannot be used that way.", false, true);
	return bridge_send_message(b, conn, method, url, MHD_HTTP_NOT_FOUND, "Page not found",
	                           "To sign in, enter the code shown on your workstation screen.", false,
	                           true);
}

/* The request target as it arrived (path and query, unescaped by no one): what an agent signed.
 * Its return value becomes the request's state. Kept for the agent API only. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct req *rq = calloc(1, sizeof(*rq));

	(void)cls, (void)conn;
	if (rq != NULL && uri != NULL && strncmp(uri, "/agent/", 7) == 0 &&
	    strlen(uri) <= BRIDGE_AGENT_TARGET_MAX)
		rq->target = strdup(uri);
	return rq;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	nl_debug("bridge: libmicrohttpd: %s", line);
}

/* ---- start and stop ---- */

/* Plain http only where no one else can listen in: a loopback address, or behind a reverse proxy that
 * terminates TLS, which the configuration says with an https public_url (the proxy must forward /d
 * and the redirect_uri path unchanged). Behind a proxy every phone has the proxy's address, so the
 * wrong-code limit and the per-address connection limit count all phones together. */
static int check_transport(const struct nl_config *cfg, const struct addrinfo *ai, bool tls, char *err,
                           size_t errlen)
{
	bool https_public = cfg->public_url != NULL && strncmp(cfg->public_url, "https://", 8) == 0;

	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "bridge: tls_cert and tls_key must be set together");
	if (!tls && !https_public && !is_loopback(ai->ai_addr))
		return nl_errf(
		    err, errlen, NL_ERR_CONFIG,
		    "bridge: plain http on %s is refused: set tls_cert/tls_key, or a https public_url "
		    "with a TLS reverse proxy in front",
		    cfg->listen);
	return 0;
}

static int load_tls(struct nl_bridge *b, char *err, size_t errlen)
{
	size_t len = 0;
	int r;

	if (!MHD_is_feature_supported(MHD_FEATURE_TLS))
		return nl_errf(err, errlen, NL_ERR_CONFIG, "bridge: this libmicrohttpd has no TLS support");
	if ((r = nl_read_file_checked(b->cfg->tls_cert, false, 1024 * 1024, &b->cert_pem, &len, err,
	                              errlen)) != 0)
		return r;
	return nl_read_file_checked(b->cfg->tls_key, true, 1024 * 1024, &b->key_pem, &b->key_len, err,
	                            errlen);
}

static int make_base_url(struct nl_bridge *b, const char *host, int family)
{
	const char *pub = b->cfg->public_url;
	size_t n;

	if (pub != NULL && pub[0] != '\0') {
		n = strlen(pub);
		while (n > 0 && pub[n - 1] == '/')
			n--;
		b->base_url = strndup(pub, n);
	} else if (asprintf(&b->base_url, "%s://%s%s%s:%u", b->tls ? "https" : "http",
	                    family == AF_INET6 ? "[" : "", host, family == AF_INET6 ? "]" : "",
	                    (unsigned)b->port) < 0) {
		b->base_url = NULL;
	}
	return b->base_url != NULL ? 0 : NL_ERR_NOMEM;
}

static int start_mhd(struct nl_bridge *b, const struct addrinfo *ai, char *err, size_t errlen)
{
	struct MHD_OptionItem opts[16];
	size_t n = 0;
	unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                 MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

#define OPT(o, v, p) opts[n++] = (struct MHD_OptionItem){(o), (intptr_t)(v), (p)}
	OPT(MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr);
	OPT(MHD_OPTION_CONNECTION_LIMIT,
	    b->cfg->role == NL_ROLE_BRIDGE ? BRIDGE_ROLE_CONN_LIMIT : BRIDGE_CONN_LIMIT, NULL);
	/* Behind trusted proxies every request comes from a proxy's address: a cap per address would
	 * cap the whole service (every agent's long-poll and every phone) at BRIDGE_CONN_PER_IP. There
	 * the proxy caps each client (nginx limit_conn); the total cap above still holds. */
	if (b->cfg->n_trusted_proxies == 0)
		OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, BRIDGE_CONN_PER_IP, NULL);
	OPT(MHD_OPTION_CONNECTION_TIMEOUT, BRIDGE_CONN_TIMEOUT, NULL);
	OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, b);
	OPT(MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, b);
	OPT(MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, b);
	if (b->tls) {
		flags |= MHD_USE_TLS;
		OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, b->cert_pem);
		OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, b->key_pem);
		OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)BRIDGE_TLS_PRIORITIES);
	}
	OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	b->mhd =
	    MHD_start_daemon(flags, 0, NULL, NULL, on_request, b, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (b->mhd == NULL)
		return nl_errf(err, errlen, NL_ERR_IO, "bridge: cannot listen on %s", b->cfg->listen);
	if ((info = MHD_get_daemon_info(b->mhd, MHD_DAEMON_INFO_LISTEN_FD)) == NULL ||
	    getsockname(info->listen_fd, (struct sockaddr *)&ss, &sl) != 0)
		return nl_errf(err, errlen, NL_ERR_IO, "bridge: cannot read the bound port");
	b->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                         : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static int bridge_start(const struct nl_config *cfg, struct nl_flows *fl, struct nl_oidc *oidc,
                        struct nl_tokcache *tc, const struct nl_bridge_cluster *cl, struct nl_bridge **out,
                        char *err, size_t errlen);

int nl_bridge_start(const struct nl_config *cfg, struct nl_flows *fl, struct nl_oidc *oidc,
                    struct nl_tokcache *tc, struct nl_bridge **out, char *err, size_t errlen)
{
	return bridge_start(cfg, fl, oidc, tc, NULL, out, err, errlen);
}

int nl_bridge_start_cluster(const struct nl_config *cfg, struct nl_flows *fl, struct nl_oidc *oidc,
                            const struct nl_bridge_cluster *cl, struct nl_bridge **out, char *err,
                            size_t errlen)
{
	if (cl == NULL || cl->store == NULL || cl->hosts == NULL || cl->index_key == NULL ||
	    nl_flows_store(fl) != cl->store)
		return NL_ERR_INTERNAL;
	return bridge_start(cfg, fl, oidc, NULL, cl, out, err, errlen);
}

/* The form key of a cluster: the same on every instance, from the store's index key. */
static int cluster_form_key(const struct nl_bridge_cluster *cl, unsigned char key[32])
{
	static const char label[] = "nhslogin bridge confirmation form key";
	unsigned int n = 0;

	return HMAC(EVP_sha256(), cl->index_key, (int)cl->index_key_len, (const unsigned char *)label,
	            sizeof(label) - 1, key, &n) != NULL &&
	               n == 32
	           ? 0
	           : NL_ERR_INTERNAL;
}

static int bridge_start(const struct nl_config *cfg, struct nl_flows *fl, struct nl_oidc *oidc,
                        struct nl_tokcache *tc, const struct nl_bridge_cluster *cl, struct nl_bridge **out,
                        char *err, size_t errlen)
{
	struct nl_bridge *b = NULL;
	struct addrinfo *ai = NULL;
	char host[NI_MAXHOST];
	int r = NL_ERR_INTERNAL;

	if (cfg == NULL || fl == NULL || oidc == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	if ((b = calloc(1, sizeof(*b))) == NULL || pthread_mutex_init(&b->mu, NULL) != 0) {
		free(b);
		return nl_errf(err, errlen, NL_ERR_NOMEM, "bridge: out of memory");
	}
	b->cfg = cfg;
	b->fl = fl;
	b->oidc = oidc;
	b->tc = tc;
	b->tls = cfg->tls_cert != NULL && cfg->tls_key != NULL;
	if ((r = cl != NULL ? cluster_form_key(cl, b->csrf_key)
	                    : nl_random_bytes(b->csrf_key, sizeof(b->csrf_key))) != 0) {
		(void)nl_errf(err, errlen, r, "bridge: no random bytes for the form key");
		goto out;
	}
	if (cl != NULL) {
		b->store = cl->store;
		b->hosts = cl->hosts;
		if ((r = bridge_agent_init(b, err, errlen)) != 0)
			goto out;
	}
	bridge_url_origin(cfg->env.issuer, b->issuer_origin, sizeof(b->issuer_origin));
	if ((r = parse_listen(cfg->listen, &ai, host, sizeof(host), err, errlen)) != 0 ||
	    (r = check_transport(cfg, ai, b->tls, err, errlen)) != 0)
		goto out;
	if ((b->cb_path = url_path(cfg->env.redirect_uri)) == NULL || strcmp(b->cb_path, "/d") == 0 ||
	    strcmp(b->cb_path, "/") == 0) {
		r = nl_errf(err, errlen, NL_ERR_CONFIG,
		            "bridge: redirect_uri must be an absolute URL with its own path (not / or /d)");
		goto out;
	}
	if ((b->tls && (r = load_tls(b, err, errlen)) != 0) || (r = start_mhd(b, ai, err, errlen)) != 0 ||
	    (r = make_base_url(b, host, ai->ai_family)) != 0)
		goto out;
	nl_info("bridge: listening on %s port %u (%s); phones open %s/d, callback %s", host,
	        (unsigned)b->port, b->tls ? "https" : "http", b->base_url, b->cb_path);
	*out = b;
	b = NULL;
	r = 0;
out:
	if (ai != NULL)
		freeaddrinfo(ai);
	nl_bridge_stop(b);
	return r;
}

void nl_bridge_stop(struct nl_bridge *b)
{
	if (b == NULL)
		return;
	bridge_agent_stop(b); /* the subscriber, then the parked long polls */
	if (b->mhd != NULL)
		MHD_stop_daemon(b->mhd);
	if (b->w_init) {
		pthread_cond_destroy(&b->w.cv);
		pthread_mutex_destroy(&b->w.mu);
	}
	pthread_mutex_destroy(&b->mu);
	free(b->cb_path);
	free(b->base_url);
	free(b->cert_pem);
	if (b->key_pem != NULL)
		nl_free_secret_buf(b->key_pem, b->key_len + 1);
	nl_wipe(b->csrf_key, sizeof(b->csrf_key));
	free(b);
}

uint16_t nl_bridge_port(const struct nl_bridge *b)
{
	return b != NULL ? b->port : 0;
}

int nl_bridge_verification_uri(const struct nl_bridge *b, const char *user_code, char **uri,
                               char **uri_complete)
{
	char code[NL_USER_CODE_LEN + 1];
	char *u = NULL, *c = NULL;

	if (b == NULL || user_code == NULL || uri == NULL || uri_complete == NULL)
		return NL_ERR_INTERNAL;
	if (nl_user_code_normalize(user_code, code) != 0)
		return NL_ERR_INVALID;
	if (asprintf(&u, "%s/d", b->base_url) < 0)
		return NL_ERR_NOMEM;
	if (asprintf(&c, "%s/d?code=%s", b->base_url, code) < 0) {
		free(u);
		return NL_ERR_NOMEM;
	}
	*uri = u;
	*uri_complete = c;
	return 0;
}
