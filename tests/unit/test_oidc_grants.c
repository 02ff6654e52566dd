/* The OpenID client's grants against a real nhslogin-mock child: the authorize URL and PKCE, the
 * code exchange and its failure outcomes, key rotation, userinfo, the device grant and the
 * client assertion's kid. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nl_b64.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "mockproc.h"
#include "oidc.h"
#include "oidc_fixture.h"

/* POST a form to a mock page; returns the HTTP status. */
static long mock_post(const char *issuer, const char *path, const char *form)
{
	struct mockproc_resp resp;
	char *u = NULL;
	long status;

	assert_true(asprintf(&u, "%s%s", issuer, path) > 0);
	memset(&resp, 0, sizeof(resp));
	assert_int_equal(mockproc_fetch("POST", u, "application/x-www-form-urlencoded", form, NULL, &resp),
	                 0);
	status = resp.status;
	mockproc_resp_free(&resp);
	free(u);
	return status;
}

/* ---- the authorize URL and PKCE ---- */

static void test_authorize_url_carries_every_parameter(void **state)
{
	struct nl_config cfg;
	char *url = NULL, *v;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	assert_int_equal(nl_oidc_authorize_url(o, "st-1", "no-1", "ch-1", &url), 0);
	assert_true(strncmp(url, fx.issuer, strlen(fx.issuer)) == 0);
	assert_non_null(strstr(url, "/authorize?"));
	const char *want[][2] = {
	    {"response_type", "code"},
	    {"scope", "openid profile email"},
	    {"client_id", CLIENT_ID},
	    {"redirect_uri", REDIRECT_URI},
	    {"state", "st-1"},
	    {"nonce", "no-1"},
	    {"vtr", cfg.env.vtr},
	    {"code_challenge", "ch-1"},
	    {"code_challenge_method", "S256"},
	    {"prompt", "login"},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		v = query_param(url, want[i][0]);
		if (v == NULL)
			fail_msg("authorize URL lacks %s", want[i][0]);
		assert_string_equal(v, want[i][1]);
		free(v);
	}
	/* The vtr JSON array is percent-encoded, never raw. */
	assert_null(strchr(url, '"'));
	assert_null(strchr(url, '['));
	free(url);
	assert_int_equal(nl_oidc_authorize_url(o, "st-2", "no-2", NULL, &url), 0);
	assert_null(strstr(url, "code_challenge"));
	free(url);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* prompt_login = no: NHS login may reuse its own session (nhslogin.conf(5) says what that costs). */
static void test_authorize_url_without_prompt_when_prompt_login_is_off(void **state)
{
	struct nl_config cfg;
	char *url = NULL;
	(void)state;

	make_cfg(&cfg, NULL);
	cfg.env.prompt_login = false;
	struct nl_oidc *o = new_oidc(&cfg);
	assert_int_equal(nl_oidc_authorize_url(o, "st-3", "no-3", NULL, &url), 0);
	assert_null(strstr(url, "prompt="));
	free(url);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_pkce_pair_is_s256_of_the_verifier(void **state)
{
	char *v1 = NULL, *c1 = NULL, *v2 = NULL, *c2 = NULL, *want = NULL;
	unsigned char md[32];
	unsigned int mdlen = 0;
	(void)state;

	assert_int_equal(nl_pkce_pair(&v1, &c1), 0);
	assert_int_equal(nl_pkce_pair(&v2, &c2), 0);
	assert_true(strlen(v1) >= 43 && strlen(v1) <= 128);
	assert_int_equal(strlen(c1), 43);
	assert_string_not_equal(v1, v2);
	assert_int_equal(EVP_Digest(v1, strlen(v1), md, &mdlen, EVP_sha256(), NULL), 1);
	assert_int_equal(nl_b64url_encode(md, mdlen, &want), 0);
	assert_string_equal(c1, want);
	free(want);
	nl_free_secret(v1);
	nl_free_secret(c1);
	nl_free_secret(v2);
	nl_free_secret(c2);
}

/* ---- the code exchange ---- */

static void test_exchange_code_signs_in_at_p9(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	struct nl_oidc_stats st;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-a", "nonce-a", NULL);
	long t0 = mock_stat("token");
	assert_int_equal(exchange(o, code, NULL, "nonce-a", &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_OK);
	assert_int_equal(mock_stat("token") - t0, 1);
	assert_non_null(id.sub);
	assert_string_equal(id.sub, "2b6c1b7e-4f5d-4c1a-9b8e-0d9f3e6a7c21");
	assert_non_null(id.vot);
	assert_true(strncmp(id.vot, "P9.", 3) == 0);
	assert_int_equal(id.level, 9);
	assert_true(id.id_exp > time(NULL));
	assert_true(id.auth_time > 0 && id.auth_time <= time(NULL) + 60);
	assert_non_null(id.claims);
	assert_string_equal(nl_json_str(id.claims, "nonce"), "nonce-a");
	nl_oidc_get_stats(o, &st);
	assert_int_equal(st.token_requests, 1);
	assert_int_equal(st.userinfo_requests, 0);
	nl_identity_clear(&id);
	assert_null(id.sub);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_with_wrong_nonce_is_invalid_token(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-b", "nonce-b", NULL);
	long j0 = mock_stat("jwks");
	assert_int_not_equal(exchange(o, code, NULL, "another-nonce", &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_INVALID_TOKEN);
	assert_string_equal(err, "ID token rejected: nonce");
	assert_null(id.sub);
	/* Only an unknown kid refetches the JWKS. */
	assert_int_equal(mock_stat("jwks"), j0);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* The result names the rule, not only the line: a caller never parses the error text. */
static void test_exchange_result_names_the_failed_rule_and_holds_no_identity(void **state)
{
	struct nl_config cfg;
	struct nl_grant_result res;
	char *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-r", "nonce-r", NULL);
	assert_int_equal(nl_oidc_exchange_code(o, code, NULL, "another-nonce", &res), NL_ERR_CLAIM);
	assert_int_equal(res.outcome, NL_OUT_INVALID_TOKEN);
	assert_int_equal(res.rule, NL_RULE_NONCE);
	assert_string_equal(res.error, "ID token rejected: nonce");
	assert_null(res.id.sub);
	assert_null(res.id.claims);
	nl_grant_result_clear(&res);
	nl_free_secret(code);

	code = get_code(o, "state-s", "nonce-s", NULL);
	assert_int_equal(nl_oidc_exchange_code(o, code, NULL, "nonce-s", &res), 0);
	assert_int_equal(res.outcome, NL_OUT_OK);
	assert_int_equal(res.rule, NL_RULE_NONE);
	assert_string_equal(res.error, "");
	assert_non_null(res.id.sub);
	assert_int_equal(res.id.level, 9);
	nl_grant_result_clear(&res);
	assert_null(res.id.sub);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_of_a_used_code_is_denied(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-c", "nonce-c", NULL);
	assert_int_equal(exchange(o, code, NULL, "nonce-c", &id, &oc, err, sizeof(err)), 0);
	nl_identity_clear(&id);
	assert_int_not_equal(exchange(o, code, NULL, "nonce-c", &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_DENIED);
	assert_non_null(strstr(err, "invalid_grant"));
	assert_null(strstr(err, code));
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_with_server_error_is_unavailable(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-d", "nonce-d", NULL);
	mock_fault("status_500");
	assert_int_equal(exchange(o, code, NULL, "nonce-d", &id, &oc, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_int_equal(oc, NL_OUT_UNAVAILABLE);
	assert_non_null(strstr(err, "500"));
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_without_id_token_is_unavailable(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-e", "nonce-e", NULL);
	mock_fault("token_no_id_token");
	assert_int_equal(exchange(o, code, NULL, "nonce-e", &id, &oc, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_int_equal(oc, NL_OUT_UNAVAILABLE);
	assert_non_null(strstr(err, "id_token"));
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_with_non_json_answer_is_unavailable(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-f", "nonce-f", NULL);
	mock_fault("token_not_json");
	assert_int_equal(exchange(o, code, NULL, "nonce-f", &id, &oc, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_int_equal(oc, NL_OUT_UNAVAILABLE);
	assert_non_null(strstr(err, "JSON"));
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_after_key_rotation_refetches_jwks_once(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	struct nl_oidc_stats st;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	mock_fault("rotate_key");
	code = get_code(o, "state-g", "nonce-g", NULL);
	long j0 = mock_stat("jwks");
	if (exchange(o, code, NULL, "nonce-g", &id, &oc, err, sizeof(err)) != 0)
		fail_msg("exchange after rotation: %s", err);
	assert_int_equal(oc, NL_OUT_OK);
	assert_int_equal(mock_stat("jwks") - j0, 1);
	nl_oidc_get_stats(o, &st);
	assert_int_equal(st.jwks_fetches, 2);
	nl_identity_clear(&id);
	nl_free_secret(code);

	/* A second rotation within the minute: the refetch is rate-limited, so the kid stays unknown. */
	mock_fault("rotate_key");
	code = get_code(o, "state-h", "nonce-h", NULL);
	j0 = mock_stat("jwks");
	assert_int_not_equal(exchange(o, code, NULL, "nonce-h", &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_INVALID_TOKEN);
	assert_string_equal(err, "ID token rejected: kid");
	assert_int_equal(mock_stat("jwks"), j0);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_below_min_level_is_level(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	/* Asking for P5 only: the P9 user is given a P5 vector, below the P9 minimum. */
	make_cfg(&cfg, NULL);
	set(&cfg, "env", "vtr", "[\"P5.Cp.Cd\"]");
	set(&cfg, "identity", "min_level", "P9");
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-i", "nonce-i", NULL);
	assert_int_not_equal(exchange(o, code, NULL, "nonce-i", &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_LEVEL);
	assert_null(id.sub);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_with_userinfo_merges_claims(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	struct nl_oidc_stats st;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	set(&cfg, "identity", "userinfo", "true");
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-j", "nonce-j", NULL);
	long u0 = mock_stat("userinfo");
	if (exchange(o, code, NULL, "nonce-j", &id, &oc, err, sizeof(err)) != 0)
		fail_msg("exchange with userinfo: %s", err);
	assert_int_equal(oc, NL_OUT_OK);
	assert_int_equal(mock_stat("userinfo") - u0, 1);
	nl_oidc_get_stats(o, &st);
	assert_int_equal(st.userinfo_requests, 1);
	assert_string_equal(nl_json_str(id.claims, "email"), "p9@example.nhs.uk");
	/* ID token claims are kept, not overridden. */
	assert_string_equal(nl_json_str(id.claims, "nonce"), "nonce-j");
	assert_string_equal(nl_json_str(id.claims, "iss"), fx.issuer);
	nl_identity_clear(&id);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_with_pkce_s256(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	char err[256] = "", *code, *verifier = NULL, *challenge = NULL, *other = NULL, *other_ch = NULL;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	assert_true(nl_oidc_pkce_s256(o));
	assert_int_equal(nl_pkce_pair(&verifier, &challenge), 0);
	assert_int_equal(nl_pkce_pair(&other, &other_ch), 0);

	code = get_code(o, "state-k", "nonce-k", challenge);
	if (exchange(o, code, verifier, "nonce-k", &id, &oc, err, sizeof(err)) != 0)
		fail_msg("exchange with PKCE: %s", err);
	nl_identity_clear(&id);
	nl_free_secret(code);

	/* The provider checks the verifier: a different one is refused. */
	code = get_code(o, "state-l", "nonce-l", challenge);
	assert_int_not_equal(exchange(o, code, other, "nonce-l", &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_DENIED);
	nl_free_secret(code);
	nl_free_secret(verifier);
	nl_free_secret(challenge);
	nl_free_secret(other);
	nl_free_secret(other_ch);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* ---- the device grant ---- */

static void device_start(struct nl_oidc *o, struct nl_device_auth *da)
{
	char err[256] = "";

	memset(da, 0, sizeof(*da));
	if (nl_oidc_device_start(o, da, err, sizeof(err)) != 0)
		fail_msg("device start: %s", err);
	assert_non_null(da->device_code);
	assert_non_null(da->user_code);
	assert_non_null(da->verification_uri);
	assert_non_null(da->verification_uri_complete);
	assert_true(da->expires_in > 0);
	assert_int_equal(da->interval, 1);
}

/* Poll at the interval until something other than pending (bounded); returns the last r. */
static int device_poll_until_done(struct nl_oidc *o, struct nl_device_auth *da, struct nl_identity *id,
                                  enum nl_outcome *oc, char *err, size_t errlen)
{
	int r = NL_ERR_INTERNAL;

	for (int i = 0; i < 10; i++) {
		memset(id, 0, sizeof(*id));
		r = device_poll(o, da->device_code, id, oc, err, errlen);
		if (*oc != NL_OUT_PENDING && *oc != NL_OUT_SLOW_DOWN)
			break;
		if (*oc == NL_OUT_SLOW_DOWN)
			da->interval += 5;
		sleep((unsigned)da->interval);
	}
	return r;
}

static void test_device_grant_auto_approved_signs_in(void **state)
{
	struct nl_config cfg;
	struct nl_device_auth da;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	char err[256] = "";
	(void)state;

	struct nl_oidc *o = device_client(&cfg, fx.issuer);
	device_start(o, &da);
	if (device_poll_until_done(o, &da, &id, &oc, err, sizeof(err)) != 0)
		fail_msg("device poll: %s (%s)", nl_outcome_word(oc), err);
	assert_int_equal(oc, NL_OUT_OK);
	assert_string_equal(id.sub, "2b6c1b7e-4f5d-4c1a-9b8e-0d9f3e6a7c21");
	assert_int_equal(id.level, 9);
	nl_identity_clear(&id);

	/* The device code is single use. */
	memset(&id, 0, sizeof(id));
	assert_int_not_equal(device_poll(o, da.device_code, &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_DENIED);
	nl_device_auth_clear(&da);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_device_grant_pending_slow_down_then_signed_in(void **state)
{
	struct nl_config cfg;
	struct nl_device_auth da;
	struct nl_identity id;
	struct mockproc *manual = NULL;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", form[128];
	(void)state;

	/* A second mock that waits for the person to approve on its /device page. */
	assert_int_equal(mock_start(false, &manual), 0);
	struct nl_oidc *o = device_client(&cfg, mockproc_issuer(manual));
	device_start(o, &da);

	memset(&id, 0, sizeof(id));
	assert_int_equal(device_poll(o, da.device_code, &id, &oc, err, sizeof(err)), NL_ERR_LIMIT);
	assert_int_equal(oc, NL_OUT_PENDING);
	assert_null(id.sub);
	/* At once again: faster than the interval. */
	assert_int_equal(device_poll(o, da.device_code, &id, &oc, err, sizeof(err)), NL_ERR_LIMIT);
	assert_int_equal(oc, NL_OUT_SLOW_DOWN);

	snprintf(form, sizeof(form), "user_code=%s&user=p9", da.user_code);
	assert_int_equal(mock_post(mockproc_issuer(manual), "/device", form), 200);
	sleep(1);
	if (device_poll_until_done(o, &da, &id, &oc, err, sizeof(err)) != 0)
		fail_msg("device poll: %s (%s)", nl_outcome_word(oc), err);
	assert_int_equal(oc, NL_OUT_OK);
	assert_string_equal(id.sub, "2b6c1b7e-4f5d-4c1a-9b8e-0d9f3e6a7c21");
	nl_identity_clear(&id);
	nl_device_auth_clear(&da);

	/* Declined on the page: denied. */
	device_start(o, &da);
	snprintf(form, sizeof(form), "user_code=%s&decline=1", da.user_code);
	assert_int_equal(mock_post(mockproc_issuer(manual), "/device", form), 200);
	assert_int_not_equal(device_poll_until_done(o, &da, &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_DENIED);
	assert_null(id.sub);
	nl_device_auth_clear(&da);
	nl_oidc_free(o);
	nl_config_free(&cfg);
	mockproc_stop(manual);
}

/* The kid of the client assertions: the thumbprint by default, client_key_id when set, none for
 * "none"; and the hint an invalid_client gets in the log. */
static void test_client_kid_follows_client_key_id(void **state)
{
	struct nl_env env = {0};
	cjose_jwk_t *key = NULL;
	char err[256], *kid = NULL, *thumb;

	(void)state;
	assert_int_equal(nl_jwk_load_private_pem(fx.key_path, &key, err, sizeof(err)), 0);
	assert_non_null(thumb = nl_jwk_thumbprint(key));
	assert_int_equal(nl_oidc_client_kid(&env, key, &kid), 0);
	assert_string_equal(kid, thumb);
	free(kid);
	env.client_key_id = "registered-kid-1";
	assert_int_equal(nl_oidc_client_kid(&env, key, &kid), 0);
	assert_string_equal(kid, "registered-kid-1");
	free(kid);
	env.client_key_id = "none";
	assert_int_equal(nl_oidc_client_kid(&env, key, &kid), 0);
	assert_null(kid);
	assert_non_null(strstr(nl_oidc_error_hint("invalid_client"), "nhsloginctl key"));
	assert_string_equal(nl_oidc_error_hint("invalid_grant"), "");
	assert_string_equal(nl_oidc_error_hint(NULL), "");
	free(thumb);
	cjose_jwk_release(key);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clear_faults, clear_faults)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_authorize_url_carries_every_parameter),
	    T(test_authorize_url_without_prompt_when_prompt_login_is_off),
	    T(test_pkce_pair_is_s256_of_the_verifier),
	    T(test_client_kid_follows_client_key_id),
	    T(test_exchange_code_signs_in_at_p9),
	    T(test_exchange_with_wrong_nonce_is_invalid_token),
	    T(test_exchange_result_names_the_failed_rule_and_holds_no_identity),
	    T(test_exchange_of_a_used_code_is_denied),
	    T(test_exchange_with_server_error_is_unavailable),
	    T(test_exchange_without_id_token_is_unavailable),
	    T(test_exchange_with_non_json_answer_is_unavailable),
	    T(test_exchange_after_key_rotation_refetches_jwks_once),
	    T(test_exchange_below_min_level_is_level),
	    T(test_exchange_with_userinfo_merges_claims),
	    T(test_exchange_with_pkce_s256),
	    T(test_device_grant_auto_approved_signs_in),
	    T(test_device_grant_pending_slow_down_then_signed_in),
	};
	return cmocka_run_group_tests_name("oidc_grants", tests, group_setup, group_teardown);
}
