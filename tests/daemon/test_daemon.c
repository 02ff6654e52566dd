/* nhslogind as a program: the real binary with a generated config against a real nhslogin-mock
 * (tests/pam/harness.c starts both), driven over its socket: status, a bridge sign-in end to end,
 * a mismatch, native device mode, and the signals. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "nl_err.h"
#include "nl_ipc.h"
#include "nl_json.h"
#include "nl_time.h"

static int setup(void **state)
{
	struct world *w = NULL;
	if (world_start(NULL, &w) != 0)
		fail_msg("could not start nhslogin-mock and nhslogind");
	*state = w;
	return 0;
}

static int setup_device(void **state)
{
	struct world_opts o = {.mock_args = {"--device-endpoint", "--auto-approve", "p9", NULL},
	                       .env_extra = "flow = device"};
	struct world *w = NULL;
	if (world_start(&o, &w) != 0)
		fail_msg("could not start nhslogin-mock --device-endpoint and nhslogind");
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	world_stop(*state);
	return 0;
}

/* One request on its own connection... */
static json_t *call_on(int fd, const char *line)
{
	struct nl_linebuf *lb = calloc(1, sizeof(*lb));
	json_t *req = NULL, *m = NULL;

	assert_non_null(lb);
	assert_int_equal(nl_json_parse(line, strlen(line), NL_IPC_MAX_LINE, 8, true, &req, NULL, 0), 0);
	assert_int_equal(nl_ipc_send(fd, req, 3000), 0);
	json_decref(req);
	/* A wait can take its whole timeout, plus the provider's answer. */
	assert_int_equal(nl_ipc_recv(fd, lb, 20000, &m), 0);
	free(lb);
	return m;
}

static int connect_to(const struct world *w)
{
	int fd = -1;
	assert_int_equal(nl_ipc_connect(w->socket, 3000, &fd), 0);
	return fd;
}

/* start for user on fd; returns the reply (caller frees). */
static json_t *start_on(int fd, const char *user)
{
	char line[128];
	json_t *m;
	snprintf(line, sizeof(line), "{\"op\":\"start\",\"user\":\"%s\",\"service\":\"test\"}", user);
	m = call_on(fd, line);
	if (!json_is_true(json_object_get(m, "ok")))
		fail_msg("start failed: %s", nl_json_str(m, "message"));
	assert_string_equal(nl_json_str(m, "status"), "pending");
	return m;
}

/* wait until the flow ends (several waits of 5 s if need be, 30 s in all). */
static json_t *wait_outcome(int fd, const char *device_code)
{
	char line[256];
	json_t *m = NULL;
	int64_t deadline = nl_mono_ms() + 30000;

	snprintf(line, sizeof(line), "{\"op\":\"wait\",\"device_code\":\"%s\",\"timeout\":5}", device_code);
	while (nl_mono_ms() < deadline) {
		m = call_on(fd, line);
		if (!json_is_true(json_object_get(m, "ok")) ||
		    strcmp(nl_json_str(m, "status"), "pending") != 0)
			return m;
		json_decref(m);
		m = NULL;
	}
	fail_msg("the flow did not end in 30 s");
	return NULL;
}

static void test_daemon_status_after_ready(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = call_on(fd, "{\"op\":\"status\"}");

	assert_true(json_is_true(json_object_get(m, "ok")));
	assert_string_equal(nl_json_str(m, "environment"), "local");
	assert_string_equal(nl_json_str(m, "issuer"), mockproc_issuer(w->mock));
	assert_int_equal(json_integer_value(json_object_get(m, "flows")), 0);
	/* Discovery was fetched at start-up, before the first sign-in. */
	assert_true(json_is_integer(json_object_get(m, "discovery_age")));
	json_decref(m);
	close(fd);
}

static void test_daemon_bridge_signin_approves_mapped_user(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = start_on(fd, "clinician"), *out;
	long phone = 0;
	char *dc = strdup(nl_json_str(m, "device_code"));

	assert_int_equal(phone_signin(w, nl_json_str(m, "user_code"), "p9", false, &phone), 0);
	out = wait_outcome(fd, dc);
	assert_string_equal(nl_json_str(out, "status"), "approved");
	assert_string_equal(nl_json_str(out, "user"), "clinician");
	json_decref(out);
	json_decref(m);
	free(dc);
	close(fd);
}

static void test_daemon_bridge_signin_as_someone_else_is_mismatch(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = start_on(fd, "nurse"), *out;
	long phone = 0;
	char *dc = strdup(nl_json_str(m, "device_code"));

	phone_signin(w, nl_json_str(m, "user_code"), "p9", false, &phone);
	out = wait_outcome(fd, dc);
	assert_string_equal(nl_json_str(out, "status"), "denied");
	assert_string_equal(nl_json_str(out, "reason"), "mismatch");
	json_decref(out);
	json_decref(m);
	free(dc);
	close(fd);
}

static void test_daemon_device_mode_signin_approves(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = start_on(fd, "clinician"), *out;
	char *dc = strdup(nl_json_str(m, "device_code"));

	/* The provider's own page, not the bridge's. */
	assert_non_null(strstr(nl_json_str(m, "verification_uri"), mockproc_issuer(w->mock)));
	out = wait_outcome(fd, dc);
	assert_string_equal(nl_json_str(out, "status"), "approved");
	assert_string_equal(nl_json_str(out, "user"), "clinician");
	json_decref(out);
	json_decref(m);
	free(dc);
	close(fd);
}

static void test_daemon_sighup_keeps_serving(void **state)
{
	struct world *w = *state;
	int fd;
	json_t *m;

	assert_int_equal(kill(w->daemon, SIGHUP), 0);
	usleep(200 * 1000);
	fd = connect_to(w);
	m = call_on(fd, "{\"op\":\"status\"}");
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	close(fd);
}

static void test_daemon_sigterm_stops_cleanly_and_removes_socket(void **state)
{
	struct world *w = *state;
	struct stat st;
	int status = -1;

	assert_int_equal(lstat(w->socket, &st), 0);
	assert_int_equal(kill(w->daemon, SIGTERM), 0);
	for (int i = 0; i < 500 && waitpid(w->daemon, &status, WNOHANG) == 0; i++)
		usleep(10 * 1000);
	w->daemon = -1;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(lstat(w->socket, &st), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_daemon_status_after_ready, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_bridge_signin_approves_mapped_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_bridge_signin_as_someone_else_is_mismatch, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_device_mode_signin_approves, setup_device, teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_sighup_keeps_serving, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_sigterm_stops_cleanly_and_removes_socket, setup,
	                                    teardown),
	};
	alarm(300); /* the whole program times out on its own */
	return cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
}
