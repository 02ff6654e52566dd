/* The nhslogin-mock tests' fixture, shared by the tests/mock/test_mock_*.c programs: two client keys
 * and an auto-approving mock started once a program, a manual one for the tests that need it, and
 * the HTTP and JWT helpers of a client. */
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

struct mock_fixture F;

static const char *const allowed_algs[] = {"RS512"};

/* ---- helpers ---- */

void url_of(const struct mockproc *mp, const char *path, char *out, size_t len)
{
	snprintf(out, len, "%s%s", mockproc_issuer(mp), path);
}

void authorize(const struct mockproc *mp, const char *params, struct mockproc_resp *resp)
{
	char url[2048];
	snprintf(url, sizeof(url), "%s/authorize?%s", mockproc_issuer(mp), params);
	assert_int_equal(mockproc_fetch("GET", url, NULL, NULL, NULL, resp), 0);
}

char *std_params(const char *extra)
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
char *get_code_from(const struct mockproc *mp, const char *extra)
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

char *get_code(const char *extra)
{
	return get_code_from(F.mp, extra);
}

char *assertion_with(const struct mockproc *mp, const cjose_jwk_t *key, const char *aud, time_t now)
{
	char token_ep[512], *out = NULL;
	url_of(mp, "/token", token_ep, sizeof(token_ep));
	assert_int_equal(
	    nl_client_assertion(key, "RS512", NULL, CLIENT_ID, aud != NULL ? aud : token_ep, now, 60, &out),
	    0);
	return out;
}

char *assertion_for(const struct mockproc *mp)
{
	return assertion_with(mp, F.key, NULL, nl_now());
}

void form_add(char **form, const char *name, const char *value)
{
	if (value != NULL)
		assert_int_equal(nl_form_add(form, name, value), 0);
}

char *code_form(const char *code, const char *redirect, const char *verifier, const char *assertion)
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

void post_form(const struct mockproc *mp, const char *path, const char *form, struct nl_http_resp *resp)
{
	struct nl_http_opts opts = {0};
	char url[512], err[256];
	url_of(mp, path, url, sizeof(url));
	assert_int_equal(nl_http_post_form(url, form, &opts, resp, err, sizeof(err)), 0);
}

void http_get(const struct mockproc *mp, const char *path, const char *bearer, struct nl_http_resp *resp)
{
	struct nl_http_opts opts = {.bearer = bearer};
	char url[512], err[256];
	url_of(mp, path, url, sizeof(url));
	assert_int_equal(nl_http_get(url, &opts, resp, err, sizeof(err)), 0);
}

/* POST /token for code with a fresh good assertion. */
void exchange(const char *code, const char *redirect, const char *verifier, struct nl_http_resp *resp)
{
	char *a = assertion_for(F.mp), *form = code_form(code, redirect, verifier, a);
	post_form(F.mp, "/token", form, resp);
	nl_free_secret(form);
	nl_free_secret(a);
}

json_t *body_json(const struct nl_http_resp *resp)
{
	json_t *o = NULL;
	assert_int_equal(nl_json_parse(resp->body, resp->body_len, NL_JSON_MAX_SIZE, 8, true, &o, NULL, 0),
	                 0);
	return o;
}

void assert_oauth_error(const struct nl_http_resp *resp, long status, const char *error)
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
json_t *verify_jwt(const struct mockproc *mp, const char *jwt, char **kid)
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

char *jwks_kid(const struct mockproc *mp)
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

void control(const struct mockproc *mp, const char *json)
{
	long status = 0;
	assert_int_equal(mockproc_control(mp, json, &status), 0);
	assert_int_equal(status, 200);
}

/* ---- fixtures ---- */

int group_setup(void **state)
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

int group_teardown(void **state)
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

int manual_setup(void **state)
{
	const char *args[] = {"--device-endpoint", "--device-interval", "1", "--client", F.client_arg, NULL};
	(void)state;
	return mockproc_start(args, &F.manual) == 0 ? 0 : -1;
}

int manual_teardown(void **state)
{
	(void)state;
	mockproc_stop(F.manual);
	F.manual = NULL;
	return 0;
}

int reset_faults(void **state)
{
	long status;
	(void)state;
	return mockproc_control(F.mp, "{\"fault\":\"none\"}", &status) == 0 && status == 200 ? 0 : -1;
}
