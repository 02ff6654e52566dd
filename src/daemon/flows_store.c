/* The bridge role's flows in Redis: the record as JSON, the browser binding and the callback's claim
 * as libnlstore scripts, the wrong-code limit on store counters. No flow state stays in this process,
 * so that any bridge instance can serve any step (doc/bridge.md, doc/store.md). */
#include "config.h"
#include "flows_int.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "oidc.h"
#include "store.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRESSURE_NAME "guess-pressure" /* set for a minute while wrong codes come from everyone */

int nl_flows_new_store(const struct nl_config *cfg, struct nl_store *st, const unsigned char *index_key,
                       size_t keylen, struct nl_flows **out)
{
	static const char label[] = "nhslogin bridge state key";
	struct nl_flows *fl = NULL;
	unsigned int n = 0;
	int r;

	if (st == NULL || index_key == NULL || keylen < NL_STORE_HKEY_MIN || out == NULL)
		return NL_ERR_INTERNAL;
	if ((r = nl_flows_new(cfg, -1, &fl)) != 0)
		return r;
	if (HMAC(EVP_sha256(), index_key, (int)keylen, (const unsigned char *)label, sizeof(label) - 1,
	         fl->state_key, &n) == NULL ||
	    n != sizeof(fl->state_key)) {
		nl_flows_free(fl);
		return NL_ERR_INTERNAL;
	}
	fl->st = st;
	*out = fl;
	return 0;
}

struct nl_store *nl_flows_store(const struct nl_flows *fl)
{
	return fl != NULL ? fl->st : NULL;
}

/* A flow's state, rebuilt from its id by any instance: base64url(HMAC(state_key, id)). Unguessable
 * without the index key, never stored (only its keyed hash names the state index). */
static int state_of(const struct nl_flows *fl, const char *id, char **out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	int r;

	if (HMAC(EVP_sha256(), fl->state_key, (int)sizeof(fl->state_key), (const unsigned char *)id,
	         strlen(id), md, &n) == NULL)
		return NL_ERR_INTERNAL;
	r = nl_b64url_encode(md, n, out);
	nl_wipe(md, sizeof(md));
	return r;
}

static const char *rec_str(const json_t *rec, const char *key)
{
	const char *s = json_string_value(json_object_get(rec, key));
	return s != NULL ? s : "";
}

static void browser_hex(const unsigned char *b, char out[2 * NL_FLOW_BROWSER_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < NL_FLOW_BROWSER_LEN; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * NL_FLOW_BROWSER_LEN] = '\0';
}

/* What /authorize needs of a flow read from the store. */
static int authz_from(const struct nl_flows *fl, const struct nl_store_flow *f, struct nl_flow_authz *out)
{
	struct nl_flow_authz a = {0};
	int r;

	snprintf(a.id, sizeof(a.id), "%.*s", NL_FLOW_ID_LEN - 1, f->id);
	if ((r = state_of(fl, f->id, &a.state)) != 0)
		goto fail;
	if ((a.nonce = strdup(rec_str(f->rec, "nonce"))) == NULL ||
	    (a.code_challenge = strdup(rec_str(f->rec, "challenge"))) == NULL) {
		r = NL_ERR_NOMEM;
		goto fail;
	}
	*out = a;
	return 0;
fail:
	nl_flow_authz_clear(&a);
	return r;
}

/* ---- creating, reading, ending ---- */

static bool field_ok(const char *s)
{
	if (s == NULL)
		return true;
	if (strlen(s) >= NL_FIELD_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static json_t *make_record(const struct nl_flow_request *rq, const char *verifier, const char *challenge,
                           const char *user_code)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:s}", "user", rq->user,
	                 "service", rq->service != NULL ? rq->service : "", "rhost",
	                 rq->rhost != NULL ? rq->rhost : "", "tty", rq->tty != NULL ? rq->tty : "", "host",
	                 rq->host, "nonce", rq->nonce, "verifier", verifier, "challenge", challenge,
	                 "started_at", (json_int_t)nl_now(), "number_match", rq->number_match, "user_code",
	                 user_code);
}

/* One line for a start refused by a bound on pending flows: the workstation, the bound, no code. */
static void log_limit(const struct nl_flows *fl, const struct nl_flow_request *rq, enum nl_store_limit hit)
{
	if (hit == NL_STORE_LIMIT_HOST)
		nl_notice("bridge: sign-in for %.64s from workstation %s refused: the workstation has %u "
		          "sign-ins in progress (max_flows)",
		          rq->user, rq->host, fl->cfg->max_flows);
	else
		nl_notice("bridge: sign-in for %.64s from workstation %s refused: %u sign-ins of this "
		          "person are in progress there (%d x max_flows_per_user)",
		          rq->user, rq->host, NL_FLOWS_BRIDGE_USER_FACTOR * fl->cfg->max_flows_per_user,
		          NL_FLOWS_BRIDGE_USER_FACTOR);
}

int nl_flows_store_create(struct nl_flows *fl, const struct nl_flow_request *rq, struct nl_flow_made *out)
{
	unsigned ttl = fl->cfg->flow_ttl;
	const struct nl_store_limits lim = {.host = rq->host,
	                                    .user = rq->user,
	                                    .max_host = fl->cfg->max_flows,
	                                    .max_pair =
	                                        NL_FLOWS_BRIDGE_USER_FACTOR * fl->cfg->max_flows_per_user};
	enum nl_store_limit hit = NL_STORE_LIMIT_NONE;
	char id[NL_FLOW_ID_LEN], code[NL_USER_CODE_LEN + 1];
	char *dc = NULL, *state = NULL, *verifier = NULL, *challenge = NULL;
	json_t *rec = NULL;
	int r = NL_ERR_INVALID, tries;

	if (rq->user == NULL || rq->user[0] == '\0' || strlen(rq->user) > NL_USER_MAX ||
	    !field_ok(rq->user) || !field_ok(rq->service) || !field_ok(rq->rhost) || !field_ok(rq->tty) ||
	    rq->host == NULL || rq->nonce == NULL)
		return NL_ERR_INVALID;
	if (rq->ttl > 0 && rq->ttl < ttl)
		ttl = rq->ttl;
	if ((r = nl_pkce_pair(&verifier, &challenge)) != 0)
		goto out;
	/* A taken user code (or, never in practice, id) means another draw. */
	for (tries = 0, r = NL_STORE_TAKEN; tries < 8 && r == NL_STORE_TAKEN; tries++) {
		nl_free_secret(dc), nl_free_secret(state);
		dc = state = NULL;
		json_decref(rec);
		if ((r = flows_random_id(id)) != 0 || (r = flows_random_user_code(code)) != 0 ||
		    (r = nl_random_token(32, &dc)) != 0 || (r = state_of(fl, id, &state)) != 0)
			goto out;
		if ((rec = make_record(rq, verifier, challenge, code)) == NULL) {
			r = NL_ERR_NOMEM;
			goto out;
		}
		struct nl_store_flow_keys k = {
		    .id = id, .user_code = code, .device_code = dc, .state = state};
		r = nl_store_flow_create_limited(fl->st, &k, &lim, rec, ttl, &hit);
	}
	if (r == NL_ERR_LIMIT)
		log_limit(fl, rq, hit);
	if (r != 0)
		goto out;
	memset(out, 0, sizeof(*out));
	memcpy(out->id, id, sizeof(out->id));
	snprintf(out->user_code, sizeof(out->user_code), "%.4s-%.4s", code, code + 4);
	out->expires_in = (int)ttl;
	nl_info("flow %s: started for %.64s from workstation %s (%s%s%s)", id, rq->user, rq->host,
	        rq->service != NULL ? rq->service : "", rq->rhost != NULL && rq->rhost[0] ? " from " : "",
	        rq->rhost != NULL ? rq->rhost : "");
out:
	json_decref(rec);
	nl_free_secret(dc);
	nl_free_secret(state);
	nl_free_secret(verifier);
	nl_free_secret(challenge);
	nl_wipe(code, sizeof(code));
	return r;
}

int nl_flows_store_read(struct nl_flows *fl, const char *id, const char *host, json_t **outcome,
                        int *expires_in)
{
	struct nl_store_flow f;
	int r;

	*outcome = NULL;
	if ((r = nl_store_flow_get(fl->st, NL_STORE_BY_ID, id, &f)) != 0)
		return r == NL_ERR_INVALID ? NL_ERR_NOT_FOUND : r;
	/* another workstation's flow is no flow at all */
	if (strcmp(rec_str(f.rec, "host"), host) != 0) {
		nl_store_flow_clear(&f);
		return NL_ERR_NOT_FOUND;
	}
	*expires_in = f.ttl > 0 ? (int)f.ttl : 0;
	if (f.outcome != NULL)
		*outcome = json_incref(f.outcome);
	nl_store_flow_clear(&f);
	return 0;
}

int nl_flows_store_end(struct nl_flows *fl, const char *id, const json_t *outcome)
{
	return nl_store_flow_end(fl->st, id, outcome, ENDED_GRACE);
}

/* Ends a pending flow denied with reason; logs one line with why. */
static int end_denied(struct nl_flows *fl, const char *id, enum nl_reason reason, const char *message,
                      const char *why)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "status", "denied", "reason", nl_reason_word(reason),
	                      "message", message != NULL ? message : nl_reason_row(reason)->phone_text);
	int r;

	if (o == NULL)
		return NL_ERR_NOMEM;
	r = nl_flows_store_end(fl, id, o);
	json_decref(o);
	if (r == 0 && why != NULL)
		nl_info("flow %s: denied (%s): %s", id, nl_reason_word(reason), why);
	return r;
}

int nl_flows_store_cancel(struct nl_flows *fl, const char *id, const char *host)
{
	json_t *o = NULL;
	int left, r;

	if ((r = nl_flows_store_read(fl, id, host, &o, &left)) != 0)
		return r;
	if (o == NULL &&
	    (r = end_denied(fl, id, NL_REASON_CANCELLED, NULL, "cancelled by the workstation")) != 0 &&
	    r != NL_ERR_EXPIRED)
		return r;
	json_decref(o);
	return 0;
}

int flows_store_finish(struct nl_flows *fl, const char *id, enum nl_reason reason, const char *message)
{
	/* an approval on a bridge carries the tokens: the bridge callback ends those itself */
	if (reason == NL_REASON_NONE)
		return NL_ERR_INTERNAL;
	return end_denied(fl, id, reason, message, NULL);
}

/* ---- the phone's steps ---- */

/* The wrong-code limit (flows_int.h GUESS_*), counted in Redis across every instance. */
static int guess_allowance(struct nl_flows *fl, long long mine, unsigned *allow)
{
	long long pressure = 0;
	int r;

	*allow = fl->cfg->code_attempts;
	/* the global count only matters to a client that has entered wrong codes itself */
	if (mine >= GUESS_PRESSURE_MAX && *allow > GUESS_PRESSURE_MAX) {
		if ((r = nl_store_count_get(fl->st, PRESSURE_NAME, &pressure)) != 0)
			return r;
		if (pressure > 0)
			*allow = GUESS_PRESSURE_MAX;
	}
	return 0;
}

static void guess_record(struct nl_flows *fl, const char *name, const char *key)
{
	long long mine = 0, this_min = 0, last_min = 0, p = 0;
	unsigned allow;

	if (nl_store_count_add(fl->st, name, GUESS_WINDOW, &mine) != 0 ||
	    nl_store_minute_add(fl->st, "guess", nl_now(), &this_min, &last_min) != 0)
		return;
	if (this_min >= GUESS_GLOBAL_PER_MIN || last_min >= GUESS_GLOBAL_PER_MIN) {
		(void)nl_store_count_add(fl->st, PRESSURE_NAME, 60, &p);
		if (this_min == GUESS_GLOBAL_PER_MIN)
			nl_warn("%lld wrong user codes in a minute from everyone: each address may now enter "
			        "%d wrong codes in %d minutes until it is quieter",
			        this_min, GUESS_PRESSURE_MAX, GUESS_WINDOW / 60);
	}
	if (guess_allowance(fl, mine, &allow) == 0 && mine == (long long)allow)
		nl_warn("user codes from %.64s refused for up to %d minutes: %lld wrong codes", key,
		        GUESS_WINDOW / 60, mine);
}

int flows_store_begin_authz(struct nl_flows *fl, const char *user_code, const char *client,
                            struct nl_flow_authz *out)
{
	char code[NL_USER_CODE_LEN + 1], key[GUESS_CLIENT_MAX], name[GUESS_CLIENT_MAX + 8];
	struct nl_store_flow f = {0};
	long long mine = 0;
	unsigned allow;
	int r;

	flows_guess_key(client != NULL && client[0] != '\0' ? client : "?", key, sizeof(key));
	snprintf(name, sizeof(name), "guess:%s", key);
	/* Before the code is looked at: a client past its own limit learns nothing about any code. */
	if ((r = nl_store_count_get(fl->st, name, &mine)) != 0 ||
	    (r = guess_allowance(fl, mine, &allow)) != 0)
		return r;
	if (mine >= (long long)allow) {
		nl_debug("user code attempt from %.64s refused: too many wrong codes", key);
		return NL_ERR_LIMIT;
	}
	if (nl_user_code_normalize(user_code, code) != 0)
		return NL_ERR_INVALID;
	r = nl_store_flow_get(fl->st, NL_STORE_BY_USER_CODE, code, &f);
	nl_wipe(code, sizeof(code));
	if (r == NL_ERR_NOT_FOUND) {
		guess_record(fl, name, key);
		return NL_ERR_NOT_FOUND;
	}
	if (r != 0)
		return r;
	r = f.outcome != NULL || f.claimed ? NL_ERR_EXPIRED : authz_from(fl, &f, out);
	nl_store_flow_clear(&f);
	return r;
}

/* A pending, unclaimed flow by id: NL_ERR_NOT_FOUND, NL_ERR_EXPIRED. */
static int confirmable(struct nl_flows *fl, const char *id, struct nl_store_flow *f)
{
	int r = nl_store_flow_get(fl->st, NL_STORE_BY_ID, id, f);

	if (r == NL_ERR_INVALID)
		return NL_ERR_NOT_FOUND;
	if (r == 0 && (f->outcome != NULL || f->claimed)) {
		nl_store_flow_clear(f);
		return NL_ERR_EXPIRED;
	}
	return r;
}

int flows_store_view(struct nl_flows *fl, const char *id, struct nl_flow_view *out)
{
	struct nl_store_flow f;
	const char *code;
	int r;

	if ((r = confirmable(fl, id, &f)) != 0)
		return r;
	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%.*s", NL_FLOW_ID_LEN - 1, f.id);
	snprintf(out->user, sizeof(out->user), "%s", rec_str(f.rec, "user"));
	snprintf(out->service, sizeof(out->service), "%s", rec_str(f.rec, "service"));
	snprintf(out->rhost, sizeof(out->rhost), "%s", rec_str(f.rec, "rhost"));
	snprintf(out->tty, sizeof(out->tty), "%s", rec_str(f.rec, "tty"));
	snprintf(out->host, sizeof(out->host), "%s", rec_str(f.rec, "host"));
	out->started_at = (time_t)json_integer_value(json_object_get(f.rec, "started_at"));
	code = rec_str(f.rec, "user_code");
	if (strlen(code) == NL_USER_CODE_LEN)
		snprintf(out->user_code, sizeof(out->user_code), "%.4s-%.4s", code, code + 4);
	nl_store_flow_clear(&f);
	return 0;
}

int flows_store_bind_browser(struct nl_flows *fl, const char *id, const unsigned char *browser,
                             struct nl_flow_authz *out)
{
	char hex[2 * NL_FLOW_BROWSER_LEN + 1];
	struct nl_store_flow f;
	int r;

	browser_hex(browser, hex);
	r = nl_store_flow_bind(fl->st, id, hex, &f);
	nl_wipe(hex, sizeof(hex));
	if (r == NL_ERR_INVALID)
		return NL_ERR_NOT_FOUND;
	if (r != 0)
		return r;
	r = authz_from(fl, &f, out);
	nl_store_flow_clear(&f);
	return r;
}

int flows_store_refuse(struct nl_flows *fl, const char *id, const char *client)
{
	struct nl_store_flow f;
	char why[128];
	int r;

	if ((r = confirmable(fl, id, &f)) != 0)
		return r;
	nl_store_flow_clear(&f);
	snprintf(why, sizeof(why), "refused at the confirmation page from %.64s",
	         client != NULL && client[0] != '\0' ? client : "?");
	r = end_denied(fl, id, NL_REASON_DENIED, "The sign-in was refused on the phone: \"This was not me\".",
	               why);
	return r == NL_ERR_EXPIRED ? NL_ERR_EXPIRED : r;
}

int nl_flows_store_claim(struct nl_flows *fl, const char *state, const unsigned char *browser,
                         const char *client, struct nl_flow_exchange *out, struct nl_flow_claim_info *info)
{
	char hex[2 * NL_FLOW_BROWSER_LEN + 1];
	struct nl_store_flow f;
	struct nl_flow_exchange x = {0};
	int r;

	if (browser != NULL)
		browser_hex(browser, hex);
	r = nl_store_flow_claim_bound(fl->st, state, browser != NULL ? hex : NULL, &f);
	nl_wipe(hex, sizeof(hex));
	if (r == NL_ERR_PERM) {
		memset(out, 0, sizeof(*out));
		snprintf(out->id, sizeof(out->id), "%.*s", NL_FLOW_ID_LEN - 1, f.id);
		nl_notice(
		    "flow %s: callback from %.64s %s: refused; the sign-in goes on (a stolen or forwarded "
		    "sign-in link?)",
		    f.id, client != NULL ? client : "?",
		    browser == NULL ? "without the sign-in cookie of the browser that continued"
		                    : "from a browser that did not continue it");
		return r;
	}
	if (r != 0)
		return r == NL_ERR_INVALID ? NL_ERR_NOT_FOUND : r;
	snprintf(x.id, sizeof(x.id), "%.*s", NL_FLOW_ID_LEN - 1, f.id);
	snprintf(x.user, sizeof(x.user), "%s", rec_str(f.rec, "user"));
	if ((x.nonce = strdup(rec_str(f.rec, "nonce"))) == NULL ||
	    (x.code_verifier = strdup(rec_str(f.rec, "verifier"))) == NULL) {
		nl_flow_exchange_clear(&x);
		nl_store_flow_clear(&f);
		return NL_ERR_NOMEM;
	}
	if (info != NULL) {
		snprintf(info->host, sizeof(info->host), "%s", rec_str(f.rec, "host"));
		info->number_match = json_is_true(json_object_get(f.rec, "number_match"));
	}
	nl_store_flow_clear(&f);
	*out = x;
	return 0;
}
