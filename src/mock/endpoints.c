/* nhslogin-mock: discovery, JWKS, userinfo, and the test control API (/_mock/control, /_mock/stats). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"

static const char *const claims_supported[] = {
    "iss",
    "aud",
    "sub",
    "exp",
    "iat",
    "jti",
    "auth_time",
    "nonce",
    "vot",
    "vtm",
    "family_name",
    "given_name",
    "birthdate",
    "nhs_number",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "phone_number_pds_matched",
    "gp_ods_code",
    "identity_proofing_level",
};

static json_t *str_array(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static char *endpoint(const struct mock *m, const char *path)
{
	char *s = NULL;
	if (asprintf(&s, "%s%s", m->issuer, path) < 0)
		return NULL;
	return s;
}

static int set_url(json_t *o, const char *key, const struct mock *m, const char *path)
{
	char *u = endpoint(m, path);
	int r = u != NULL ? json_object_set_new(o, key, json_string(u)) : -1;
	free(u);
	return r;
}

int mock_handle_discovery(struct mock_req *r)
{
	const struct mock *m = mock_g;
	json_t *o = json_object();
	int ret;

	if (strcmp(r->method, "GET") != 0)
		return mock_reply(r, 405, "text/plain", "method not allowed\n", 19, NULL);
	json_object_set_new(o, "issuer", json_string(m->issuer));
	set_url(o, "authorization_endpoint", m, "/authorize");
	set_url(o, "token_endpoint", m, "/token");
	set_url(o, "userinfo_endpoint", m, "/userinfo");
	set_url(o, "jwks_uri", m, "/.well-known/jwks.json");
	json_object_set_new(o, "scopes_supported", str_array(mock_scopes_supported, mock_n_scopes()));
	json_object_set_new(o, "response_types_supported", json_pack("[s]", "code"));
	json_object_set_new(o, "subject_types_supported", json_pack("[s]", "public"));
	json_object_set_new(o, "id_token_signing_alg_values_supported", json_pack("[s]", MOCK_JWT_ALG));
	json_object_set_new(o, "token_endpoint_auth_methods_supported", json_pack("[s]", "private_key_jwt"));
	json_object_set_new(o, "token_endpoint_auth_signing_alg_values_supported",
	                    json_pack("[s]", MOCK_JWT_ALG));
	json_object_set_new(
	    o, "claims_supported",
	    str_array(claims_supported, sizeof(claims_supported) / sizeof(claims_supported[0])));
	json_object_set_new(o, "code_challenge_methods_supported", json_pack("[s]", "S256"));
	if (m->set.device_endpoint) {
		set_url(o, "device_authorization_endpoint", m, "/device_authorization");
		json_object_set_new(o, "grant_types_supported",
		                    json_pack("[s,s,s]", "authorization_code", "refresh_token",
		                              "urn:ietf:params:oauth:grant-type:device_code"));
	}
	mock_fault_discovery(m, o);
	ret = mock_reply_json(r, 200, o, "max-age=3600");
	json_decref(o);
	return ret;
}

int mock_handle_jwks(struct mock_req *r)
{
	json_t *o;
	int ret;

	if (strcmp(r->method, "GET") != 0)
		return mock_reply(r, 405, "text/plain", "method not allowed\n", 19, NULL);
	o = mock_jwks_json(mock_g);
	ret = mock_reply_json(r, 200, o, "max-age=3600");
	json_decref(o);
	return ret;
}

void mock_user_claims(const struct mock *m, const struct mock_user *u, const char *scope, json_t *o)
{
	static const char *const levels[] = {"P0", "P0", "P0", "P0", "P0", "P5", "P5", "P5", "P5", "P9"};
	bool verified = u->level >= 5;
	(void)m;

	if ((mock_scope_has(scope, "profile") || mock_scope_has(scope, "basic_demographics")) && verified) {
		if (mock_scope_has(scope, "profile") && u->nhs_number != NULL)
			json_object_set_new(o, "nhs_number", json_string(u->nhs_number));
		if (u->family_name != NULL)
			json_object_set_new(o, "family_name", json_string(u->family_name));
		if (u->birthdate != NULL)
			json_object_set_new(o, "birthdate", json_string(u->birthdate));
	}
	if (mock_scope_has(scope, "profile_extended") && verified && u->given_name != NULL)
		json_object_set_new(o, "given_name", json_string(u->given_name));
	if (mock_scope_has(scope, "email") && u->email != NULL) {
		json_object_set_new(o, "email", json_string(u->email));
		json_object_set_new(o, "email_verified", json_true());
	}
	if (mock_scope_has(scope, "phone") && u->phone_number != NULL) {
		json_object_set_new(o, "phone_number", json_string(u->phone_number));
		json_object_set_new(o, "phone_number_verified", json_true());
		json_object_set_new(o, "phone_number_pds_matched", json_boolean(verified));
	}
	if (mock_scope_has(scope, "gp_registration_details") && verified && u->gp_ods_code != NULL)
		json_object_set_new(o, "gp_ods_code", json_string(u->gp_ods_code));
	json_object_set_new(o, "identity_proofing_level", json_string(levels[u->level]));
}

static int unauthorized(struct mock_req *r, const char *error)
{
	const char *hdrs[] = {"WWW-Authenticate", NULL, "Cache-Control", "no-store", NULL};
	char value[128], body[128];

	if (error != NULL)
		snprintf(value, sizeof(value), "Bearer error=\"%s\"", error);
	else
		snprintf(value, sizeof(value), "Bearer");
	snprintf(body, sizeof(body), "{\"error\":\"%s\"}", error != NULL ? error : "invalid_token");
	hdrs[1] = value;
	return mock_reply(r, 401, "application/json", body, strlen(body), hdrs);
}

int mock_handle_userinfo(struct mock_req *r)
{
	struct mock *m = mock_g;
	const char *auth = mock_header(r, "Authorization");
	const struct mock_token *t;
	json_t *o;
	int ret;

	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0)
		return mock_reply(r, 405, "text/plain", "method not allowed\n", 19, NULL);
	if (auth == NULL)
		return unauthorized(r, NULL);
	if (strncasecmp(auth, "Bearer ", 7) != 0 || auth[7] == '\0')
		return unauthorized(r, "invalid_request");
	t = mock_find_token(m, auth + 7, MOCK_TOKEN_ACCESS);
	if (t == NULL || t->revoked || t->expires <= nl_now())
		return unauthorized(r, "invalid_token");
	o = json_object();
	json_object_set_new(o, "sub", json_string(t->user->sub));
	mock_user_claims(m, t->user, t->scope, o);
	mock_fault_userinfo(m, o);
	ret = mock_fault_reply_json(m, MOCK_EP_USERINFO, r, o);
	json_decref(o);
	return ret;
}

int mock_handle_control(struct mock_req *r)
{
	struct mock *m = mock_g;
	json_t *req = NULL, *resp;
	char err[160] = "";
	int ret;

	if (strcmp(r->method, "POST") != 0)
		return mock_reply(r, 405, "text/plain", "method not allowed\n", 19, NULL);
	if (r->body == NULL ||
	    nl_json_parse(r->body, r->body_len, MOCK_MAX_BODY, 4, true, &req, err, sizeof(err)) != 0 ||
	    mock_fault_control(m, req, err, sizeof(err)) != 0) {
		json_decref(req);
		return mock_reply_oauth_error(r, 400, "invalid_request",
		                              err[0] != '\0' ? err : "a JSON object is needed");
	}
	nl_notice("control: fault %s", nl_json_str(req, "fault"));
	json_decref(req);
	resp = json_pack("{s:b,s:o,s:s}", "ok", 1, "faults", mock_faults_json(m), "kid",
	                 m->n_keys > 0 ? m->keys[0].kid : "");
	ret = mock_reply_json(r, 200, resp, NULL);
	json_decref(resp);
	return ret;
}

int mock_handle_stats(struct mock_req *r)
{
	static const char *const names[MOCK_EP_COUNT] = {
	    [MOCK_EP_DISCOVERY] = "discovery", [MOCK_EP_JWKS] = "jwks",
	    [MOCK_EP_AUTHORIZE] = "authorize", [MOCK_EP_TOKEN] = "token",
	    [MOCK_EP_USERINFO] = "userinfo",   [MOCK_EP_DEVICE_AUTHORIZATION] = "device_authorization",
	    [MOCK_EP_DEVICE_PAGE] = "device",
	};
	struct mock *m = mock_g;
	json_t *o = json_object();
	int ret;

	if (strcmp(r->method, "GET") != 0)
		return mock_reply(r, 405, "text/plain", "method not allowed\n", 19, NULL);
	for (int i = 0; i < MOCK_EP_COUNT; i++)
		json_object_set_new(o, names[i], json_integer((json_int_t)m->stats[i]));
	json_object_set_new(o, "authorize_prompt_login", json_integer((json_int_t)m->prompt_login));
	json_object_set_new(o, "faults", mock_faults_json(m));
	ret = mock_reply_json(r, 200, o, NULL);
	json_decref(o);
	return ret;
}
