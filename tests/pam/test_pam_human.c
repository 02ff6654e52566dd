/* Sign-ins at a person's pace, in real time (no clock tricks): a real NHS login takes one to three
 * minutes, and the module sits quiet in the PAM conversation meanwhile. The real module under
 * pam_wrapper, the real nhslogind and nhslogin-mock; each test takes a minute or more, so there
 * are few of them (tests/ui/term/test_sshd_human.sh does the same over a real sshd). */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <security/pam_appl.h>

#include "harness.h"
#include "nl_time.h"

static struct world *main_world;

static int start_main(void **state)
{
	(void)state;
	return world_start(NULL, &main_world) == 0 ? 0 : -1;
}

static int stop_main(void **state)
{
	(void)state;
	world_stop(main_world);
	main_world = NULL;
	return 0;
}

/* The console (text shown, the module long-polls): the phone approves after 65 s; a countdown line
 * was shown at the minute. */
static void test_console_signin_approved_after_a_minute(void **state)
{
	struct pam_run run = {
	    .service = "nl-login", .user = "clinician", .as_user = "p9", .phone_after_ms = 65000};
	int64_t t0 = nl_mono_ms();
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_SUCCESS);
	print_message("# console sign-in approved after %lld ms\n", (long long)(nl_mono_ms() - t0));
	assert_int_equal(run.phone_rc, 0);
	assert_true(nl_mono_ms() - t0 >= 65000);
	assert_true(pam_run_saw_info(&run, "Waiting for NHS login sign-in ... 4:"));
	assert_true(pam_run_saw_info(&run, "signed in"));
}

/* OpenSSH/GDM style (enter_prompt, timeout=110 as pam.d-examples/sshd): the person signs in on the
 * phone within seconds but presses Enter only 70 s after the code appeared. The daemon used to
 * close the quiet connection at 60 s and throw the approval away. */
static void test_prompt_enter_pressed_after_70s_gets_the_approval(void **state)
{
	struct pam_run run = {.service = "nl-sshd110",
	                      .user = "clinician",
	                      .as_user = "p9",
	                      .phone_after_ms = 3000,
	                      .n_answer_at = 1,
	                      .answer_at_ms = {70000}};
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_SUCCESS);
	assert_int_equal(run.phone_rc, 0);
	assert_int_equal(run.prompts, 1);
	assert_true(pam_run_saw_info(&run, "The code expires in 1 minute 50 seconds."));
	assert_true(pam_run_saw_info(&run, "signed in"));
}

/* Enter pressed too early (20 s: not signed in yet), the phone approves at ~65 s, Enter again at
 * 85 s, more than a minute after the module last spoke to the daemon: the second Enter gets the
 * approval. */
static void test_prompt_early_enter_then_approval_after_a_minute(void **state)
{
	struct pam_run run = {.service = "nl-sshd110",
	                      .user = "clinician",
	                      .as_user = "p9",
	                      .phone_after_ms = 65000,
	                      .n_answer_at = 2,
	                      .answer_at_ms = {20000, 85000}};
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_SUCCESS);
	assert_int_equal(run.phone_rc, 0);
	assert_int_equal(run.prompts, 2);
	assert_true(pam_run_saw_info(&run, "NHS login: not signed in yet (1:"));
	assert_true(pam_run_saw_info(&run, "signed in"));
}

int main(void)
{
	harness_under_pam_wrapper();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_console_signin_approved_after_a_minute),
	    cmocka_unit_test(test_prompt_enter_pressed_after_70s_gets_the_approval),
	    cmocka_unit_test(test_prompt_early_enter_then_approval_after_a_minute),
	};
	return cmocka_run_group_tests_name("pam_human", tests, start_main, stop_main);
}
