/* nhslogin-mock over real HTTP: discovery, JWKS, a full authorization-code exchange with a
 * private_key_jwt assertion and ID token verification, and every rejection of /authorize and /token. */
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
#include "mock_fixture.h"

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
	};
	return cmocka_run_group_tests_name("mock_code_flow", tests, group_setup, group_teardown);
}
