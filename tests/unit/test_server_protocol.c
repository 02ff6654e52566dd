/* The socket server over a real Unix socket, its loop in a thread: framing, errors, dispatch,
 * pipelining, the admin ops, garbage bytes and peer checks. The provider, the token cache and the
 * bridge are replaced at link time (-Wl,--wrap) by the fakes of server_fixture.c. */
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

/* True if the server closed c (EOF or reset) within timeout_ms. */
static bool cl_closed(struct cl *c, int timeout_ms)
{
	json_t *m = NULL;
	int r = nl_ipc_recv(c->fd, c->lb, timeout_ms, &m);
	json_decref(m);
	return r == NL_ERR_CLOSED || r == NL_ERR_IO;
}

/* ---- tests ---- */

static void test_server_status_reports_fields(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	struct stat st;
	json_t *m = cl_call(&c, "{\"op\":\"status\"}");

	assert_true(json_is_true(json_object_get(m, "ok")));
	assert_string_equal(nl_json_str(m, "environment"), "test");
	assert_string_equal(nl_json_str(m, "issuer"), "https://issuer.test");
	assert_int_equal(json_integer_value(json_object_get(m, "flows")), 0);
	assert_int_equal(json_integer_value(json_object_get(m, "flows_max")), 64);
	assert_int_equal(json_integer_value(json_object_get(m, "cached_signins")), 2);
	assert_true(json_integer_value(json_object_get(m, "discovery_age")) >= 120);
	assert_true(json_is_null(json_object_get(m, "jwks_age")));
	assert_string_equal(nl_json_str(m, "last_error"), "jwks: timeout");
	assert_true(json_is_integer(json_object_get(m, "uptime")));
	json_decref(m);
	/* The socket is private to root, its new directory 0755. */
	assert_int_equal(stat(fx->sock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(fx->sockdir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);
	cl_close(&c);
}

static void test_server_oversized_line_gets_too_big_and_close(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	size_t n = NL_IPC_MAX_LINE + 1;
	char *big = malloc(n);
	json_t *m;

	assert_non_null(big);
	memset(big, 'a', n);
	cl_send_raw(&c, big, n);
	free(big);
	m = cl_recv(&c, 3000);
	assert_error(m, "too_big");
	assert_true(cl_closed(&c, 3000));
	cl_close(&c);
}

static void test_server_line_of_exactly_the_limit_is_read(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	const char *head = "{\"op\":\"status\",\"pad\":\"";
	size_t n = NL_IPC_MAX_LINE - 1; /* plus the newline: exactly the limit */
	char *line = malloc(n + 1);

	assert_non_null(line);
	memset(line, 'x', n);
	memcpy(line, head, strlen(head));
	memcpy(line + n - 2, "\"}", 2);
	line[n] = '\0';
	json_t *m = cl_call(&c, line);
	free(line);
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	cl_close(&c);
}

static void test_server_malformed_json_gets_bad_request_and_stays_open(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);

	assert_error(cl_call(&c, "{nope"), "bad_request");
	assert_error(cl_call(&c, "[1,2,3]"), "bad_request");
	assert_error(cl_call(&c, "{\"op\":\"status\",\"op\":\"flows\"}"), "bad_request"); /* duplicate key */
	assert_error(cl_call(&c, "{\"op\":17}"), "bad_request");
	json_t *m = cl_call(&c, "{\"op\":\"status\"}");
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	cl_close(&c);
}

static void test_server_unknown_op_gets_unknown_op(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	assert_error(cl_call(&c, "{\"op\":\"dance\"}"), "unknown_op");
	cl_close(&c);
}

static void test_server_answers_pipelined_requests_in_order(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	json_t *m;

	cl_send(&c, "{\"op\":\"dance\"}\n{\"op\":\"status\"}");
	assert_error(cl_recv(&c, 3000), "unknown_op");
	m = cl_recv(&c, 3000);
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	cl_close(&c);
}

static void test_server_admin_ops(void **state)
{
	struct fx *fx = *state;
	struct cl c = cl_open(fx);
	char *dc = start_flow(&c, "alice"), line[256];
	json_t *m, *arr;
	const char *id;

	m = cl_call(&c, "{\"op\":\"flows\"}");
	arr = json_object_get(m, "flows");
	assert_int_equal(json_array_size(arr), 1);
	assert_string_equal(nl_json_str(json_array_get(arr, 0), "user"), "alice");
	assert_string_equal(nl_json_str(json_array_get(arr, 0), "service"), "sshd");
	assert_string_equal(nl_json_str(json_array_get(arr, 0), "state"), "pending");
	id = nl_json_str(json_array_get(arr, 0), "flow");
	snprintf(line, sizeof(line), "{\"op\":\"flow_cancel\",\"flow\":\"%s\"}", id);
	json_decref(cl_call(&c, line));
	json_decref(m);
	assert_int_equal(nl_flows_count(fx->fl), 0);
	assert_error(cl_call(&c, "{\"op\":\"flow_cancel\",\"flow\":\"f-0000000000000000\"}"), "not_found");
	flush_calls = 0;
	m = cl_call(&c, "{\"op\":\"flush\"}");
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	assert_int_equal(__atomic_load_n(&flush_calls, __ATOMIC_SEQ_CST), 2);
	free(dc);
	cl_close(&c);
}

static void test_server_garbage_bytes_never_crash(void **state)
{
	struct fx *fx = *state;
	unsigned char buf[4096];
	json_t *m;

	for (int round = 0; round < 100; round++) {
		struct cl c = cl_open(fx);
		size_t n = 1 + (size_t)(round * 37) % sizeof(buf);
		assert_int_equal(nl_random_bytes(buf, n), 0);
		if (round % 3 == 0)
			for (size_t i = 0; i < n; i += 50)
				buf[i] = '\n';
		cl_send_raw(&c, (const char *)buf, n);
		cl_close(&c);
	}
	struct cl c = cl_open(fx);
	m = cl_call(&c, "{\"op\":\"status\"}");
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	cl_close(&c);
}

/* A peer that is neither root nor in socket_group is told so and closed. */
static void test_server_refuses_other_users(void **state)
{
	struct fx *fx = *state;
	pid_t pid;
	int st = 0;

	if (geteuid() != 0)
		skip_because("needs root to connect as another uid");
	assert_int_equal(chmod(fx->dir, 0755), 0);
	assert_int_equal(chmod(fx->sock, 0666), 0);
	if ((pid = fork()) == 0) {
		struct nl_linebuf *lb = calloc(1, sizeof(*lb));
		json_t *m = NULL;
		int fd = -1;
		alarm(10);
		if (lb == NULL || setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
			_exit(3);
		if (nl_ipc_connect(fx->sock, 2000, &fd) != 0 || nl_ipc_recv(fd, lb, 3000, &m) != 0)
			_exit(4);
		if (m == NULL || nl_json_str(m, "error") == NULL ||
		    strcmp(nl_json_str(m, "error"), "forbidden") != 0)
			_exit(5);
		_exit(nl_ipc_recv(fd, lb, 3000, &m) == NL_ERR_CLOSED ? 0 : 6);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_server_status_reports_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_oversized_line_gets_too_big_and_close, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_server_line_of_exactly_the_limit_is_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_malformed_json_gets_bad_request_and_stays_open, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_server_unknown_op_gets_unknown_op, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_answers_pipelined_requests_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_admin_ops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_garbage_bytes_never_crash, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_refuses_other_users, setup, teardown),
	};
	alarm(120); /* the whole program times out on its own */
	return cmocka_run_group_tests_name("server_protocol", tests, NULL, NULL);
}
