/* A Redis Sentinel failover under the trust-wide deployment (issue 13; doc/store.md, "Sizing"): the
 * bridges find Redis through a sentinel; the primary is killed; while the sentinel promotes the
 * replica, a sign-in either completes or ends in PAM_AUTHINFO_UNAVAIL (the break-glass code, at
 * once), never hangs and never approves wrongly; sign-ins started after the failover complete. The
 * real module under pam_wrapper on an agent, two bridges behind nginx, redis-server x2 and
 * redis-sentinel, the mock as NHS login. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <security/pam_appl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cluster_fixture.h"
#include "harness.h"
#include "mockproc.h"
#include "nl_time.h"
#include "skip.h"

#define FAILOVER_BUDGET_MS 30000 /* the sentinel's down-after is 500 ms: seconds, not this */

static struct cluster *cl;
static char skip_why[256];

static int group_setup(void **state)
{
	struct cluster_opts o = {.sentinel = true, .bridges = 2};

	(void)state;
	return cluster_group_start(&o, &cl, skip_why, sizeof(skip_why));
}

static int group_teardown(void **state)
{
	(void)state;
	cluster_stop(cl);
	cl = NULL;
	return 0;
}

static int signin(void)
{
	struct pam_run r = {.service = "nl-login", .user = "clinician", .as_user = "p9"};
	return pam_run_auth(cl->w, &r);
}

static void test_signins_complete_after_a_sentinel_failover(void **state)
{
	int64_t t0, deadline;
	int rc, unavailable = 0;

	(void)state;
	if (cl == NULL)
		skip_because("%s", skip_why);
	assert_int_equal(signin(), PAM_SUCCESS);
	redisproc_kill(cl->redis); /* the primary */
	t0 = nl_mono_ms();
	deadline = t0 + (int64_t)FAILOVER_BUDGET_MS * mockproc_timeout_scale();
	for (;;) {
		int64_t s = nl_mono_ms();
		rc = signin();
		if (rc == PAM_SUCCESS)
			break;
		/* during the failover: break-glass, at once; never a denial or a hang */
		assert_int_equal(rc, PAM_AUTHINFO_UNAVAIL);
		assert_true(nl_mono_ms() - s < 10000 * mockproc_timeout_scale());
		unavailable++;
		assert_true(nl_mono_ms() < deadline);
		usleep(200000);
	}
	print_message("# failover: first sign-in completed %lld ms after the primary was killed "
	              "(%d sign-ins answered unavailable meanwhile)\n",
	              (long long)(nl_mono_ms() - t0), unavailable);
	for (int i = 0; i < 3; i++)
		assert_int_equal(signin(), PAM_SUCCESS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signins_complete_after_a_sentinel_failover),
	};
	harness_under_pam_wrapper();
	return cmocka_run_group_tests_name("cluster_failover", tests, group_setup, group_teardown);
}
