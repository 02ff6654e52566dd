/* nhslogin-mock's control API and faults, and its start-up: the state file, the state directory's
 * users and clients, SIGTERM. */
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
	return cmocka_run_group_tests_name("mock_control", tests, group_setup, group_teardown);
}
