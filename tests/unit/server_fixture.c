/* The socket server tests' fixture, shared by the tests/unit/test_server_*.c programs: the fakes
 * the linker sends the server's calls to (-Wl,--wrap), the server in a thread made anew for each
 * test, and a client that sends raw lines. */
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

/* ---- fakes (the linker sends the server's calls here) ---- */

int provider_down, flush_calls, device_polls;

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

int setup(void **state)
{
	return setup_mode(state, NL_FLOW_BRIDGE);
}

int setup_device(void **state)
{
	return setup_mode(state, NL_FLOW_DEVICE);
}

int teardown(void **state)
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

struct cl cl_open(struct fx *fx)
{
	struct nl_proto_client pc;
	struct cl c = {.fd = -1};
	assert_int_equal(nl_proto_open(&pc, fx->sock, 2000, NL_PROTO_PEER_ANY), 0);
	c.fd = pc.fd;
	c.lb = calloc(1, sizeof(*c.lb));
	assert_non_null(c.lb);
	return c;
}

void cl_close(struct cl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->lb);
	c->lb = NULL;
}

void cl_send_raw(struct cl *c, const char *data, size_t len)
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

void cl_send(struct cl *c, const char *line)
{
	cl_send_raw(c, line, strlen(line));
	cl_send_raw(c, "\n", 1);
}

json_t *cl_recv(struct cl *c, int timeout_ms)
{
	json_t *m = NULL;
	int r = nl_ipc_recv(c->fd, c->lb, timeout_ms, &m);
	if (r != 0)
		fail_msg("no reply: %s", nl_strerror(r));
	return m;
}

json_t *cl_call(struct cl *c, const char *line)
{
	cl_send(c, line);
	return cl_recv(c, 3000);
}

void assert_error(json_t *m, const char *word)
{
	assert_non_null(m);
	assert_true(json_is_false(json_object_get(m, "ok")));
	assert_string_equal(nl_json_str(m, "error"), word);
	assert_non_null(nl_json_str(m, "message"));
	json_decref(m);
}

/* start for user; the device_code in a new string. */
char *start_flow(struct cl *c, const char *user)
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
