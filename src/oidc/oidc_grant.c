/* The token endpoint of the OpenID client: the code grant with a private_key_jwt assertion, the
 * token response's rules, ID token validation (one JWKS refetch on an unknown kid) and userinfo.
 * One token_request serves the code exchange and the device grant's polls. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "idtoken.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "oidc_int.h"

#define MAX_TOKEN_RESP     (64 * 1024)
#define MAX_USERINFO       (64 * 1024)
#define MAX_ERROR_WORD     64 /* an OAuth "error" value we repeat in a log line */
#define ASSERTION_ALG      "RS512"
#define ASSERTION_LIFETIME 60
#define ID_TOKEN_SKEW      60

/* Append client_id and the private_key_jwt assertion (aud = the token endpoint) to *form. */
int nl_oidc_client_auth(struct nl_oidc *o, const char *token_endpoint, char **form)
{
	const struct nl_env *env = &o->cfg->env;
	char *assertion = NULL;
	int r;

	if (o->key == NULL)
		return NL_ERR_KEY; /* an agent's client: it has no client key and makes no grant */
	if ((r = nl_client_assertion(o->key, ASSERTION_ALG, o->kid, env->client_id, token_endpoint, nl_now(),
	                             ASSERTION_LIFETIME, &assertion)) != 0)
		return r;
	if ((r = nl_form_add(form, "client_id", env->client_id)) == 0 &&
	    (r = nl_form_add(form, "client_assertion_type",
	                     "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")) == 0)
		r = nl_form_add(form, "client_assertion", assertion);
	nl_free_secret(assertion);
	return r;
}

/* POST form to url; the transport error (never a secret) goes to err. */
int nl_oidc_post(struct nl_oidc *o, const char *url, const char *form, size_t max, struct nl_http_resp *resp,
                 const char *what, char *err, size_t errlen)
{
	struct nl_http_opts opts;
	char herr[200] = "";
	int r;

	memset(resp, 0, sizeof(*resp));
	nl_oidc_http_opts(o, max, NULL, &opts);
	if ((r = nl_http_post_form(url, form, &opts, resp, herr, sizeof(herr))) != 0) {
		nl_oidc_err(o, err, errlen, "%s: %s", what, herr);
		return NL_ERR_UNAVAILABLE;
	}
	return 0;
}

/* The OAuth "error" word of an error response, if it is a plain short word; else NULL. */
static const char *error_word(const json_t *body)
{
	const char *e = nl_json_str(body, "error");
	size_t i, n;

	if (e == NULL || (n = strlen(e)) == 0 || n > MAX_ERROR_WORD)
		return NULL;
	for (i = 0; i < n; i++) {
		if (!((e[i] >= 'a' && e[i] <= 'z') || e[i] == '_'))
			return NULL;
	}
	return e;
}

/* Wipe a string member of a parsed response in place (jansson keeps its own copy). */
static void wipe_member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v))
		nl_wipe((char *)json_string_value(v), json_string_length(v));
}

void nl_oidc_wipe_token_json(json_t *tok)
{
	if (tok == NULL)
		return;
	wipe_member(tok, "access_token");
	wipe_member(tok, "refresh_token");
	wipe_member(tok, "id_token");
	wipe_member(tok, "device_code");
	json_decref(tok);
}

/* Parse a response body as a bounded JSON object. */
int nl_oidc_parse_body(const struct nl_http_resp *resp, size_t max, json_t **out)
{
	if (resp->body == NULL)
		return NL_ERR_INVALID;
	return nl_json_parse(resp->body, resp->body_len, max, NL_JSON_MAX_DEPTH, true, out, NULL, 0);
}

static int validate_once(struct nl_oidc *o, const char *compact, size_t len, const char *nonce,
                         json_t **claims, enum nl_idtoken_rule *rule)
{
	const struct nl_config *cfg = o->cfg;
	struct nl_idtoken_policy p;
	int r;

	memset(&p, 0, sizeof(p));
	p.issuer = cfg->env.issuer;
	p.client_id = cfg->env.client_id;
	p.allowed_algs = (const char *const *)cfg->env.allowed_algs;
	p.n_allowed_algs = cfg->env.n_allowed_algs;
	p.nonce = nonce;
	p.vtr = cfg->env.vtr;
	p.min_level = cfg->min_level;
	p.skew = ID_TOKEN_SKEW;
	p.now = nl_now();
	/* Validation is CPU only; the lock keeps the key set alive while it is used. */
	pthread_mutex_lock(&o->mu);
	if (o->jwks == NULL) {
		*rule = NL_RULE_KID;
		r = NL_ERR_KEY;
	} else {
		r = nl_idtoken_validate(compact, len, o->jwks, &p, claims, rule);
	}
	pthread_mutex_unlock(&o->mu);
	if (r != 0 && *rule == NL_RULE_NONE)
		*rule = NL_RULE_FORMAT;
	return r;
}

/* A key the pinned file does not have: nothing is fetched (the file is the agent's only source),
 * and the operator is told which file and which kid (a kid is not a secret), to update the file. */
static void pinned_kid_unknown(struct nl_oidc *o, const char *compact)
{
	char kid[80];

	nl_oidc_pinned_kid(compact, kid, sizeof(kid));
	nl_warn("oidc: an ID token's key (kid %s) is not in the pinned JWKS file %s: refused, nothing "
	        "fetched; if NHS login has rotated its keys, put its current JWKS in the file and run "
	        "nhsloginctl flush (or restart nhslogind)",
	        kid, o->cfg->agent_jwks_file);
}

/* Validate the ID token; on an unknown kid refetch the JWKS (rate-limited) and try once more
 * (never with a pinned JWKS file: o->pinned is set once, before any thread, and never changes). */
static int validate_id_token(struct nl_oidc *o, const char *compact, const char *nonce, json_t **claims,
                             struct nl_grant_result *res)
{
	size_t len = strlen(compact);
	int r;

	res->rule = NL_RULE_NONE;
	r = validate_once(o, compact, len, nonce, claims, &res->rule);
	if (r != 0 && res->rule == NL_RULE_KID && o->pinned)
		pinned_kid_unknown(o, compact);
	else if (r != 0 && res->rule == NL_RULE_KID && nl_oidc_refetch_jwks_for_kid(o, NULL, 0) == 0) {
		res->rule = NL_RULE_NONE;
		r = validate_once(o, compact, len, nonce, claims, &res->rule);
	}
	if (r == 0)
		return 0;
	if (res->rule == NL_RULE_LEVEL) {
		res->outcome = NL_OUT_LEVEL;
		nl_oidc_err(o, res->error, sizeof(res->error), "identity level below the configured minimum");
	} else {
		res->outcome = NL_OUT_INVALID_TOKEN;
		nl_oidc_err(o, res->error, sizeof(res->error), "ID token rejected: %s",
		            nl_idtoken_rule_word(res->rule));
	}
	/* the flow's outcome line says it */
	nl_debug("oidc: ID token rejected by rule %s", nl_idtoken_rule_word(res->rule));
	return nl_oidc_outcome_err(res->outcome);
}

/* GET userinfo with the access token; its sub must equal the ID token's; merge its other claims. */
static int fetch_userinfo(struct nl_oidc *o, const char *endpoint, const char *access_token, json_t *claims,
                          struct nl_grant_result *res)
{
	struct nl_http_opts opts;
	struct nl_http_resp resp;
	json_t *ui = NULL;
	const char *sub, *uisub;
	char herr[200] = "";
	int r;

	memset(&resp, 0, sizeof(resp));
	res->outcome = NL_OUT_UNAVAILABLE;
	if (endpoint == NULL || access_token == NULL) {
		nl_oidc_err(o, res->error, sizeof(res->error), "userinfo: %s",
		            endpoint == NULL ? "discovery has no userinfo_endpoint"
		                             : "token response has no access_token");
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	pthread_mutex_lock(&o->mu);
	o->st.userinfo_requests++;
	pthread_mutex_unlock(&o->mu);
	nl_oidc_http_opts(o, MAX_USERINFO, access_token, &opts);
	if ((r = nl_http_get(endpoint, &opts, &resp, herr, sizeof(herr))) != 0) {
		nl_oidc_err(o, res->error, sizeof(res->error), "userinfo: %s", herr);
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if (resp.status != 200) {
		nl_oidc_err(o, res->error, sizeof(res->error), "userinfo: HTTP %ld", resp.status);
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if (nl_oidc_parse_body(&resp, MAX_USERINFO, &ui) != 0) {
		nl_oidc_err(o, res->error, sizeof(res->error), "userinfo: response is not a JSON object");
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	/* OIDC Core 5.3.2: an unsigned answer MUST be application/json (a signed one, application/jwt,
	 * is not something we asked for) */
	if (!nl_oidc_is_json_type(resp.content_type)) {
		nl_oidc_err(o, res->error, sizeof(res->error),
		            "userinfo: Content-Type is not application/json (OIDC Core 5.3.2)");
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	sub = nl_jwt_str(claims, "sub");
	uisub = nl_json_str(ui, "sub");
	if (sub == NULL || uisub == NULL || strcmp(sub, uisub) != 0) {
		res->outcome = NL_OUT_INVALID_TOKEN;
		nl_oidc_err(o, res->error, sizeof(res->error), "userinfo sub mismatch");
		nl_warn("oidc: userinfo sub does not equal the ID token's");
		r = NL_ERR_CLAIM;
		goto out;
	}
	if (json_object_update_missing(claims, ui) != 0) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	res->outcome = NL_OUT_OK;
	r = 0;
out:
	json_decref(ui);
	nl_http_resp_free(&resp);
	return r;
}

static int fill_identity(json_t *claims, const char *refresh, struct nl_identity *id)
{
	struct nl_identity n;
	const char *sub = nl_jwt_str(claims, "sub"), *vot = nl_jwt_str(claims, "vot");
	long long v;

	memset(&n, 0, sizeof(n));
	if (sub == NULL || (n.sub = strdup(sub)) == NULL)
		goto fail;
	if (vot != NULL && (n.vot = strdup(vot)) == NULL)
		goto fail;
	n.level = vot != NULL ? nl_vot_level(vot) : 0;
	if (n.level < 0)
		n.level = 0;
	if (nl_json_int(claims, "auth_time", &v) == 0 || nl_json_int(claims, "iat", &v) == 0)
		n.auth_time = (time_t)v;
	if (nl_json_int(claims, "exp", &v) == 0)
		n.id_exp = (time_t)v;
	if (refresh != NULL && (n.refresh_token = strdup(refresh)) == NULL)
		goto fail;
	n.claims = json_incref(claims);
	*id = n;
	return 0;
fail:
	nl_identity_clear(&n);
	return NL_ERR_NOMEM;
}

/* The ID token with nonce, then userinfo if configured; on success id is filled (with refresh, if
 * any). Shared by the token endpoint's answers and an agent's check of a bridge's. */
static int verify_tokens(struct nl_oidc *o, const struct disc *d, const char *idt, const char *at,
                         const char *rt, const char *nonce, struct nl_grant_result *res)
{
	json_t *claims = NULL;
	int r;

	if ((r = validate_id_token(o, idt, nonce, &claims, res)) != 0)
		goto out;
	if (o->cfg->userinfo && (r = fetch_userinfo(o, d->userinfo_endpoint, at, claims, res)) != 0)
		goto out;
	res->outcome = NL_OUT_UNAVAILABLE;
	if ((r = fill_identity(claims, rt, &res->id)) != 0)
		goto out;
	res->outcome = NL_OUT_OK;
	r = 0;
out:
	json_decref(claims);
	return r;
}

/* RFC 6749 5.1, 7.1 and OIDC Core 3.1.3.3: the members of a successful token response, before any
 * of it is used. why names the first that breaks a rule. (id_token is checked by the caller.) */
static bool token_response_ok(const json_t *tok, char *why, size_t whylen)
{
	const json_t *v;
	const char *s;

	s = nl_json_str(tok, "access_token");
	if (s == NULL || *s == '\0') {
		snprintf(why, whylen, "has no access_token (RFC 6749 5.1)");
		return false;
	}
	if ((s = nl_json_str(tok, "token_type")) == NULL) {
		snprintf(why, whylen, "has no token_type (RFC 6749 5.1)");
		return false;
	}
	/* compared without regard to case (RFC 6749 5.1); a type we do not understand must not be
	 * used (7.1), and OIDC Core 3.1.3.3 says it MUST be Bearer */
	if (strcasecmp(s, "Bearer") != 0) {
		snprintf(why, whylen, "has a token_type other than Bearer (RFC 6749 7.1)");
		return false;
	}
	v = json_object_get(tok, "expires_in");
	if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 0)) {
		snprintf(why, whylen, "has an expires_in that is not a non-negative integer (RFC 6749 5.1)");
		return false;
	}
	if ((v = json_object_get(tok, "refresh_token")) != NULL && !json_is_string(v)) {
		snprintf(why, whylen, "has a refresh_token that is not a string (RFC 6749 5.1)");
		return false;
	}
	if ((v = json_object_get(tok, "scope")) != NULL && !json_is_string(v)) {
		snprintf(why, whylen, "has a scope that is not a string (RFC 6749 5.1)");
		return false;
	}
	return true;
}

/* A 200 answer of the token endpoint: validate the ID token, fetch userinfo, fill id. */
static int token_success(struct nl_oidc *o, const struct nl_oidc_token_req *req, json_t *tok,
                         struct nl_grant_result *res)
{
	const char *idt = nl_json_str(tok, "id_token"), *at = nl_json_str(tok, "access_token");
	const char *rt = nl_json_str(tok, "refresh_token");
	char why[160] = "";
	bool keep;
	int r;

	res->outcome = NL_OUT_UNAVAILABLE;
	/* OIDC Core 3.1.3.3: an ID token is REQUIRED in a successful response */
	if (idt == NULL || *idt == '\0' || strlen(idt) > NL_JWS_MAX) {
		nl_oidc_err(o, res->error, sizeof(res->error), "token response has no usable id_token");
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if (!token_response_ok(tok, why, sizeof(why))) {
		nl_oidc_err(o, res->error, sizeof(res->error), "token response %s", why);
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if ((at != NULL && strlen(at) > MAX_TOKEN) || (rt != NULL && strlen(rt) > MAX_TOKEN)) {
		nl_oidc_err(o, res->error, sizeof(res->error), "token response has an oversized token");
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if ((r = verify_tokens(o, req->disc, idt, at, rt, req->nonce, res)) != 0)
		goto out;
	pthread_mutex_lock(&o->mu);
	keep = o->keep_raw;
	pthread_mutex_unlock(&o->mu);
	if (keep && ((res->raw_id_token = strdup(idt)) == NULL ||
	             (at != NULL && (res->raw_access_token = strdup(at)) == NULL))) {
		res->outcome = NL_OUT_UNAVAILABLE;
		r = NL_ERR_NOMEM;
	}
out:
	return r;
}

/* The reply may hold tokens (a body the grant did not take): wiped before it is freed. */
void nl_oidc_token_reply_clear(struct nl_oidc_token_reply *reply)
{
	nl_oidc_wipe_token_json(reply->body);
	nl_http_resp_free(&reply->resp);
	memset(reply, 0, sizeof(*reply));
}

/* The reply is final when the result is decided here: a transport failure, or a 200 whose tokens
 * were judged by token_success (res filled). Otherwise the caller judges reply's status and word. */
int nl_oidc_token_request(struct nl_oidc *o, const struct nl_oidc_token_req *req, struct nl_grant_result *res,
                          struct nl_oidc_token_reply *reply)
{
	struct nl_http_resp *resp = &reply->resp;
	int r;

	reply->word = NULL;
	reply->final = true;
	pthread_mutex_lock(&o->mu);
	o->st.token_requests++;
	pthread_mutex_unlock(&o->mu);
	if ((r = nl_oidc_post(o, req->disc->token_endpoint, req->form, MAX_TOKEN_RESP, resp, "token endpoint",
	                      res->error, sizeof(res->error))) != 0)
		return r;
	if (resp->status == 200) {
		if (nl_oidc_parse_body(resp, MAX_TOKEN_RESP, &reply->body) != 0) {
			nl_oidc_err(o, res->error, sizeof(res->error),
			            "token endpoint: response is not a JSON object");
			return NL_ERR_UNAVAILABLE;
		}
		if (!nl_oidc_is_json_type(resp->content_type)) {
			nl_oidc_err(o, res->error, sizeof(res->error),
			            "token endpoint: Content-Type is not application/json (RFC 6749 5.1)");
			return NL_ERR_UNAVAILABLE;
		}
		return token_success(o, req, reply->body, res);
	}
	if ((resp->status == 400 || resp->status == 401) &&
	    nl_oidc_parse_body(resp, MAX_TOKEN_RESP, &reply->body) == 0)
		reply->word = error_word(reply->body);
	reply->final = false;
	return NL_ERR_UNAVAILABLE;
}

/* Start a grant's result from failure: nothing is approved unless the grant says so. */
void nl_oidc_grant_begin(struct nl_grant_result *res)
{
	memset(res, 0, sizeof(*res));
	res->outcome = NL_OUT_UNAVAILABLE;
}

/* A grant's end: never NL_OUT_OK after an error, nor an identity without it. */
int nl_oidc_grant_end(struct nl_grant_result *res, int r)
{
	if (r == 0) {
		res->outcome = NL_OUT_OK;
		return 0;
	}
	if (res->outcome == NL_OUT_OK)
		res->outcome = NL_OUT_UNAVAILABLE;
	nl_identity_clear(&res->id);
	return nl_oidc_outcome_err(res->outcome);
}

int nl_oidc_exchange_code(struct nl_oidc *o, const char *code, const char *code_verifier, const char *nonce,
                          struct nl_grant_result *res)
{
	struct disc d;
	struct nl_oidc_token_reply reply;
	struct nl_oidc_token_req req = {.disc = &d, .nonce = nonce};
	char *form = NULL;
	int r;

	memset(&d, 0, sizeof(d));
	memset(&reply, 0, sizeof(reply));
	if (o == NULL || code == NULL || nonce == NULL || res == NULL)
		return NL_ERR_INTERNAL;
	nl_oidc_grant_begin(res);
	if (*code == '\0' || strlen(code) > MAX_TOKEN) {
		nl_oidc_err(o, res->error, sizeof(res->error), "authorization code missing or too long");
		res->outcome = NL_OUT_DENIED;
		return NL_ERR_DENIED;
	}
	if ((r = nl_oidc_copy_disc(o, &d, res->error, sizeof(res->error))) != 0) {
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if ((r = nl_form_add(&form, "grant_type", "authorization_code")) != 0 ||
	    (r = nl_form_add(&form, "code", code)) != 0 ||
	    (r = nl_form_add(&form, "redirect_uri", o->cfg->env.redirect_uri)) != 0 ||
	    (code_verifier != NULL && (r = nl_form_add(&form, "code_verifier", code_verifier)) != 0) ||
	    (r = nl_oidc_client_auth(o, d.token_endpoint, &form)) != 0) {
		nl_oidc_err(o, res->error, sizeof(res->error), "token request: %s", nl_strerror(r));
		goto out;
	}
	req.form = form;
	r = nl_oidc_token_request(o, &req, res, &reply);
	if (reply.final)
		goto out;
	if (reply.resp.status == 400 && reply.word != NULL &&
	    (strcmp(reply.word, "invalid_grant") == 0 || strcmp(reply.word, "access_denied") == 0)) {
		res->outcome = NL_OUT_DENIED;
		r = NL_ERR_DENIED;
		nl_oidc_err(o, res->error, sizeof(res->error), "token endpoint refused the code: %s",
		            reply.word);
	} else if (reply.word != NULL) {
		nl_oidc_err(o, res->error, sizeof(res->error), "token endpoint: HTTP %ld %s%s",
		            reply.resp.status, reply.word, nl_oidc_error_hint(reply.word));
	} else {
		nl_oidc_err(o, res->error, sizeof(res->error), "token endpoint: HTTP %ld", reply.resp.status);
	}
out:
	r = nl_oidc_grant_end(res, r);
	if (r != 0)
		nl_debug("oidc: code exchange failed (%s)", nl_outcome_word(res->outcome));
	nl_oidc_token_reply_clear(&reply);
	nl_free_secret(form);
	nl_oidc_disc_clear(&d);
	return r;
}

int nl_oidc_verify_tokens(struct nl_oidc *o, const char *id_token, const char *access_token,
                          const char *nonce, struct nl_grant_result *res)
{
	struct disc d;
	int r;

	memset(&d, 0, sizeof(d));
	if (o == NULL || nonce == NULL || res == NULL)
		return NL_ERR_INTERNAL;
	nl_oidc_grant_begin(res);
	/* "approved" with nothing to show for it is a bridge speaking for NHS login: refused */
	if (id_token == NULL || *id_token == '\0' || strlen(id_token) > NL_JWS_MAX ||
	    (access_token != NULL && strlen(access_token) > MAX_TOKEN)) {
		res->outcome = NL_OUT_INVALID_TOKEN;
		res->rule = NL_RULE_FORMAT;
		nl_oidc_err(o, res->error, sizeof(res->error), "no usable ID token from the bridge");
		return nl_oidc_grant_end(res, NL_ERR_INVALID);
	}
	/* the issuer's keys, fetched by this client (a cached copy if fresh); or the pinned file's,
	 * with no discovery at all (userinfo, which needs it, does not go with jwks_file) */
	if ((r = nl_oidc_ready(o, res->error, sizeof(res->error))) != 0 ||
	    (!o->pinned && (r = nl_oidc_copy_disc(o, &d, res->error, sizeof(res->error))) != 0)) {
		res->outcome = NL_OUT_UNAVAILABLE;
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	r = verify_tokens(o, &d, id_token, access_token, NULL, nonce, res);
out:
	r = nl_oidc_grant_end(res, r);
	if (r != 0)
		nl_debug("oidc: a bridge's sign-in refused (%s)", nl_outcome_word(res->outcome));
	nl_oidc_disc_clear(&d);
	return r;
}
