/* The bridge's callback over real HTTP with a real nhslogin-mock: its outcomes, its parameters clause
 * by clause, and nl_signin_complete on its own. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge.h"
#include "signin.h"
#include "mockproc.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "skip.h"
#include "testsrv.h"
#include "bridge_fixture.h"

/* ---- the callback ---- */

static void test_bridge_full_sign_in_approves_flow(void **state)
{
	struct nl_flow_started s;
	char *authz, *cb;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	cb = authorize_at_mock(authz);
	assert_true(strncmp(cb, F.cfg.env.redirect_uri, strlen(F.cfg.env.redirect_uri)) == 0);
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_security_headers(&r);
	assert_non_null(strstr(r.body, "Signed in - return to your workstation"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	assert_int_equal(nl_tokcache_count(F.tc), 1);
	free(authz);
	free(cb);
	nl_flow_started_clear(&s);
}

static void test_bridge_replayed_callback_is_400(void **state)
{
	struct nl_flow_started s;
	char *authz, *cb;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	cb = authorize_at_mock(authz);
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 400);
	assert_security_headers(&r);
	assert_non_null(strstr(r.body, "already been used"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	free(authz);
	free(cb);
	nl_flow_started_clear(&s);
}

static void test_bridge_callback_access_denied_denies_flow(void **state)
{
	struct nl_flow_started s;
	char *authz, *st, *path = NULL;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	st = mockproc_query_param(authz, "state");
	assert_non_null(st);
	assert_int_not_equal(asprintf(&path, "/callback?error=access_denied&state=%s", st), -1);
	get_path(path, &r);
	assert_int_equal(r.status, 403);
	assert_security_headers(&r);
	assert_non_null(strstr(r.body, "did not sign you in"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_DENIED);
	assert_int_equal(nl_tokcache_count(F.tc), 0);
	free(path);
	free(st);
	free(authz);
	nl_flow_started_clear(&s);
}

static void test_bridge_callback_unknown_state_is_400_without_exchange(void **state)
{
	struct resp r;
	long before = -1, after = -1;

	(void)state;
	assert_int_equal(mockproc_stat(F.mp, "token", &before), 0);
	get_path("/callback?state=not-a-state&code=abc", &r);
	assert_int_equal(r.status, 400);
	assert_security_headers(&r);
	resp_free(&r);
	get_path("/callback?code=abc", &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	assert_int_equal(mockproc_stat(F.mp, "token", &after), 0);
	assert_int_equal(after, before);
}

static void test_bridge_mismatched_account_denied(void **state)
{
	struct nl_flow_started s;
	char *authz, *cb;
	struct resp r;

	(void)state;
	start_flow("bob", &s); /* the mock signs in p9, who maps to alice */
	authz = enter_code(&s);
	cb = authorize_at_mock(authz);
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 403);
	assert_non_null(strstr(r.body, "not linked to the account"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_MISMATCH);
	assert_int_equal(nl_tokcache_count(F.tc), 0);
	free(authz);
	free(cb);
	nl_flow_started_clear(&s);
}

/* ---- the callback's parameters, clause by clause ---- */

/* A flow for alice, walked to the mock and back: the callback URL (new string), before it is
 * fetched. */
static char *callback_url_for(struct nl_flow_started *s)
{
	char *authz, *cb;

	start_flow("alice", s);
	authz = enter_code(s);
	cb = authorize_at_mock(authz);
	free(authz);
	return cb;
}

static long token_count(void)
{
	long n = -1;
	assert_int_equal(mockproc_stat(F.mp, "token", &n), 0);
	return n;
}

static void mock_fault(const char *name)
{
	char body[128];
	long status = 0;

	snprintf(body, sizeof(body), "{\"fault\":\"%s\"}", name);
	assert_int_equal(mockproc_control(F.mp, body, &status), 0);
	assert_int_equal(status, 200);
}

/* Fetch cb with extra appended to its query: the flow ends invalid_token, the phone is told the
 * answer could not be checked, and the code never reaches the token endpoint. */
static void assert_callback_refused(const char *extra)
{
	struct nl_flow_started s;
	char *cb = callback_url_for(&s), *url = NULL;
	long tokens = token_count();
	struct resp r;

	assert_int_not_equal(asprintf(&url, "%s%s", cb, extra), -1);
	fetch(url, NULL, &r);
	assert_int_equal(r.status, 502);
	assert_non_null(strstr(r.body, "could not be checked"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_INVALID_TOKEN);
	assert_int_equal(token_count(), tokens);
	assert_int_equal(nl_tokcache_count(F.tc), 0);
	free(url);
	free(cb);
	nl_flow_started_clear(&s);
}

/* RFC 6749 3.1: "parameters MUST NOT be included more than once". */
static void test_bridge_callback_with_code_twice_is_refused_without_exchange(void **state)
{
	(void)state;
	assert_callback_refused("&code=a-second-code");
}

static void test_bridge_callback_with_error_twice_is_refused(void **state)
{
	(void)state;
	assert_callback_refused("&error=access_denied&error=access_denied");
}

/* A repeated state names no flow for sure: 400, and the flow is left as it was. */
static void test_bridge_callback_with_state_twice_is_400_and_leaves_the_flow(void **state)
{
	struct nl_flow_started s;
	char *cb = callback_url_for(&s), *st = mockproc_query_param(cb, "state"), *url = NULL;
	long tokens = token_count();
	struct resp r;

	(void)state;
	assert_non_null(st);
	assert_int_not_equal(asprintf(&url, "%s&state=%s", cb, st), -1);
	fetch(url, NULL, &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	assert_int_equal(token_count(), tokens);
	/* the honest callback still finishes it */
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	free(url);
	free(st);
	free(cb);
	nl_flow_started_clear(&s);
}

/* RFC 9207 2.4: iss, when present, must equal the issuer exactly (simple string comparison). */
static void test_bridge_callback_with_wrong_iss_is_refused(void **state)
{
	(void)state;
	assert_callback_refused("&iss=https%3A%2F%2Fimpostor.example");
}

static void test_bridge_callback_with_iss_plus_a_slash_is_refused(void **state)
{
	char *extra = NULL, *enc = curl_easy_escape(NULL, F.cfg.env.issuer, 0);

	(void)state;
	assert_int_not_equal(asprintf(&extra, "&iss=%s%%2F", enc), -1);
	assert_callback_refused(extra);
	free(extra);
	curl_free(enc);
}

/* "%00" must not end the value early: issuer%00junk is not the issuer. */
static void test_bridge_callback_with_a_nul_byte_in_iss_is_refused(void **state)
{
	char *extra = NULL, *enc = curl_easy_escape(NULL, F.cfg.env.issuer, 0);

	(void)state;
	assert_int_not_equal(asprintf(&extra, "&iss=%s%%00.impostor.example", enc), -1);
	assert_callback_refused(extra);
	free(extra);
	curl_free(enc);
}

static void test_bridge_callback_with_the_right_iss_signs_in(void **state)
{
	struct nl_flow_started s;
	char *cb = callback_url_for(&s), *url = NULL, *enc = curl_easy_escape(NULL, F.cfg.env.issuer, 0);
	struct resp r;

	(void)state;
	assert_int_not_equal(asprintf(&url, "%s&iss=%s", cb, enc), -1);
	fetch(url, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	curl_free(enc);
	free(url);
	free(cb);
	nl_flow_started_clear(&s);
}

/* RFC 9207 2.4: with authorization_response_iss_parameter_supported in discovery, a response
 * without iss is refused. */
static void test_bridge_callback_without_iss_that_discovery_promises_is_refused(void **state)
{
	(void)state;
	mock_fault("discovery_iss_param");
	nl_oidc_flush(F.oidc);
	assert_callback_refused("");
	mock_fault("none");
	nl_oidc_flush(F.oidc);
}

/* RFC 6749 4.1.2: code is REQUIRED in a success response. */
static void test_bridge_callback_without_code_ends_the_flow_without_exchange(void **state)
{
	struct nl_flow_started s;
	char *authz, *st, *path = NULL;
	long tokens;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	st = mockproc_query_param(authz, "state");
	tokens = token_count();
	assert_int_not_equal(asprintf(&path, "/callback?state=%s", st), -1);
	get_path(path, &r);
	assert_int_equal(r.status, 502);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_UNAVAILABLE);
	assert_int_equal(token_count(), tokens);
	free(path);
	free(st);
	free(authz);
	nl_flow_started_clear(&s);
}

/* RFC 6749 4.1.2.1: an error response is a denial, whatever the error word holds. */
static void test_bridge_callback_error_with_an_unsafe_word_is_a_denial(void **state)
{
	struct nl_flow_started s;
	char *authz, *st, *path = NULL;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	st = mockproc_query_param(authz, "state");
	assert_int_not_equal(
	    asprintf(&path, "/callback?error=access_denied%%1B%%5B2J%%3Cscript%%3E&state=%s", st), -1);
	get_path(path, &r);
	assert_int_equal(r.status, 403);
	assert_null(strstr(r.body, "<script>"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_DENIED);
	free(path);
	free(st);
	free(authz);
	nl_flow_started_clear(&s);
}

/* ---- nl_signin_complete on its own ---- */

static struct nl_identity identity_with_nhs_number(const char *nhs)
{
	struct nl_identity id = {0};

	id.claims = json_pack("{s:s, s:s}", "sub", "sub-x", "nhs_number", nhs);
	id.sub = strdup("sub-x");
	id.vot = strdup("P9.Cp.Cd");
	id.level = 9;
	id.auth_time = nl_now();
	id.id_exp = nl_now() + 3600;
	return id;
}

/* A sign-in of user's flow by the identity with this NHS number ends denied with want; nothing is
 * cached. */
static void assert_signin_denied(const char *user, const char *nhs, enum nl_reason want)
{
	struct nl_flow_started s;
	struct nl_identity id = identity_with_nhs_number(nhs);

	start_flow(user, &s);
	assert_int_equal(nl_signin_complete(&F.cfg, F.fl, F.tc, s.id, user, NL_OUT_OK, &id, NULL), want);
	assert_flow(&s, NL_FLOW_DENIED, want);
	assert_int_equal(nl_tokcache_count(F.tc), 0);
	nl_identity_clear(&id);
	nl_flow_started_clear(&s);
}

static void test_signin_unmapped_identity_is_no_mapping(void **state)
{
	(void)state;
	assert_signin_denied("alice", "9686368906", NL_REASON_NO_MAPPING); /* valid, but in no map line */
}

static void test_signin_mapped_identity_approves_and_caches(void **state)
{
	struct nl_flow_started s;
	struct nl_identity id = identity_with_nhs_number(P9_NHS_NUMBER);

	(void)state;
	start_flow("alice", &s);
	assert_int_equal(nl_signin_complete(&F.cfg, F.fl, F.tc, s.id, "alice", NL_OUT_OK, &id, NULL),
	                 NL_REASON_NONE);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	assert_int_equal(nl_tokcache_count(F.tc), 1);
	nl_identity_clear(&id);
	nl_flow_started_clear(&s);
}

/* A sign-in whose flow wants the terminal's number is never cached for reuse: the number may never
 * come (the phished person is not at that terminal), and a reuse would skip it. */
static void test_signin_with_number_matching_is_never_cached(void **state)
{
	struct nl_identity id = identity_with_nhs_number(P9_NHS_NUMBER);
	const struct nl_flow_origin o = {.user = "alice",
	                                 .service = "sshd",
	                                 .rhost = "203.0.113.9",
	                                 .tty = "ssh",
	                                 .owner = 1,
	                                 .number_match = true};
	const struct nl_reuse_place here = {.service = "sshd",
	                                    .rhost = "203.0.113.9",
	                                    .tty = "ssh",
	                                    .by_root = true,
	                                    .audit_session = NL_AUDIT_SESSION_NONE,
	                                    .conn = 1};
	struct nl_flow_started s;
	unsigned number = 0;
	char typed[8];

	(void)state;
	(void)nl_tokcache_reuse(F.tc, &F.cfg, "alice", &here, nl_now(), NULL); /* as the server does */
	memset(&s, 0, sizeof(s));
	assert_int_equal(nl_flows_start_from(F.fl, &o, &s), 0);
	assert_int_equal(nl_signin_complete(&F.cfg, F.fl, F.tc, s.id, "alice", NL_OUT_OK, &id, NULL),
	                 NL_REASON_NONE);
	assert_int_equal(nl_tokcache_count(F.tc), 0);
	/* not when the right number comes either: the cache never saw this sign-in */
	assert_int_equal(nl_flows_number_of(F.fl, s.id, &number), 0);
	snprintf(typed, sizeof(typed), "%u", number);
	assert_int_equal(nl_flows_enter_number(F.fl, s.device_code, typed), 0);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	assert_int_equal(nl_tokcache_count(F.tc), 0);
	nl_identity_clear(&id);
	nl_flow_started_clear(&s);
}

static void test_signin_outcomes_become_reasons(void **state)
{
	static const struct {
		enum nl_outcome out;
		enum nl_reason want;
	} cases[] = {
	    {NL_OUT_DENIED, NL_REASON_DENIED},
	    {NL_OUT_EXPIRED, NL_REASON_EXPIRED},
	    {NL_OUT_INVALID_TOKEN, NL_REASON_INVALID_TOKEN},
	    {NL_OUT_LEVEL, NL_REASON_LEVEL},
	    {NL_OUT_UNAVAILABLE, NL_REASON_UNAVAILABLE},
	    {NL_OUT_PENDING, NL_REASON_UNAVAILABLE},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nl_flow_started s;
		start_flow("alice", &s);
		assert_int_equal(
		    nl_signin_complete(&F.cfg, F.fl, F.tc, s.id, "alice", cases[i].out, NULL, "detail"),
		    cases[i].want);
		assert_flow(&s, NL_FLOW_DENIED, cases[i].want);
		nl_flow_started_clear(&s);
	}
	assert_int_equal(nl_tokcache_count(F.tc), 0);
}

/* The decision is signin.c's: an identity that maps to another account than the flow's user denies
 * the flow as a mismatch, and nothing is cached. */
static void test_signin_identity_of_another_account_is_mismatch(void **state)
{
	(void)state;
	assert_signin_denied("bob", P9_NHS_NUMBER, NL_REASON_MISMATCH); /* alice's */
}

static void test_signin_ok_without_identity_is_unavailable(void **state)
{
	struct nl_flow_started s;

	(void)state;
	start_flow("alice", &s);
	assert_int_equal(nl_signin_complete(&F.cfg, F.fl, F.tc, s.id, "alice", NL_OUT_OK, NULL, NULL),
	                 NL_REASON_UNAVAILABLE);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_UNAVAILABLE);
	nl_flow_started_clear(&s);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_bridge_full_sign_in_approves_flow),
	    T(test_bridge_replayed_callback_is_400),
	    T(test_bridge_callback_access_denied_denies_flow),
	    T(test_bridge_callback_unknown_state_is_400_without_exchange),
	    T(test_bridge_mismatched_account_denied),
	    T(test_bridge_callback_with_code_twice_is_refused_without_exchange),
	    T(test_bridge_callback_with_error_twice_is_refused),
	    T(test_bridge_callback_with_state_twice_is_400_and_leaves_the_flow),
	    T(test_bridge_callback_with_wrong_iss_is_refused),
	    T(test_bridge_callback_with_iss_plus_a_slash_is_refused),
	    T(test_bridge_callback_with_a_nul_byte_in_iss_is_refused),
	    T(test_bridge_callback_with_the_right_iss_signs_in),
	    T(test_bridge_callback_without_iss_that_discovery_promises_is_refused),
	    T(test_bridge_callback_without_code_ends_the_flow_without_exchange),
	    T(test_bridge_callback_error_with_an_unsafe_word_is_a_denial),
	    T(test_signin_unmapped_identity_is_no_mapping),
	    T(test_signin_mapped_identity_approves_and_caches),
	    T(test_signin_with_number_matching_is_never_cached),
	    T(test_signin_outcomes_become_reasons),
	    T(test_signin_identity_of_another_account_is_mismatch),
	    T(test_signin_ok_without_identity_is_unavailable),
	};

	return cmocka_run_group_tests_name("bridge_callback", tests, group_setup, group_teardown);
}
