/* The bridge's code page over real HTTP: the form, every answer to a typed code (wrong, right,
 * too many, expired), the QR link, oversized bodies and unknown paths. */
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

static void post_code(const char *form, struct resp *r)
{
	char *u = bridge_url("/d");
	fetch(u, form, r);
	free(u);
}

/* ---- the code page ---- */

static void test_bridge_form_has_label_viewport_and_no_external_resources(void **state)
{
	struct resp r;

	(void)state;
	get_path("/d", &r);
	assert_int_equal(r.status, 200);
	assert_security_headers(&r);
	assert_non_null(strstr(r.body, "<meta name=\"viewport\""));
	assert_non_null(strstr(r.body, "<label for=\"code\">"));
	assert_non_null(strstr(r.body, "id=\"code\" name=\"code\""));
	assert_non_null(strstr(r.body, "<button type=\"submit\">"));
	assert_null(strstr(r.body, "<script"));
	assert_null(strstr(r.body, "src="));
	assert_null(strstr(r.body, "<link"));
	resp_free(&r);
}

static void test_bridge_wrong_code_not_recognised(void **state)
{
	struct resp r;

	(void)state;
	post_code("code=ACDE-FGHJ", &r);
	assert_int_equal(r.status, 400);
	assert_security_headers(&r);
	assert_non_null(strstr(r.body, "That code was not recognised - check the code on your screen"));
	resp_free(&r);
}

static void test_bridge_echoed_code_is_escaped(void **state)
{
	struct resp r;

	(void)state;
	post_code("code=%3Cb%3E%22x%27", &r);
	assert_int_equal(r.status, 400);
	assert_null(strstr(r.body, "<b>"));
	assert_non_null(strstr(r.body, "value=\"&lt;b&gt;&quot;x&#39;\""));
	resp_free(&r);
}

static void test_bridge_right_code_and_continue_redirects_to_authorize(void **state)
{
	struct nl_flow_started s;
	char prefix[256], *loc, *v;

	(void)state;
	start_flow("alice", &s);
	loc = enter_code(&s);
	snprintf(prefix, sizeof(prefix), "%s/authorize?", mockproc_issuer(F.mp));
	assert_true(strncmp(loc, prefix, strlen(prefix)) == 0);
	assert_non_null(v = mockproc_query_param(loc, "state"));
	assert_true(strlen(v) >= 16);
	free(v);
	assert_non_null(v = mockproc_query_param(loc, "nonce"));
	free(v);
	assert_non_null(v = mockproc_query_param(loc, "code_challenge"));
	assert_int_equal(strlen(v), 43);
	free(v);
	assert_non_null(v = mockproc_query_param(loc, "code_challenge_method"));
	assert_string_equal(v, "S256");
	free(v);
	assert_non_null(v = mockproc_query_param(loc, "client_id"));
	assert_string_equal(v, CLIENT_ID);
	free(v);
	assert_non_null(v = mockproc_query_param(loc, "redirect_uri"));
	assert_string_equal(v, F.cfg.env.redirect_uri);
	free(v);
	assert_non_null(v = mockproc_query_param(loc, "prompt"));
	assert_string_equal(v, "login");
	free(v);
	free(loc);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	nl_flow_started_clear(&s);
}

static void test_bridge_qr_link_shows_the_confirmation_page_not_nhs_login(void **state)
{
	struct nl_flow_started s;
	char *uri = NULL, *complete = NULL;
	long before = -1, after = -1;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	assert_int_equal(nl_bridge_verification_uri(F.b, s.user_code, &uri, &complete), 0);
	assert_int_equal(mockproc_stat(F.mp, "authorize", &before), 0);
	fetch(complete, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_security_headers(&r);
	assert_null(header(&r, "Location"));
	assert_non_null(strstr(r.body, "Check this sign-in before you continue"));
	assert_non_null(strstr(r.body, s.user_code)); /* "check it is the code on the screen" */
	assert_int_equal(mockproc_stat(F.mp, "authorize", &after), 0);
	assert_int_equal(after, before);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	free(uri);
	free(complete);
	nl_flow_started_clear(&s);
}

static void test_bridge_too_many_wrong_codes_shows_limit_page(void **state)
{
	struct nl_flow_started s;
	char typed[32], form[64];
	struct resp r;
	unsigned i;

	(void)state;
	start_flow("alice", &s);
	for (i = 0; i < F.cfg.code_attempts; i++) {
		post_code("code=ACDEFGHJ", &r);
		assert_int_equal(r.status, 400);
		resp_free(&r);
	}
	/* now even the right code is refused from this address */
	lower_no_dash(s.user_code, typed, sizeof(typed));
	snprintf(form, sizeof(form), "code=%s", typed);
	post_code(form, &r);
	assert_int_equal(r.status, 429);
	assert_security_headers(&r);
	assert_non_null(strstr(r.body, "Too many attempts - wait 10 minutes"));
	resp_free(&r);
	nl_flow_started_clear(&s);
}

static time_t clock_plus_hour(void)
{
	return time(NULL) + 3600;
}

static void test_bridge_expired_code_says_start_again(void **state)
{
	struct nl_flow_started s;
	char form[64];
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	nl_set_clock(clock_plus_hour);
	snprintf(form, sizeof(form), "code=%s", s.user_code);
	post_code(form, &r);
	assert_int_equal(r.status, 410);
	assert_non_null(strstr(r.body, "This code has expired - start again at your workstation"));
	resp_free(&r);
	nl_flow_started_clear(&s);
}

static void test_bridge_oversize_body_refused(void **state)
{
	char *big = malloc(5001);
	struct resp r;

	(void)state;
	assert_non_null(big);
	memcpy(big, "code=", 5);
	memset(big + 5, 'A', 4995);
	big[5000] = '\0';
	post_code(big, &r);
	assert_int_equal(r.status, 413);
	assert_security_headers(&r);
	resp_free(&r);
	free(big);
}

static void test_bridge_unknown_path_is_404_with_headers(void **state)
{
	struct resp r;

	(void)state;
	get_path("/etc/passwd", &r);
	assert_int_equal(r.status, 404);
	assert_security_headers(&r);
	resp_free(&r);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_bridge_form_has_label_viewport_and_no_external_resources),
	    T(test_bridge_wrong_code_not_recognised),
	    T(test_bridge_echoed_code_is_escaped),
	    T(test_bridge_right_code_and_continue_redirects_to_authorize),
	    T(test_bridge_qr_link_shows_the_confirmation_page_not_nhs_login),
	    T(test_bridge_too_many_wrong_codes_shows_limit_page),
	    T(test_bridge_expired_code_says_start_again),
	    T(test_bridge_oversize_body_refused),
	    T(test_bridge_unknown_path_is_404_with_headers),
	};

	return cmocka_run_group_tests_name("bridge_code", tests, group_setup, group_teardown);
}
