/* libnlstore against a real redis-server: flows and their indexes, the single-use claim, wake-ups
 * across connections, counters, the replay cache and hostile values under our keys. */
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
	assert_int_equal(keys->elements, 5); /* the record, three indexes, the pending set (ids only) */
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
	assert_int_equal(n->integer, 5); /* one flow: its four keys and the pending set */
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

#define BROWSER_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define BROWSER_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_browser_binding_is_set_once_first_binder_wins(void **state)
{
	struct fx *fx = *state;
	struct nl_store_flow_keys k;
	char bufs[4][64];
	struct nl_store_flow f;
	NEED_REDIS(fx);

	assert_int_equal(create_flow(fx->st, 7, 300), 0);
	flow_keys(7, &k, bufs);
	assert_int_equal(nl_store_flow_bind(fx->st, k.id, BROWSER_A, &f), 0);
	assert_string_equal(f.id, k.id);
	nl_store_flow_clear(&f);
	/* the same browser again (a second tab): fine; another: refused, the binding unchanged */
	assert_int_equal(nl_store_flow_bind(fx->st, k.id, BROWSER_A, &f), 0);
	nl_store_flow_clear(&f);
	assert_int_equal(nl_store_flow_bind(fx->st, k.id, BROWSER_B, &f), NL_ERR_PERM);
	assert_int_equal(nl_store_flow_bind(fx->st, k.id, BROWSER_A, &f), 0);
	nl_store_flow_clear(&f);
	assert_int_equal(nl_store_flow_bind(fx->st, "f-nope", BROWSER_A, &f), NL_ERR_NOT_FOUND);
	assert_int_equal(nl_store_flow_bind(fx->st, k.id, "not-hex", &f), NL_ERR_INVALID);
}

static void test_claim_only_by_the_bound_browser(void **state)
{
	struct fx *fx = *state;
	struct nl_store_flow_keys k;
	char bufs[4][64];
	struct nl_store_flow f;
	NEED_REDIS(fx);

	assert_int_equal(create_flow(fx->st, 8, 300), 0);
	flow_keys(8, &k, bufs);
	/* before any browser bound it: refused, with the flow's id; nothing taken */
	assert_int_equal(nl_store_flow_claim_bound(fx->st, k.state, BROWSER_A, &f), NL_ERR_PERM);
	assert_string_equal(f.id, k.id);
	assert_int_equal(nl_store_flow_bind(fx->st, k.id, BROWSER_A, &f), 0);
	nl_store_flow_clear(&f);
	/* no browser, another browser: refused, and the flow goes on */
	assert_int_equal(nl_store_flow_claim_bound(fx->st, k.state, NULL, &f), NL_ERR_PERM);
	assert_int_equal(nl_store_flow_claim_bound(fx->st, k.state, BROWSER_B, &f), NL_ERR_PERM);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_STATE, k.state, &f), 0);
	assert_false(f.claimed);
	nl_store_flow_clear(&f);
	/* the bound browser: claimed once */
	assert_int_equal(nl_store_flow_claim_bound(fx->st, k.state, BROWSER_A, &f), 0);
	assert_true(f.claimed);
	nl_store_flow_clear(&f);
	assert_int_equal(nl_store_flow_claim_bound(fx->st, k.state, BROWSER_A, &f), NL_ERR_NOT_FOUND);
	/* a claimed flow cannot be bound by anyone any more */
	assert_int_equal(nl_store_flow_bind(fx->st, k.id, BROWSER_A, &f), NL_ERR_EXPIRED);
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

/* The count of pending flows for status: every create counts until its end, its delete or its
 * expiry, whichever comes first. */
static void test_pending_flows_are_counted_until_they_end(void **state)
{
	struct fx *fx = *state;
	json_t *outcome = json_pack("{s:s}", "result", "approved");
	long long n = -1;
	NEED_REDIS(fx);

	assert_int_equal(nl_store_flows_pending(fx->st, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(create_flow(fx->st, 1, 300), 0);
	assert_int_equal(create_flow(fx->st, 2, 300), 0);
	assert_int_equal(create_flow(fx->st, 3, 1), 0);
	assert_int_equal(nl_store_flows_pending(fx->st, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(nl_store_flow_end(fx->st, "f-0000000000000001", outcome, 60), 0);
	assert_int_equal(nl_store_flow_delete(fx->st, "f-0000000000000002"), 0);
	sleep(2); /* flow 3 expires */
	assert_int_equal(nl_store_flows_pending(fx->st, &n), 0);
	assert_int_equal(n, 0);
	json_decref(outcome);
}

/* ---- Bounds on pending flows (nl_store_flow_create_limited) ---- */

/* Flow n for user at host within the bounds max_host, max_pair. */
static int create_limited(struct nl_store *st, int n, const char *host, const char *user, unsigned max_host,
                          unsigned max_pair, unsigned ttl, enum nl_store_limit *hit)
{
	struct nl_store_flow_keys k;
	char bufs[4][64];
	const struct nl_store_limits lim = {host, user, max_host, max_pair};
	json_t *rec = sample_record();
	int r;

	flow_keys(n, &k, bufs);
	r = nl_store_flow_create_limited(st, &k, &lim, rec, ttl, hit);
	json_decref(rec);
	return r;
}

static const char *id_of(int n, char buf[64])
{
	snprintf(buf, 64, "f-%016x", (unsigned)n);
	return buf;
}

static void test_limit_per_workstation_counts_its_pending_flows(void **state)
{
	struct fx *fx = *state;
	enum nl_store_limit hit = NL_STORE_LIMIT_NONE;
	struct nl_store_flow f;
	json_t *outcome = json_pack("{s:s}", "status", "denied");
	char id[64];
	NEED_REDIS(fx);

	/* three pending flows of three people at ws-a: the fourth is refused, nothing written */
	assert_int_equal(create_limited(fx->st, 1, "ws-a", "alice", 3, 10, 300, &hit), 0);
	assert_int_equal(create_limited(fx->st, 2, "ws-a", "bob", 3, 10, 300, &hit), 0);
	assert_int_equal(create_limited(fx->st, 3, "ws-a", "carol", 3, 10, 1, &hit), 0);
	assert_int_equal(hit, NL_STORE_LIMIT_NONE);
	assert_int_equal(create_limited(fx->st, 4, "ws-a", "dave", 3, 10, 300, &hit), NL_ERR_LIMIT);
	assert_int_equal(hit, NL_STORE_LIMIT_HOST);
	assert_int_equal(nl_store_flow_get(fx->st, NL_STORE_BY_ID, id_of(4, id), &f), NL_ERR_NOT_FOUND);
	/* another workstation is not affected */
	assert_int_equal(create_limited(fx->st, 5, "ws-b", "dave", 3, 10, 300, &hit), 0);
	/* an expired flow frees its place */
	sleep(2);
	assert_int_equal(create_limited(fx->st, 4, "ws-a", "dave", 3, 10, 300, &hit), 0);
	assert_int_equal(create_limited(fx->st, 6, "ws-a", "erin", 3, 10, 300, &hit), NL_ERR_LIMIT);
	/* so does one that ended, and one that was deleted */
	assert_int_equal(nl_store_flow_end(fx->st, id_of(1, id), outcome, 60), 0);
	assert_int_equal(create_limited(fx->st, 6, "ws-a", "erin", 3, 10, 300, &hit), 0);
	assert_int_equal(create_limited(fx->st, 7, "ws-a", "frank", 3, 10, 300, &hit), NL_ERR_LIMIT);
	assert_int_equal(nl_store_flow_delete(fx->st, id_of(2, id)), 0);
	assert_int_equal(create_limited(fx->st, 7, "ws-a", "frank", 3, 10, 300, &hit), 0);
	json_decref(outcome);
}

static void test_limit_per_workstation_and_user_frees_ended_flows(void **state)
{
	struct fx *fx = *state;
	enum nl_store_limit hit = NL_STORE_LIMIT_NONE;
	json_t *outcome = json_pack("{s:s}", "status", "approved");
	struct nl_store_status s0, s1;
	char id[64];
	NEED_REDIS(fx);

	nl_store_counters(fx->st, &s0);
	assert_int_equal(create_limited(fx->st, 1, "ws-a", "alice", 100, 2, 300, &hit), 0);
	assert_int_equal(create_limited(fx->st, 2, "ws-a", "alice", 100, 2, 300, &hit), 0);
	assert_int_equal(create_limited(fx->st, 3, "ws-a", "alice", 100, 2, 300, &hit), NL_ERR_LIMIT);
	assert_int_equal(hit, NL_STORE_LIMIT_PAIR);
	nl_store_counters(fx->st, &s1);
	assert_int_equal(s1.limited - s0.limited, 1);
	/* another user at the same workstation, the same user at another: not affected */
	assert_int_equal(create_limited(fx->st, 4, "ws-a", "bob", 100, 2, 300, &hit), 0);
	assert_int_equal(create_limited(fx->st, 5, "ws-b", "alice", 100, 2, 300, &hit), 0);
	/* a flow that ended (the callback's decision) frees its place at once, before its hand-over */
	assert_int_equal(nl_store_flow_end(fx->st, id_of(1, id), outcome, 60), 0);
	assert_int_equal(create_limited(fx->st, 3, "ws-a", "alice", 100, 2, 300, &hit), 0);
	assert_int_equal(create_limited(fx->st, 6, "ws-a", "alice", 100, 2, 300, &hit), NL_ERR_LIMIT);
	/* handed over (the waiter's read, then the delete): still free, and counted once */
	assert_int_equal(nl_store_flow_delete(fx->st, id_of(1, id)), 0);
	assert_int_equal(create_limited(fx->st, 6, "ws-a", "alice", 100, 2, 300, &hit), NL_ERR_LIMIT);
	/* the person gave up: deleted while pending */
	assert_int_equal(nl_store_flow_delete(fx->st, id_of(2, id)), 0);
	assert_int_equal(create_limited(fx->st, 6, "ws-a", "alice", 100, 2, 300, &hit), 0);
	json_decref(outcome);
}

/* The sets are named by keyed hashes, hold ids only, and expire with their longest flow. */
static void test_limit_sets_name_no_host_or_user_and_expire(void **state)
{
	struct fx *fx = *state;
	redisReply *keys;
	char key[200];
	NEED_REDIS(fx);

	assert_int_equal(create_limited(fx->st, 1, "ws-0123.example.nhs.uk", "alice", 10, 10, 120, NULL), 0);
	assert_int_equal(create_limited(fx->st, 2, "ws-0123.example.nhs.uk", "alice", 10, 10, 60, NULL), 0);
	keys = raw(fx->raw, "KEYS *");
	/* two flows' eight keys, and the three sets: all pending, this workstation's, alice's there */
	assert_int_equal(keys->elements, 11);
	for (size_t i = 0; i < keys->elements; i++) {
		const char *name = keys->element[i]->str;
		assert_null(strstr(name, "ws-0123"));
		assert_null(strstr(name, "alice"));
	}
	freeReplyObject(keys);
	assert_all_keys_expire(fx->raw, 120);
	one_key(fx->raw, "nl:ph:*", key, sizeof(key));
	one_key(fx->raw, "nl:pu:*", key, sizeof(key));
	/* bad bounds and names are refused before Redis */
	assert_int_equal(create_limited(fx->st, 3, "ws:a", "alice", 10, 10, 60, NULL), NL_ERR_INVALID);
	assert_int_equal(create_limited(fx->st, 3, "ws-a", "", 10, 10, 60, NULL), NL_ERR_INVALID);
	assert_int_equal(create_limited(fx->st, 3, "ws-a", "alice", 0, 10, 60, NULL), NL_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pending_flows_are_counted_until_they_end, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flow_found_by_each_index, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secrets_are_not_stored_in_clear, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_user_code_collision_is_refused_atomically, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_every_key_has_a_ttl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_concurrent_claims_exactly_one_wins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_browser_binding_is_set_once_first_binder_wins, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_claim_only_by_the_bound_browser, setup, teardown),
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
	    cmocka_unit_test_setup_teardown(test_limit_per_workstation_counts_its_pending_flows, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_limit_per_workstation_and_user_frees_ended_flows, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_limit_sets_name_no_host_or_user_and_expire, setup, teardown),
	};
	return cmocka_run_group_tests_name("store_flows", tests, NULL, NULL);
}
