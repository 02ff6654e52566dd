/* The hostile-provider suite (issue 4, item 1), the callback and the provider's answers: replayed
 * and forged callbacks, an unavailable or oversized provider, the token response and callback clause
 * by clause, through the real path pam_nhslogin.so -> nhslogind -> nhslogin-mock with a phone walking
 * the pages. The table of cases is tests/hostile/README.md. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fnmatch.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "faultutil.h"
#include "harness.h"
#include "nl_json.h"
#include "nl_time.h"
#include "hostile_fixture.h"

/* What the custom phones remember between sign-ins. */
static char saved_code[4096], saved_state[4096];

/* An honest phone that remembers the code and state it brought back. */
static int phone_saving(struct world *w, struct pam_run *run)
{
	char *url = NULL;
	int r = phone_to_callback(w, run->user_code, "p9", &url);

	if (r != 0)
		return r;
	url_param(url, "code", saved_code, sizeof(saved_code));
	url_param(url, "state", saved_state, sizeof(saved_state));
	run->phone_status = get(url);
	free(url);
	return 0;
}

/* A phone whose callback carries a forged state (the right code). */
static int phone_wrong_state(struct world *w, struct pam_run *run)
{
	char *url = NULL, code[4096];
	int r = phone_to_callback(w, run->user_code, "p9", &url);

	if (r != 0)
		return r;
	url_param(url, "code", code, sizeof(code));
	run->phone_status = callback(w, code, "Zm9yZ2VkLXN0YXRlLW5vdC1mcm9tLXRoaXMtZGFlbW9u");
	free(url);
	return 0;
}

/* A phone that brings this flow's code back with the state of an earlier, finished flow. */
static int phone_old_state(struct world *w, struct pam_run *run)
{
	char *url = NULL, code[4096];
	int r = phone_to_callback(w, run->user_code, "p9", &url);

	if (r != 0)
		return r;
	url_param(url, "code", code, sizeof(code));
	run->phone_status = callback(w, code, saved_state);
	free(url);
	return 0;
}

/* A phone that brings this flow's state back with the code of an earlier, finished flow. */
static int phone_old_code(struct world *w, struct pam_run *run)
{
	char *url = NULL, state[4096];
	int r = phone_to_callback(w, run->user_code, "p9", &url);

	if (r != 0)
		return r;
	url_param(url, "state", state, sizeof(state));
	run->phone_status = callback(w, saved_code, state);
	free(url);
	return 0;
}

/* ---- the callback ---- */

static void test_callback_with_wrong_state_is_refused(void **state)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-login2", .user = "clinician", .phone = phone_wrong_state};
	long token = stat_of(w, "token"), mark = log_mark(w);
	(void)state;

	/* The flow never finishes: the PAM timeout (2 s) ends it. */
	assert_int_equal(signin(w, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_rc, 0);
	assert_int_equal(run.phone_status, 400);
	assert_int_equal(stat_of(w, "token"), token); /* the code never went to NHS login */
	assert_one_log_line(w, mark, "callback with an unknown or used state");
	assert_honest_signin(w);
}

static void test_callback_with_replayed_state_is_refused(void **state)
{
	struct world *w = tok();
	struct pam_run first = {.service = "nl-long", .user = "clinician", .phone = phone_saving};
	struct pam_run second = {.service = "nl-login2", .user = "clinician", .phone = phone_old_state};
	long token, mark;
	(void)state;

	assert_int_equal(signin(w, &first), PAM_SUCCESS);
	assert_int_equal(first.phone_status, 200);
	token = stat_of(w, "token");
	mark = log_mark(w);
	/* The second flow's code with the first, finished flow's state. */
	assert_int_equal(signin(w, &second), PAM_AUTH_ERR);
	assert_int_equal(second.phone_rc, 0);
	assert_int_equal(second.phone_status, 400);
	assert_int_equal(stat_of(w, "token"), token);
	assert_one_log_line(w, mark, "callback with an unknown or used state");
	assert_honest_signin(w);
}

/* The phone replays the whole callback URL (code and state) after the sign-in finished: refused,
 * the code never reaches NHS login again, and the flow keeps its outcome. Driven over the socket
 * so that the outcome can be read after the replay. */
static void test_replayed_callback_is_refused_and_keeps_the_outcome(void **state)
{
	struct world *w = tok();
	json_t *start, *out;
	char *url = NULL, line[512];
	long token, mark;
	int fd = daemon_connect(w);
	(void)state;

	start = daemon_call_on(fd, "{\"op\":\"start\",\"user\":\"clinician\",\"service\":\"hostile\"}");
	assert_string_equal(nl_json_str(start, "status"), "pending");
	assert_int_equal(phone_to_callback(w, nl_json_str(start, "user_code"), "p9", &url), 0);
	token = stat_of(w, "token");
	assert_int_equal(get(url), 200);
	assert_int_equal(stat_of(w, "token"), token + 1);
	mark = log_mark(w);
	assert_int_equal(get(url), 400);
	assert_int_equal(stat_of(w, "token"), token + 1);
	assert_one_log_line(w, mark, "callback with an unknown or used state");
	snprintf(line, sizeof(line), "{\"op\":\"wait\",\"device_code\":\"%s\",\"timeout\":5}",
	         nl_json_str(start, "device_code"));
	out = daemon_call_on(fd, line);
	assert_string_equal(nl_json_str(out, "status"), "approved");
	assert_string_equal(nl_json_str(out, "user"), "clinician");
	json_decref(out);
	json_decref(start);
	close(fd);
	free(url);
	assert_honest_signin(w);
}

/* A used code brought back inside a new flow's callback: NHS login refuses it (invalid_grant) and
 * the new flow is denied. */
static void test_code_replayed_in_a_new_flow_is_refused(void **state)
{
	struct world *w = tok();
	struct pam_run first = {.service = "nl-long", .user = "clinician", .phone = phone_saving};
	struct pam_run second = {.service = "nl-long", .user = "clinician", .phone = phone_old_code};
	long mark;
	(void)state;

	assert_int_equal(signin(w, &first), PAM_SUCCESS);
	mark = log_mark(w);
	assert_int_equal(signin(w, &second), PAM_AUTH_ERR);
	assert_int_equal(second.phone_rc, 0);
	assert_int_equal(second.phone_status, 403);
	assert_one_log_line(w, mark, "token endpoint refused the code: invalid_grant");
	assert_honest_signin(w);
}

/* ---- provider trouble: unavailable, so that a break-glass login may follow ---- */

static void test_token_response_without_id_token_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_no_id_token", PAM_AUTHINFO_UNAVAIL,
	                     "token response has no usable id_token");
}

static void test_token_response_200_not_json_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_not_json", PAM_AUTHINFO_UNAVAIL,
	                     "token endpoint: response is not a JSON object");
}

static void test_token_response_500_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_status_500", PAM_AUTHINFO_UNAVAIL, "token endpoint: HTTP 500");
}

static void test_token_response_of_10_mb_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_huge", PAM_AUTHINFO_UNAVAIL,
	                     "token endpoint: POST *: response body over 65536 bytes");
}

static void test_token_response_that_never_ends_is_cut_by_http_timeout(void **state)
{
	struct world *w = net();
	int64_t t0 = nl_mono_ms();
	(void)state;

	/* http_timeout = 2: the callback gives up after 2 s; the PAM timeout (30 s) is far off. */
	assert_fault_refused(w, "token_never_ends", PAM_AUTHINFO_UNAVAIL,
	                     "token endpoint: POST *: timed out after 2000 ms");
	assert_true(nl_mono_ms() - t0 < 20000);
}

static void test_token_redirect_is_not_followed(void **state)
{
	struct world *w = net();
	long token = stat_of(w, "token");
	(void)state;

	assert_fault_refused(w, "token_redirect", PAM_AUTHINFO_UNAVAIL,
	                     "token endpoint: POST *: redirect refused");
	/* the faulted exchange and the honest one: no request went to the Location */
	assert_int_equal(stat_of(w, "token"), token + 2);
}

static void test_jwks_of_10_mb_on_a_cold_cache_is_unavailable(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_huge",
	                              "unavailable: jwks: GET *: response body over 262144 bytes");
}

static void test_discovery_of_10_mb_on_a_cold_cache_is_unavailable(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "discovery_huge",
	                              "unavailable: discovery: GET *: response body over 262144 bytes");
}

static void test_provider_500_on_a_cold_cache_is_unavailable(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "status_500", "unavailable: discovery: HTTP 500");
}

/* ---- spec clauses: the token response (RFC 6749 5.1, 5.2, 7.1; OIDC Core 3.1.3.3) ---- */

static void test_token_response_without_access_token_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_no_access_token", PAM_AUTHINFO_UNAVAIL,
	                     "token response has no access_token");
}

static void test_token_response_without_token_type_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_no_token_type", PAM_AUTHINFO_UNAVAIL,
	                     "token response has no token_type");
}

static void test_token_response_with_token_type_mac_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_type_mac", PAM_AUTHINFO_UNAVAIL,
	                     "token response has a token_type other than Bearer");
}

/* "bearer": token_type is compared without regard to case. */
static void test_token_response_with_token_type_in_lower_case_is_accepted(void **state)
{
	struct world *w = net();
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	(void)state;

	set_fault(w, "token_type_lowercase");
	assert_int_equal(signin(w, &run), PAM_SUCCESS);
	set_fault(w, "none");
}

static void test_token_response_with_negative_expires_in_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_expires_in_negative", PAM_AUTHINFO_UNAVAIL,
	                     "token response has an expires_in that is not a non-negative integer");
}

static void test_token_response_with_expires_in_as_a_string_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_expires_in_string", PAM_AUTHINFO_UNAVAIL,
	                     "token response has an expires_in that is not a non-negative integer");
}

static void test_token_response_as_text_plain_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_content_type_text", PAM_AUTHINFO_UNAVAIL,
	                     "token endpoint: Content-Type is not application/json");
}

static void test_token_response_that_is_a_json_array_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_json_array", PAM_AUTHINFO_UNAVAIL,
	                     "token endpoint: response is not a JSON object");
}

/* RFC 6749 5.2: an error that is not an error code is not repeated into the log. */
static void test_token_error_with_markup_and_an_escape_is_logged_without_them(void **state)
{
	struct world *w = net();
	long mark = log_mark(w);
	(void)state;

	assert_fault_refused(w, "token_error_unsafe", PAM_AUTHINFO_UNAVAIL, "token endpoint: HTTP 400)");
	assert_int_equal(log_count(w, mark, "<script"), 0);
	assert_int_equal(log_count(w, mark, "\x1b"), 0);
}

/* OIDC Core 5.3.2: an unsigned userinfo answer is application/json. */
static void test_userinfo_answer_as_application_jwt_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "userinfo_content_type_jwt", PAM_AUTHINFO_UNAVAIL,
	                     "userinfo: Content-Type is not application/json");
}

/* RFC 6749 3.2: the token endpoint URI "MUST NOT include a fragment component". */
static void test_discovery_endpoint_with_a_fragment_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "discovery_fragment",
	                              "unavailable: discovery refused: token_endpoint has a fragment");
}

/* ---- spec clauses: the callback (RFC 6749 3.1, 4.1.2, 4.1.2.1; RFC 9207) ---- */

/* The provider's redirect carries fault: the flow ends with want, the phone sees phone_status,
 * one log line names needle, and the code never reaches the token endpoint. */
static void assert_callback_refused(const char *fault, int want, long phone_status, const char *needle)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long token = stat_of(w, "token"), mark = log_mark(w);

	set_fault(w, fault);
	assert_int_equal(signin(w, &run), want);
	assert_int_equal(run.phone_rc, 0);
	assert_int_equal(run.phone_status, phone_status);
	assert_int_equal(stat_of(w, "token"), token);
	assert_one_log_line(w, mark, needle);
	set_fault(w, "none");
	assert_honest_signin(w);
}

static void test_callback_with_an_iss_that_is_not_the_issuer_is_refused(void **state)
{
	(void)state;
	assert_callback_refused("authorize_iss_wrong", PAM_AUTH_ERR, 502,
	                        "denied reason=invalid_token *callback iss is not the issuer (RFC 9207)");
}

static void test_callback_with_the_issuers_iss_is_accepted(void **state)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	(void)state;

	set_fault(w, "authorize_iss_right");
	assert_int_equal(signin(w, &run), PAM_SUCCESS);
	set_fault(w, "none");
}

/* RFC 9207 2.4: discovery says iss is sent; a response without it is refused, one with it is not. */
static void test_callback_without_the_iss_that_discovery_promises_is_refused(void **state)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	struct pam_run with_iss = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long token = stat_of(w, "token"), mark = log_mark(w);
	(void)state;

	set_fault(w, "discovery_iss_param");
	flush_caches(w);
	assert_int_equal(signin(w, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_status, 502);
	assert_int_equal(stat_of(w, "token"), token);
	assert_one_log_line(w, mark,
	                    "denied reason=invalid_token *callback without the iss that discovery promises");
	set_fault(w, "authorize_iss_right");
	assert_int_equal(signin(w, &with_iss), PAM_SUCCESS);
	set_fault(w, "none");
	flush_caches(w);
	assert_honest_signin(w);
}

static void test_callback_with_code_twice_is_refused(void **state)
{
	(void)state;
	assert_callback_refused("authorize_code_twice", PAM_AUTH_ERR, 502,
	                        "denied reason=invalid_token *callback repeats code (RFC 6749 3.1)");
}

/* A repeated state names no flow for sure: 400, the flow is left to its PAM timeout (2 s). */
static void test_callback_with_state_twice_is_refused(void **state)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-login2", .user = "clinician", .as_user = "p9"};
	long token = stat_of(w, "token"), mark = log_mark(w);
	(void)state;

	set_fault(w, "authorize_state_twice");
	assert_int_equal(signin(w, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_rc, 0);
	assert_int_equal(run.phone_status, 400);
	assert_int_equal(stat_of(w, "token"), token);
	assert_one_log_line(w, mark, "callback repeats state (RFC 6749 3.1)");
	set_fault(w, "none");
	assert_honest_signin(w);
}

/* RFC 6749 4.1.2: code is REQUIRED; without it and without error the provider answered nonsense. */
static void test_callback_without_code_is_unavailable(void **state)
{
	(void)state;
	assert_callback_refused("authorize_no_code", PAM_AUTHINFO_UNAVAIL, 502,
	                        "denied reason=unavailable *callback without a usable code");
}

/* RFC 6749 4.1.2.1: an error response is a denial; its error word is logged only if it is one. */
static void test_callback_error_with_markup_and_an_escape_is_a_denial_logged_safely(void **state)
{
	struct world *w = tok();
	long mark = log_mark(w);
	(void)state;

	assert_callback_refused("authorize_error_unsafe", PAM_AUTH_ERR, 403,
	                        "denied reason=denied *NHS login answered error=other");
	assert_int_equal(log_count(w, mark, "<script"), 0);
	assert_int_equal(log_count(w, mark, "\x1b"), 0);
}

int main(int argc, char **argv)
{
	harness_under_pam_wrapper();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_callback_with_wrong_state_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_callback_with_replayed_state_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_replayed_callback_is_refused_and_keeps_the_outcome, reset_faults),
	    cmocka_unit_test_setup(test_code_replayed_in_a_new_flow_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_token_response_without_id_token_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_200_not_json_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_500_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_of_10_mb_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_that_never_ends_is_cut_by_http_timeout, reset_faults),
	    cmocka_unit_test_setup(test_token_redirect_is_not_followed, reset_faults),
	    cmocka_unit_test_setup(test_jwks_of_10_mb_on_a_cold_cache_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_discovery_of_10_mb_on_a_cold_cache_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_provider_500_on_a_cold_cache_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_without_access_token_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_without_token_type_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_with_token_type_mac_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_with_token_type_in_lower_case_is_accepted,
	                           reset_faults),
	    cmocka_unit_test_setup(test_token_response_with_negative_expires_in_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_with_expires_in_as_a_string_is_unavailable,
	                           reset_faults),
	    cmocka_unit_test_setup(test_token_response_as_text_plain_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_that_is_a_json_array_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_error_with_markup_and_an_escape_is_logged_without_them,
	                           reset_faults),
	    cmocka_unit_test_setup(test_userinfo_answer_as_application_jwt_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_discovery_endpoint_with_a_fragment_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_callback_with_an_iss_that_is_not_the_issuer_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_callback_with_the_issuers_iss_is_accepted, reset_faults),
	    cmocka_unit_test_setup(test_callback_without_the_iss_that_discovery_promises_is_refused,
	                           reset_faults),
	    cmocka_unit_test_setup(test_callback_with_code_twice_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_callback_with_state_twice_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_callback_without_code_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_callback_error_with_markup_and_an_escape_is_a_denial_logged_safely,
	                           reset_faults),
	};
	alarm(480); /* the whole program times out on its own */
	return cmocka_run_group_tests_name("hostile_provider", tests, NULL, stop_worlds);
}
