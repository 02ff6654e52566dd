/* nhslogin-mock: POST /token (authorization_code, refresh_token, and the device grant via device.c),
 * private_key_jwt client authentication (RFC 7523, RS512 only), and minting of ID/access/refresh tokens. */
#include "config.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"

#define JWT_BEARER   "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define DEVICE_GRANT "urn:ietf:params:oauth:grant-type:device_code"

static int token_error(struct mock_req *r, const char *error, const char *desc)
{
	return mock_reply_oauth_error(r, 400, error, desc);
}

static bool aud_ok(const json_t *claims, const char *const *audiences, size_t n_aud)
{
	const json_t *aud = json_object_get(claims, "aud"), *v;
	size_t i;

	if (json_is_string(aud)) {
		for (i = 0; i < n_aud; i++)
			if (strcmp(json_string_value(aud), audiences[i]) == 0)
				return true;
		return false;
	}
	if (!json_is_array(aud))
		return false;
	json_array_foreach(aud, i, v)
	{
		for (size_t j = 0; json_is_string(v) && j < n_aud; j++)
			if (strcmp(json_string_value(v), audiences[j]) == 0)
				return true;
	}
	return false;
}

/* The rules on the assertion's claims once its signature is good; *why says which failed. */
static int check_assertion_claims(struct mock *m, const struct mock_client *c, const json_t *claims,
                                  const char *const *audiences, size_t n_aud, const char **why)
{
	const char *sub = nl_jwt_str(claims, "sub"), *jti = nl_jwt_str(claims, "jti");
	time_t now = nl_now();
	long long exp = 0, iat = 0;
	int r;

	if (sub == NULL || strcmp(sub, c->client_id) != 0)
		return *why = "client assertion sub must equal iss (the client_id)", NL_ERR_CLAIM;
	if (!aud_ok(claims, audiences, n_aud))
		return *why = "client assertion aud must be the token endpoint URL", NL_ERR_CLAIM;
	if (nl_jwt_check_time(claims, now, MOCK_SKEW, false) != 0 || nl_json_int(claims, "exp", &exp) != 0)
		return *why = "client assertion has expired or its exp/iat/nbf are invalid", NL_ERR_EXPIRED;
	if (exp <= (long long)now)
		return *why = "client assertion has expired", NL_ERR_EXPIRED;
	r = nl_json_int(claims, "iat", &iat);
	if (r == NL_ERR_NOT_FOUND)
		iat = (long long)now;
	else if (r != 0)
		return *why = "client assertion iat must be an integer", NL_ERR_CLAIM;
	if (exp - iat > MOCK_ASSERTION_MAX_LIFETIME)
		return *why = "client assertion lifetime is longer than 3600 s", NL_ERR_CLAIM;
	if (jti == NULL || jti[0] == '\0' || strlen(jti) > 255)
		return *why = "client assertion needs a jti", NL_ERR_CLAIM;
	r = mock_jti_remember(m, c->client_id, jti, (time_t)exp);
	if (r == NL_ERR_DENIED)
		return *why = "client assertion jti was already used", r;
	if (r != 0)
		return *why = "client assertion replay cache is full", r;
	return 0;
}

const struct mock_client *mock_client_auth(struct mock_req *r, const char *const *audiences, size_t n_aud,
                                           int *rv)
{
	static const char *const algs[] = {MOCK_JWT_ALG};
	struct mock *m = mock_g;
	const char *cat = mock_param(r, "client_assertion_type"), *ca = mock_param(r, "client_assertion");
	const char *form_id = mock_param(r, "client_id"), *iss, *why = "client authentication failed";
	const struct mock_client *c = NULL;
	struct nl_jws *jws = NULL;

	if (cat == NULL || ca == NULL) {
		why = "private_key_jwt client authentication is required";
		goto fail;
	}
	if (strcmp(cat, JWT_BEARER) != 0) {
		why = "client_assertion_type must be jwt-bearer";
		goto fail;
	}
	if (nl_jws_parse(ca, strlen(ca), algs, 1, &jws) != 0 || !json_is_object(jws->claims)) {
		why = "client assertion is not an RS512 JWT";
		goto fail;
	}
	iss = nl_jwt_str(jws->claims, "iss");
	if ((c = mock_find_client(m, iss)) == NULL) {
		why = "client assertion iss is not a registered client";
		goto fail;
	}
	if (form_id != NULL && strcmp(form_id, c->client_id) != 0) {
		why = "client_id does not match the client assertion";
		goto fail;
	}
	if (nl_jws_verify(jws, c->key) != 0) {
		why = "client assertion signature does not verify with the registered key";
		goto fail;
	}
	if (check_assertion_claims(m, c, jws->claims, audiences, n_aud, &why) != 0)
		goto fail;
	nl_jws_free(jws);
	return c;
fail:
	nl_jws_free(jws);
	nl_info("client authentication failed: %s", why);
	*rv = token_error(r, "invalid_client", why);
	return NULL;
}

static int add_token(struct mock *m, char *token, enum mock_token_kind kind, const struct mock_client *c,
                     const struct mock_user *u, const char *scope, const char *vot, time_t auth_time,
                     time_t expires, uint64_t grant)
{
	struct mock_token *t = calloc(1, sizeof(*t));

	if (t == NULL || (t->token = strdup(token)) == NULL ||
	    (t->client_id = strdup(c->client_id)) == NULL || (t->scope = strdup(scope)) == NULL ||
	    (t->vot = strdup(vot)) == NULL || mock_list_add(&m->tokens, t) != 0) {
		mock_token_free(t);
		return NL_ERR_LIMIT;
	}
	t->kind = kind;
	t->user = u;
	t->auth_time = auth_time;
	t->expires = expires;
	t->grant = grant;
	return 0;
}

static int mint(const struct mock *m, json_t *claims, char **out)
{
	int r = mock_sign(m, claims, out);
	json_decref(claims);
	return r;
}

/* The ID token: signed as a fault says, if one does. */
static int mint_id_token(const struct mock *m, json_t *claims, char **out)
{
	int r = mock_fault_id_token_sign(m, claims, out);

	if (r == NL_ERR_NOT_FOUND)
		r = mock_sign(m, claims, out);
	json_decref(claims);
	return r;
}

int mock_issue_tokens(struct mock_req *r, const struct mock_client *c, const struct mock_user *u,
                      const char *scope, const char *vot, const char *nonce, time_t auth_time, uint64_t grant,
                      bool with_id_token)
{
	struct mock *m = mock_g;
	const char *fault_body, *fault_ctype, *fault_error;
	char *at = NULL, *idt = NULL, *rt = NULL, jti[37], jti2[37];
	time_t now = nl_now();
	json_t *claims, *resp = NULL;
	int ret;

	if (mock_fault_token_body(m, &fault_body, &fault_ctype))
		return mock_reply(r, 200, fault_ctype, fault_body, strlen(fault_body), NULL);
	if (mock_fault_token_error(m, &fault_error))
		return mock_reply_oauth_error(r, 400, fault_error, "injected fault: token_error_unsafe");
	if (mock_uuid(jti) != 0 || mock_uuid(jti2) != 0)
		goto fail;
	claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s}", "iss", m->issuer, "sub", u->sub,
	                   "aud", c->client_id, "exp", (json_int_t)(now + MOCK_ACCESS_TOKEN_TTL), "iat",
	                   (json_int_t)now, "jti", jti, "scope", scope, "vot", vot, "vtm", m->vtm,
	                   "client_id", c->client_id, "token_use", "access");
	if (claims == NULL)
		goto fail;
	if (u->nhs_number != NULL && u->level >= 5)
		json_object_set_new(claims, "nhs_number", json_string(u->nhs_number));
	if (mint(m, claims, &at) != 0)
		goto fail;
	if (with_id_token) {
		claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s}", "iss", m->issuer, "sub", u->sub,
		                   "aud", c->client_id, "exp", (json_int_t)(now + MOCK_ID_TOKEN_TTL), "iat",
		                   (json_int_t)now, "auth_time", (json_int_t)auth_time, "jti", jti2, "vot",
		                   vot, "vtm", m->vtm);
		if (claims == NULL)
			goto fail;
		if (nonce != NULL)
			json_object_set_new(claims, "nonce", json_string(nonce));
		mock_user_claims(m, u, scope, claims);
		mock_fault_id_token_claims(m, claims);
		if (mint_id_token(m, claims, &idt) != 0)
			goto fail;
	}
	if (c->refresh_tokens && nl_random_token(32, &rt) != 0)
		goto fail;
	if (add_token(m, at, MOCK_TOKEN_ACCESS, c, u, scope, vot, auth_time, now + MOCK_ACCESS_TOKEN_TTL,
	              grant) != 0 ||
	    (rt != NULL && add_token(m, rt, MOCK_TOKEN_REFRESH, c, u, scope, vot, auth_time,
	                             now + MOCK_REFRESH_TOKEN_TTL, grant) != 0))
		goto fail;
	resp = json_pack("{s:s,s:s,s:i,s:s}", "access_token", at, "token_type", "Bearer", "expires_in",
	                 MOCK_ACCESS_TOKEN_TTL, "scope", scope);
	if (resp == NULL)
		goto fail;
	if (idt != NULL)
		json_object_set_new(resp, "id_token", json_string(idt));
	if (rt != NULL)
		json_object_set_new(resp, "refresh_token", json_string(rt));
	mock_fault_token_json(m, resp);
	ret = mock_fault_reply_json(m, MOCK_EP_TOKEN, r, resp);
	goto out;
fail:
	ret = mock_reply_oauth_error(r, 500, "server_error", "cannot issue tokens");
out:
	json_decref(resp);
	nl_free_secret(at);
	nl_free_secret(idt);
	nl_free_secret(rt);
	return ret;
}

/* PKCE S256 (RFC 7636 §4.6). */
static bool pkce_ok(const char *challenge, const char *verifier)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char *enc = NULL;
	size_t len = strlen(verifier);
	bool ok;

	if (len < 43 || len > 128 ||
	    strspn(verifier, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") != len)
		return false;
	if (EVP_Digest(verifier, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    nl_b64url_encode(md, mdlen, &enc) != 0)
		return false;
	ok = nl_ct_streq(enc, challenge);
	free(enc);
	return ok;
}

static int grant_code(struct mock_req *r, const struct mock_client *c)
{
	struct mock *m = mock_g;
	const char *code = mock_param(r, "code"), *redirect_uri = mock_param(r, "redirect_uri");
	const char *verifier = mock_param(r, "code_verifier");
	struct mock_code *co;

	if (code == NULL || redirect_uri == NULL)
		return token_error(r, "invalid_request", "code and redirect_uri are required");
	co = mock_find_code(m, code);
	if (co == NULL || strcmp(co->client_id, c->client_id) != 0)
		return token_error(r, "invalid_grant", "the code is unknown or expired");
	if (co->used) {
		/* RFC 6749 §4.1.2: a replayed code revokes what it gave */
		mock_revoke_grant(m, co->grant);
		nl_notice("authorization code replayed; tokens of that grant revoked");
		return token_error(r, "invalid_grant", "the code was already used");
	}
	co->used = true;
	if (co->expires <= nl_now())
		return token_error(r, "invalid_grant", "the code has expired");
	if (strcmp(redirect_uri, co->redirect_uri) != 0)
		return token_error(r, "invalid_grant",
		                   "redirect_uri does not match the authorization request");
	if (co->challenge != NULL && verifier == NULL)
		return token_error(r, "invalid_grant", "code_verifier is required");
	if (co->challenge == NULL && verifier != NULL)
		return token_error(r, "invalid_grant", "code_verifier sent but no code_challenge was");
	if (co->challenge != NULL && !pkce_ok(co->challenge, verifier))
		return token_error(r, "invalid_grant", "code_verifier does not match code_challenge");
	return mock_issue_tokens(r, c, co->user, co->scope, co->vot, co->nonce, co->auth_time, co->grant,
	                         true);
}

/* Refresh (EIS §3.5): no ID token; scope may only narrow; the refresh token rotates. */
static int grant_refresh(struct mock_req *r, const struct mock_client *c)
{
	struct mock *m = mock_g;
	const char *rt = mock_param(r, "refresh_token"), *scope = mock_param(r, "scope");
	struct mock_token *t;

	if (rt == NULL)
		return token_error(r, "invalid_request", "refresh_token is required");
	if (!c->refresh_tokens)
		return token_error(r, "unauthorized_client",
		                   "refresh tokens are not enabled for this client");
	t = mock_find_token(m, rt, MOCK_TOKEN_REFRESH);
	if (t == NULL || t->revoked || t->expires <= nl_now() || strcmp(t->client_id, c->client_id) != 0)
		return token_error(r, "invalid_grant",
		                   "the refresh token is unknown, used, revoked or expired");
	if (scope != NULL) {
		for (const char *p = scope + strspn(scope, " "); *p != '\0';) {
			size_t len = strcspn(p, " ");
			char name[64];
			snprintf(name, sizeof(name), "%.*s", (int)len, p);
			if (len >= sizeof(name) || !mock_scope_has(t->scope, name))
				return token_error(r, "invalid_scope",
				                   "scope may only narrow the granted scope");
			p += len;
			p += strspn(p, " ");
		}
		if (!mock_scope_has(scope, "openid"))
			return token_error(r, "invalid_scope", "scope must include openid");
	}
	t->revoked = true;
	return mock_issue_tokens(r, c, t->user, scope != NULL ? scope : t->scope, t->vot, NULL, t->auth_time,
	                         t->grant, false);
}

int mock_handle_token(struct mock_req *r)
{
	struct mock *m = mock_g;
	const char *aud[] = {m->token_endpoint};
	const struct mock_client *c;
	const char *gt;
	int rv = 0;

	if (strcmp(r->method, "POST") != 0)
		return mock_reply(r, 405, "text/plain", "method not allowed\n", 19, NULL);
	if (mock_req_parse_form(r) != 0 || r->bad_params)
		return token_error(r, "invalid_request",
		                   "the body must be application/x-www-form-urlencoded");
	if (r->dup_param)
		return token_error(r, "invalid_request", "a parameter is repeated");
	if ((gt = mock_param(r, "grant_type")) == NULL)
		return token_error(r, "invalid_request", "grant_type is required");
	if ((c = mock_client_auth(r, aud, 1, &rv)) == NULL)
		return rv;
	if (strcmp(gt, "authorization_code") == 0)
		return grant_code(r, c);
	if (strcmp(gt, "refresh_token") == 0)
		return grant_refresh(r, c);
	if (strcmp(gt, DEVICE_GRANT) == 0 && m->set.device_endpoint)
		return mock_grant_device(r, c);
	return token_error(r, "unsupported_grant_type", "grant_type is not supported");
}
