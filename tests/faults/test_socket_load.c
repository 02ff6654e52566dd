/* nhslogind under load on its socket (issue 4, item 4): 1,000 honest clients doing start + wait at
 * once, with garbage clients (random bytes, oversized lines, half-open connections) at the same
 * time. The daemon must hold max_flows and max_flows_per_user, answer an honest status request
 * within a bound, stay alive, and keep its memory bounded. One thread, poll(2)-driven. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faultutil.h"
#include "harness.h"
#include "nl_ipc.h"
#include "nl_json.h"
#include "nl_time.h"
#include "nl_wipe.h"

#define HONEST          1000
#define MAX_FLOWS       500
#define RANDOM_JUNK     50
#define OVERSIZED       20
#define HALF_OPEN       50
#define STATUS_BOUND_MS 5000         /* generous: two shared cores, 1,000 clients in flight */
#define RSS_BOUND_KB    (160 * 1024) /* 1,000 connections hold a 64 KiB line buffer each */

struct client {
	int fd;
	char buf[4096];
	size_t len;
	json_t *reply; /* the last complete reply */
	char device_code[128];
};

static struct world *w;

static int setup(void **state)
{
	static const struct world_opts o = {.daemon_extra = "max_flows = 500\nmax_flows_per_user = 3"};
	(void)state;
	/* 1,000 honest + garbage + the daemon's own: the daemon inherits this limit. */
	if (fu_raise_nofile(4096) < 2048)
		fprintf(stderr, "# RLIMIT_NOFILE could not be raised to 2048\n");
	return world_start(&o, &w) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	world_stop(w);
	w = NULL;
	return 0;
}

static int connect_nb(void)
{
	int fd = fu_connect(w->socket);
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void send_all(int fd, const char *text, size_t len)
{
	int64_t deadline = nl_mono_ms() + 10000;
	while (len > 0 && nl_mono_ms() < deadline) {
		ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
		if (n > 0) {
			text += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			poll(&p, 1, 100);
		} else {
			return; /* closed by the daemon: fine for garbage */
		}
	}
}

/* Read replies until every honest client has one, or timeout_ms. Garbage sockets are drained. */
static int collect(struct client *c, size_t n, int *junk, size_t njunk, int timeout_ms)
{
	struct pollfd *p = calloc(n + njunk, sizeof(*p));
	int64_t deadline = nl_mono_ms() + timeout_ms;
	size_t missing = 0;

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		missing += c[i].reply == NULL;
	while (missing > 0 && nl_mono_ms() < deadline) {
		for (size_t i = 0; i < n; i++)
			p[i] = (struct pollfd){.fd = c[i].reply == NULL ? c[i].fd : -1, .events = POLLIN};
		for (size_t i = 0; i < njunk; i++)
			p[n + i] = (struct pollfd){.fd = junk[i], .events = POLLIN};
		if (poll(p, n + njunk, 200) <= 0)
			continue;
		for (size_t i = 0; i < njunk; i++) {
			char sink[4096];
			if ((p[n + i].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    recv(junk[i], sink, sizeof(sink), MSG_DONTWAIT) == 0) {
				close(junk[i]);
				junk[i] = -1;
			}
		}
		for (size_t i = 0; i < n; i++) {
			char *nl;
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t got =
			    recv(c[i].fd, c[i].buf + c[i].len, sizeof(c[i].buf) - 1 - c[i].len, MSG_DONTWAIT);
			if (got <= 0) {
				fail_msg("honest client %zu: the daemon closed the connection", i);
			}
			c[i].len += (size_t)got;
			c[i].buf[c[i].len] = '\0';
			if ((nl = strchr(c[i].buf, '\n')) != NULL) {
				assert_int_equal(nl_json_parse(c[i].buf, (size_t)(nl - c[i].buf), 8192, 8,
				                               true, &c[i].reply, NULL, 0),
				                 0);
				nl_wipe(c[i].buf, c[i].len);
				c[i].len = 0;
				missing--;
			}
		}
	}
	free(p);
	return (int)missing;
}

static void clear_replies(struct client *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_decref(c[i].reply);
		c[i].reply = NULL;
	}
}

/* The garbage clients: random bytes (some lines, some not), lines over 64 KiB, half-open. */
static size_t open_garbage(int *junk)
{
	static char big[NL_IPC_MAX_LINE + 4096];
	char rnd[2048];
	size_t n = 0;

	memset(big, 'A', sizeof(big));
	for (int i = 0; i < RANDOM_JUNK; i++) {
		int fd = connect_nb();
		assert_true(fd >= 0);
		assert_int_equal(nl_random_bytes(rnd, sizeof(rnd)), 0);
		send_all(fd, rnd, sizeof(rnd));
		junk[n++] = fd;
	}
	for (int i = 0; i < OVERSIZED; i++) {
		int fd = connect_nb();
		assert_true(fd >= 0);
		send_all(fd, big, sizeof(big));
		junk[n++] = fd;
	}
	for (int i = 0; i < HALF_OPEN; i++) {
		int fd = connect_nb();
		assert_true(fd >= 0);
		if (i % 2 == 0)
			send_all(fd, "{\"op\":\"start\",\"user\":\"half", 26); /* never finished */
		else
			shutdown(fd, SHUT_WR);
		junk[n++] = fd;
	}
	return n;
}

static void test_thousand_clients_and_garbage_hold_limits_and_status_answers(void **state)
{
	struct client *c = calloc(HONEST, sizeof(*c));
	int junk[RANDOM_JUNK + OVERSIZED + HALF_OPEN];
	size_t njunk, pending = 0, limited = 0, other = 0;
	long rss_before = fu_rss_kb(w->daemon), rss_peak;
	char line[256];
	int64_t t0, status_ms;
	json_t *m;
	(void)state;

	assert_non_null(c);
	for (size_t i = 0; i < HONEST; i++) {
		c[i].fd = connect_nb();
		if (c[i].fd < 0)
			fail_msg("honest client %zu could not connect", i);
	}
	njunk = open_garbage(junk);
	/* Every honest client asks for a flow of its own user at once. */
	for (size_t i = 0; i < HONEST; i++) {
		snprintf(line, sizeof(line), "{\"op\":\"start\",\"user\":\"u%04zu\",\"service\":\"load\"}\n",
		         i);
		send_all(c[i].fd, line, strlen(line));
	}
	assert_int_equal(collect(c, HONEST, junk, njunk, 60000), 0);
	for (size_t i = 0; i < HONEST; i++) {
		const char *st = fu_str(c[i].reply, "status"), *err = fu_str(c[i].reply, "error");
		if (strcmp(st, "pending") == 0) {
			pending++;
			snprintf(c[i].device_code, sizeof(c[i].device_code), "%s",
			         fu_str(c[i].reply, "device_code"));
		} else if (strcmp(err, "unavailable") == 0) {
			limited++; /* a full table: the break-glass code, not a denial */
		} else {
			other++;
		}
	}
	clear_replies(c, HONEST);
	print_message("# start: %zu pending, %zu refused as unavailable (table full), %zu other\n", pending,
	              limited, other);
	assert_int_equal(pending, MAX_FLOWS);
	assert_int_equal(limited, HONEST - MAX_FLOWS);
	assert_int_equal(other, 0);

	/* Every client with a flow long-polls it (1 s); meanwhile an honest status is answered. */
	for (size_t i = 0; i < HONEST; i++) {
		if (c[i].device_code[0] == '\0')
			snprintf(line, sizeof(line), "{\"op\":\"status\"}\n");
		else
			snprintf(line, sizeof(line),
			         "{\"op\":\"wait\",\"device_code\":\"%s\",\"timeout\":1}\n",
			         c[i].device_code);
		send_all(c[i].fd, line, strlen(line));
	}
	t0 = nl_mono_ms();
	m = fu_call_once(w->socket, "{\"op\":\"status\"}", STATUS_BOUND_MS * 2);
	status_ms = nl_mono_ms() - t0;
	rss_peak = fu_rss_kb(w->daemon);
	print_message(
	    "# status under load answered in %lld ms; daemon VmRSS %ld KiB before, %ld KiB under load\n",
	    (long long)status_ms, rss_before, rss_peak);
	assert_non_null(m);
	assert_true(json_is_true(json_object_get(m, "ok")));
	assert_int_equal(json_integer_value(json_object_get(m, "flows")), MAX_FLOWS);
	assert_int_equal(json_integer_value(json_object_get(m, "flows_max")), MAX_FLOWS);
	json_decref(m);
	assert_true(status_ms < STATUS_BOUND_MS);
	assert_int_equal(collect(c, HONEST, junk, njunk, 60000), 0);
	for (size_t i = 0; i < HONEST; i++) {
		if (c[i].device_code[0] != '\0')
			assert_string_equal(fu_str(c[i].reply, "status"), "pending");
		else
			assert_true(json_is_true(json_object_get(c[i].reply, "ok")));
	}
	clear_replies(c, HONEST);

	/* Alive, memory bounded; closing the connections cancels their flows. */
	assert_int_equal(waitpid(w->daemon, NULL, WNOHANG), 0);
	assert_true(rss_peak > 0 && rss_peak < RSS_BOUND_KB);
	for (size_t i = 0; i < HONEST; i++)
		close(c[i].fd);
	for (size_t i = 0; i < njunk; i++)
		if (junk[i] >= 0)
			close(junk[i]);
	usleep(500 * 1000);
	m = fu_call_once(w->socket, "{\"op\":\"status\"}", 5000);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m, "flows")), 0);
	json_decref(m);
	print_message("# daemon VmRSS after the clients left: %ld KiB\n", fu_rss_kb(w->daemon));
	free(c);
}

static void test_fourth_flow_of_one_user_is_refused_with_limit(void **state)
{
	int fd[4];
	json_t *m;
	(void)state;

	for (int i = 0; i < 4; i++) {
		fd[i] = fu_connect(w->socket);
		assert_true(fd[i] >= 0);
		m = fu_call(fd[i], "{\"op\":\"start\",\"user\":\"samename\"}", 5000);
		assert_non_null(m);
		if (i < 3) {
			assert_string_equal(fu_str(m, "status"), "pending");
		} else {
			assert_false(json_is_true(json_object_get(m, "ok")));
			assert_string_equal(fu_str(m, "error"), "limit");
		}
		json_decref(m);
	}
	for (int i = 0; i < 4; i++)
		close(fd[i]);
}

static void test_oversized_line_is_refused_with_too_big_and_closed(void **state)
{
	static char big[NL_IPC_MAX_LINE + 16];
	char reply[512] = "";
	size_t got = 0;
	int fd = fu_connect(w->socket);
	(void)state;

	assert_true(fd >= 0);
	memset(big, ' ', sizeof(big));
	send_all(fd, big, sizeof(big));
	for (int64_t deadline = nl_mono_ms() + 5000; nl_mono_ms() < deadline && got < sizeof(reply) - 1;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t n = recv(fd, reply + got, sizeof(reply) - 1 - got, 0);
		if (n <= 0)
			break; /* closed after the reply */
		got += (size_t)n;
	}
	reply[got] = '\0';
	assert_non_null(strstr(reply, "\"error\":\"too_big\""));
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_thousand_clients_and_garbage_hold_limits_and_status_answers),
	    cmocka_unit_test(test_fourth_flow_of_one_user_is_refused_with_limit),
	    cmocka_unit_test(test_oversized_line_is_refused_with_too_big_and_closed),
	};
	signal(SIGPIPE, SIG_IGN);
	alarm(240);
	return cmocka_run_group_tests_name("socket_load", tests, setup, teardown);
}
