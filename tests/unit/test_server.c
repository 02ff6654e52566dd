/* The socket server over a real Unix socket, its loop in a thread: framing, errors, dispatch,
 * long-polled waits, cancellation on close, peer checks and device mode. The provider, the token
 * cache and the bridge are replaced at link time (-Wl,--wrap) by the fakes below. */
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

/* ---- fakes (the linker sends the server's calls here) ---- */

static int provider_down, flush_calls, device_polls;

int __wrap_nl_oidc_ready(struct nl_oidc *o, char *err, size_t errlen);
bool __wrap_nl_oidc_has_device_endpoint(struct nl_oidc *o);
int __wrap_nl_oidc_device_start(struct nl_oidc *o, struct nl_device_auth *out, char *err, size_t errlen);
int __wrap_nl_oidc_device_poll(struct nl_oidc *o, const char *device_code, struct nl_grant_result *res);
void __wrap_nl_device_auth_clear(struct nl_device_auth *d);
void __wrap_nl_identity_clear(struct nl_identity *id);
void __wrap_nl_oidc_get_stats(struct nl_oidc *o, struct nl_oidc_stats *st);
void __wrap_nl_oidc_flush(struct nl_oidc *o);
bool __wrap_nl_tokcache_reuse(struct nl_tokcache *tc, const struct nl_config *cfg, const char *user,
                              const struct nl_reuse_place *where, time_t now, const char **why);
size_t __wrap_nl_tokcache_count(struct nl_tokcache *tc);
void __wrap_nl_tokcache_flush(struct nl_tokcache *tc);
int __wrap_nl_bridge_verification_uri(const struct nl_bridge *b, const char *user_code, char **uri,
                                      char **uri_complete);
enum nl_reason __wrap_nl_signin_complete(const struct nl_config *cfg, struct nl_flows *fl,
                                         struct nl_tokcache *tc, const char *flow_id, const char *flow_user,
                                         enum nl_outcome outcome, const struct nl_identity *id,
                                         const char *detail);

int __wrap_nl_oidc_ready(struct nl_oidc *o, char *err, size_t errlen)
{
	(void)o;
	if (__atomic_load_n(&provider_down, __ATOMIC_SEQ_CST)) {
		snprintf(err, errlen, "discovery: connection refused");
		return NL_ERR_NETWORK;
	}
	return 0;
}

bool __wrap_nl_oidc_has_device_endpoint(struct nl_oidc *o)
{
	(void)o;
	return true;
}

int __wrap_nl_oidc_device_start(struct nl_oidc *o, struct nl_device_auth *out, char *err, size_t errlen)
{
	(void)o;
	(void)err;
	(void)errlen;
	memset(out, 0, sizeof(*out));
	out->device_code = strdup("provider-device-code");
	out->user_code = strdup("WDJB-MJHT");
	out->verification_uri = strdup("https://provider.test/device");
	out->expires_in = 600;
	out->interval = 1;
	return 0;
}

/* Pending once, then signed in. */
int __wrap_nl_oidc_device_poll(struct nl_oidc *o, const char *device_code, struct nl_grant_result *res)
{
	(void)o;
	memset(res, 0, sizeof(*res));
	if (strcmp(device_code, "provider-device-code") != 0) {
		res->outcome = NL_OUT_DENIED;
		return NL_ERR_DENIED;
	}
	res->outcome =
	    __atomic_add_fetch(&device_polls, 1, __ATOMIC_SEQ_CST) < 2 ? NL_OUT_PENDING : NL_OUT_OK;
	return 0;
}

void __wrap_nl_device_auth_clear(struct nl_device_auth *d)
{
	nl_free_secret(d->device_code);
	free(d->user_code);
	free(d->verification_uri);
	free(d->verification_uri_complete);
	memset(d, 0, sizeof(*d));
}

void __wrap_nl_identity_clear(struct nl_identity *id)
{
	memset(id, 0, sizeof(*id));
}

void __wrap_nl_oidc_get_stats(struct nl_oidc *o, struct nl_oidc_stats *st)
{
	(void)o;
	memset(st, 0, sizeof(*st));
	st->discovery_fetched_at = nl_now() - 120;
	snprintf(st->last_error, sizeof(st->last_error), "jwks: timeout");
}

void __wrap_nl_oidc_flush(struct nl_oidc *o)
{
	(void)o;
	__atomic_add_fetch(&flush_calls, 1, __ATOMIC_SEQ_CST);
}

bool __wrap_nl_tokcache_reuse(struct nl_tokcache *tc, const struct nl_config *cfg, const char *user,
                              const struct nl_reuse_place *where, time_t now, const char **why)
{
	(void)tc;
	(void)cfg;
	(void)where;
	(void)now;
	(void)why;
	return strcmp(user, "reuser") == 0;
}

size_t __wrap_nl_tokcache_count(struct nl_tokcache *tc)
{
	(void)tc;
	return 2;
}

void __wrap_nl_tokcache_flush(struct nl_tokcache *tc)
{
	(void)tc;
	__atomic_add_fetch(&flush_calls, 1, __ATOMIC_SEQ_CST);
}

int __wrap_nl_bridge_verification_uri(const struct nl_bridge *b, const char *user_code, char **uri,
                                      char **uri_complete)
{
	(void)b;
	*uri = strdup("https://bridge.test/d");
	if (asprintf(uri_complete, "https://bridge.test/d?code=%s", user_code) < 0)
		*uri_complete = NULL;
	return *uri != NULL && *uri_complete != NULL ? 0 : NL_ERR_NOMEM;
}

enum nl_reason __wrap_nl_signin_complete(const struct nl_config *cfg, struct nl_flows *fl,
                                         struct nl_tokcache *tc, const char *flow_id, const char *flow_user,
                                         enum nl_outcome outcome, const struct nl_identity *id,
                                         const char *detail)
{
	enum nl_reason reason = outcome == NL_OUT_OK ? NL_REASON_NONE : NL_REASON_DENIED;
	(void)cfg;
	(void)tc;
	(void)id;
	nl_flows_finish(fl, flow_id, reason, detail);
	return reason;
}

/* ---- the server in a thread ---- */

struct fx {
	char dir[64], sockdir[96], sock[128];
	struct nl_config cfg;
	struct nl_flows *fl;
	struct nl_device *dev;
	struct nl_server *srv;
	int efd;
	pthread_t thread;
};

static void *run_server(void *arg)
{
	struct fx *fx = arg;
	nl_server_run(fx->srv);
	return NULL;
}

static int setup_mode(void **state, enum nl_flow_mode mode)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct nl_server_ctx ctx = {0};
	char err[256] = "";
	static int dummy;

	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/nl-test-server-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	/* The socket's directory does not exist yet: the server makes it. */
	snprintf(fx->sockdir, sizeof(fx->sockdir), "%s/run", fx->dir);
	snprintf(fx->sock, sizeof(fx->sock), "%s/nhslogind.sock", fx->sockdir);
	fx->cfg.environment = "test";
	fx->cfg.env.issuer = "https://issuer.test";
	fx->cfg.env.flow = mode;
	fx->cfg.socket_path = fx->sock;
	fx->cfg.flow_ttl = 300;
	fx->cfg.max_flows = 64;
	fx->cfg.max_flows_per_user = 3;
	fx->cfg.wait_max = 25;
	fx->cfg.code_attempts = 10;
	fx->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(fx->efd >= 0);
	assert_int_equal(nl_flows_new(&fx->cfg, fx->efd, &fx->fl), 0);
	if (mode == NL_FLOW_DEVICE)
		assert_int_equal(nl_device_start(&fx->cfg, fx->fl, (struct nl_oidc *)&dummy, NULL, &fx->dev),
		                 0);
	ctx.cfg = &fx->cfg;
	ctx.flows = fx->fl;
	ctx.oidc = (struct nl_oidc *)&dummy;
	ctx.tc = (struct nl_tokcache *)&dummy;
	ctx.bridge = (struct nl_bridge *)&dummy;
	ctx.device = fx->dev;
	ctx.notify_fd = fx->efd;
	ctx.signal_fd = -1;
	if (nl_server_new(&ctx, &fx->srv, err, sizeof(err)) != 0)
		fail_msg("nl_server_new: %s", err);
	assert_int_equal(pthread_create(&fx->thread, NULL, run_server, fx), 0);
	provider_down = 0;
	*state = fx;
	return 0;
}

static int setup(void **state)
{
	return setup_mode(state, NL_FLOW_BRIDGE);
}

static int setup_device(void **state)
{
	return setup_mode(state, NL_FLOW_DEVICE);
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	struct stat st;

	nl_server_stop(fx->srv);
	pthread_join(fx->thread, NULL);
	nl_server_free(fx->srv);
	assert_int_equal(lstat(fx->sock, &st), -1); /* the socket is gone */
	nl_device_stop(fx->dev);
	nl_flows_free(fx->fl);
	close(fx->efd);
	rmdir(fx->sockdir);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* ---- a client ---- */

/* Connected with the daemon client; lines go out raw and replies are read with the framing, so
 * that tests can send malformed or pipelined lines. */
struct cl {
	int fd;
	struct nl_linebuf *lb;
};

static struct cl cl_open(struct fx *fx)
{
	struct nl_proto_client pc;
	struct cl c = {.fd = -1};
	assert_int_equal(nl_proto_open(&pc, fx->sock, 2000, NL_PROTO_PEER_ANY), 0);
	c.fd = pc.fd;
	c.lb = calloc(1, sizeof(*c.lb));
	assert_non_null(c.lb);
	return c;
}

static void cl_close(struct cl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->lb);
	c->lb = NULL;
}

static void cl_send_raw(struct cl *c, const char *data, size_t len)
{
	size_t off = 0;
	int64_t deadline = nl_mono_ms() + 3000;
	while (off < len && nl_mono_ms() < deadline) {
		ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = {.fd = c->fd, .events = POLLOUT};
			poll(&p, 1, 100);
		} else {
			return; /* the server closed: fine for the tests that provoke it */
		}
	}
}

static void cl_send(struct cl *c, const char *line)
{
	cl_send_raw(c, line, strlen(line));
	cl_send_raw(c, "\n", 1);
}

static json_t *cl_recv(struct cl *c, int timeout_ms)
{
	json_t *m = NULL;
	int r = nl_ipc_recv(c->fd, c->lb, timeout_ms, &m);
	if (r != 0)
		fail_msg("no reply: %s", nl_strerror(r));
	return m;
}

static json_t *cl_call(struct cl *c, const char *line)
{
	cl_send(c, line);
	return cl_recv(c, 3000);
}

static void assert_error(json_t *m, const char *word)
{
	assert_non_null(m);
	assert_true(json_is_false(json_object_get(m, "ok")));
	assert_string_equal(nl_json_str(m, "error"), word);
	assert_non_null(nl_json_str(m, "message"));
	json_decref(m);
}

/* True if the server closed c (EOF or reset) within timeout_ms. */
static bool cl_closed(struct cl *c, int timeout_ms)
{
	json_t *m = NULL;
	int r = nl_ipc_recv(c->fd, c->lb, timeout_ms, &m);
	json_decref(m);
	return r == NL_ERR_CLOSED || r == NL_ERR_IO;
}

/* start for user; the device_code in a new string. */
static char *start_flow(struct cl *c, const char *user)
{
	char line[256];
	json_t *m;
	char *dc;

	snprintf(line, sizeof(line),
	         "{\"op\":\"start\",\"user\":\"%s\",\"service\":\"sshd\",\"tty\":\"ssh\"}", user);
	m = cl_call(c, line);
	assert_true(json_is_true(json_object_get(m, "ok")));
	assert_string_equal(nl_json_str(m, "status"), "pending");
	assert_non_null(nl_json_str(m, "device_code"));
	dc = strdup(nl_json_str(m, "device_code"));
	json_decref(m);
	return dc;
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
	    cmocka_unit_test_setup_teardown(test_server_status_reports_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_oversized_line_gets_too_big_and_close, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_server_line_of_exactly_the_limit_is_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_malformed_json_gets_bad_request_and_stays_open, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_server_unknown_op_gets_unknown_op, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_answers_pipelined_requests_in_order, setup, teardown),
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
	    cmocka_unit_test_setup_teardown(test_server_admin_ops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_garbage_bytes_never_crash, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_refuses_other_users, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_device_mode_polls_provider_until_signed_in,
	                                    setup_device, teardown),
	};
	alarm(120); /* the whole program times out on its own */
	return cmocka_run_group_tests_name("server", tests, NULL, NULL);
}
