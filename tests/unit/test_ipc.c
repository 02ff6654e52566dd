/* Socket framing over socketpairs and a real Unix socket: one JSON object a line, the size
 * bound, bad lines, partial and batched reads, timeouts, EOF, wiping of consumed bytes. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "nl_err.h"
#include "nl_ipc.h"
#include "nl_time.h"

struct fx {
	int sv[2];            /* sv[0]: client end, sv[1]: server end */
	struct nl_linebuf lb; /* large: keep it off the stack */
	char err[256];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->sv) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->sv[0] >= 0)
		close(f->sv[0]);
	if (f->sv[1] >= 0)
		close(f->sv[1]);
	free(f);
	return 0;
}

static void write_str(int fd, const char *s)
{
	size_t n = strlen(s);
	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* A writer on another thread, so that a line bigger than the socket buffer cannot deadlock. */
struct writer {
	pthread_t th;
	int fd;
	const char *buf;
	size_t len;
	const json_t *msg; /* if set, sent with nl_ipc_send instead */
	int r;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	size_t off = 0;
	ssize_t n;

	if (w->msg != NULL) {
		w->r = nl_ipc_send(w->fd, w->msg, 5000);
		return NULL;
	}
	while (off < w->len) {
		n = send(w->fd, w->buf + off, w->len - off, MSG_NOSIGNAL);
		if (n <= 0) {
			w->r = -1;
			return NULL;
		}
		off += (size_t)n;
	}
	w->r = 0;
	return NULL;
}

static void writer_start(struct writer *w)
{
	assert_int_equal(pthread_create(&w->th, NULL, writer_main, w), 0);
}

/* A JSON object line of exactly total bytes, newline included: {"a":"xxx..."}\n */
static char *line_of(size_t total)
{
	char *s = malloc(total + 1);

	assert_non_null(s);
	memset(s, 'x', total);
	memcpy(s, "{\"a\":\"", 6);
	memcpy(s + total - 3, "\"}\n", 3);
	s[total] = '\0';
	return s;
}

static void test_ipc_round_trip(void **state)
{
	struct fx *f = *state;
	json_t *msg = json_pack("{s:s, s:s, s:i}", "op", "start", "user", "alice\nbob", "n", 7);
	json_t *got = NULL;

	assert_int_equal(nl_ipc_send(f->sv[0], msg, 1000), 0);
	assert_int_equal(nl_ipc_recv(f->sv[1], &f->lb, 1000, &got), 0);
	assert_true(json_equal(msg, got));
	assert_int_equal(f->lb.len, 0);
	json_decref(msg);
	json_decref(got);
}

static void test_ipc_line_of_exactly_max_accepted(void **state)
{
	struct fx *f = *state;
	char *line = line_of(NL_IPC_MAX_LINE);
	struct writer w = {.fd = f->sv[0], .buf = line, .len = NL_IPC_MAX_LINE};
	json_t *got = NULL;

	writer_start(&w);
	assert_int_equal(nl_ipc_recv(f->sv[1], &f->lb, 5000, &got), 0);
	pthread_join(w.th, NULL);
	assert_int_equal(w.r, 0);
	assert_int_equal(strlen(json_string_value(json_object_get(got, "a"))), NL_IPC_MAX_LINE - 9);
	json_decref(got);
	free(line);
}

static void test_ipc_line_one_byte_over_max_too_big(void **state)
{
	struct fx *f = *state;
	char *line = line_of(NL_IPC_MAX_LINE + 1);
	struct writer w = {.fd = f->sv[0], .buf = line, .len = NL_IPC_MAX_LINE + 1};
	json_t *got = NULL;

	writer_start(&w);
	assert_int_equal(nl_ipc_recv(f->sv[1], &f->lb, 5000, &got), NL_ERR_TOO_BIG);
	assert_null(got);
	close(f->sv[1]); /* the server closes; the writer must not hang */
	f->sv[1] = -1;
	pthread_join(w.th, NULL);
	free(line);
}

static void test_ipc_send_of_max_message_arrives_and_one_more_is_refused(void **state)
{
	struct fx *f = *state;
	char *line = line_of(NL_IPC_MAX_LINE);
	json_t *msg, *got = NULL;
	struct writer w = {.fd = f->sv[0]};

	line[NL_IPC_MAX_LINE - 1] = '\0';
	msg = json_loads(line, 0, NULL);
	assert_non_null(msg);
	w.msg = msg;
	writer_start(&w);
	assert_int_equal(nl_ipc_recv(f->sv[1], &f->lb, 5000, &got), 0);
	pthread_join(w.th, NULL);
	assert_int_equal(w.r, 0);
	assert_true(json_equal(msg, got));
	json_decref(got);
	/* one more byte in the value and the line would not fit */
	json_decref(msg);
	free(line);
	line = line_of(NL_IPC_MAX_LINE + 1);
	line[NL_IPC_MAX_LINE] = '\0';
	msg = json_loads(line, 0, NULL);
	assert_non_null(msg);
	assert_int_equal(nl_ipc_send(f->sv[0], msg, 1000), NL_ERR_TOO_BIG);
	json_decref(msg);
	free(line);
}

static void test_ipc_malformed_line_invalid_then_next_line_parses(void **state)
{
	struct fx *f = *state;
	json_t *got = NULL;

	write_str(f->sv[0], "{\"op\":\n{\"op\":\"status\"}\n");
	assert_int_equal(nl_linebuf_fill(&f->lb, f->sv[1]), 1);
	assert_int_equal(nl_linebuf_take(&f->lb, &got, f->err, sizeof(f->err)), NL_ERR_INVALID);
	assert_null(got);
	assert_true(strlen(f->err) > 0);
	assert_int_equal(nl_linebuf_take(&f->lb, &got, f->err, sizeof(f->err)), 1);
	assert_string_equal(json_string_value(json_object_get(got, "op")), "status");
	json_decref(got);
}

static void test_ipc_non_object_line_rejected(void **state)
{
	struct fx *f = *state;
	json_t *got = NULL;

	write_str(f->sv[0], "[\"op\",\"status\"]\n\"op\"\n\n");
	assert_int_equal(nl_linebuf_fill(&f->lb, f->sv[1]), 1);
	assert_int_equal(nl_linebuf_take(&f->lb, &got, f->err, sizeof(f->err)), NL_ERR_INVALID);
	assert_int_equal(nl_linebuf_take(&f->lb, &got, f->err, sizeof(f->err)), NL_ERR_INVALID);
	assert_int_equal(nl_linebuf_take(&f->lb, &got, f->err, sizeof(f->err)), NL_ERR_INVALID); /* empty */
	assert_null(got);
	assert_int_equal(f->lb.len, 0);
}

static void test_ipc_duplicate_keys_rejected(void **state)
{
	struct fx *f = *state;
	json_t *got = NULL;

	write_str(f->sv[0], "{\"op\":\"wait\",\"op\":\"cancel\"}\n");
	assert_int_equal(nl_ipc_recv(f->sv[1], &f->lb, 1000, &got), NL_ERR_INVALID);
	assert_null(got);
}

static void test_ipc_two_messages_in_one_write_both_taken(void **state)
{
	struct fx *f = *state;
	json_t *a = NULL, *b = NULL, *c = NULL;

	write_str(f->sv[0], "{\"n\":1}\n{\"n\":2}\n");
	assert_int_equal(nl_linebuf_fill(&f->lb, f->sv[1]), 1);
	assert_int_equal(nl_linebuf_take(&f->lb, &a, f->err, sizeof(f->err)), 1);
	assert_int_equal(nl_linebuf_take(&f->lb, &b, f->err, sizeof(f->err)), 1);
	assert_int_equal(nl_linebuf_take(&f->lb, &c, f->err, sizeof(f->err)), 0);
	assert_int_equal(json_integer_value(json_object_get(a, "n")), 1);
	assert_int_equal(json_integer_value(json_object_get(b, "n")), 2);
	assert_null(c);
	json_decref(a);
	json_decref(b);
}

static void test_ipc_partial_line_waits_for_rest(void **state)
{
	struct fx *f = *state;
	json_t *got = NULL;

	write_str(f->sv[0], "{\"op\":\"sta");
	assert_int_equal(nl_linebuf_fill(&f->lb, f->sv[1]), 1);
	assert_int_equal(nl_linebuf_take(&f->lb, &got, f->err, sizeof(f->err)), 0);
	assert_null(got);
	assert_int_equal(nl_linebuf_fill(&f->lb, f->sv[1]), 0); /* nothing more yet: would block */
	write_str(f->sv[0], "tus\"}\n");
	assert_int_equal(nl_linebuf_fill(&f->lb, f->sv[1]), 1);
	assert_int_equal(nl_linebuf_take(&f->lb, &got, f->err, sizeof(f->err)), 1);
	assert_string_equal(json_string_value(json_object_get(got, "op")), "status");
	json_decref(got);
}

static void test_ipc_consumed_bytes_are_wiped(void **state)
{
	struct fx *f = *state;
	const char *msg = "{\"device_code\":\"SECRETSECRET\"}\n{\"n\":";
	json_t *got = NULL;
	size_t i;

	write_str(f->sv[0], msg);
	assert_int_equal(nl_linebuf_fill(&f->lb, f->sv[1]), 1);
	assert_int_equal(nl_linebuf_take(&f->lb, &got, f->err, sizeof(f->err)), 1);
	assert_int_equal(f->lb.len, 5);
	assert_memory_equal(f->lb.buf, "{\"n\":", 5);
	for (i = f->lb.len; i < strlen(msg); i++)
		assert_int_equal(f->lb.buf[i], 0);
	nl_linebuf_clear(&f->lb);
	assert_int_equal(f->lb.len, 0);
	for (i = 0; i < strlen(msg); i++)
		assert_int_equal(f->lb.buf[i], 0);
	json_decref(got);
}

static void test_ipc_recv_times_out(void **state)
{
	struct fx *f = *state;
	json_t *got = NULL;
	int64_t t0 = nl_mono_ms(), dt;

	write_str(f->sv[0], "{\"partial\":");
	assert_int_equal(nl_ipc_recv(f->sv[1], &f->lb, 150, &got), NL_ERR_TIMEOUT);
	dt = nl_mono_ms() - t0;
	assert_true(dt >= 140);
	assert_true(dt < 3000);
	assert_null(got);
}

static void test_ipc_eof_is_closed(void **state)
{
	struct fx *f = *state;
	json_t *got = NULL;

	close(f->sv[0]);
	f->sv[0] = -1;
	assert_int_equal(nl_ipc_recv(f->sv[1], &f->lb, 1000, &got), NL_ERR_CLOSED);
	assert_int_equal(nl_linebuf_fill(&f->lb, f->sv[1]), NL_ERR_CLOSED);
}

static void test_ipc_send_to_closed_peer_no_sigpipe(void **state)
{
	struct fx *f = *state;
	json_t *msg = json_pack("{s:s}", "op", "status");

	close(f->sv[1]);
	f->sv[1] = -1;
	/* without MSG_NOSIGNAL this would kill the test program */
	assert_int_equal(nl_ipc_send(f->sv[0], msg, 1000), NL_ERR_CLOSED);
	json_decref(msg);
}

static void test_ipc_send_refuses_non_object(void **state)
{
	struct fx *f = *state;
	json_t *msg = json_pack("[i]", 1);

	assert_int_equal(nl_ipc_send(f->sv[0], msg, 1000), NL_ERR_INVALID);
	json_decref(msg);
}

static void test_ipc_connect_missing_path_unavailable(void **state)
{
	int fd = -1;
	(void)state;

	assert_int_equal(nl_ipc_connect("/nonexistent/nhslogin-test/nhslogind.sock", 500, &fd),
	                 NL_ERR_UNAVAILABLE);
	assert_int_equal(fd, -1);
}

static void test_ipc_connect_overlong_path_refused(void **state)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	int fd = -1;
	(void)state;

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(nl_ipc_connect(path, 500, &fd), NL_ERR_TOO_BIG);
	assert_int_equal(fd, -1);
}

static void test_ipc_connect_to_listener_and_exchange(void **state)
{
	struct fx *f = *state;
	char dir[] = "/tmp/nl-ipc-XXXXXX";
	char path[sizeof(dir) + 16];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	json_t *msg = json_pack("{s:b}", "ok", 1), *got = NULL;
	int lfd, cfd = -1, afd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(nl_ipc_connect(path, 1000, &cfd), 0);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	assert_int_equal(nl_ipc_send(afd, msg, 1000), 0);
	assert_int_equal(nl_ipc_recv(cfd, &f->lb, 1000, &got), 0);
	assert_true(json_equal(msg, got));
	close(afd);
	close(cfd);
	close(lfd);
	unlink(path);
	rmdir(dir);
	json_decref(msg);
	json_decref(got);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_ipc_round_trip),
	    T(test_ipc_line_of_exactly_max_accepted),
	    T(test_ipc_line_one_byte_over_max_too_big),
	    T(test_ipc_send_of_max_message_arrives_and_one_more_is_refused),
	    T(test_ipc_malformed_line_invalid_then_next_line_parses),
	    T(test_ipc_non_object_line_rejected),
	    T(test_ipc_duplicate_keys_rejected),
	    T(test_ipc_two_messages_in_one_write_both_taken),
	    T(test_ipc_partial_line_waits_for_rest),
	    T(test_ipc_consumed_bytes_are_wiped),
	    T(test_ipc_recv_times_out),
	    T(test_ipc_eof_is_closed),
	    T(test_ipc_send_to_closed_peer_no_sigpipe),
	    T(test_ipc_send_refuses_non_object),
	    T(test_ipc_connect_missing_path_unavailable),
	    T(test_ipc_connect_overlong_path_refused),
	    T(test_ipc_connect_to_listener_and_exchange),
	};
#undef T
	return cmocka_run_group_tests_name("ipc", tests, NULL, NULL);
}
