/* nhslogin-mock over real HTTP, where a person decides: the device flow and the user-picking page
 * (a manual mock, without --auto-approve, for each test that needs one). */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
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
	};
	return cmocka_run_group_tests_name("mock_device", tests, group_setup, group_teardown);
}
