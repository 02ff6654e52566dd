/* libnlstore when Redis is down, hung, a replica, restarted or behind Sentinel; connection kinds and
 * status, the configuration check, and measured figures (printed as TAP comments, "# ..."). */
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
#include "ports.h"
#include "redisproc.h"
#include "skip.h"
#include "store.h"
#include "store_fixture.h"

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

/* Flow n within bounds on pending flows (the create with the most arguments). */
static int create_limited_flow(struct nl_store *st, int n)
{
	struct nl_store_flow_keys k;
	char bufs[4][64];
	const struct nl_store_limits lim = {"ws-0123.example.nhs.uk", "alice", 1024, 12};
	json_t *rec = sample_record();
	int r;

	flow_keys(n, &k, bufs);
	r = nl_store_flow_create_limited(st, &k, &lim, rec, 300, NULL);
	json_decref(rec);
	return r;
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
	/* The bounded create too: Redis refuses more than 10 arguments from a client not yet
	 * authenticated before it could say NOAUTH (a protocol error, not NL_ERR_PERM). */
	assert_int_equal(create_limited_flow(fx->st, 25), NL_ERR_PERM);
	cfg.password = "wrong";
	assert_int_equal(nl_store_open(&cfg, &st, err, sizeof(err)), 0);
	assert_int_equal(create_flow(st, 24, 300), NL_ERR_PERM);
	nl_store_close(st);
	cfg.password = "s3cret-store-password";
	assert_int_equal(nl_store_open(&cfg, &st, err, sizeof(err)), 0);
	assert_int_equal(create_flow(st, 24, 300), 0);
	assert_int_equal(create_limited_flow(st, 25), 0);
	nl_store_close(st);
	/* In database 3, as the url said. */
	raw_ok(fx->raw, "AUTH %s", "s3cret-store-password");
	raw_ok(fx->raw, "SELECT 3");
	one_key(fx->raw, "nl:flow:f-0000000000000018", url, sizeof(url));
	one_key(fx->raw, "nl:pu:*", url, sizeof(url));
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
	/* start (the agent asks the bridge; within the bounds on pending flows) */
	assert_int_equal(create_limited_flow(st, n), 0);
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

	assert_int_equal(create_limited_flow(fx->st, 22), 0);
	keys = raw(fx->raw, "KEYS *");
	assert_int_equal(keys->elements, 7); /* its four keys and the three pending sets */
	for (size_t i = 0; i < keys->elements; i++) {
		redisReply *m = raw(fx->raw, "MEMORY USAGE %s SAMPLES 0", keys->element[i]->str);
		assert_int_equal(m->type, REDIS_REPLY_INTEGER);
		printf("# MEMORY USAGE %s: %lld bytes\n", keys->element[i]->str, m->integer);
		total += m->integer;
		freeReplyObject(m);
	}
	printf("# one pending flow: %lld bytes in %zu keys (the pending sets with one id included)\n", total,
	       keys->elements);
	freeReplyObject(keys);
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
	snprintf(sentinels, sizeof(sentinels), "127.0.0.1:%d, 127.0.0.1:%d", test_free_port(),
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
	return cmocka_run_group_tests_name("store_redis", tests, NULL, NULL);
}
