/* Socket framing over socketpairs and a real Unix socket: one JSON object a line, the size
 * bound, bad lines, partial and batched reads, timeouts, EOF, wiping of consumed bytes. Then the
 * protocol's word tables and the one daemon client (nl_proto). */
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
#include "nl_json.h"
#include "nl_proto.h"
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

/* A listener at a fresh path in dir; the path in path (sizeof(dir) + 16 bytes). */
static int listen_at(char *dir, char *path, size_t pathlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int lfd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, pathlen, "%s/s.sock", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	return lfd;
}

static void test_ipc_connect_to_listener_and_exchange(void **state)
{
	struct fx *f = *state;
	char dir[] = "/tmp/nl-ipc-XXXXXX";
	char path[sizeof(dir) + 16];
	json_t *msg = json_pack("{s:b}", "ok", 1), *got = NULL;
	int lfd = listen_at(dir, path, sizeof(path)), cfd = -1, afd;

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

/* ---- the protocol's words and the client (nl_proto) ---- */

/* Every word goes both ways, and the words are the ones doc/protocol.md fixes. */
static void test_proto_words_round_trip(void **state)
{
	static const char *const op_words[] = {"start",  "wait",  "number",      "cancel",
	                                       "status", "flows", "flow_cancel", "flush"};
	static const char *const status_words[] = {"pending", "number", "approved", "denied"};
	static const char *const error_words[] = {"bad_request", "forbidden", "too_big",     "unknown_op",
	                                          "not_found",   "limit",     "unavailable", "internal"};

	(void)state;
	for (size_t i = 0; i < sizeof(op_words) / sizeof(op_words[0]); i++) {
		assert_int_equal(nl_op_of(op_words[i]), NL_OP_START + (int)i);
		assert_string_equal(nl_op_word(nl_op_of(op_words[i])), op_words[i]);
		assert_int_equal(nl_op_root_only(nl_op_of(op_words[i])), i >= 5);
	}
	for (size_t i = 0; i < sizeof(status_words) / sizeof(status_words[0]); i++)
		assert_string_equal(nl_status_word(nl_status_of(status_words[i])), status_words[i]);
	for (size_t i = 0; i < sizeof(error_words) / sizeof(error_words[0]); i++)
		assert_string_equal(nl_error_word(nl_error_word_of(error_words[i])), error_words[i]);
	assert_int_equal(nl_op_of("START"), NL_OP_UNKNOWN);
	assert_int_equal(nl_op_of(NULL), NL_OP_UNKNOWN);
	assert_null(nl_op_word(NL_OP_UNKNOWN));
	assert_false(nl_op_root_only(NL_OP_UNKNOWN));
	assert_int_equal(nl_status_of(NULL), NL_STATUS_NONE);
	assert_int_equal(nl_status_of("maybe"), NL_STATUS_OTHER);
	assert_null(nl_status_word(NL_STATUS_OTHER));
	assert_int_equal(nl_error_word_of("oops"), NL_EWORD_OTHER);
}

/* A reply's status counts only when it is ok; its error word only when it is not. */
static void test_proto_reply_status_and_error(void **state)
{
	json_t *ok = json_pack("{s:b,s:s}", "ok", 1, "status", "approved");
	json_t *bad = json_pack("{s:b,s:s,s:s}", "ok", 0, "status", "approved", "error", "not_found");
	json_t *bare = json_pack("{s:s}", "status", "pending");

	(void)state;
	assert_int_equal(nl_proto_status(ok), NL_STATUS_APPROVED);
	assert_int_equal(nl_proto_error(ok), NL_EWORD_NONE);
	assert_int_equal(nl_proto_status(bad), NL_STATUS_NONE);
	assert_int_equal(nl_proto_error(bad), NL_EWORD_NOT_FOUND);
	assert_int_equal(nl_proto_status(bare), NL_STATUS_NONE);
	assert_int_equal(nl_proto_error(bare), NL_EWORD_OTHER);
	assert_int_equal(nl_proto_status(NULL), NL_STATUS_NONE);
	json_decref(ok);
	json_decref(bad);
	json_decref(bare);
}

/* The client's call and long-poll: the request as it goes on the wire, the reply back; the peer
 * is our own uid, which NL_PROTO_PEER_DAEMON accepts. */
static void test_proto_client_call_and_wait(void **state)
{
	struct fx *f = *state;
	char dir[] = "/tmp/nl-proto-XXXXXX", path[sizeof(dir) + 16];
	struct nl_proto_client c;
	json_t *req = json_pack("{s:s}", "op", "status");
	json_t *pending = json_pack("{s:b,s:s}", "ok", 1, "status", "pending");
	json_t *got = NULL, *reply = NULL;
	int lfd = listen_at(dir, path, sizeof(path)), afd;

	assert_int_equal(nl_proto_open(&c, path, 1000, NL_PROTO_PEER_DAEMON), 0);
	assert_int_equal(c.peer, geteuid());
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	/* The reply is already there when the call reads. */
	assert_int_equal(nl_ipc_send(afd, pending, 1000), 0);
	assert_int_equal(nl_proto_call(&c, req, 1000, &reply), 0);
	assert_int_equal(nl_ipc_recv(afd, &f->lb, 1000, &got), 0);
	assert_true(json_equal(req, got));
	assert_int_equal(nl_proto_status(reply), NL_STATUS_PENDING);
	json_decref(got);
	json_decref(reply);
	assert_int_equal(nl_ipc_send(afd, pending, 1000), 0);
	assert_int_equal(nl_proto_wait(&c, "dc-1", 3, &reply), 0);
	assert_int_equal(nl_ipc_recv(afd, &f->lb, 1000, &got), 0);
	assert_string_equal(nl_json_str(got, "op"), "wait");
	assert_string_equal(nl_json_str(got, "device_code"), "dc-1");
	assert_int_equal(json_integer_value(json_object_get(got, "timeout")), 3);
	json_decref(got);
	json_decref(reply);
	/* Closed by the daemon: the call says so; closing twice is fine. */
	close(afd);
	assert_int_equal(nl_proto_call(&c, req, 1000, &reply), NL_ERR_CLOSED);
	assert_null(reply);
	nl_proto_close(&c);
	nl_proto_close(&c);
	assert_int_equal(c.fd, -1);
	close(lfd);
	unlink(path);
	rmdir(dir);
	json_decref(req);
	json_decref(pending);
}

/* A refusal the daemon wrote before closing is the call's reply, even if sending failed. */
static void test_proto_client_reads_a_refusal_after_close(void **state)
{
	char dir[] = "/tmp/nl-proto-XXXXXX", path[sizeof(dir) + 16];
	static const char refusal[] = "{\"ok\":false,\"error\":\"forbidden\",\"message\":\"no\"}\n";
	struct nl_proto_client c;
	json_t *req = json_pack("{s:s}", "op", "status"), *reply = NULL;
	int lfd = listen_at(dir, path, sizeof(path)), afd;

	(void)state;
	assert_int_equal(nl_proto_open(&c, path, 1000, NL_PROTO_PEER_ANY), 0);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	write_str(afd, refusal);
	close(afd);
	assert_int_equal(nl_proto_call(&c, req, 1000, &reply), 0);
	assert_int_equal(nl_proto_error(reply), NL_EWORD_FORBIDDEN);
	json_decref(reply);
	nl_proto_close(&c);
	close(lfd);
	unlink(path);
	rmdir(dir);
	json_decref(req);
}

/* Nothing listening: unavailable, and the client stays closed. */
static void test_proto_client_open_missing_path_unavailable(void **state)
{
	struct nl_proto_client c;

	(void)state;
	assert_int_equal(nl_proto_open(&c, "/nonexistent/nhslogin-test/s.sock", 500, NL_PROTO_PEER_DAEMON),
	                 NL_ERR_UNAVAILABLE);
	assert_int_equal(c.fd, -1);
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
	    T(test_proto_words_round_trip),
	    T(test_proto_reply_status_and_error),
	    T(test_proto_client_call_and_wait),
	    T(test_proto_client_reads_a_refusal_after_close),
	    T(test_proto_client_open_missing_path_unavailable),
	};
#undef T
	return cmocka_run_group_tests_name("ipc", tests, NULL, NULL);
}
