/* The store tests' fixture, shared by the tests/cluster/test_store_*.c programs: a fresh
 * redis-server for each test, stores and raw connections to it, flows to put in it, and a
 * subscriber's events. */
#include "config.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "nl_err.h"
#include "nl_time.h"
#include "redisproc.h"
#include "skip.h"
#include "store.h"
#include "store_fixture.h"

const unsigned char hkey[32] = "0123456789abcdef0123456789abcdef";

/* ---- Helpers ---- */

int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

struct nl_store *open_url(const char *url)
{
	struct nl_store_config cfg = {.url = url,
	                              .hash_key = hkey,
	                              .hash_key_len = sizeof(hkey),
	                              .connect_timeout_ms = 200,
	                              .command_timeout_ms = CMD_TIMEOUT_MS};
	struct nl_store *st = NULL;
	char err[200] = "";
	int r = nl_store_open(&cfg, &st, err, sizeof(err));
	if (r != 0)
		print_error("nl_store_open: %s\n", err);
	assert_int_equal(r, 0);
	return st;
}

struct nl_store *open_tcp(const struct redisproc *rp)
{
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redisproc_port(rp));
	return open_url(url);
}

static redisContext *raw_connect(const struct redisproc *rp)
{
	redisContext *c = redisConnect("127.0.0.1", redisproc_port(rp));
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	return c;
}

/* A raw command whose reply the caller frees. */
redisReply *raw(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	redisReply *rep;
	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(rep);
	return rep;
}

void raw_ok(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	redisReply *rep;
	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(rep);
	assert_int_not_equal(rep->type, REDIS_REPLY_ERROR);
	freeReplyObject(rep);
}

/* The one key matching pattern (KEYS: fine on a test server). */
void one_key(redisContext *c, const char *pattern, char *out, size_t len)
{
	redisReply *rep = raw(c, "KEYS %s", pattern);
	assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
	assert_int_equal(rep->elements, 1);
	snprintf(out, len, "%s", rep->element[0]->str);
	freeReplyObject(rep);
}

/* A record as the bridge will keep one: no device code or state in it. */
json_t *sample_record(void)
{
	json_t *o = json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:b}", "user", "alice", "service", "sshd",
	    "rhost", "10.1.2.3", "tty", "ssh", "nonce", "b1R7x0mK3s9QpZ2vL8cN5eT4yU6wA1dF0gH3jK7lM9n",
	    "verifier", "Zq8Xw2Ve5Rt7Yu1Io3Pa6Sd9Fg4Hj0Kl2Zx5Cv8Bn1M", "challenge",
	    "Kd93mQ0xP2vL7sN4eT8yU1wA5dF6gH3jK0lM9nB2cR5", "started_at", (json_int_t)1764928800, "expires_at",
	    (json_int_t)1764929100, "host", "ws-0123.example.nhs.uk", "number_match", 0);
	assert_non_null(o);
	return o;
}

void flow_keys(int n, struct nl_store_flow_keys *k, char bufs[4][64])
{
	snprintf(bufs[0], 64, "f-%016x", (unsigned)n);
	snprintf(bufs[1], 64, "KPWD%04d", n);
	snprintf(bufs[2], 64, "device-code-secret-%d-XXXXXXXXXXXXXXXXXXXXXXXX", n);
	snprintf(bufs[3], 64, "state-secret-%d-YYYYYYYYYYYYYYYYYYYYYYYYYYYYYY", n);
	k->id = bufs[0];
	k->user_code = bufs[1];
	k->device_code = bufs[2];
	k->state = bufs[3];
}

int create_flow(struct nl_store *st, int n, unsigned ttl)
{
	struct nl_store_flow_keys k;
	char bufs[4][64];
	json_t *rec = sample_record();
	int r;
	flow_keys(n, &k, bufs);
	r = nl_store_flow_create(st, &k, rec, ttl);
	json_decref(rec);
	return r;
}

void on_event(void *arg, enum nl_store_event ev, const char *id)
{
	struct events *e = arg;
	pthread_mutex_lock(&e->mu);
	if (ev == NL_STORE_SUBSCRIBED)
		e->subscribed++;
	else if (ev == NL_STORE_LOST)
		e->lost++;
	else {
		e->ended++;
		e->ended_at_us = now_us();
		snprintf(e->last_id, sizeof(e->last_id), "%s", id);
	}
	pthread_mutex_unlock(&e->mu);
}

/* Wait until *counter reaches target, at most timeout_ms. */
bool wait_count(struct events *e, const int *counter, int target, int timeout_ms)
{
	int64_t end = nl_mono_ms() + timeout_ms;
	for (;;) {
		bool done;
		pthread_mutex_lock(&e->mu);
		done = *counter >= target;
		pthread_mutex_unlock(&e->mu);
		if (done)
			return true;
		if (nl_mono_ms() > end)
			return false;
		sleep_ms(1);
	}
}

struct events *events_new(void)
{
	struct events *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	pthread_mutex_init(&e->mu, NULL);
	return e;
}

/* ---- Fixtures: a fresh redis-server a test; teardowns stop everything ---- */

int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	*state = fx;
	if (fx == NULL)
		return -1;
	if (!redisproc_available(&fx->why))
		return 0;
	if (redisproc_start(NULL, &fx->rs) != 0)
		return -1;
	fx->st = open_tcp(fx->rs);
	fx->raw = raw_connect(fx->rs);
	return 0;
}

int teardown(void **state)
{
	struct fx *fx = *state;
	nl_store_sub_stop(fx->sub);
	nl_store_close(fx->st);
	nl_store_close(fx->st2);
	if (fx->raw != NULL)
		redisFree(fx->raw);
	redisproc_free(fx->sentinel);
	redisproc_free(fx->replica);
	redisproc_free(fx->rs);
	free(fx);
	return 0;
}
