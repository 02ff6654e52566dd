/* The trust-wide deployment end to end (issue 13; doc/bridge.md): the real module under pam_wrapper
 * on a workstation whose nhslogind is an agent, two real nhslogind bridges behind a real nginx,
 * a real redis-server holding every flow, the real nhslogin-mock as NHS login, and the harness's
 * phone walking the pages through nginx (so its requests land on both bridges). Then each fault of
 * doc/bridge.md's table: a bridge killed between the code entry and the callback, Redis down
 * (break-glass at once), Redis restarted under a sign-in in progress. A Sentinel failover is
 * test_cluster_failover.c. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <security/pam_appl.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_fixture.h"
#include "harness.h"
#include "mockproc.h"
#include "nl_time.h"
#include "skip.h"

static struct cluster *cl;
static char skip_why[256];

static int group_setup(void **state)
{
	(void)state;
	return cluster_group_start(NULL, &cl, skip_why, sizeof(skip_why));
}

static int group_teardown(void **state)
{
	(void)state;
	cluster_stop(cl);
	cl = NULL;
	return 0;
}

#define NEED_CLUSTER()                                                                                       \
	do {                                                                                                 \
		if (cl == NULL)                                                                              \
			skip_because("%s", skip_why);                                                        \
	} while (0)

static int run(struct pam_run *r, const char *service, const char *user, const char *as_user)
{
	r->service = service;
	r->user = user;
	r->as_user = as_user;
	return pam_run_auth(cl->w, r);
}

/* Sign-ins through the agent, nginx and either bridge: each bridge served part of them (the
 * phone's pages, the agent's start and its long-poll are spread round robin). */
static void test_signin_through_two_bridges_behind_nginx(void **state)
{
	(void)state;
	NEED_CLUSTER();
	for (int i = 0; i < 3; i++) {
		struct pam_run r = {0};
		int64_t t0 = nl_mono_ms();
		assert_int_equal(run(&r, "nl-login", "clinician", "p9"), PAM_SUCCESS);
		assert_true(r.user_code[0] != '\0');
		assert_true(pam_run_saw_info(&r, cl->url)); /* the module shows the bridge's address */
		print_message("# sign-in %d through the cluster: %lld ms\n", i + 1,
		              (long long)(nl_mono_ms() - t0));
	}
	for (int i = 0; i < cl->nb; i++)
		assert_true(cluster_log_has(cl, i, "ws1"));
}

/* A person's pace: the phone signs in 65 s after the code is shown, so the agent's 25 s long-poll
 * at the bridge is asked again at least twice, through nginx, before the approval comes. */
static void test_signin_at_a_persons_speed(void **state)
{
	struct pam_run r = {.phone_after_ms = 65000};

	(void)state;
	NEED_CLUSTER();
	assert_int_equal(run(&r, "nl-login", "clinician", "p9"), PAM_SUCCESS);
}

/* A real token for someone else: the bridge passes it on, the agent maps it to another account. */
static void test_signin_as_another_person_is_refused_by_the_agent(void **state)
{
	struct pam_run r = {0};

	(void)state;
	NEED_CLUSTER();
	assert_int_equal(run(&r, "nl-login", "nurse", "p9"), PAM_AUTH_ERR);
}

/* The phone's steps up to NHS login's redirect back; then bridge 1 dies (SIGKILL); the callback goes
 * through nginx to bridge 2, which finds the flow in Redis and completes it; the agent's long-poll,
 * cut when bridge 1 died, is asked again at bridge 2. */
static int phone_then_kill(struct world *w, struct pam_run *r)
{
	struct mockproc_resp resp = {0};
	char *cb = NULL;
	int rc;

	if ((rc = phone_to_callback(w, r->user_code, r->as_user, &cb)) != 0)
		return rc;
	cluster_kill_bridge(cl, 0, SIGKILL);
	rc = mockproc_fetch("GET", cb, NULL, NULL, NULL, &resp);
	r->phone_status = resp.status;
	mockproc_resp_free(&resp);
	free(cb);
	return rc;
}

static void test_bridge_killed_between_code_and_callback(void **state)
{
	struct pam_run r = {.phone = phone_then_kill};

	(void)state;
	NEED_CLUSTER();
	assert_int_equal(run(&r, "nl-login", "clinician", "p9"), PAM_SUCCESS);
	assert_int_equal(r.phone_status, 200);
	/* The long-poll cut by the kill was asked again by the agent, signed afresh: nginx did not
	 * resend the same signed request to the other bridge (refused there as a replay). */
	assert_false(cluster_log_has(cl, 1, "replayed"));
	assert_int_equal(cluster_restart_bridge(cl, 0), 0);
}

/* Redis down: the bridges answer "unavailable" at once and the module returns PAM_AUTHINFO_UNAVAIL
 * (the stack's break-glass password), in seconds, not at the module's timeout. Back up: new sign-ins
 * work. */
static void test_redis_down_is_break_glass_at_once(void **state)
{
	struct pam_run r = {0}, r2 = {0};
	int64_t t0;

	(void)state;
	NEED_CLUSTER();
	redisproc_kill(cl->redis);
	t0 = nl_mono_ms();
	assert_int_equal(run(&r, "nl-login", "clinician", "p9"), PAM_AUTHINFO_UNAVAIL);
	print_message("# Redis down: PAM_AUTHINFO_UNAVAIL after %lld ms\n", (long long)(nl_mono_ms() - t0));
	assert_true(nl_mono_ms() - t0 < 5000 * mockproc_timeout_scale());
	assert_int_equal(redisproc_restart(cl->redis), 0);
	assert_int_equal(run(&r2, "nl-login", "clinician", "p9"), PAM_SUCCESS);
}

/* Redis restarted under a sign-in in progress (the code shown, the phone not yet there): the flow is
 * gone; the person is told to start again, and PAM gets a plain failure, not the break-glass code
 * (the bridge is reachable). The next sign-in works. The restart is made on this (the main) thread:
 * the servers the tests start die with the thread that started them, so the sign-in runs on
 * another. */
static atomic_int code_shown, redis_back;

static int phone_after_restart(struct world *w, struct pam_run *r)
{
	struct mockproc_resp resp = {0};
	char url[256];
	int rc;

	(void)w;
	atomic_store(&code_shown, 1);
	for (int i = 0; i < 2000 && !atomic_load(&redis_back); i++)
		usleep(10000);
	snprintf(url, sizeof(url), "%s/d?code=%s", cl->url, r->user_code);
	rc = mockproc_fetch("GET", url, NULL, NULL, NULL, &resp);
	r->phone_status = resp.status;
	mockproc_resp_free(&resp);
	return rc;
}

struct bg_run {
	struct pam_run r;
	int rc;
};

static void *bg_signin(void *arg)
{
	struct bg_run *b = arg;
	b->rc = run(&b->r, "nl-long", "clinician", "p9");
	return NULL;
}

static void test_redis_restarted_under_a_signin(void **state)
{
	struct bg_run b = {.r = {.phone = phone_after_restart}};
	struct pam_run r2 = {0};
	pthread_t t;

	(void)state;
	NEED_CLUSTER();
	atomic_store(&code_shown, 0);
	atomic_store(&redis_back, 0);
	assert_int_equal(pthread_create(&t, NULL, bg_signin, &b), 0);
	for (int i = 0; i < 2000 && !atomic_load(&code_shown); i++)
		usleep(10000);
	redisproc_kill(cl->redis);
	int restarted = redisproc_restart(cl->redis);
	atomic_store(&redis_back, 1);
	pthread_join(t, NULL);
	assert_int_equal(restarted, 0);
	assert_true(atomic_load(&code_shown));
	assert_int_not_equal(b.rc, PAM_SUCCESS);
	assert_int_not_equal(b.rc, PAM_AUTHINFO_UNAVAIL);
	assert_int_not_equal(b.r.phone_status, 200); /* the code is unknown now: no confirmation page */
	assert_int_equal(run(&r2, "nl-login", "clinician", "p9"), PAM_SUCCESS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signin_through_two_bridges_behind_nginx),
	    cmocka_unit_test(test_signin_as_another_person_is_refused_by_the_agent),
	    cmocka_unit_test(test_bridge_killed_between_code_and_callback),
	    cmocka_unit_test(test_signin_at_a_persons_speed),
	    cmocka_unit_test(test_redis_down_is_break_glass_at_once),
	    cmocka_unit_test(test_redis_restarted_under_a_signin),
	};

	harness_under_pam_wrapper();
	return cmocka_run_group_tests_name("cluster", tests, group_setup, group_teardown);
}
