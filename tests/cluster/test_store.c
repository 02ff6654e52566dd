/* libnlstore against real Redis processes: flows and their indexes, the single-use claim, wake-ups
 * across connections, counters, the replay cache, hostile values, Redis down, restarted, and a
 * Sentinel failover. Measured figures are printed as TAP comments ("# ..."). */
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

#define CMD_TIMEOUT_MS 500
#define MASTER_NAME    "nlmaster"

static const unsigned char hkey[32] = "0123456789abcdef0123456789abcdef";

struct fx {
	const char *why; /* set: skip */
	struct redisproc *rs, *replica, *sentinel;
	struct nl_store *st, *st2;
	struct nl_store_sub *sub;
	redisContext *raw;
};

/* ---- Helpers ---- */

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static struct nl_store *open_url(const char *url)
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

static struct nl_store *open_tcp(const struct redisproc *rp)
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
static redisReply *raw(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	redisReply *rep;
	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(rep);
	return rep;
}

static void raw_ok(redisContext *c, const char *fmt, ...)
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
static void one_key(redisContext *c, const char *pattern, char *out, size_t len)
{
	redisReply *rep = raw(c, "KEYS %s", pattern);
	assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
	assert_int_equal(rep->elements, 1);
	snprintf(out, len, "%s", rep->element[0]->str);
	freeReplyObject(rep);
}

/* A record as the bridge will keep one: no device code or state in it. */
static json_t *sample_record(void)
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

static void flow_keys(int n, struct nl_store_flow_keys *k, char bufs[4][64])
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

static int create_flow(struct nl_store *st, int n, unsigned ttl)
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

/* Events a subscriber reported. */
struct events {
	pthread_mutex_t mu;
	int subscribed, lost, ended;
	char last_id[NL_STORE_ID_MAX + 1];
	int64_t ended_at_us;
};

static void on_event(void *arg, enum nl_store_event ev, const char *id)
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
static bool wait_count(struct events *e, const int *counter, int target, int timeout_ms)
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

static struct events *events_new(void)
{
	struct events *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	pthread_mutex_init(&e->mu, NULL);
	return e;
}

/* ---- Fixtures: a fresh redis-server a test; teardowns stop everything ---- */

static int setup(void **state)
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

static int teardown(void **state)
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

#define NEED_REDIS(fx)                                                                                       \
	do {                                                                                                 \
		if ((fx)->why != NULL)                                                                       \
			skip_because("%s", (fx)->why);                                                       \
	} while (0)

/* ---- Flows ---- */

static void test_flow_found_by_each_index(void **state)
{
	struct fx *fx = *state;
	struct nl_store_flow_keys k;
	char bufs[4][64];
	struct nl_store_flow f;
	NEED_REDIS(fx);

	assert_int_equal(create_flow(fx->st, 1, 300), 0);
	flow_keys(1, &k, bufs);
	const struct {
		enum nl_store_by by;
		const char *key;
	} ways[] = {{NL_STORE_BY_ID, k.id},
	            {NL_STORE_BY_USER_CODE, k.user_code},
	            {NL_STORE_BY_DEVICE_CODE, k.device_code},
	            {NL_STORE_BY_STATE, k.state}};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(nl_store_flow_get(fx->st, ways[i].by, ways[i].key, &f), 0);
		assert_string_equal(f.id, k.id);
		assert_string_equal(json_string_value(json_object_get(f.rec, "user")), "alice");
		assert_null(f.outcome);
		assert_false(f.claimed);
		assert_true(f.ttl > 290 && f.ttl <= 300);
		nl_store_flow_clear(&f);
	}
	/* Unknown keys of each kind. */
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, "f-nope", &f), NL_ERR_NOT_FOUND);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_USER_CODE, "KPWD9999", &f), NL_ERR_NOT_FOUND);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_DEVICE_CODE, "other", &f), NL_ERR_NOT_FOUND);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_STATE, "other", &f), NL_ERR_NOT_FOUND);
	/* A device code is not a state: the indexes are separate. */
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_STATE, k.device_code, &f), NL_ERR_NOT_FOUND);
}

static void test_secrets_are_not_stored_in_clear(void **state)
{
	struct fx *fx = *state;
	struct nl_store_flow_keys k;
	char bufs[4][64];
	redisReply *keys;
	NEED_REDIS(fx);

	assert_int_equal(create_flow(fx->st, 2, 300), 0);
	flow_keys(2, &k, bufs);
	keys = raw(fx->raw, "KEYS *");
	assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
	assert_int_equal(keys->elements, 4);
	for (size_t i = 0; i < keys->elements; i++) {
		const char *name = keys->element[i]->str;
		redisReply *v = raw(fx->raw, "DUMP %s", name);
		assert_null(strstr(name, k.device_code));
		assert_null(strstr(name, k.state));
		assert_null(strstr(name, k.user_code));
		assert_int_equal(v->type, REDIS_REPLY_STRING);
		assert_null(memmem(v->str, v->len, k.device_code, strlen(k.device_code)));
		assert_null(memmem(v->str, v->len, k.state, strlen(k.state)));
		freeReplyObject(v);
	}
	freeReplyObject(keys);
}

static void test_user_code_collision_is_refused_atomically(void **state)
{
	struct fx *fx = *state;
	struct nl_store_flow_keys k1, k2;
	char b1[4][64], b2[4][64];
	struct nl_store_flow f;
	json_t *rec = sample_record();
	redisReply *n;
	NEED_REDIS(fx);

	flow_keys(3, &k1, b1);
	flow_keys(4, &k2, b2);
	assert_int_equal(nl_store_flow_create(fx->st, &k1, rec, 300), 0);
	k2.user_code = k1.user_code; /* a new flow drew the same user code */
	assert_int_equal(nl_store_flow_create(fx->st, &k2, rec, 300), NL_STORE_TAKEN);
	/* Nothing of the refused flow was written. */
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, k2.id, &f), NL_ERR_NOT_FOUND);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_DEVICE_CODE, k2.device_code, &f),
	                 NL_ERR_NOT_FOUND);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_STATE, k2.state, &f), NL_ERR_NOT_FOUND);
	n = raw(fx->raw, "DBSIZE");
	assert_int_equal(n->integer, 4);
	freeReplyObject(n);
	/* The code still names the first flow; the same id twice is refused too. */
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_USER_CODE, k1.user_code, &f), 0);
	assert_string_equal(f.id, k1.id);
	nl_store_flow_clear(&f);
	assert_int_equal(nl_store_flow_create(fx->st, &k1, rec, 300), NL_STORE_TAKEN);
	/* With a fresh code the second flow goes in. */
	k2.user_code = "KPWDFRSH";
	assert_int_equal(nl_store_flow_create(fx->st, &k2, rec, 300), 0);
	json_decref(rec);
}

static void assert_all_keys_expire(redisContext *c, long long max)
{
	redisReply *keys = raw(c, "KEYS *");
	assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
	assert_true(keys->elements > 0);
	for (size_t i = 0; i < keys->elements; i++) {
		redisReply *t = raw(c, "TTL %s", keys->element[i]->str);
		if (!(t->integer > 0 && t->integer <= max))
			fail_msg("%s has TTL %lld (want 1..%lld)", keys->element[i]->str, t->integer, max);
		freeReplyObject(t);
	}
	freeReplyObject(keys);
}

static void test_every_key_has_a_ttl(void **state)
{
	struct fx *fx = *state;
	long long n = 0, m1 = 0, m0 = 0;
	bool seen = true;
	json_t *outcome = json_pack("{s:s}", "result", "approved");
	NEED_REDIS(fx);

	assert_int_equal(create_flow(fx->st, 5, 120), 0);
	assert_all_keys_expire(fx->raw, 120);
	assert_int_equal(create_flow(fx->st, 6, 120), 0);
	assert_int_equal(nl_store_flow_end(fx->st, "f-0000000000000006", outcome, 60), 0);
	assert_int_equal(nl_store_count_add(fx->st, "10.9.8.7", 600, &n), 0);
	assert_int_equal(nl_store_minute_add(fx->st, "wrong-codes", 1764928800, &m1, &m0), 0);
	assert_int_equal(nl_store_replay_note(fx->st, "jti-1", 300, &seen), 0);
	assert_all_keys_expire(fx->raw, 600);
	json_decref(outcome);
}

/* Two threads (on separate connections of the pool) claim one state at once. */
struct claim_race {
	struct nl_store *st;
	const char *state;
	pthread_barrier_t *go;
	int result;
};

static void *claim_thread(void *arg)
{
	struct claim_race *c = arg;
	struct nl_store_flow f;
	pthread_barrier_wait(c->go);
	c->result = nl_store_flow_claim_state(c->st, c->state, &f);
	if (c->result == 0)
		nl_store_flow_clear(&f);
	return NULL;
}

static void test_two_concurrent_claims_exactly_one_wins(void **state)
{
	struct fx *fx = *state;
	NEED_REDIS(fx);

	fx->st2 = open_tcp(fx->rs);
	for (int round = 0; round < 50; round++) {
		struct nl_store_flow_keys k;
		char bufs[4][64];
		pthread_barrier_t go;
		pthread_t th[2];
		struct claim_race c[2];
		struct nl_store_flow f;

		assert_int_equal(create_flow(fx->st, 100 + round, 300), 0);
		flow_keys(100 + round, &k, bufs);
		pthread_barrier_init(&go, NULL, 2);
		for (int i = 0; i < 2; i++) {
			c[i] = (struct claim_race){i == 0 ? fx->st : fx->st2, k.state, &go, 99};
			assert_int_equal(pthread_create(&th[i], NULL, claim_thread, &c[i]), 0);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&go);
		assert_true((c[0].result == 0 && c[1].result == NL_ERR_NOT_FOUND) ||
		            (c[1].result == 0 && c[0].result == NL_ERR_NOT_FOUND));
		/* Claimed: the record says so, and a late replay finds nothing. */
		assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, k.id, &f), 0);
		assert_true(f.claimed);
		nl_store_flow_clear(&f);
		assert_int_equal(nl_store_flow_claim_state(fx->st, k.state, &f), NL_ERR_NOT_FOUND);
	}
}

static void test_end_publishes_a_wakeup_to_another_connection(void **state)
{
	struct fx *fx = *state;
	struct events *ev = events_new();
	json_t *outcome = json_pack("{s:s}", "result", "approved");
	struct nl_store_flow f;
	struct nl_store_flow_keys k;
	char bufs[4][64];
	int64_t t0, worst = 0, total = 0;
	const int rounds = 20;
	NEED_REDIS(fx);

	fx->st2 = open_tcp(fx->rs); /* the instance that has the waiter */
	assert_int_equal(nl_store_subscribe(fx->st2, on_event, ev, &fx->sub), 0);
	assert_true(wait_count(ev, &ev->subscribed, 1, 2000));
	for (int i = 0; i < rounds; i++) {
		assert_int_equal(create_flow(fx->st, 200 + i, 300), 0);
		flow_keys(200 + i, &k, bufs);
		t0 = now_us();
		assert_int_equal(nl_store_flow_end(fx->st, k.id, outcome, 60), 0);
		assert_true(wait_count(ev, &ev->ended, i + 1, 500));
		pthread_mutex_lock(&ev->mu);
		assert_string_equal(ev->last_id, k.id);
		total += ev->ended_at_us - t0;
		if (ev->ended_at_us - t0 > worst)
			worst = ev->ended_at_us - t0;
		pthread_mutex_unlock(&ev->mu);
	}
	printf(
	    "# wake-up latency (end on one connection to callback on another): mean %.2f ms, worst %.2f ms\n",
	    (double)total / rounds / 1000.0, (double)worst / 1000.0);
	assert_true(worst < 300000); /* 300 ms: milliseconds measured, slack for a loaded CI machine */
	/* The ended flow: readable by its device code, with its outcome; its user code and state gone. */
	assert_int_equal(nl_store_flow_get(fx->st2, NL_STORE_BY_DEVICE_CODE, k.device_code, &f), 0);
	assert_string_equal(json_string_value(json_object_get(f.outcome, "result")), "approved");
	nl_store_flow_clear(&f);
	assert_int_equal(nl_store_flow_get(fx->st2, NL_STORE_BY_USER_CODE, k.user_code, &f),
	                 NL_ERR_NOT_FOUND);
	assert_int_equal(nl_store_flow_claim_state(fx->st2, k.state, &f), NL_ERR_NOT_FOUND);
	/* Ending twice: refused, and nothing published. */
	assert_int_equal(nl_store_flow_end(fx->st, k.id, outcome, 60), NL_ERR_EXPIRED);
	assert_int_equal(nl_store_flow_end(fx->st, "f-none", outcome, 60), NL_ERR_NOT_FOUND);
	sleep_ms(50);
	assert_int_equal(ev->ended, rounds);
	json_decref(outcome);
	nl_store_sub_stop(fx->sub);
	fx->sub = NULL;
	free(ev);
}

static void test_ended_flow_stays_for_grace_then_delete_removes_all(void **state)
{
	struct fx *fx = *state;
	json_t *outcome = json_pack("{s:s}", "result", "denied");
	struct nl_store_flow f;
	struct nl_store_flow_keys k;
	char bufs[4][64];
	redisReply *n;
	NEED_REDIS(fx);

	assert_int_equal(create_flow(fx->st, 7, 5), 0);
	flow_keys(7, &k, bufs);
	assert_int_equal(nl_store_flow_end(fx->st, k.id, outcome, 90), 0);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_DEVICE_CODE, k.device_code, &f), 0);
	assert_true(f.ttl > 85 && f.ttl <= 90); /* past its own 5 s: the grace */
	nl_store_flow_clear(&f);
	/* The user code is free again for a new flow; deleting the old one leaves the new one's index. */
	assert_int_equal(create_flow(fx->st, 8, 300), 0);
	{
		struct nl_store_flow_keys k8;
		char b8[4][64];
		flow_keys(8, &k8, b8);
		k8.id = "f-reuse";
		k8.device_code = "dc-reuse";
		k8.state = "st-reuse";
		k8.user_code = k.user_code;
		json_t *rec = sample_record();
		assert_int_equal(nl_store_flow_create(fx->st, &k8, rec, 300), 0);
		json_decref(rec);
	}
	assert_int_equal(nl_store_flow_delete(fx->st, k.id), 0);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_USER_CODE, k.user_code, &f), 0);
	assert_string_equal(f.id, "f-reuse");
	nl_store_flow_clear(&f);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_DEVICE_CODE, k.device_code, &f),
	                 NL_ERR_NOT_FOUND);
	assert_int_equal(nl_store_flow_delete(fx->st, k.id), NL_ERR_NOT_FOUND);
	assert_int_equal(nl_store_flow_delete(fx->st, "f-reuse"), 0);
	assert_int_equal(nl_store_flow_delete(fx->st, "f-0000000000000008"), 0);
	n = raw(fx->raw, "DBSIZE");
	assert_int_equal(n->integer, 0);
	freeReplyObject(n);
	json_decref(outcome);
}

/* ---- Counters and the replay cache ---- */

static void test_replay_cache_says_new_then_seen(void **state)
{
	struct fx *fx = *state;
	bool seen = true;
	NEED_REDIS(fx);

	assert_int_equal(nl_store_replay_note(fx->st, "jti-abc", 300, &seen), 0);
	assert_false(seen);
	assert_int_equal(nl_store_replay_note(fx->st, "jti-abc", 300, &seen), 0);
	assert_true(seen);
	assert_int_equal(nl_store_replay_note(fx->st, "jti-abd", 300, &seen), 0);
	assert_false(seen);
	/* From another instance as well. */
	fx->st2 = open_tcp(fx->rs);
	assert_int_equal(nl_store_replay_note(fx->st2, "jti-abc", 300, &seen), 0);
	assert_true(seen);
}

static void test_wrong_code_counter_counts_within_its_window(void **state)
{
	struct fx *fx = *state;
	long long n = -1, m1 = -1, m0 = -1;
	NEED_REDIS(fx);

	for (long long i = 1; i <= 3; i++) {
		assert_int_equal(nl_store_count_add(fx->st, "2001:db8:1:2::/64", 1, &n), 0);
		assert_int_equal(n, i);
	}
	assert_int_equal(nl_store_count_get(fx->st, "2001:db8:1:2::/64", &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(nl_store_count_get(fx->st, "10.0.0.1", &n), 0);
	assert_int_equal(n, 0); /* another client: its own count */
	sleep_ms(1100);         /* the 1 s window passes */
	assert_int_equal(nl_store_count_get(fx->st, "2001:db8:1:2::/64", &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(nl_store_count_add(fx->st, "2001:db8:1:2::/64", 1, &n), 0);
	assert_int_equal(n, 1);
	/* The global per-minute count: this minute's and the last. */
	assert_int_equal(nl_store_minute_add(fx->st, "wrong", 1764928800, &m1, &m0), 0);
	assert_int_equal(m1, 1);
	assert_int_equal(m0, 0);
	assert_int_equal(nl_store_minute_add(fx->st, "wrong", 1764928830, &m1, &m0), 0);
	assert_int_equal(m1, 2);
	assert_int_equal(nl_store_minute_add(fx->st, "wrong", 1764928860, &m1, &m0), 0);
	assert_int_equal(m1, 1);
	assert_int_equal(m0, 2);
}

/* ---- Hostile values under our keys ---- */

static void test_garbage_under_our_keys_is_an_error_not_a_crash(void **state)
{
	struct fx *fx = *state;
	struct nl_store_flow f;
	struct nl_store_flow_keys k;
	char bufs[4][64], key[200];
	long long n;
	char *big = malloc(200000);
	json_t *outcome = json_pack("{}");
	NEED_REDIS(fx);

	assert_non_null(big);
	memset(big, 'x', 199999);
	big[199999] = '\0';
	assert_int_equal(create_flow(fx->st, 9, 300), 0);
	flow_keys(9, &k, bufs);
	/* A record that is not JSON, then one past the size bound. */
	raw_ok(fx->raw, "HSET nl:flow:%s rec %s", k.id, "{not json");
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, k.id, &f), NL_ERR_INVALID);
	raw_ok(fx->raw, "HSET nl:flow:%s rec %s", k.id, "[1,2]");
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, k.id, &f), NL_ERR_INVALID);
	raw_ok(fx->raw, "HSET nl:flow:%s rec %s", k.id, big);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_USER_CODE, k.user_code, &f), NL_ERR_TOO_BIG);
	assert_int_equal(nl_store_flow_claim_state(fx->st, k.state, &f), NL_ERR_TOO_BIG);
	/* The claim changed nothing: the state index is still there. */
	one_key(fx->raw, "nl:st:*", key, sizeof(key));
	/* The flow key holding a string; an index holding a huge value, then a non-id. */
	raw_ok(fx->raw, "DEL nl:flow:%s", k.id);
	raw_ok(fx->raw, "SET nl:flow:%s garbage", k.id);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, k.id, &f), NL_ERR_INVALID);
	assert_int_equal(nl_store_flow_end(fx->st, k.id, outcome, 60), NL_ERR_INVALID);
	assert_int_equal(nl_store_flow_delete(fx->st, k.id), NL_ERR_INVALID);
	one_key(fx->raw, "nl:uc:*", key, sizeof(key));
	raw_ok(fx->raw, "SET %s %s", key, big);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_USER_CODE, k.user_code, &f), NL_ERR_INVALID);
	raw_ok(fx->raw, "SET %s %s", key, "../../etc");
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_USER_CODE, k.user_code, &f), NL_ERR_INVALID);
	raw_ok(fx->raw, "DEL %s", key);
	raw_ok(fx->raw, "LPUSH %s a", key);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_USER_CODE, k.user_code, &f), NL_ERR_INVALID);
	/* A counter that is not a number; then a counter holding 200 kB, which a plain GET returns:
	 * the reply is refused by its size and the connection dropped. */
	assert_int_equal(nl_store_count_add(fx->st, "client", 60, &n), 0);
	one_key(fx->raw, "nl:cnt:*", key, sizeof(key));
	raw_ok(fx->raw, "SET %s abc", key);
	assert_int_equal(nl_store_count_add(fx->st, "client", 60, &n), NL_ERR_INVALID);
	assert_int_equal(nl_store_count_get(fx->st, "client", &n), NL_ERR_INVALID);
	raw_ok(fx->raw, "SET %s %s", key, big);
	for (int i = 0; i < 8; i++) /* every connection of the pool */
		assert_int_equal(nl_store_count_get(fx->st, "client", &n), NL_ERR_TOO_BIG);
	/* The store still works. */
	assert_int_equal(create_flow(fx->st, 10, 300), 0);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, "f-000000000000000a", &f), 0);
	nl_store_flow_clear(&f);
	free(big);
	json_decref(outcome);
}

static void test_bad_arguments_are_refused_before_redis(void **state)
{
	struct fx *fx = *state;
	struct nl_store_flow_keys k = {"f 1", "KPWD0001", "dc", "st"};
	struct nl_store_flow f;
	json_t *rec = sample_record(), *arr = json_array();
	char longkey[NL_STORE_KEY_MAX + 2];
	struct nl_store_status s0, s1;
	NEED_REDIS(fx);

	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	nl_store_counters(fx->st, &s0);
	assert_int_equal(nl_store_flow_create(fx->st, &k, rec, 300), NL_ERR_INVALID); /* id with a space */
	k.id = "f-1";
	assert_int_equal(nl_store_flow_create(fx->st, &k, rec, 0), NL_ERR_INVALID);
	assert_int_equal(nl_store_flow_create(fx->st, &k, arr, 300), NL_ERR_INVALID);
	k.state = longkey;
	assert_int_equal(nl_store_flow_create(fx->st, &k, rec, 300), NL_ERR_INVALID);
	k.state = NULL;
	assert_int_equal(nl_store_flow_create(fx->st, &k, rec, 300), NL_ERR_INVALID);
	assert_int_equal(nl_store_flow_get(fx->st, (enum nl_store_by)9, "x", &f), NL_ERR_INVALID);
	nl_store_counters(fx->st, &s1);
	assert_int_equal(s1.commands, s0.commands);
	json_decref(rec);
	json_decref(arr);
}

/* ---- Redis down, hung, restarted ---- */

static void test_redis_down_is_unavailable_within_the_timeout(void **state)
{
	struct fx *fx = *state;
	struct nl_store_flow f;
	long long n;
	bool seen;
	int64_t t0, worst = 0;
	NEED_REDIS(fx);

	assert_int_equal(create_flow(fx->st, 11, 300), 0); /* connected */
	redisproc_kill(fx->rs);
	for (int i = 0; i < 4; i++) {
		t0 = nl_mono_ms();
		assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, "f-000000000000000b", &f),
		                 NL_ERR_UNAVAILABLE);
		assert_int_equal(create_flow(fx->st, 12, 300), NL_ERR_UNAVAILABLE);
		assert_int_equal(nl_store_count_add(fx->st, "c", 60, &n), NL_ERR_UNAVAILABLE);
		assert_int_equal(nl_store_replay_note(fx->st, "r", 60, &seen), NL_ERR_UNAVAILABLE);
		if (nl_mono_ms() - t0 > worst)
			worst = nl_mono_ms() - t0;
	}
	printf("# Redis killed: 4 calls returned NL_ERR_UNAVAILABLE in %lld ms at worst\n", (long long)worst);
	assert_true(worst < CMD_TIMEOUT_MS);
}

static void test_redis_hung_is_unavailable_at_the_timeout(void **state)
{
	struct fx *fx = *state;
	struct nl_store_flow f;
	int64_t t0, took;
	NEED_REDIS(fx);

	assert_int_equal(create_flow(fx->st, 13, 300), 0);
	kill(redisproc_pid(fx->rs), SIGSTOP);
	t0 = nl_mono_ms();
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, "f-000000000000000d", &f),
	                 NL_ERR_UNAVAILABLE);
	took = nl_mono_ms() - t0;
	kill(redisproc_pid(fx->rs), SIGCONT);
	printf("# Redis stopped (SIGSTOP): NL_ERR_UNAVAILABLE after %lld ms (command timeout %d ms)\n",
	       (long long)took, CMD_TIMEOUT_MS);
	/* slack for a loaded machine; a hang is far longer */
	assert_true(took >= CMD_TIMEOUT_MS - 10 && took < CMD_TIMEOUT_MS + 1000);
	/* Awake again: the store carries on (the hung connection was dropped). */
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, "f-000000000000000d", &f), 0);
	nl_store_flow_clear(&f);
}

/* Eight callers on a pool of four while Redis hangs: those queued behind a stuck connection get
 * NL_ERR_UNAVAILABLE by their own deadline too. */
struct timed_call {
	struct nl_store *st;
	int result;
	int64_t took_ms;
};

static void *timed_get(void *arg)
{
	struct timed_call *c = arg;
	struct nl_store_flow f;
	int64_t t0 = nl_mono_ms();
	c->result = nl_store_flow_get(c->st, NL_STORE_BY_ID, "f-000000000000000d", &f);
	c->took_ms = nl_mono_ms() - t0;
	if (c->result == 0)
		nl_store_flow_clear(&f);
	return NULL;
}

static void test_redis_hung_callers_queued_on_the_pool_keep_their_deadline(void **state)
{
	struct fx *fx = *state;
	struct timed_call c[8];
	pthread_t th[8];
	int64_t worst = 0;
	NEED_REDIS(fx);

	assert_int_equal(create_flow(fx->st, 13, 300), 0);
	kill(redisproc_pid(fx->rs), SIGSTOP);
	for (int i = 0; i < 8; i++) {
		c[i] = (struct timed_call){fx->st, 99, 0};
		assert_int_equal(pthread_create(&th[i], NULL, timed_get, &c[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(c[i].result, NL_ERR_UNAVAILABLE);
		if (c[i].took_ms > worst)
			worst = c[i].took_ms;
	}
	kill(redisproc_pid(fx->rs), SIGCONT);
	printf(
	    "# Redis stopped, 8 callers on 4 connections: the slowest got NL_ERR_UNAVAILABLE after %lld ms\n",
	    (long long)worst);
	assert_true(worst < CMD_TIMEOUT_MS + 1000);
}

static void test_a_replica_refuses_writes_as_unavailable(void **state)
{
	struct fx *fx = *state;
	struct nl_store_status s;
	NEED_REDIS(fx);

	assert_int_equal(redisproc_start(fx->rs, &fx->replica), 0);
	fx->st2 = open_tcp(fx->replica);
	assert_int_equal(create_flow(fx->st2, 23, 300), NL_ERR_UNAVAILABLE); /* READONLY, twice */
	nl_store_counters(fx->st2, &s);
	assert_int_equal(s.unavailable, 1);
	assert_int_equal(s.commands, 3); /* EVALSHA, NOSCRIPT: EVAL; EVALSHA again on a new connection */
	assert_int_equal(nl_store_status(fx->st2, &s), 0);
	assert_string_equal(s.role, "slave");
}

static void test_password_is_sent_and_its_absence_is_reported(void **state)
{
	struct fx *fx = *state;
	struct nl_store_config cfg = {
	    .hash_key = hkey, .hash_key_len = sizeof(hkey), .command_timeout_ms = 500};
	struct nl_store *st = NULL;
	char url[64], err[200];
	NEED_REDIS(fx);

	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/3", redisproc_port(fx->rs));
	cfg.url = url;
	raw_ok(fx->raw, "CONFIG SET requirepass %s", "s3cret-store-password");
	assert_int_equal(create_flow(fx->st, 24, 300), NL_ERR_PERM); /* no password: NOAUTH */
	cfg.password = "wrong";
	assert_int_equal(nl_store_open(&cfg, &st, err, sizeof(err)), 0);
	assert_int_equal(create_flow(st, 24, 300), NL_ERR_PERM);
	nl_store_close(st);
	cfg.password = "s3cret-store-password";
	assert_int_equal(nl_store_open(&cfg, &st, err, sizeof(err)), 0);
	assert_int_equal(create_flow(st, 24, 300), 0);
	nl_store_close(st);
	/* In database 3, as the url said. */
	raw_ok(fx->raw, "AUTH %s", "s3cret-store-password");
	raw_ok(fx->raw, "SELECT 3");
	one_key(fx->raw, "nl:flow:*", url, sizeof(url));
}

static void test_redis_restarted_new_flows_work_old_are_gone_subscriber_returns(void **state)
{
	struct fx *fx = *state;
	struct events *ev = events_new();
	struct nl_store_flow f;
	json_t *outcome = json_pack("{s:s}", "result", "approved");
	int64_t t0;
	NEED_REDIS(fx);

	assert_int_equal(nl_store_subscribe(fx->st, on_event, ev, &fx->sub), 0);
	assert_true(wait_count(ev, &ev->subscribed, 1, 2000));
	assert_int_equal(create_flow(fx->st, 14, 300), 0);
	t0 = nl_mono_ms();
	assert_int_equal(redisproc_restart(fx->rs), 0);
	assert_true(wait_count(ev, &ev->lost, 1, 2000));
	assert_true(wait_count(ev, &ev->subscribed, 2, 3000));
	printf("# Redis restarted: subscriber back %lld ms after the kill\n", (long long)(nl_mono_ms() - t0));
	/* The old flow is gone, cleanly; pooled connections to the dead server are replaced. */
	for (int i = 0; i < 6; i++)
		assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, "f-000000000000000e", &f),
		                 NL_ERR_NOT_FOUND);
	assert_int_equal(create_flow(fx->st, 15, 300), 0);
	assert_int_equal(nl_store_flow_end(fx->st, "f-000000000000000f", outcome, 60), 0);
	assert_true(wait_count(ev, &ev->ended, 1, 500));
	assert_string_equal(ev->last_id, "f-000000000000000f");
	json_decref(outcome);
	nl_store_sub_stop(fx->sub);
	fx->sub = NULL;
	free(ev);
}

/* ---- Connection kinds and status ---- */

static void test_unix_socket_and_status(void **state)
{
	struct fx *fx = *state;
	char url[200];
	struct nl_store_status s;
	struct nl_store_flow f;
	NEED_REDIS(fx);

	snprintf(url, sizeof(url), "unix:%s", redisproc_socket(fx->rs));
	fx->st2 = open_url(url);
	assert_int_equal(create_flow(fx->st2, 16, 300), 0);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, "f-0000000000000010", &f), 0);
	nl_store_flow_clear(&f);
	assert_int_equal(nl_store_status(fx->st2, &s), 0);
	assert_string_equal(s.role, "master");
	assert_string_equal(s.addr, redisproc_socket(fx->rs));
	assert_int_equal(s.commands, 3); /* the create (EVALSHA, NOSCRIPT on a new server, EVAL) and ROLE */
	assert_true(s.connects >= 1);
}

/* From INFO commandstats: the calls Redis ran, and the microseconds it spent in the commands that
 * are not INFO or CONFIG (the test's own). Scripts count once as EVALSHA and once per call inside. */
static long long commandstats_calls(redisContext *c, long long *usec)
{
	redisReply *rep = raw(c, "INFO commandstats");
	long long total = 0;
	*usec = 0;
	for (const char *p = rep->str; (p = strstr(p, "cmdstat_")) != NULL; p += 8) {
		const char *calls = strstr(p, "calls="), *us = strstr(p, "usec=");
		if (calls == NULL || us == NULL)
			break;
		total += strtoll(calls + 6, NULL, 10);
		if (strncmp(p + 8, "info", 4) != 0 && strncmp(p + 8, "config", 6) != 0)
			*usec += strtoll(us + 5, NULL, 10);
	}
	freeReplyObject(rep);
	return total;
}

/* One sign-in as the bridge will run it (flow n). */
static void sign_in(struct nl_store *st, int n)
{
	struct nl_store_flow f;
	struct nl_store_flow_keys k;
	char bufs[4][64], jti[32];
	json_t *outcome = json_pack("{s:s}", "result", "approved");
	long long count;
	bool seen;

	flow_keys(n, &k, bufs);
	snprintf(jti, sizeof(jti), "assertion-jti-%d", n);
	/* start (the agent asks the bridge) */
	assert_int_equal(create_flow(st, n, 300), 0);
	/* the phone: the wrong-code limit is checked, the code looked up */
	assert_int_equal(nl_store_count_get(st, "10.1.2.3", &count), 0);
	assert_int_equal(nl_store_flow_get(st, NL_STORE_BY_USER_CODE, k.user_code, &f), 0);
	nl_store_flow_clear(&f);
	/* the confirmation page's POST: by id */
	assert_int_equal(nl_store_flow_get(st, NL_STORE_BY_ID, k.id, &f), 0);
	nl_store_flow_clear(&f);
	/* the callback: the claim; the client assertion's jti */
	assert_int_equal(nl_store_flow_claim_state(st, k.state, &f), 0);
	nl_store_flow_clear(&f);
	assert_int_equal(nl_store_replay_note(st, jti, 300, &seen), 0);
	assert_false(seen);
	/* the decision, published */
	assert_int_equal(nl_store_flow_end(st, k.id, outcome, 60), 0);
	/* the waiter, woken, reads the outcome; the agent has it and the flow goes */
	assert_int_equal(nl_store_flow_get(st, NL_STORE_BY_DEVICE_CODE, k.device_code, &f), 0);
	assert_non_null(f.outcome);
	nl_store_flow_clear(&f);
	assert_int_equal(nl_store_flow_delete(st, k.id), 0);
	json_decref(outcome);
}

/* Counted: commands sent, and the commands Redis ran (each call inside a script counts). */
static void test_commands_per_sign_in(void **state)
{
	struct fx *fx = *state;
	struct nl_store_status s0, s1;
	long long n, m1, m0, c0, c1, u0, u1;
	NEED_REDIS(fx);

	sign_in(fx->st, 17); /* warm: the scripts cached on the server, the connections made */
	sign_in(fx->st, 18);
	sign_in(fx->st, 19);
	sign_in(fx->st, 20);
	raw_ok(fx->raw, "CONFIG RESETSTAT");
	c0 = commandstats_calls(fx->raw, &u0); /* counts the INFO itself */
	nl_store_counters(fx->st, &s0);
	sign_in(fx->st, 21);
	nl_store_counters(fx->st, &s1);
	c1 = commandstats_calls(fx->raw, &u1);
	printf("# one sign-in: %llu commands sent (%llu set-up), %lld commands run by Redis in %lld us of "
	       "its time\n",
	       (unsigned long long)(s1.commands - s0.commands),
	       (unsigned long long)(s1.setup_commands - s0.setup_commands), c1 - c0 - 1, u1 - u0);
	assert_int_equal(s1.commands - s0.commands, 9);
	assert_int_equal(s1.setup_commands, s0.setup_commands);
	/* A wrong code costs two more: the client's count and the global minute. */
	raw_ok(fx->raw, "CONFIG RESETSTAT");
	c0 = commandstats_calls(fx->raw, &u0);
	assert_int_equal(nl_store_count_add(fx->st, "10.1.2.3", 600, &n), 0);
	assert_int_equal(nl_store_minute_add(fx->st, "wrong", 1764928800, &m1, &m0), 0);
	c1 = commandstats_calls(fx->raw, &u1);
	printf("# one wrong code: 2 commands sent, %lld commands run by Redis in %lld us\n", c1 - c0 - 1,
	       u1 - u0);
}

static void test_memory_per_flow(void **state)
{
	struct fx *fx = *state;
	redisReply *keys;
	long long total = 0;
	json_t *outcome = json_pack("{s:s, s:s}", "result", "approved", "id_token",
	                            "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl");
	NEED_REDIS(fx);

	assert_int_equal(create_flow(fx->st, 22, 300), 0);
	keys = raw(fx->raw, "KEYS *");
	assert_int_equal(keys->elements, 4);
	for (size_t i = 0; i < keys->elements; i++) {
		redisReply *m = raw(fx->raw, "MEMORY USAGE %s SAMPLES 0", keys->element[i]->str);
		assert_int_equal(m->type, REDIS_REPLY_INTEGER);
		printf("# MEMORY USAGE %s: %lld bytes\n", keys->element[i]->str, m->integer);
		total += m->integer;
		freeReplyObject(m);
	}
	freeReplyObject(keys);
	printf("# one pending flow: %lld bytes in 4 keys\n", total);
	assert_true(total < 2048);
	/* Ended: the record with its outcome, and the device-code index. */
	assert_int_equal(nl_store_flow_end(fx->st, "f-0000000000000016", outcome, 60), 0);
	keys = raw(fx->raw, "KEYS *");
	assert_int_equal(keys->elements, 2);
	total = 0;
	for (size_t i = 0; i < keys->elements; i++) {
		redisReply *m = raw(fx->raw, "MEMORY USAGE %s SAMPLES 0", keys->element[i]->str);
		total += m->integer;
		freeReplyObject(m);
	}
	freeReplyObject(keys);
	printf("# one ended flow (in its grace): %lld bytes in 2 keys\n", total);
	json_decref(outcome);
}

/* ---- Sentinel ---- */

static void test_sentinel_failover_is_followed(void **state)
{
	struct fx *fx = *state;
	struct nl_store_config cfg = {.hash_key = hkey,
	                              .hash_key_len = sizeof(hkey),
	                              .master = MASTER_NAME,
	                              .connect_timeout_ms = 200,
	                              .command_timeout_ms = CMD_TIMEOUT_MS};
	struct events *ev = events_new();
	char sentinels[100], err[200] = "", want[32];
	struct nl_store_status s;
	struct nl_store_flow f;
	json_t *outcome = json_pack("{s:s}", "result", "approved");
	int64_t t0, end;
	int r = -1, n = 0;
	NEED_REDIS(fx);
	if (!redisproc_sentinel_available(&fx->why))
		skip_because("%s", fx->why);

	assert_int_equal(redisproc_start(fx->rs, &fx->replica), 0);
	assert_int_equal(redisproc_start_sentinel(fx->rs, MASTER_NAME, &fx->sentinel), 0);
	/* The first sentinel listed is down: the store asks the next. */
	snprintf(sentinels, sizeof(sentinels), "127.0.0.1:%d, 127.0.0.1:%d", redisproc_free_port(),
	         redisproc_port(fx->sentinel));
	cfg.sentinels = sentinels;
	assert_int_equal(nl_store_open(&cfg, &fx->st2, err, sizeof(err)), 0);
	assert_int_equal(create_flow(fx->st2, 20, 300), 0);
	assert_int_equal(nl_store_status(fx->st2, &s), 0);
	assert_string_equal(s.role, "master");
	snprintf(want, sizeof(want), "127.0.0.1:%d", redisproc_port(fx->rs));
	assert_string_equal(s.addr, want);
	assert_int_equal(nl_store_subscribe(fx->st2, on_event, ev, &fx->sub), 0);
	assert_true(wait_count(ev, &ev->subscribed, 1, 2000));
	/* Before the failover: the replica in sync and known to the sentinel. */
	end = nl_mono_ms() + 15000;
	while (!(redisproc_replica_synced(fx->replica) &&
	         redisproc_sentinel_replicas(fx->sentinel, MASTER_NAME) == 1))
		if (nl_mono_ms() > end)
			fail_msg("replica not in sync or not known to the sentinel in 15 s");
		else
			sleep_ms(50);
	assert_int_equal(nl_store_flow_get(fx->st2, NL_STORE_BY_ID, "f-0000000000000014", &f), 0);
	nl_store_flow_clear(&f);

	redisproc_kill(fx->rs);
	t0 = nl_mono_ms();
	end = t0 + 20000;
	while ((r = create_flow(fx->st2, 21, 300)) != 0 && nl_mono_ms() < end) {
		assert_int_equal(r, NL_ERR_UNAVAILABLE);
		n++;
		sleep_ms(100);
	}
	assert_int_equal(r, 0);
	printf("# Sentinel failover: writes refused (NL_ERR_UNAVAILABLE) %d times, then accepted %lld ms "
	       "after the "
	       "primary was killed\n",
	       n, (long long)(nl_mono_ms() - t0));
	assert_int_equal(nl_store_status(fx->st2, &s), 0);
	assert_string_equal(s.role, "master");
	snprintf(want, sizeof(want), "127.0.0.1:%d", redisproc_port(fx->replica));
	assert_string_equal(s.addr, want);
	/* What was written before the failover was replicated. */
	assert_int_equal(nl_store_flow_get(fx->st2, NL_STORE_BY_ID, "f-0000000000000014", &f), 0);
	nl_store_flow_clear(&f);
	/* The subscriber followed the failover: it resubscribed on the new primary, and wakes. */
	assert_true(wait_count(ev, &ev->subscribed, 2, 5000));
	assert_int_equal(nl_store_flow_end(fx->st2, "f-0000000000000015", outcome, 60), 0);
	assert_true(wait_count(ev, &ev->ended, 1, 1000));
	json_decref(outcome);
	nl_store_sub_stop(fx->sub);
	fx->sub = NULL;
	free(ev);
}

/* A sentinel that names a server which is not a primary (here: one told to watch a replica, as a
 * sentinel does for a moment after a demotion): the store does not use it, not even for reads. */
static void test_a_sentinel_naming_a_replica_is_not_followed(void **state)
{
	struct fx *fx = *state;
	struct nl_store_config cfg = {.hash_key = hkey,
	                              .hash_key_len = sizeof(hkey),
	                              .master = MASTER_NAME,
	                              .connect_timeout_ms = 200,
	                              .command_timeout_ms = CMD_TIMEOUT_MS};
	char sentinels[40], err[200];
	struct nl_store_flow f;
	int64_t end;
	NEED_REDIS(fx);
	if (!redisproc_sentinel_available(&fx->why))
		skip_because("%s", fx->why);

	assert_int_equal(create_flow(fx->st, 25, 300), 0);
	assert_int_equal(redisproc_start(fx->rs, &fx->replica), 0);
	end = nl_mono_ms() + 10000;
	while (!redisproc_replica_synced(fx->replica))
		if (nl_mono_ms() > end)
			fail_msg("replica not in sync in 10 s");
		else
			sleep_ms(20);
	assert_int_equal(redisproc_start_sentinel(fx->replica, MASTER_NAME, &fx->sentinel), 0);
	snprintf(sentinels, sizeof(sentinels), "127.0.0.1:%d", redisproc_port(fx->sentinel));
	cfg.sentinels = sentinels;
	assert_int_equal(nl_store_open(&cfg, &fx->st2, err, sizeof(err)), 0);
	/* The replica has the flow, and would serve the read: ROLE refuses it. */
	assert_int_equal(nl_store_flow_get(fx->st2, NL_STORE_BY_ID, "f-0000000000000019", &f),
	                 NL_ERR_UNAVAILABLE);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, "f-0000000000000019", &f), 0);
	nl_store_flow_clear(&f);
}

static void test_config_is_checked(void **state)
{
	struct nl_store_config cfg = {.hash_key = hkey, .hash_key_len = sizeof(hkey)};
	struct nl_store *st = NULL;
	char err[200];
	(void)state;

	assert_int_equal(nl_store_open(&cfg, &st, err, sizeof(err)), NL_ERR_CONFIG); /* neither */
	cfg.url = "http://x";
	assert_int_equal(nl_store_open(&cfg, &st, err, sizeof(err)), NL_ERR_CONFIG);
	cfg.url = "redis://h:99999";
	assert_int_equal(nl_store_open(&cfg, &st, err, sizeof(err)), NL_ERR_CONFIG);
	cfg.url = "unix:relative";
	assert_int_equal(nl_store_open(&cfg, &st, err, sizeof(err)), NL_ERR_CONFIG);
	cfg.url = "redis://[::1]:6379/2";
	cfg.hash_key_len = 16;
	assert_int_equal(nl_store_open(&cfg, &st, err, sizeof(err)), NL_ERR_CONFIG); /* short key */
	cfg.hash_key_len = sizeof(hkey);
	cfg.sentinels = "127.0.0.1:26379";
	assert_int_equal(nl_store_open(&cfg, &st, err, sizeof(err)), NL_ERR_CONFIG); /* both */
	cfg.url = NULL;
	assert_int_equal(nl_store_open(&cfg, &st, err, sizeof(err)), NL_ERR_CONFIG); /* no master */
	cfg.master = MASTER_NAME;
	assert_int_equal(nl_store_open(&cfg, &st, err, sizeof(err)), 0);
	nl_store_close(st);
	cfg.sentinels = NULL;
	cfg.url = "redis://[::1]:6379/2";
	assert_int_equal(nl_store_open(&cfg, &st, err, sizeof(err)), 0);
	nl_store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_is_checked),
	    cmocka_unit_test_setup_teardown(test_flow_found_by_each_index, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secrets_are_not_stored_in_clear, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_user_code_collision_is_refused_atomically, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_every_key_has_a_ttl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_concurrent_claims_exactly_one_wins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_end_publishes_a_wakeup_to_another_connection, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_ended_flow_stays_for_grace_then_delete_removes_all, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_replay_cache_says_new_then_seen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_code_counter_counts_within_its_window, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_under_our_keys_is_an_error_not_a_crash, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_arguments_are_refused_before_redis, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_redis_down_is_unavailable_within_the_timeout, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_redis_hung_is_unavailable_at_the_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_redis_restarted_new_flows_work_old_are_gone_subscriber_returns, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_redis_hung_callers_queued_on_the_pool_keep_their_deadline,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_replica_refuses_writes_as_unavailable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_password_is_sent_and_its_absence_is_reported, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_unix_socket_and_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commands_per_sign_in, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_memory_per_flow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_sentinel_naming_a_replica_is_not_followed, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_sentinel_failover_is_followed, setup, teardown),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
