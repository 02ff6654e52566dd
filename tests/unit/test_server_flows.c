/* The socket server's sign-ins over a real Unix socket: start and its limits, long-polled waits,
 * cancellation on close, and device mode. The provider, the token cache and the bridge are replaced
 * at link time (-Wl,--wrap) by the fakes of server_fixture.c. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridge.h"
#include "device.h"
#include "flows.h"
#include "nl_err.h"
#include "nl_ipc.h"
#include "nl_proto.h"
#include "nl_json.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "oidc.h"
#include "server.h"
#include "skip.h"
#include "tokcache.h"
#include "server_fixture.h"

static void test_server_wait_unknown_device_code_not_found(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	assert_error(cl_call(&c, "{\"op\":\"wait\",\"device_code\":\"no-such-code\",\"timeout\":1}"),
	             "not_found");
	assert_error(cl_call(&c, "{\"op\":\"wait\"}"), "bad_request");
	assert_error(cl_call(&c, "{\"op\":\"cancel\",\"device_code\":\"no-such-code\"}"), "not_found");
	cl_close(&c);
}

static void test_server_start_validates_user(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	assert_error(cl_call(&c, "{\"op\":\"start\"}"), "bad_request");
	assert_error(cl_call(&c, "{\"op\":\"start\",\"user\":\"\"}"), "bad_request");
	assert_error(cl_call(&c, "{\"op\":\"start\",\"user\":\"a\\nb\"}"), "bad_request");
	assert_error(cl_call(&c, "{\"op\":\"start\",\"user\":\"alice\",\"rhost\":5}"), "bad_request");
	cl_close(&c);
}

static void test_server_start_returns_code_and_verification_uris(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	json_t *m =
	    cl_call(&c, "{\"op\":\"start\",\"user\":\"alice\",\"service\":\"sshd\",\"rhost\":\"10.0.0.5\"}");
	const char *uc, *uric;
	char want[128];

	assert_true(json_is_true(json_object_get(m, "ok")));
	assert_string_equal(nl_json_str(m, "status"), "pending");
	assert_memory_equal(nl_json_str(m, "flow"), "f-", 2);
	assert_true(strlen(nl_json_str(m, "device_code")) >= 22);
	uc = nl_json_str(m, "user_code");
	assert_non_null(uc);
	assert_int_equal(strlen(uc), 9);
	assert_string_equal(nl_json_str(m, "verification_uri"), "https://bridge.test/d");
	snprintf(want, sizeof(want), "https://bridge.test/d?code=%.4s%.4s", uc, uc + 5);
	uric = nl_json_str(m, "verification_uri_complete");
	assert_string_equal(uric, want);
	assert_int_equal(json_integer_value(json_object_get(m, "expires_in")), 300);
	assert_int_equal(json_integer_value(json_object_get(m, "interval")), 1);
	json_decref(m);
	cl_close(&c);
}

static void test_server_start_reuses_cached_signin(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	json_t *m = cl_call(&c, "{\"op\":\"start\",\"user\":\"reuser\"}");
	assert_string_equal(nl_json_str(m, "status"), "approved");
	assert_string_equal(nl_json_str(m, "user"), "reuser");
	assert_true(json_is_true(json_object_get(m, "reused")));
	assert_null(json_object_get(m, "device_code"));
	json_decref(m);
	cl_close(&c);
}

static void test_server_start_unavailable_when_provider_not_ready(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	json_t *m;

	__atomic_store_n(&provider_down, 1, __ATOMIC_SEQ_CST);
	m = cl_call(&c, "{\"op\":\"start\",\"user\":\"alice\"}");
	assert_non_null(strstr(nl_json_str(m, "message"), "connection refused"));
	assert_error(m, "unavailable");
	__atomic_store_n(&provider_down, 0, __ATOMIC_SEQ_CST);
	cl_close(&c);
}

static void test_server_start_limit_per_user(void **state)
{
	struct fx *fx = *state;
	struct cl c[4];
	for (int i = 0; i < 4; i++)
		c[i] = cl_open(fx);
	for (int i = 0; i < 3; i++)
		free(start_flow(&c[i], "alice"));
	/* The same origin (tty "ssh", no host) a fourth time: refused. */
	assert_error(cl_call(&c[3], "{\"op\":\"start\",\"user\":\"alice\",\"tty\":\"ssh\"}"), "limit");
	for (int i = 0; i < 4; i++)
		cl_close(&c[i]);
}

/* The module makes one start a connection: a connection may not fill the table for everyone. */
static void test_server_start_limit_per_connection(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	char user[16];
	for (int i = 0; i < 4; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		free(start_flow(&c, user));
	}
	assert_error(cl_call(&c, "{\"op\":\"start\",\"user\":\"user9\"}"), "limit");
	assert_int_equal(nl_flows_count(fx->fl), 4);
	cl_close(&c);
}

static void test_server_wait_returns_pending_after_timeout(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	char *dc = start_flow(&c, "alice"), line[256];
	int64_t t0, dt;
	json_t *m;

	snprintf(line, sizeof(line), "{\"op\":\"wait\",\"device_code\":\"%s\",\"timeout\":1}", dc);
	t0 = nl_mono_ms();
	m = cl_call(&c, line);
	dt = nl_mono_ms() - t0;
	assert_string_equal(nl_json_str(m, "status"), "pending");
	assert_true(json_integer_value(json_object_get(m, "expires_in")) > 290);
	assert_true(dt >= 900 && dt < 2500);
	json_decref(m);
	free(dc);
	cl_close(&c);
}

static void test_server_wait_returns_fast_when_cancelled_elsewhere(void **state)
{
	struct fx *fx = *state;
	struct cl a = cl_open(fx), b = cl_open(fx);
	char *dc = start_flow(&a, "alice"), line[256];
	int64_t t0;
	json_t *m;

	snprintf(line, sizeof(line), "{\"op\":\"wait\",\"device_code\":\"%s\",\"timeout\":10}", dc);
	cl_send(&a, line);
	usleep(200 * 1000);
	snprintf(line, sizeof(line), "{\"op\":\"cancel\",\"device_code\":\"%s\"}", dc);
	m = cl_call(&b, line);
	t0 = nl_mono_ms();
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	m = cl_recv(&a, 3000);
	assert_true(nl_mono_ms() - t0 < 100);
	assert_string_equal(nl_json_str(m, "status"), "denied");
	assert_string_equal(nl_json_str(m, "reason"), "cancelled");
	assert_non_null(nl_json_str(m, "message"));
	json_decref(m);
	free(dc);
	cl_close(&a);
	cl_close(&b);
}

static void test_server_wait_returns_approved_when_flow_finishes(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	char *dc = start_flow(&c, "alice"), line[256];
	struct nl_flow_info info[4];
	json_t *m;

	assert_int_equal(nl_flows_list(fx->fl, info, 4), 1);
	snprintf(line, sizeof(line), "{\"op\":\"wait\",\"device_code\":\"%s\",\"timeout\":10}", dc);
	cl_send(&c, line);
	usleep(100 * 1000);
	assert_int_equal(nl_flows_finish(fx->fl, info[0].id, NL_REASON_NONE, NULL), 0);
	m = cl_recv(&c, 1000);
	assert_string_equal(nl_json_str(m, "status"), "approved");
	assert_string_equal(nl_json_str(m, "user"), "alice");
	json_decref(m);
	free(dc);
	cl_close(&c);
}

static void test_server_closing_starting_connection_cancels_flow(void **state)
{
	struct fx *fx = *state;
	struct cl a = cl_open(fx), b = cl_open(fx);
	char *dc = start_flow(&a, "alice"), line[256];
	int64_t t0;
	json_t *m;

	snprintf(line, sizeof(line), "{\"op\":\"wait\",\"device_code\":\"%s\",\"timeout\":10}", dc);
	cl_send(&b, line);
	usleep(100 * 1000);
	t0 = nl_mono_ms();
	cl_close(&a);
	m = cl_recv(&b, 3000);
	assert_true(nl_mono_ms() - t0 < 500);
	assert_string_equal(nl_json_str(m, "status"), "denied");
	assert_string_equal(nl_json_str(m, "reason"), "cancelled");
	json_decref(m);
	assert_int_equal(nl_flows_count(fx->fl), 0);
	free(dc);
	cl_close(&b);
}

static void test_server_device_mode_polls_provider_until_signed_in(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	char line[256], *dc;
	json_t *m;

	__atomic_store_n(&device_polls, 0, __ATOMIC_SEQ_CST);
	m = cl_call(&c, "{\"op\":\"start\",\"user\":\"alice\"}");
	assert_string_equal(nl_json_str(m, "status"), "pending");
	assert_string_equal(nl_json_str(m, "user_code"), "WDJB-MJHT");
	assert_string_equal(nl_json_str(m, "verification_uri"), "https://provider.test/device");
	assert_string_equal(nl_json_str(m, "verification_uri_complete"), "https://provider.test/device");
	/* Our own device_code, never the provider's. */
	assert_string_not_equal(nl_json_str(m, "device_code"), "provider-device-code");
	dc = strdup(nl_json_str(m, "device_code"));
	json_decref(m);
	assert_int_equal(nl_device_count(fx->dev), 1);
	snprintf(line, sizeof(line), "{\"op\":\"wait\",\"device_code\":\"%s\",\"timeout\":10}", dc);
	m = cl_call(&c, line);
	assert_string_equal(nl_json_str(m, "status"), "approved");
	assert_int_equal(__atomic_load_n(&device_polls, __ATOMIC_SEQ_CST), 2);
	json_decref(m);
	free(dc);
	cl_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_server_wait_unknown_device_code_not_found, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_start_validates_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_start_returns_code_and_verification_uris, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_server_start_reuses_cached_signin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_start_unavailable_when_provider_not_ready, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_server_start_limit_per_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_start_limit_per_connection, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_wait_returns_pending_after_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_wait_returns_fast_when_cancelled_elsewhere, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_server_wait_returns_approved_when_flow_finishes, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_server_closing_starting_connection_cancels_flow, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_server_device_mode_polls_provider_until_signed_in,
	                                    setup_device, teardown),
	};
	alarm(120); /* the whole program times out on its own */
	return cmocka_run_group_tests_name("server_flows", tests, NULL, NULL);
}
