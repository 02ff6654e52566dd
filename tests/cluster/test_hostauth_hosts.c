/* Enrolled workstations, end to end: who signed a request, as the bridge's hosts directory says
 * (one workstation posing as another, re-enrolment and revocation, a name that is a path, unsafe
 * files), and several bridge threads on one small cache. Shared fixture: hostauth_fixture.c. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hostauth.h"
#include "hostauth_fixture.h"
#include "nl_jose.h"
#include "skip.h"

/* ---- who signed ---- */

static void test_unknown_workstation_is_refused(void **state)
{
	char *v = sign(fx.c, "ws-c", "POST", PATH, BODY, AUD, T0);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_UNKNOWN_HOST);
	free(v);
}

static void test_workstation_a_cannot_sign_as_b(void **state)
{
	/* A's key, A's kid, iss = ws-b: the kid is not B's key. */
	char *v = sign(fx.a, "ws-b", "POST", PATH, BODY, AUD, T0);
	/* Without a kid, or with B's kid copied: the signature does not verify with B's key. */
	char *kid_b = nl_jwk_thumbprint(fx.b);
	char *nokid = signed_value(fx.a, NULL, claims_of("ws-b", "POST", PATH, BODY, T0, T0 + 30, NULL));
	char *bkid = signed_value(fx.a, kid_b, claims_of("ws-b", "POST", PATH, BODY, T0, T0 + 30, NULL));
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_OTHER_KEY);
	assert_refused(nokid, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_SIGNATURE);
	assert_refused(bkid, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_SIGNATURE);
	free(v);
	free(nokid);
	free(bkid);
	free(kid_b);
}

static void test_reenrolled_workstation_refuses_the_old_key(void **state)
{
	char path[256], hostfile[256];
	cjose_jwk_t *old = new_key("r1.key", path, sizeof(path)),
	            *now_key = new_key("r2.key", path, sizeof(path));
	char *before, *after, *stale, *fresh, *pem;
	(void)state;

	assert_non_null(old);
	assert_non_null(now_key);
	assert_int_equal(enrol("ws-r", old), 0);
	before = sign(old, "ws-r", "POST", PATH, BODY, AUD, T0);
	assert_accepted(before, "POST", PATH, BODY, T0, "ws-r");
	/* Re-enrolment by rename over the file (a new inode)... */
	snprintf(hostfile, sizeof(hostfile), "%s/ws-r.pem", fx.hosts);
	snprintf(path, sizeof(path), "%s/.ws-r.new", fx.hosts);
	pem = nl_jwk_public_pem(now_key);
	assert_int_equal(test_write_file(path, 0644, pem), 0);
	assert_int_equal(rename(path, hostfile), 0);
	stale = sign(old, "ws-r", "POST", PATH, BODY, AUD, T0);
	assert_refused(stale, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_OTHER_KEY);
	fresh = sign(now_key, "ws-r", "POST", PATH, BODY, AUD, T0);
	assert_accepted(fresh, "POST", PATH, BODY, T0, "ws-r");
	/* ...and back to the old key by rewriting the same file in place (same inode). */
	free(pem);
	pem = nl_jwk_public_pem(old);
	assert_int_equal(test_write_file(hostfile, 0644, pem), 0);
	after = sign(now_key, "ws-r", "POST", PATH, BODY, AUD, T0);
	assert_refused(after, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_OTHER_KEY);
	free(pem);
	free(before);
	free(after);
	free(stale);
	free(fresh);
	cjose_jwk_release(old);
	cjose_jwk_release(now_key);
}

static void test_deleted_file_revokes_at_once(void **state)
{
	char path[256], hostfile[256];
	cjose_jwk_t *key = new_key("d.key", path, sizeof(path));
	char *first, *second;
	size_t cached;
	(void)state;

	assert_non_null(key);
	assert_int_equal(enrol("ws-d", key), 0);
	first = sign(key, "ws-d", "POST", PATH, BODY, AUD, T0);
	assert_accepted(first, "POST", PATH, BODY, T0, "ws-d");
	cached = nl_hostauth_hosts_cached(fx.h);
	snprintf(hostfile, sizeof(hostfile), "%s/ws-d.pem", fx.hosts);
	assert_int_equal(unlink(hostfile), 0);
	/* The very next request, in the same second, with the key still in the cache. */
	second = sign(key, "ws-d", "POST", PATH, BODY, AUD, T0);
	assert_refused(second, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_UNKNOWN_HOST);
	assert_int_equal(nl_hostauth_hosts_cached(fx.h), cached - 1);
	free(first);
	free(second);
	cjose_jwk_release(key);
}

static void test_enrolled_file_without_an_ec_key_is_refused(void **state)
{
	char path[256];
	char *v = sign(fx.c, "ws-junk", "POST", PATH, BODY, AUD, T0);
	(void)state;

	snprintf(path, sizeof(path), "%s/ws-junk.pem", fx.hosts);
	assert_int_equal(
	    test_write_file(path, 0644, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), 0);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_HOST_KEY_BAD);
	unlink(path);
	free(v);
}

/* ---- names and files ---- */

static void test_name_that_is_a_path_is_refused_before_any_file(void **state)
{
	static const char *const names[] = {"../evil", "hosts/../evil", "/tmp/evil", "sub/ws-a",
	                                    "WS-A",    ".hidden",       "ws-a\n",    ""};
	char path[256], *payload, *v;
	size_t i;
	(void)state;

	/* A key the attacker controls, where "../evil" would lead if names were paths. */
	snprintf(path, sizeof(path), "%s/evil.pem", fx.dir);
	v = nl_jwk_public_pem(fx.a);
	assert_int_equal(test_write_file(path, 0644, v), 0);
	free(v);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_t *c = claims_of(names[i], "POST", PATH, BODY, T0, T0 + 30, NULL);
		payload = json_dumps(c, JSON_COMPACT);
		json_decref(c);
		v = es256_by_hand(TYPED_HEADER, payload);
		assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_BAD_NAME);
		free(v);
		free(payload);
	}
	assert_false(nl_hostauth_name_ok("a..b"));
	assert_false(nl_hostauth_name_ok("a234567890123456789012345678901234567890123456789012345678901234"));
	assert_true(nl_hostauth_name_ok("a23456789012345678901234567890123456789012345678901234567890123"));
	assert_true(nl_hostauth_name_ok("ws-0042.ward7.example"));
	unlink(path);
}

static void test_group_writable_hosts_dir_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	(void)state;

	assert_int_equal(chmod(fx.hosts, 0775), 0);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_HOSTS_UNSAFE);
	assert_int_equal(chmod(fx.hosts, 0755), 0);
	/* Nothing was spent: the same request passes once the directory is safe. */
	assert_accepted(v, "POST", PATH, BODY, T0, "ws-a");
	free(v);
}

static void test_world_writable_host_file_is_refused(void **state)
{
	char path[256];
	char *v = sign(fx.b, "ws-b", "POST", PATH, BODY, AUD, T0);
	(void)state;

	snprintf(path, sizeof(path), "%s/ws-b.pem", fx.hosts);
	assert_int_equal(chmod(path, 0666), 0);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_HOSTS_UNSAFE);
	assert_int_equal(chmod(path, 0644), 0);
	assert_accepted(v, "POST", PATH, BODY, T0, "ws-b");
	free(v);
}

static void test_symlinked_host_file_is_refused(void **state)
{
	char path[256], target[256];
	char *v = sign(fx.a, "ws-link", "POST", PATH, BODY, AUD, T0);
	(void)state;

	snprintf(path, sizeof(path), "%s/ws-link.pem", fx.hosts);
	snprintf(target, sizeof(target), "%s/ws-a.pem", fx.hosts);
	assert_int_equal(symlink(target, path), 0);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_HOSTS_UNSAFE);
	unlink(path);
	free(v);
}

static void test_host_file_owned_by_another_user_is_refused(void **state)
{
	char path[256];
	char *v;
	(void)state;

	if (geteuid() != 0)
		skip_because("needs root to give the file to another user");
	v = sign(fx.b, "ws-b", "POST", PATH, BODY, AUD, T0);
	snprintf(path, sizeof(path), "%s/ws-b.pem", fx.hosts);
	assert_int_equal(chown(path, 4242, 4242), 0);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_HOSTS_UNSAFE);
	assert_int_equal(chown(path, 0, 0), 0);
	free(v);
}

/* ---- several bridge threads on one cache ---- */

#define THREADS     4
#define PER_THREAD  150
#define CHURN_HOSTS 3

struct worker {
	struct nl_hostauth_hosts *h;
	char **vals; /* PER_THREAD requests, each for one of the churned hosts */
	unsigned long replays;
	int accepted, refused;
};

static enum nl_hostauth_replay replay_count(void *ctx, const char *name, const char *jti, time_t expires_at)
{
	(void)name;
	(void)jti;
	(void)expires_at;
	__atomic_fetch_add((unsigned long *)ctx, 1, __ATOMIC_RELAXED);
	return NL_HOSTAUTH_REPLAY_NEW;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct nl_hostauth_error err;
	char name[NL_HOSTAUTH_NAME_MAX + 1];
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		if (nl_hostauth_verify(w->h, w->vals[i], "POST", PATH, BODY, strlen(BODY), AUD, T0,
		                       replay_count, &w->replays, name, &err) == 0)
			w->accepted++;
		else
			w->refused++;
	}
	return NULL;
}

/* Threads check requests of three workstations through a cache of one key (every check evicts
 * another thread's key while it may be in use) while the main thread rewrites their files: every
 * request is either accepted or refused cleanly (ASan: no key is freed while in use). */
static void test_concurrent_checks_share_a_small_cache_safely(void **state)
{
	static const char *const names[CHURN_HOSTS] = {"ws-t0", "ws-t1", "ws-t2"};
	struct worker w[THREADS];
	pthread_t tid[THREADS];
	cjose_jwk_t *keys[CHURN_HOSTS];
	struct nl_hostauth_hosts *small = NULL;
	char path[256];
	int i, j, total = 0;
	(void)state;

	assert_int_equal(nl_hostauth_hosts_new(fx.hosts, 1, &small), 0);
	for (j = 0; j < CHURN_HOSTS; j++) {
		char file[32];
		snprintf(file, sizeof(file), "t%d.key", j);
		assert_non_null(keys[j] = new_key(file, path, sizeof(path)));
		assert_int_equal(enrol(names[j], keys[j]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].h = small;
		assert_non_null(w[i].vals = calloc(PER_THREAD, sizeof(char *)));
		for (j = 0; j < PER_THREAD; j++)
			w[i].vals[j] = sign(keys[(i + j) % CHURN_HOSTS], names[(i + j) % CHURN_HOSTS], "POST",
			                    PATH, BODY, AUD, T0);
	}
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, worker_run, &w[i]), 0);
	/* The same keys written again: new times, so each is read again. */
	for (j = 0; j < 30; j++)
		assert_int_equal(enrol(names[j % CHURN_HOSTS], keys[j % CHURN_HOSTS]), 0);
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		total += w[i].accepted;
		assert_int_equal(w[i].accepted + w[i].refused, PER_THREAD);
		assert_int_equal(w[i].replays, (unsigned long)w[i].accepted);
		for (j = 0; j < PER_THREAD; j++)
			free(w[i].vals[j]);
		free(w[i].vals);
	}
	/* A file caught half-written may refuse a request; the rest pass. */
	print_message("# concurrent: %d of %d accepted\n", total, THREADS * PER_THREAD);
	assert_true(total > THREADS * PER_THREAD / 2);
	assert_true(nl_hostauth_hosts_cached(small) <= 1);
	nl_hostauth_hosts_free(small);
	for (j = 0; j < CHURN_HOSTS; j++)
		cjose_jwk_release(keys[j]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unknown_workstation_is_refused),
	    cmocka_unit_test(test_workstation_a_cannot_sign_as_b),
	    cmocka_unit_test(test_reenrolled_workstation_refuses_the_old_key),
	    cmocka_unit_test(test_deleted_file_revokes_at_once),
	    cmocka_unit_test(test_enrolled_file_without_an_ec_key_is_refused),
	    cmocka_unit_test(test_name_that_is_a_path_is_refused_before_any_file),
	    cmocka_unit_test(test_group_writable_hosts_dir_is_refused),
	    cmocka_unit_test(test_world_writable_host_file_is_refused),
	    cmocka_unit_test(test_symlinked_host_file_is_refused),
	    cmocka_unit_test(test_host_file_owned_by_another_user_is_refused),
	    cmocka_unit_test(test_concurrent_checks_share_a_small_cache_safely),
	};

	return cmocka_run_group_tests_name("hostauth_hosts", tests, group_setup, group_teardown);
}
