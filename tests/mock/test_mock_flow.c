/* nhslogin-mock over real HTTP: discovery, JWKS, a full authorization-code exchange with a
 * private_key_jwt assertion and ID token verification, every rejection, the device flow, and faults. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mockproc.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_jose.h"
#include "nl_json.h"
#include "nl_time.h"
#include "nl_wipe.h"

#define CLIENT_ID "test-client"
#define REDIRECT  "http://127.0.0.1:9/callback"
#define STATE     "st-1"
#define NONCE     "n-1"
#define SCOPE     "openid profile email"
/* RFC 7636 appendix B */
#define PKCE_VERIFIER  "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define PKCE_CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

static struct {
	char dir[64];
	cjose_jwk_t *key, *other;
	char *pub, *keyp, *other_pub, *other_keyp;
	char client_arg[512];
	struct mockproc *mp;     /* --auto-approve p9 --device-endpoint */
	struct mockproc *manual; /* per test: no --auto-approve */
} F;

static const char *const allowed_algs[] = {"RS512"};

/* ---- helpers ---- */

static void url_of(const struct mockproc *mp, const char *path, char *out, size_t len)
{
	snprintf(out, len, "%s%s", mockproc_issuer(mp), path);
}

static void authorize(const struct mockproc *mp, const char *params, struct mockproc_resp *resp)
{
	char url[2048];
	snprintf(url, sizeof(url), "%s/authorize?%s", mockproc_issuer(mp), params);
	assert_int_equal(mockproc_fetch("GET", url, NULL, NULL, NULL, resp), 0);
}

static char *std_params(const char *extra)
{
	char *enc = nl_url_encode(REDIRECT), *scope = nl_url_encode(SCOPE), *p = NULL;
	assert_non_null(enc);
	assert_int_not_equal(asprintf(&p,
	                              "response_type=code&client_id=" CLIENT_ID "&redirect_uri=%s&scope=%s"
	                              "&state=" STATE "&nonce=" NONCE "%s",
	                              enc, scope, extra),
	                     -1);
	free(enc);
	free(scope);
	return p;
}

/* A code from the auto-approving mock; extra is appended to the standard request. */
static char *get_code_from(const struct mockproc *mp, const char *extra)
{
	struct mockproc_resp resp;
	char *params = std_params(extra), *code, *state;

	authorize(mp, params, &resp);
	free(params);
	assert_int_equal(resp.status, 302);
	assert_non_null(resp.location);
	assert_true(strncmp(resp.location, REDIRECT "?", strlen(REDIRECT) + 1) == 0);
	state = mockproc_query_param(resp.location, "state");
	code = mockproc_query_param(resp.location, "code");
	assert_non_null(state);
	assert_string_equal(state, STATE);
	assert_non_null(code);
	free(state);
	mockproc_resp_free(&resp);
	return code;
}

static char *get_code(const char *extra)
{
	return get_code_from(F.mp, extra);
}

static char *assertion_with(const struct mockproc *mp, const cjose_jwk_t *key, const char *aud, time_t now)
{
	char token_ep[512], *out = NULL;
	url_of(mp, "/token", token_ep, sizeof(token_ep));
	assert_int_equal(
	    nl_client_assertion(key, "RS512", NULL, CLIENT_ID, aud != NULL ? aud : token_ep, now, 60, &out),
	    0);
	return out;
}

static char *assertion_for(const struct mockproc *mp)
{
	return assertion_with(mp, F.key, NULL, nl_now());
}

static void form_add(char **form, const char *name, const char *value)
{
	if (value != NULL)
		assert_int_equal(nl_form_add(form, name, value), 0);
}

static char *code_form(const char *code, const char *redirect, const char *verifier, const char *assertion)
{
	char *form = NULL;
	form_add(&form, "grant_type", "authorization_code");
	form_add(&form, "code", code);
	form_add(&form, "redirect_uri", redirect);
	form_add(&form, "code_verifier", verifier);
	form_add(&form, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	form_add(&form, "client_assertion", assertion);
	return form;
}

static void post_form(const struct mockproc *mp, const char *path, const char *form,
                      struct nl_http_resp *resp)
{
	struct nl_http_opts opts = {0};
	char url[512], err[256];
	url_of(mp, path, url, sizeof(url));
	assert_int_equal(nl_http_post_form(url, form, &opts, resp, err, sizeof(err)), 0);
}

static void http_get(const struct mockproc *mp, const char *path, const char *bearer,
                     struct nl_http_resp *resp)
{
	struct nl_http_opts opts = {.bearer = bearer};
	char url[512], err[256];
	url_of(mp, path, url, sizeof(url));
	assert_int_equal(nl_http_get(url, &opts, resp, err, sizeof(err)), 0);
}

/* POST /token for code with a fresh good assertion. */
static void exchange(const char *code, const char *redirect, const char *verifier, struct nl_http_resp *resp)
{
	char *a = assertion_for(F.mp), *form = code_form(code, redirect, verifier, a);
	post_form(F.mp, "/token", form, resp);
	nl_free_secret(form);
	nl_free_secret(a);
}

static json_t *body_json(const struct nl_http_resp *resp)
{
	json_t *o = NULL;
	assert_int_equal(nl_json_parse(resp->body, resp->body_len, NL_JSON_MAX_SIZE, 8, true, &o, NULL, 0),
	                 0);
	return o;
}

static void assert_oauth_error(const struct nl_http_resp *resp, long status, const char *error)
{
	json_t *o;
	assert_int_equal(resp->status, status);
	o = body_json(resp);
	assert_non_null(nl_json_str(o, "error"));
	assert_string_equal(nl_json_str(o, "error"), error);
	json_decref(o);
}

static struct nl_jwks *fetch_jwks(const struct mockproc *mp)
{
	struct nl_http_resp resp;
	struct nl_jwks *set = NULL;
	http_get(mp, "/.well-known/jwks.json", NULL, &resp);
	assert_int_equal(resp.status, 200);
	assert_int_equal(nl_jwks_parse(resp.body, resp.body_len, &set), 0);
	nl_http_resp_free(&resp);
	return set;
}

/* Verify a JWT from the mock against its JWKS; the claims, and the header kid in *kid (new). */
static json_t *verify_jwt(const struct mockproc *mp, const char *jwt, char **kid)
{
	struct nl_jwks *set = fetch_jwks(mp);
	struct nl_jws *jws = NULL;
	json_t *claims;

	assert_int_equal(nl_jws_parse(jwt, strlen(jwt), allowed_algs, 1, &jws), 0);
	assert_int_equal(nl_jws_verify_jwks(jws, set), 0);
	assert_non_null(jws->kid);
	if (kid != NULL)
		*kid = strdup(jws->kid);
	claims = json_incref(jws->claims);
	nl_jws_free(jws);
	nl_jwks_free(set);
	return claims;
}

static char *jwks_kid(const struct mockproc *mp)
{
	struct nl_http_resp resp;
	json_t *o, *keys;
	char *kid;
	http_get(mp, "/.well-known/jwks.json", NULL, &resp);
	o = body_json(&resp);
	keys = json_object_get(o, "keys");
	assert_int_equal(json_array_size(keys), 1);
	kid = strdup(nl_json_str(json_array_get(keys, 0), "kid"));
	json_decref(o);
	nl_http_resp_free(&resp);
	return kid;
}

static void control(const struct mockproc *mp, const char *json)
{
	long status = 0;
	assert_int_equal(mockproc_control(mp, json, &status), 0);
	assert_int_equal(status, 200);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
	const char *args[8];
	(void)state;

	if (nl_http_global_init() != 0)
		return -1;
	snprintf(F.dir, sizeof(F.dir), "/tmp/nl-mock-test-XXXXXX");
	if (mkdtemp(F.dir) == NULL)
		return -1;
	if (mockproc_client_key(F.dir, "client", &F.key, &F.pub, &F.keyp) != 0 ||
	    mockproc_client_key(F.dir, "other", &F.other, &F.other_pub, &F.other_keyp) != 0)
		return -1;
	snprintf(F.client_arg, sizeof(F.client_arg), "%s:%s:%s", CLIENT_ID, F.pub, REDIRECT);
	args[0] = "--auto-approve";
	args[1] = "p9";
	args[2] = "--device-endpoint";
	args[3] = "--device-interval";
	args[4] = "1";
	args[5] = "--client";
	args[6] = F.client_arg;
	args[7] = NULL;
	return mockproc_start(args, &F.mp) == 0 ? 0 : -1;
}

static void remove_tree(const char *dir)
{
	char cmd[256];
	if (strncmp(dir, "/tmp/nl-mock-test-", 18) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", dir);
	}
}

static int group_teardown(void **state)
{
	(void)state;
	mockproc_stop(F.mp);
	F.mp = NULL;
	mockproc_stop(F.manual);
	F.manual = NULL;
	if (F.key != NULL)
		cjose_jwk_release(F.key);
	if (F.other != NULL)
		cjose_jwk_release(F.other);
	free(F.pub);
	free(F.keyp);
	free(F.other_pub);
	free(F.other_keyp);
	if (F.dir[0] != '\0')
		remove_tree(F.dir);
	return 0;
}

static int manual_setup(void **state)
{
	const char *args[] = {"--device-endpoint", "--device-interval", "1", "--client", F.client_arg, NULL};
	(void)state;
	return mockproc_start(args, &F.manual) == 0 ? 0 : -1;
}

static int manual_teardown(void **state)
{
	(void)state;
	mockproc_stop(F.manual);
	F.manual = NULL;
	return 0;
}

static int reset_faults(void **state)
{
	long status;
	(void)state;
	return mockproc_control(F.mp, "{\"fault\":\"none\"}", &status) == 0 && status == 200 ? 0 : -1;
}

/* ---- discovery and keys ---- */

/* o[key] is the array [value] */
static void assert_only_string(const json_t *o, const char *key, const char *value)
{
	const json_t *a = json_object_get(o, key);
	assert_true(json_is_array(a));
	assert_int_equal(json_array_size(a), 1);
	assert_string_equal(json_string_value(json_array_get(a, 0)), value);
}

static void test_discovery_advertises_nhs_login_metadata(void **state)
{
	struct nl_http_resp resp;
	char url[512];
	json_t *o;
	(void)state;

	http_get(F.mp, "/.well-known/openid-configuration", NULL, &resp);
	assert_int_equal(resp.status, 200);
	assert_non_null(resp.cache_control);
	assert_non_null(strstr(resp.cache_control, "max-age=3600"));
	o = body_json(&resp);
	assert_string_equal(nl_json_str(o, "issuer"), mockproc_issuer(F.mp));
	url_of(F.mp, "/token", url, sizeof(url));
	assert_string_equal(nl_json_str(o, "token_endpoint"), url);
	url_of(F.mp, "/authorize", url, sizeof(url));
	assert_string_equal(nl_json_str(o, "authorization_endpoint"), url);
	url_of(F.mp, "/.well-known/jwks.json", url, sizeof(url));
	assert_string_equal(nl_json_str(o, "jwks_uri"), url);
	assert_only_string(o, "id_token_signing_alg_values_supported", "RS512");
	assert_only_string(o, "token_endpoint_auth_methods_supported", "private_key_jwt");
	assert_only_string(o, "token_endpoint_auth_signing_alg_values_supported", "RS512");
	assert_only_string(o, "response_types_supported", "code");
	assert_only_string(o, "subject_types_supported", "public");
	assert_only_string(o, "code_challenge_methods_supported", "S256");
	url_of(F.mp, "/device_authorization", url, sizeof(url));
	assert_string_equal(nl_json_str(o, "device_authorization_endpoint"), url);
	json_decref(o);
	nl_http_resp_free(&resp);
}

static void test_jwks_publishes_one_rs512_public_key(void **state)
{
	struct nl_http_resp resp;
	json_t *o, *k;
	(void)state;

	http_get(F.mp, "/.well-known/jwks.json", NULL, &resp);
	assert_int_equal(resp.status, 200);
	o = body_json(&resp);
	assert_int_equal(json_array_size(json_object_get(o, "keys")), 1);
	k = json_array_get(json_object_get(o, "keys"), 0);
	assert_string_equal(nl_json_str(k, "kty"), "RSA");
	assert_string_equal(nl_json_str(k, "alg"), "RS512");
	assert_string_equal(nl_json_str(k, "use"), "sig");
	assert_non_null(nl_json_str(k, "kid"));
	assert_null(json_object_get(k, "d"));
	json_decref(o);
	nl_http_resp_free(&resp);
}

/* ---- the authorization code flow ---- */

static void test_code_flow_issues_verifiable_id_token(void **state)
{
	struct nl_http_resp resp;
	char *code = get_code(""), trustmark[512];
	json_t *o, *claims;
	long long iat = 0, exp = 0;
	(void)state;

	exchange(code, REDIRECT, NULL, &resp);
	assert_int_equal(resp.status, 200);
	o = body_json(&resp);
	assert_string_equal(nl_json_str(o, "token_type"), "Bearer");
	assert_int_equal(json_integer_value(json_object_get(o, "expires_in")), 300);
	assert_non_null(nl_json_str(o, "access_token"));
	assert_non_null(nl_json_str(o, "refresh_token"));
	claims = verify_jwt(F.mp, nl_json_str(o, "id_token"), NULL);
	assert_string_equal(nl_json_str(claims, "iss"), mockproc_issuer(F.mp));
	assert_int_equal(nl_jwt_check_aud(claims, CLIENT_ID), 0);
	assert_string_equal(nl_json_str(claims, "nonce"), NONCE);
	assert_string_equal(nl_json_str(claims, "vot"), "P9.Cp.Cd");
	assert_string_equal(nl_json_str(claims, "identity_proofing_level"), "P9");
	assert_string_equal(nl_json_str(claims, "nhs_number"), "9686368973");
	assert_string_equal(nl_json_str(claims, "email"), "p9@example.nhs.uk");
	assert_non_null(nl_json_str(claims, "sub"));
	assert_non_null(nl_json_str(claims, "jti"));
	snprintf(trustmark, sizeof(trustmark), "%s/trustmark/", mockproc_issuer(F.mp));
	assert_true(strncmp(nl_json_str(claims, "vtm"), trustmark, strlen(trustmark)) == 0);
	assert_int_equal(nl_json_int(claims, "iat", &iat), 0);
	assert_int_equal(nl_json_int(claims, "exp", &exp), 0);
	assert_int_equal(exp - iat, 3600);
	assert_int_equal(nl_jwt_check_time(claims, nl_now(), 60, true), 0);
	json_decref(claims);
	/* the access token is a signed JWT too */
	claims = verify_jwt(F.mp, nl_json_str(o, "access_token"), NULL);
	assert_string_equal(nl_json_str(claims, "scope"), SCOPE);
	json_decref(claims);
	json_decref(o);
	nl_http_resp_free(&resp);
	nl_free_secret(code);
}

static void test_userinfo_returns_claims_with_the_id_token_sub(void **state)
{
	struct nl_http_resp resp, ui;
	char *code = get_code("");
	json_t *o, *claims, *info;
	(void)state;

	exchange(code, REDIRECT, NULL, &resp);
	assert_int_equal(resp.status, 200);
	o = body_json(&resp);
	claims = verify_jwt(F.mp, nl_json_str(o, "id_token"), NULL);
	http_get(F.mp, "/userinfo", nl_json_str(o, "access_token"), &ui);
	assert_int_equal(ui.status, 200);
	info = body_json(&ui);
	assert_string_equal(nl_json_str(info, "sub"), nl_json_str(claims, "sub"));
	assert_string_equal(nl_json_str(info, "nhs_number"), "9686368973");
	assert_string_equal(nl_json_str(info, "email"), "p9@example.nhs.uk");
	json_decref(info);
	json_decref(claims);
	json_decref(o);
	nl_http_resp_free(&ui);
	nl_http_resp_free(&resp);
	nl_free_secret(code);
}

static void test_userinfo_rejects_bad_token_with_401(void **state)
{
	struct mockproc_resp resp;
	char url[512];
	(void)state;

	url_of(F.mp, "/userinfo", url, sizeof(url));
	assert_int_equal(mockproc_fetch("GET", url, NULL, NULL, "not-a-token", &resp), 0);
	assert_int_equal(resp.status, 401);
	assert_non_null(resp.www_authenticate);
	assert_non_null(strstr(resp.www_authenticate, "error=\"invalid_token\""));
	mockproc_resp_free(&resp);
}

static void test_refresh_rotates_token_and_omits_id_token(void **state)
{
	struct nl_http_resp resp, r2, r3;
	char *code = get_code(""), *a, *form = NULL;
	json_t *o, *o2;
	(void)state;

	exchange(code, REDIRECT, NULL, &resp);
	assert_int_equal(resp.status, 200);
	o = body_json(&resp);
	a = assertion_for(F.mp);
	form_add(&form, "grant_type", "refresh_token");
	form_add(&form, "refresh_token", nl_json_str(o, "refresh_token"));
	form_add(&form, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	form_add(&form, "client_assertion", a);
	post_form(F.mp, "/token", form, &r2);
	assert_int_equal(r2.status, 200);
	o2 = body_json(&r2);
	assert_null(json_object_get(o2, "id_token"));
	assert_non_null(nl_json_str(o2, "access_token"));
	assert_non_null(nl_json_str(o2, "refresh_token"));
	assert_string_not_equal(nl_json_str(o2, "refresh_token"), nl_json_str(o, "refresh_token"));
	/* the old refresh token is spent (a new assertion, so only the token is at fault) */
	nl_free_secret(form);
	nl_free_secret(a);
	form = NULL;
	a = assertion_for(F.mp);
	form_add(&form, "grant_type", "refresh_token");
	form_add(&form, "refresh_token", nl_json_str(o, "refresh_token"));
	form_add(&form, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	form_add(&form, "client_assertion", a);
	post_form(F.mp, "/token", form, &r3);
	assert_oauth_error(&r3, 400, "invalid_grant");
	json_decref(o);
	json_decref(o2);
	nl_http_resp_free(&resp);
	nl_http_resp_free(&r2);
	nl_http_resp_free(&r3);
	nl_free_secret(form);
	nl_free_secret(a);
	nl_free_secret(code);
}

/* ---- /authorize rejections ---- */

static void assert_error_page(const char *params)
{
	struct mockproc_resp resp;
	authorize(F.mp, params, &resp);
	assert_int_equal(resp.status, 400);
	assert_null(resp.location);
	assert_non_null(resp.content_type);
	assert_true(strncmp(resp.content_type, "text/html", 9) == 0);
	mockproc_resp_free(&resp);
}

static void test_authorize_wrong_redirect_uri_shows_error_page(void **state)
{
	(void)state;
	assert_error_page("response_type=code&client_id=" CLIENT_ID
	                  "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fevil"
	                  "&scope=openid&state=s&nonce=n");
}

static void test_authorize_unknown_client_shows_error_page(void **state)
{
	char *params;
	(void)state;
	params = std_params("");
	/* replace the client_id with an unknown one */
	char *p = strstr(params, "client_id=" CLIENT_ID);
	assert_non_null(p);
	memcpy(p + strlen("client_id="), "xest", 4);
	assert_error_page(params);
	free(params);
}

static void assert_redirect_error(const char *params, const char *error, bool with_state)
{
	struct mockproc_resp resp;
	char *e, *s;
	authorize(F.mp, params, &resp);
	assert_int_equal(resp.status, 302);
	assert_non_null(resp.location);
	assert_true(strncmp(resp.location, REDIRECT "?", strlen(REDIRECT) + 1) == 0);
	e = mockproc_query_param(resp.location, "error");
	s = mockproc_query_param(resp.location, "state");
	assert_non_null(e);
	assert_string_equal(e, error);
	assert_null(mockproc_query_param(resp.location, "code"));
	if (with_state) {
		assert_non_null(s);
		assert_string_equal(s, STATE);
	}
	free(e);
	free(s);
	mockproc_resp_free(&resp);
}

static void test_authorize_without_nonce_redirects_invalid_request(void **state)
{
	char *enc = nl_url_encode(REDIRECT), params[512];
	(void)state;
	snprintf(params, sizeof(params),
	         "response_type=code&client_id=" CLIENT_ID "&redirect_uri=%s&scope=openid"
	         "&state=" STATE,
	         enc);
	assert_redirect_error(params, "invalid_request", true);
	free(enc);
}

static void test_authorize_without_openid_redirects_invalid_scope(void **state)
{
	char *enc = nl_url_encode(REDIRECT), params[512];
	(void)state;
	snprintf(params, sizeof(params),
	         "response_type=code&client_id=" CLIENT_ID "&redirect_uri=%s&scope=profile"
	         "&state=" STATE "&nonce=" NONCE,
	         enc);
	assert_redirect_error(params, "invalid_scope", true);
	free(enc);
}

static void test_authorize_refuses_plain_pkce(void **state)
{
	char *params = std_params("&code_challenge=" PKCE_CHALLENGE "&code_challenge_method=plain");
	(void)state;
	assert_redirect_error(params, "invalid_request", true);
	free(params);
}

static void test_authorize_refuses_other_response_type(void **state)
{
	char *params = std_params("");
	(void)state;
	memcpy(strstr(params, "response_type=code"), "response_type=toke", 18);
	assert_redirect_error(params, "unsupported_response_type", true);
	free(params);
}

static void test_authorize_refuses_malformed_vtr(void **state)
{
	char *params = std_params("&vtr=%5B%22P7.Cp%22%5D"); /* ["P7.Cp"] */
	(void)state;
	assert_redirect_error(params, "invalid_request", true);
	free(params);
}

static void test_authorize_chooses_first_satisfied_vector(void **state)
{
	struct nl_http_resp resp;
	/* ["P5.Cm","P9.Cp.Cd"]: the P9 user satisfies P5.Cm first */
	char *code = get_code("&vtr=%5B%22P5.Cm%22%2C%22P9.Cp.Cd%22%5D");
	json_t *o, *claims;
	(void)state;

	exchange(code, REDIRECT, NULL, &resp);
	assert_int_equal(resp.status, 200);
	o = body_json(&resp);
	claims = verify_jwt(F.mp, nl_json_str(o, "id_token"), NULL);
	assert_string_equal(nl_json_str(claims, "vot"), "P5.Cm");
	json_decref(claims);
	json_decref(o);
	nl_http_resp_free(&resp);
	nl_free_secret(code);
}

/* ---- /token rejections ---- */

static void test_token_rejects_reused_code_and_revokes_its_tokens(void **state)
{
	struct nl_http_resp r1, r2, ui;
	char *code = get_code("");
	json_t *o;
	(void)state;

	exchange(code, REDIRECT, NULL, &r1);
	assert_int_equal(r1.status, 200);
	o = body_json(&r1);
	exchange(code, REDIRECT, NULL, &r2);
	assert_oauth_error(&r2, 400, "invalid_grant");
	http_get(F.mp, "/userinfo", nl_json_str(o, "access_token"), &ui);
	assert_int_equal(ui.status, 401);
	json_decref(o);
	nl_http_resp_free(&r1);
	nl_http_resp_free(&r2);
	nl_http_resp_free(&ui);
	nl_free_secret(code);
}

static void token_with_assertion(const char *assertion, struct nl_http_resp *resp)
{
	char *code = get_code(""), *form = code_form(code, REDIRECT, NULL, assertion);
	post_form(F.mp, "/token", form, resp);
	nl_free_secret(form);
	nl_free_secret(code);
}

static void test_token_rejects_expired_assertion(void **state)
{
	struct nl_http_resp resp;
	char *a = assertion_with(F.mp, F.key, NULL, nl_now() - 600);
	(void)state;
	token_with_assertion(a, &resp);
	assert_oauth_error(&resp, 400, "invalid_client");
	nl_http_resp_free(&resp);
	nl_free_secret(a);
}

static void test_token_rejects_reused_assertion_jti(void **state)
{
	struct nl_http_resp r1, r2;
	char *a = assertion_for(F.mp);
	(void)state;
	token_with_assertion(a, &r1);
	assert_int_equal(r1.status, 200);
	token_with_assertion(a, &r2);
	assert_oauth_error(&r2, 400, "invalid_client");
	nl_http_resp_free(&r1);
	nl_http_resp_free(&r2);
	nl_free_secret(a);
}

static void test_token_rejects_assertion_signed_with_wrong_key(void **state)
{
	struct nl_http_resp resp;
	char *a = assertion_with(F.mp, F.other, NULL, nl_now());
	(void)state;
	token_with_assertion(a, &resp);
	assert_oauth_error(&resp, 400, "invalid_client");
	nl_http_resp_free(&resp);
	nl_free_secret(a);
}

static void test_token_rejects_assertion_for_the_issuer_audience(void **state)
{
	struct nl_http_resp resp;
	char *a = assertion_with(F.mp, F.key, mockproc_issuer(F.mp), nl_now());
	(void)state;
	token_with_assertion(a, &resp);
	assert_oauth_error(&resp, 400, "invalid_client");
	nl_http_resp_free(&resp);
	nl_free_secret(a);
}

static void test_token_rejects_missing_client_authentication(void **state)
{
	struct nl_http_resp resp;
	char *code = get_code(""), *form = code_form(code, REDIRECT, NULL, NULL);
	(void)state;
	post_form(F.mp, "/token", form, &resp);
	assert_oauth_error(&resp, 400, "invalid_client");
	nl_http_resp_free(&resp);
	nl_free_secret(form);
	nl_free_secret(code);
}

static void test_token_rejects_wrong_redirect_uri(void **state)
{
	struct nl_http_resp resp;
	char *code = get_code("");
	(void)state;
	exchange(code, "http://127.0.0.1:9/other", NULL, &resp);
	assert_oauth_error(&resp, 400, "invalid_grant");
	nl_http_resp_free(&resp);
	nl_free_secret(code);
}

static void test_token_accepts_right_pkce_verifier(void **state)
{
	struct nl_http_resp resp;
	char *code = get_code("&code_challenge=" PKCE_CHALLENGE "&code_challenge_method=S256");
	(void)state;
	exchange(code, REDIRECT, PKCE_VERIFIER, &resp);
	assert_int_equal(resp.status, 200);
	nl_http_resp_free(&resp);
	nl_free_secret(code);
}

static void test_token_rejects_wrong_pkce_verifier(void **state)
{
	struct nl_http_resp resp;
	char *code = get_code("&code_challenge=" PKCE_CHALLENGE "&code_challenge_method=S256");
	(void)state;
	exchange(code, REDIRECT, "AAAAtJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", &resp);
	assert_oauth_error(&resp, 400, "invalid_grant");
	nl_http_resp_free(&resp);
	nl_free_secret(code);
}

static void test_token_rejects_unknown_grant_type(void **state)
{
	struct nl_http_resp resp;
	char *a = assertion_for(F.mp), *form = NULL;
	(void)state;
	form_add(&form, "grant_type", "password");
	form_add(&form, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	form_add(&form, "client_assertion", a);
	post_form(F.mp, "/token", form, &resp);
	assert_oauth_error(&resp, 400, "unsupported_grant_type");
	nl_http_resp_free(&resp);
	nl_free_secret(form);
	nl_free_secret(a);
}

static void test_token_rejects_oversized_body(void **state)
{
	struct mockproc_resp resp;
	size_t n = 128 * 1024;
	char url[512], *body = malloc(n + 1);
	(void)state;
	memset(body, 'a', n);
	body[n] = '\0';
	url_of(F.mp, "/token", url, sizeof(url));
	assert_int_equal(mockproc_fetch("POST", url, "application/x-www-form-urlencoded", body, NULL, &resp),
	                 0);
	assert_int_equal(resp.status, 413);
	mockproc_resp_free(&resp);
	free(body);
}

/* ---- device flow ---- */

static json_t *device_start(const struct mockproc *mp)
{
	struct nl_http_resp resp;
	char *a = assertion_for(mp), *form = NULL;
	json_t *o;

	form_add(&form, "client_id", CLIENT_ID);
	form_add(&form, "scope", SCOPE);
	form_add(&form, "nonce", NONCE);
	form_add(&form, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	form_add(&form, "client_assertion", a);
	post_form(mp, "/device_authorization", form, &resp);
	assert_int_equal(resp.status, 200);
	o = body_json(&resp);
	assert_non_null(nl_json_str(o, "device_code"));
	assert_non_null(nl_json_str(o, "user_code"));
	assert_int_equal(json_integer_value(json_object_get(o, "interval")), 1);
	assert_int_equal(json_integer_value(json_object_get(o, "expires_in")), 600);
	nl_http_resp_free(&resp);
	nl_free_secret(form);
	nl_free_secret(a);
	return o;
}

static void device_poll(const struct mockproc *mp, const char *device_code, struct nl_http_resp *resp)
{
	char *a = assertion_for(mp), *form = NULL;
	form_add(&form, "grant_type", "urn:ietf:params:oauth:grant-type:device_code");
	form_add(&form, "device_code", device_code);
	form_add(&form, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	form_add(&form, "client_assertion", a);
	post_form(mp, "/token", form, resp);
	nl_free_secret(form);
	nl_free_secret(a);
}

static void device_decide(const struct mockproc *mp, const char *user_code, const char *field,
                          const char *value)
{
	char *form = NULL;
	struct nl_http_resp resp;
	form_add(&form, "user_code", user_code);
	form_add(&form, field, value);
	post_form(mp, "/device", form, &resp);
	assert_int_equal(resp.status, 200);
	nl_http_resp_free(&resp);
	free(form);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void test_device_flow_auto_approved(void **state)
{
	struct nl_http_resp resp;
	json_t *d = device_start(F.mp), *o, *claims;
	(void)state;

	device_poll(F.mp, nl_json_str(d, "device_code"), &resp);
	assert_int_equal(resp.status, 200);
	o = body_json(&resp);
	claims = verify_jwt(F.mp, nl_json_str(o, "id_token"), NULL);
	assert_string_equal(nl_json_str(claims, "nhs_number"), "9686368973");
	assert_string_equal(nl_json_str(claims, "nonce"), NONCE);
	json_decref(claims);
	json_decref(o);
	json_decref(d);
	nl_http_resp_free(&resp);
}

static void test_device_flow_pending_then_approved(void **state)
{
	struct nl_http_resp r1, r2, r3;
	json_t *d = device_start(F.manual), *o, *claims;
	char *uri;
	(void)state;

	uri = mockproc_query_param(nl_json_str(d, "verification_uri_complete"), "user_code");
	assert_non_null(uri);
	assert_string_equal(uri, nl_json_str(d, "user_code"));
	free(uri);
	device_poll(F.manual, nl_json_str(d, "device_code"), &r1);
	assert_oauth_error(&r1, 400, "authorization_pending");
	device_decide(F.manual, nl_json_str(d, "user_code"), "user", "p9");
	sleep_ms(1100);
	device_poll(F.manual, nl_json_str(d, "device_code"), &r2);
	assert_int_equal(r2.status, 200);
	o = body_json(&r2);
	claims = verify_jwt(F.manual, nl_json_str(o, "id_token"), NULL);
	assert_string_equal(nl_json_str(claims, "aud"), CLIENT_ID);
	assert_string_equal(nl_json_str(claims, "vot"), "P9.Cp.Cd");
	sleep_ms(1100);
	device_poll(F.manual, nl_json_str(d, "device_code"), &r3);
	assert_oauth_error(&r3, 400, "invalid_grant");
	json_decref(claims);
	json_decref(o);
	json_decref(d);
	nl_http_resp_free(&r1);
	nl_http_resp_free(&r2);
	nl_http_resp_free(&r3);
}

static void test_device_flow_polling_too_fast_gets_slow_down(void **state)
{
	struct nl_http_resp r1, r2;
	json_t *d = device_start(F.manual);
	(void)state;

	device_poll(F.manual, nl_json_str(d, "device_code"), &r1);
	assert_oauth_error(&r1, 400, "authorization_pending");
	device_poll(F.manual, nl_json_str(d, "device_code"), &r2);
	assert_oauth_error(&r2, 400, "slow_down");
	json_decref(d);
	nl_http_resp_free(&r1);
	nl_http_resp_free(&r2);
}

static void test_device_flow_declined_gives_access_denied(void **state)
{
	struct nl_http_resp resp;
	json_t *d = device_start(F.manual);
	(void)state;

	device_decide(F.manual, nl_json_str(d, "user_code"), "decline", "1");
	device_poll(F.manual, nl_json_str(d, "device_code"), &resp);
	assert_oauth_error(&resp, 400, "access_denied");
	json_decref(d);
	nl_http_resp_free(&resp);
}

/* ---- the user-picking page ---- */

/* GET /authorize on the manual mock; the hidden request id from the page. */
static char *page_request_id(void)
{
	struct mockproc_resp resp;
	char *params = std_params(""), *id;
	const char *p;

	authorize(F.manual, params, &resp);
	free(params);
	assert_int_equal(resp.status, 200);
	assert_null(resp.location);
	assert_non_null(strstr(resp.body, "value=\"p9\""));
	assert_non_null(strstr(resp.body, "value=\"p5\""));
	/* the default request asks for P9: the picker says who is below it */
	assert_non_null(strstr(resp.body, "p5 (P5, identity level too low)"));
	assert_non_null(strstr(resp.body, "p9 (P9)"));
	assert_non_null(strstr(resp.body, "value=\"p0\""));
	assert_non_null(strstr(resp.body, "Decline"));
	p = strstr(resp.body, "name=\"req\" value=\"");
	assert_non_null(p);
	p += strlen("name=\"req\" value=\"");
	id = strndup(p, strcspn(p, "\""));
	mockproc_resp_free(&resp);
	return id;
}

static void decide(const char *id, const char *field, const char *value, struct mockproc_resp *resp)
{
	char url[512], *form = NULL;
	form_add(&form, "req", id);
	form_add(&form, field, value);
	url_of(F.manual, "/authorize/decision", url, sizeof(url));
	assert_int_equal(mockproc_fetch("POST", url, "application/x-www-form-urlencoded", form, NULL, resp),
	                 0);
	free(form);
}

static void test_authorize_page_lists_users_and_decision_redirects_with_code(void **state)
{
	struct mockproc_resp resp;
	char *id = page_request_id(), *code, *st;
	(void)state;

	decide(id, "user", "p9", &resp);
	assert_int_equal(resp.status, 302);
	code = mockproc_query_param(resp.location, "code");
	st = mockproc_query_param(resp.location, "state");
	assert_non_null(code);
	assert_string_equal(st, STATE);
	free(code);
	free(st);
	mockproc_resp_free(&resp);
	/* the page's request is single use */
	decide(id, "user", "p9", &resp);
	assert_int_equal(resp.status, 400);
	mockproc_resp_free(&resp);
	free(id);
}

static void test_authorize_decline_redirects_access_denied(void **state)
{
	struct mockproc_resp resp;
	char *id = page_request_id(), *e;
	(void)state;

	decide(id, "decline", "1", &resp);
	assert_int_equal(resp.status, 302);
	e = mockproc_query_param(resp.location, "error");
	assert_non_null(e);
	assert_string_equal(e, "access_denied");
	free(e);
	mockproc_resp_free(&resp);
	free(id);
}

static void test_authorize_user_below_requested_level_is_denied(void **state)
{
	struct mockproc_resp resp;
	char *id = page_request_id(), *e;
	(void)state;

	/* NHS login would start its step-up journey; the mock names the outcome and lets the person stop */
	decide(id, "user", "p5", &resp);
	assert_int_equal(resp.status, 200);
	assert_null(resp.location);
	assert_non_null(strstr(resp.body, "Identity level too low"));
	assert_non_null(strstr(resp.body, "name=\"stepup_stop\""));
	mockproc_resp_free(&resp);
	decide(id, "stepup_stop", "1", &resp);
	assert_int_equal(resp.status, 302);
	e = mockproc_query_param(resp.location, "error");
	assert_non_null(e);
	assert_string_equal(e, "access_denied");
	free(e);
	e = mockproc_query_param(resp.location, "error_description");
	assert_non_null(e);
	assert_non_null(strstr(e, "identity level too low"));
	free(e);
	e = mockproc_query_param(resp.location, "state");
	assert_non_null(e);
	assert_string_equal(e, STATE);
	free(e);
	mockproc_resp_free(&resp);
	/* the request is used up */
	decide(id, "stepup_stop", "1", &resp);
	assert_int_equal(resp.status, 400);
	mockproc_resp_free(&resp);
	free(id);
}

/* ---- control API and faults ---- */

static void test_stats_count_requests_per_endpoint(void **state)
{
	struct nl_http_resp resp;
	long before = 0, after = 0, jwks_before = 0, jwks_after = 0;
	(void)state;

	assert_int_equal(mockproc_stat(F.mp, "discovery", &before), 0);
	assert_int_equal(mockproc_stat(F.mp, "jwks", &jwks_before), 0);
	http_get(F.mp, "/.well-known/openid-configuration", NULL, &resp);
	nl_http_resp_free(&resp);
	http_get(F.mp, "/.well-known/openid-configuration", NULL, &resp);
	nl_http_resp_free(&resp);
	assert_int_equal(mockproc_stat(F.mp, "discovery", &after), 0);
	assert_int_equal(mockproc_stat(F.mp, "jwks", &jwks_after), 0);
	assert_int_equal(after - before, 2);
	assert_int_equal(jwks_after, jwks_before);
}

static void test_fault_rotate_key_changes_kid(void **state)
{
	struct nl_http_resp resp;
	char *old = jwks_kid(F.mp), *new_kid, *code, *token_kid = NULL;
	json_t *o, *claims;
	(void)state;

	control(F.mp, "{\"fault\":\"rotate_key\"}");
	new_kid = jwks_kid(F.mp);
	assert_string_not_equal(old, new_kid);
	code = get_code("");
	exchange(code, REDIRECT, NULL, &resp);
	assert_int_equal(resp.status, 200);
	o = body_json(&resp);
	claims = verify_jwt(F.mp, nl_json_str(o, "id_token"), &token_kid);
	assert_string_equal(token_kid, new_kid);
	json_decref(claims);
	json_decref(o);
	nl_http_resp_free(&resp);
	free(token_kid);
	free(old);
	free(new_kid);
	nl_free_secret(code);
}

static void test_fault_status_500_fails_endpoints_until_reset(void **state)
{
	struct nl_http_resp resp;
	(void)state;

	control(F.mp, "{\"fault\":\"status_500\"}");
	http_get(F.mp, "/.well-known/openid-configuration", NULL, &resp);
	assert_int_equal(resp.status, 500);
	nl_http_resp_free(&resp);
	http_get(F.mp, "/.well-known/jwks.json", NULL, &resp);
	assert_int_equal(resp.status, 500);
	nl_http_resp_free(&resp);
	control(F.mp, "{\"fault\":\"none\"}");
	http_get(F.mp, "/.well-known/openid-configuration", NULL, &resp);
	assert_int_equal(resp.status, 200);
	nl_http_resp_free(&resp);
}

static void test_fault_delay_ms_delays_answers(void **state)
{
	struct nl_http_resp resp;
	int64_t t0;
	(void)state;

	control(F.mp, "{\"fault\":\"delay_ms\",\"ms\":400}");
	t0 = nl_mono_ms();
	http_get(F.mp, "/.well-known/openid-configuration", NULL, &resp);
	assert_int_equal(resp.status, 200);
	assert_true(nl_mono_ms() - t0 >= 390);
	nl_http_resp_free(&resp);
}

static void test_fault_token_no_id_token(void **state)
{
	struct nl_http_resp resp;
	char *code = get_code("");
	json_t *o;
	(void)state;

	control(F.mp, "{\"fault\":\"token_no_id_token\"}");
	exchange(code, REDIRECT, NULL, &resp);
	assert_int_equal(resp.status, 200);
	o = body_json(&resp);
	assert_null(json_object_get(o, "id_token"));
	assert_non_null(nl_json_str(o, "access_token"));
	json_decref(o);
	nl_http_resp_free(&resp);
	nl_free_secret(code);
}

static void test_fault_token_not_json(void **state)
{
	struct nl_http_resp resp;
	char *code = get_code("");
	json_t *o = NULL;
	(void)state;

	control(F.mp, "{\"fault\":\"token_not_json\"}");
	exchange(code, REDIRECT, NULL, &resp);
	assert_int_equal(resp.status, 200);
	assert_int_not_equal(nl_json_parse(resp.body, resp.body_len, NL_JSON_MAX_SIZE, 8, true, &o, NULL, 0),
	                     0);
	nl_http_resp_free(&resp);
	nl_free_secret(code);
}

static void test_control_rejects_unknown_fault(void **state)
{
	long status = 0;
	(void)state;
	assert_int_equal(mockproc_control(F.mp, "{\"fault\":\"no_such_fault\"}", &status), 0);
	assert_int_equal(status, 400);
	assert_int_equal(mockproc_control(F.mp, "not json", &status), 0);
	assert_int_equal(status, 400);
}

/* ---- start-up ---- */

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0644), 0);
}

static void test_invalid_state_file_exits_2(void **state)
{
	char dir[128], path[256];
	const char *args[] = {"--listen", "127.0.0.1:0", "--state-dir", dir, NULL};
	int status = -1;
	(void)state;

	snprintf(dir, sizeof(dir), "%s/bad-state", F.dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/users.json", dir);
	write_text(path, "[{\"username\":\"x\",\"identity_level\":\"P7\"}]");
	assert_int_equal(mockproc_run(args, 10000, &status), 0);
	assert_int_equal(status, 2);
}

static void test_state_dir_users_and_clients_are_used(void **state)
{
	char dir[128], path[256], json[2048];
	const char *args[] = {"--state-dir", dir, "--auto-approve", "alice", NULL};
	struct nl_http_resp resp;
	char *code = NULL, *a, *form;
	json_t *o, *claims;
	(void)state;

	snprintf(dir, sizeof(dir), "%s/state", F.dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/users.json", dir);
	write_text(path, "[{\"username\":\"alice\",\"nhs_number\":\"9434765919\",\"identity_level\":\"P9\","
	                 "\"email\":\"alice@example.nhs.uk\"}]");
	snprintf(path, sizeof(path), "%s/clients.json", dir);
	snprintf(json, sizeof(json),
	         "[{\"client_id\":\"" CLIENT_ID "\",\"redirect_uris\":[\"" REDIRECT
	         "\"],\"public_key_file\":\"%s\"}]",
	         F.pub);
	write_text(path, json);
	assert_int_equal(mockproc_start(args, &F.manual), 0); /* stopped by manual_teardown */
	code = get_code_from(F.manual, "");
	a = assertion_for(F.manual);
	form = code_form(code, REDIRECT, NULL, a);
	post_form(F.manual, "/token", form, &resp);
	assert_int_equal(resp.status, 200);
	o = body_json(&resp);
	assert_null(json_object_get(o, "refresh_token")); /* refresh_tokens defaults to false */
	nl_http_resp_free(&resp);
	claims = verify_jwt(F.manual, nl_json_str(o, "id_token"), NULL);
	assert_string_equal(nl_json_str(claims, "nhs_number"), "9434765919");
	assert_string_equal(nl_json_str(claims, "email"), "alice@example.nhs.uk");
	json_decref(claims);
	json_decref(o);
	nl_free_secret(form);
	nl_free_secret(a);
	nl_free_secret(code);
}

static void test_mock_exits_0_on_sigterm(void **state)
{
	struct mockproc *mp = NULL;
	(void)state;
	assert_int_equal(mockproc_start(NULL, &mp), 0);
	assert_int_equal(mockproc_stop(mp), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_discovery_advertises_nhs_login_metadata),
	    cmocka_unit_test(test_jwks_publishes_one_rs512_public_key),
	    cmocka_unit_test(test_code_flow_issues_verifiable_id_token),
	    cmocka_unit_test(test_userinfo_returns_claims_with_the_id_token_sub),
	    cmocka_unit_test(test_userinfo_rejects_bad_token_with_401),
	    cmocka_unit_test(test_refresh_rotates_token_and_omits_id_token),
	    cmocka_unit_test(test_authorize_wrong_redirect_uri_shows_error_page),
	    cmocka_unit_test(test_authorize_unknown_client_shows_error_page),
	    cmocka_unit_test(test_authorize_without_nonce_redirects_invalid_request),
	    cmocka_unit_test(test_authorize_without_openid_redirects_invalid_scope),
	    cmocka_unit_test(test_authorize_refuses_plain_pkce),
	    cmocka_unit_test(test_authorize_refuses_other_response_type),
	    cmocka_unit_test(test_authorize_refuses_malformed_vtr),
	    cmocka_unit_test(test_authorize_chooses_first_satisfied_vector),
	    cmocka_unit_test(test_token_rejects_reused_code_and_revokes_its_tokens),
	    cmocka_unit_test(test_token_rejects_expired_assertion),
	    cmocka_unit_test(test_token_rejects_reused_assertion_jti),
	    cmocka_unit_test(test_token_rejects_assertion_signed_with_wrong_key),
	    cmocka_unit_test(test_token_rejects_assertion_for_the_issuer_audience),
	    cmocka_unit_test(test_token_rejects_missing_client_authentication),
	    cmocka_unit_test(test_token_rejects_wrong_redirect_uri),
	    cmocka_unit_test(test_token_accepts_right_pkce_verifier),
	    cmocka_unit_test(test_token_rejects_wrong_pkce_verifier),
	    cmocka_unit_test(test_token_rejects_unknown_grant_type),
	    cmocka_unit_test(test_token_rejects_oversized_body),
	    cmocka_unit_test(test_device_flow_auto_approved),
	    cmocka_unit_test_setup_teardown(test_device_flow_pending_then_approved, manual_setup,
	                                    manual_teardown),
	    cmocka_unit_test_setup_teardown(test_device_flow_polling_too_fast_gets_slow_down, manual_setup,
	                                    manual_teardown),
	    cmocka_unit_test_setup_teardown(test_device_flow_declined_gives_access_denied, manual_setup,
	                                    manual_teardown),
	    cmocka_unit_test_setup_teardown(test_authorize_page_lists_users_and_decision_redirects_with_code,
	                                    manual_setup, manual_teardown),
	    cmocka_unit_test_setup_teardown(test_authorize_decline_redirects_access_denied, manual_setup,
	                                    manual_teardown),
	    cmocka_unit_test_setup_teardown(test_authorize_user_below_requested_level_is_denied, manual_setup,
	                                    manual_teardown),
	    cmocka_unit_test(test_stats_count_requests_per_endpoint),
	    cmocka_unit_test_teardown(test_fault_rotate_key_changes_kid, reset_faults),
	    cmocka_unit_test_teardown(test_fault_status_500_fails_endpoints_until_reset, reset_faults),
	    cmocka_unit_test_teardown(test_fault_delay_ms_delays_answers, reset_faults),
	    cmocka_unit_test_teardown(test_fault_token_no_id_token, reset_faults),
	    cmocka_unit_test_teardown(test_fault_token_not_json, reset_faults),
	    cmocka_unit_test(test_control_rejects_unknown_fault),
	    cmocka_unit_test(test_invalid_state_file_exits_2),
	    cmocka_unit_test_teardown(test_state_dir_users_and_clients_are_used, manual_teardown),
	    cmocka_unit_test(test_mock_exits_0_on_sigterm),
	};
	return cmocka_run_group_tests_name("mock_flow", tests, group_setup, group_teardown);
}
