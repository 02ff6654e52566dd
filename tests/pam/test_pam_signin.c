/* The sign-in end to end: the real pam_nhslogin.so in a real PAM stack (pam_wrapper + libpamtest), a
 * real nhslogind over its socket, a real nhslogin-mock over HTTP, and a phone that walks the pages:
 * success, refusals, expiry, the break-glass stack, modes, an unavailable daemon or provider. Each
 * test asserts the exact PAM code of its path. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <limits.h>

#include <security/pam_appl.h>

#include "harness.h"
#include "nl_time.h"
#include "pam_fixture.h"

static void test_signin_succeeds_for_mapped_user(void **state)
{
	struct pam_run run = {.service = "nl-login", .user = "clinician", .as_user = "p9"};
	char url[160];
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_SUCCESS);
	assert_int_equal(run.phone_rc, 0);
	assert_int_equal(run.phone_status, 200);
	/* What the person saw: the page, the grouped code, and a QR code drawn with blocks. */
	snprintf(url, sizeof(url), "open %s/d", main_world->bridge);
	assert_true(pam_run_saw_info(&run, url));
	assert_int_equal(strlen(run.user_code), 9);
	assert_int_equal(run.user_code[4], '-');
	assert_true(pam_run_saw_info(&run, "\xe2\x96\x88"));
	assert_true(pam_run_saw_info(&run, "signed in"));
}

static void test_signin_for_another_account_is_refused(void **state)
{
	/* p9's NHS number maps to clinician, not nurse. */
	struct pam_run run = {.service = "nl-login", .user = "nurse", .as_user = "p9"};
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_rc, 0);
	assert_true(pam_run_saw_error(&run, "not linked"));
}

static void test_declined_signin_is_refused(void **state)
{
	struct pam_run run = {.service = "nl-login", .user = "clinician", .decline = true};
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_rc, 0);
	assert_true(pam_run_saw_error(&run, "declined"));
}

static void test_unanswered_code_expires(void **state)
{
	struct pam_run run = {.service = "nl-short", .user = "clinician"};
	int64_t t0 = nl_mono_ms();
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_AUTH_ERR);
	assert_true(nl_mono_ms() - t0 < 6000);
	assert_true(pam_run_saw_error(&run, "expired"));
	assert_false(pam_run_saw_info(&run, "\xe2\x96\x88")); /* noqr */
}

static void test_signin_is_not_reused_when_window_is_zero(void **state)
{
	struct pam_run first = {.service = "nl-login2", .user = "clinician", .as_user = "p9"};
	struct pam_run second = {.service = "nl-login2", .user = "clinician"};
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &first), PAM_SUCCESS);
	assert_int_equal(pam_run_auth(main_world, &second), PAM_AUTH_ERR);
	assert_int_not_equal(second.user_code[0], '\0'); /* a new code was shown */
}

/* A world of its own, so that the count does not depend on the tests before it: two sign-ins,
 * each with a code exchange, one discovery and one JWKS fetch (the daemon's caches serve the rest). */
static void test_caches_make_one_discovery_and_jwks_fetch(void **state)
{
	static const struct world_opts o = {.mock_args = {NULL}};
	struct pam_run first = {.service = "nl-login", .user = "clinician", .as_user = "p9"};
	struct pam_run second = {.service = "nl-login", .user = "nurse", .as_user = "p9"};
	struct world *w = NULL;
	long discovery = -1, jwks = -1;
	int r1 = -1, r2 = -1, rd = -1, rj = -1;
	(void)state;
	assert_int_equal(world_start(&o, &w), 0);
	if (world_activate(w) == 0) {
		r1 = pam_run_auth(w, &first);
		r2 = pam_run_auth(w, &second);
		rd = mockproc_stat(w->mock, "discovery", &discovery);
		rj = mockproc_stat(w->mock, "jwks", &jwks);
	}
	world_stop(w);
	assert_int_equal(r1, PAM_SUCCESS);
	assert_int_equal(r2, PAM_AUTH_ERR);
	assert_int_equal(rd, 0);
	assert_int_equal(rj, 0);
	assert_int_equal(discovery, 1);
	assert_int_equal(jwks, 1);
}

static void test_daemon_not_running_is_authinfo_unavail(void **state)
{
	struct pam_run run = {.service = "nl-nodaemon", .user = "clinician"};
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_AUTHINFO_UNAVAIL);
	assert_true(pam_run_saw_error(&run, "not available"));
}

static void test_bad_module_argument_is_authinfo_unavail(void **state)
{
	struct pam_run run = {.service = "nl-badarg", .user = "clinician"};
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_AUTHINFO_UNAVAIL);
}

static void test_break_glass_stack_falls_through_only_when_unavailable(void **state)
{
	/* [success=done authinfo_unavail=ignore default=die] then pam_permit standing in for the
	 * break-glass password: daemon down -> the next module decides; a refusal never falls through. */
	struct pam_run down = {.service = "nl-glass", .user = "clinician"};
	struct pam_run refused = {.service = "nl-glass2", .user = "nurse", .as_user = "p9"};
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &down), PAM_SUCCESS);
	assert_int_equal(pam_run_auth(main_world, &refused), PAM_AUTH_ERR);
	assert_int_equal(refused.phone_rc, 0);
}

static void test_enter_prompt_mode_for_openssh(void **state)
{
	struct pam_run run = {.service = "nl-sshd", .user = "clinician", .as_user = "p9"};
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_SUCCESS);
	assert_true(run.prompts >= 1);
	assert_int_equal(run.phone_rc, 0);
}

static void test_conversation_without_text_is_ignored_at_once(void **state)
{
	struct pam_run run = {.service = "nl-nonint", .user = "clinician", .mute = true};
	int64_t t0 = nl_mono_ms();
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	/* The stack is [ignore=ignore default=die] then pam_permit: success means PAM_IGNORE. */
	assert_int_equal(pam_run_auth(main_world, &run), PAM_SUCCESS);
	assert_true(nl_mono_ms() - t0 < 3000);
}

static void test_conversation_without_text_is_denied_when_configured(void **state)
{
	struct pam_run run = {.service = "nl-nonint-deny", .user = "clinician", .mute = true};
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_AUTH_ERR);
}

/* A second world: vtr also asks for P5, min_level stays P9, and sign-ins may be reused. */
static void test_p5_identity_refused_when_p9_required(void **state)
{
	struct world_opts o = {.vtr = "[\"P9.Cp.Cd\",\"P5.Cp.Cd\"]", .identity_extra = "reuse_window = 60"};
	struct world *w = NULL;
	struct pam_run run = {.service = "nl-login", .user = "nurse", .as_user = "p5"};
	(void)state;
	assert_int_equal(world_start(&o, &w), 0);
	assert_int_equal(world_activate(w), 0);
	assert_int_equal(pam_run_auth(w, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_rc, 0);
	assert_true(pam_run_saw_error(&run, "identity level"));
	world_stop(w);
}

/* The default request asks for P9 only: NHS login meets a P5 person with its identity check
 * (step-up), and a person who stops there comes back as access_denied. The terminal says declined
 * (the error word says no more); the daemon's log says why, in NHS login's own words. */
static void test_p5_person_stopping_at_the_identity_check_is_declined_and_logged(void **state)
{
	struct pam_run run = {.service = "nl-login", .user = "nurse", .as_user = "p5"};
	char log[600];
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_rc, 0);
	assert_true(pam_run_saw_error(&run, "declined"));
	snprintf(log, sizeof(log), "%s/daemon.log", main_world->dir);
	assert_true(log_has(log, "NHS login answered error=access_denied (identity level too low"));
}

static void test_signin_reused_inside_window_only(void **state)
{
	struct world_opts o = {.identity_extra = "reuse_window = 60"};
	struct world *w = NULL;
	struct pam_run first = {.user = "clinician", .as_user = "p9"};
	struct pam_run again = {.user = "clinician"};
	struct pam_run other = {.user = "nurse"};
	(void)state;
	assert_int_equal(world_start(&o, &w), 0);
	assert_int_equal(world_activate(w), 0);
	/* (a place to bind the reuse to: the console's tty1) */
	assert_int_equal(run_at(w, &first, "login", "tty1", NULL), PAM_SUCCESS);
	assert_int_equal(world_wait_kept(w, "clinician"), 0);
	assert_int_equal(run_at(w, &again, "login", "tty1", NULL), PAM_SUCCESS);
	assert_int_equal(again.user_code[0], '\0'); /* no code: the sign-in was reused */
	/* Another local user never gets clinician's sign-in. */
	assert_int_equal(run_at(w, &other, "login", "tty1", NULL), PAM_AUTH_ERR);
	assert_int_not_equal(other.user_code[0], '\0');
	world_stop(w);
}

static void test_provider_unreachable_is_authinfo_unavail(void **state)
{
	struct world_opts o = {.issuer_override = "http://127.0.0.1:9"}; /* discard port: nothing listens */
	struct world *w = NULL;
	struct pam_run run = {.service = "nl-login", .user = "clinician"};
	(void)state;
	assert_int_equal(world_start(&o, &w), 0);
	assert_int_equal(world_activate(w), 0);
	assert_int_equal(pam_run_auth(w, &run), PAM_AUTHINFO_UNAVAIL);
	world_stop(w);
}

static void test_native_device_mode_signin(void **state)
{
	struct world_opts o = {
	    .mock_args = {"--device-endpoint", "--device-interval", "1", "--auto-approve", "p9", NULL},
	    .env_extra = "flow = device"};
	struct world *w = NULL;
	struct pam_run run = {.service = "nl-long", .user = "clinician"};
	(void)state;
	assert_int_equal(world_start(&o, &w), 0);
	assert_int_equal(world_activate(w), 0);
	assert_int_equal(pam_run_auth(w, &run), PAM_SUCCESS);
	assert_true(pam_run_saw_info(&run, mockproc_issuer(w->mock))); /* the provider's own page */
	world_stop(w);
}

static void test_daemon_killed_mid_flow_is_authinfo_unavail(void **state)
{
	struct world *w = NULL;
	struct pam_run run = {.service = "nl-long", .user = "clinician"};
	pid_t killer;
	int64_t t0;
	(void)state;
	assert_int_equal(world_start(NULL, &w), 0);
	assert_int_equal(world_activate(w), 0);
	/* A child kills the daemon 1 s into the wait. */
	killer = fork();
	assert_true(killer >= 0);
	if (killer == 0) {
		usleep(1000 * 1000);
		kill(w->daemon, SIGKILL);
		_exit(0);
	}
	t0 = nl_mono_ms();
	assert_int_equal(pam_run_auth(w, &run), PAM_AUTHINFO_UNAVAIL);
	assert_true(nl_mono_ms() - t0 < 3000); /* 1 s until the kill, then within 2 s */
	waitpid(killer, NULL, 0);
	world_kill_daemon(w, SIGKILL);
	world_stop(w);
}

/* The text, the PAM code and the daemon's log tell the same story of an expiry: the code lasts
 * what the module's timeout says, the daemon ends it then (logged "expired", not "cancelled"), and
 * Enter pressed afterwards gets "expired" and PAM_AUTH_ERR, not "not available". */
static void test_expiry_text_code_and_log_agree(void **state)
{
	struct world *w = NULL;
	struct pam_run run = {
	    .service = "nl-prompt3", .user = "clinician", .n_answer_at = 1, .answer_at_ms = {5000}};
	char log[PATH_MAX];
	(void)state;
	assert_int_equal(world_start(NULL, &w), 0);
	assert_int_equal(world_activate(w), 0);
	assert_int_equal(pam_run_auth(w, &run), PAM_AUTH_ERR);
	assert_true(pam_run_saw_info(&run, "The code expires in 3 seconds."));
	assert_true(pam_run_saw_error(&run, "the code has expired"));
	assert_false(pam_run_saw_error(&run, "not available"));
	snprintf(log, sizeof(log), "%s/daemon.log", w->dir);
	assert_true(log_has(log, "reason=expired"));
	assert_false(log_has(log, "reason=cancelled"));
	world_stop(w);
}

/* "c" at the prompt ends that PAM call with PAM_MAXTRIES: sshd then stops offering
 * keyboard-interactive on the connection instead of showing a fresh code at once. */
static void test_cancel_at_prompt_ends_the_attempt(void **state)
{
	struct world *w = NULL;
	struct pam_run run = {.service = "nl-sshd", .user = "clinician", .n_answer_at = 1, .answers = {"c"}};
	char log[PATH_MAX];
	(void)state;
	assert_int_equal(world_start(NULL, &w), 0);
	assert_int_equal(world_activate(w), 0);
	assert_int_equal(pam_run_auth(w, &run), PAM_MAXTRIES);
	assert_int_equal(run.prompts, 1);
	assert_true(pam_run_saw_error(&run, "sign-in cancelled"));
	snprintf(log, sizeof(log), "%s/daemon.log", w->dir);
	assert_true(log_has(log, "reason=cancelled"));
	world_stop(w);
}

/* A daemon stopped (systemctl restart, an upgrade) while someone waits: the person is told so, the
 * stack may fall back (PAM_AUTHINFO_UNAVAIL), and the log says why the flow ended. */
static void test_daemon_stopped_mid_wait_is_logged_as_restart(void **state)
{
	struct world *w = NULL;
	struct pam_run run = {.service = "nl-long", .user = "clinician"};
	char log[PATH_MAX];
	pid_t stopper;
	(void)state;
	assert_int_equal(world_start(NULL, &w), 0);
	assert_int_equal(world_activate(w), 0);
	stopper = fork();
	assert_true(stopper >= 0);
	if (stopper == 0) {
		usleep(1000 * 1000);
		kill(w->daemon, SIGTERM);
		_exit(0);
	}
	assert_int_equal(pam_run_auth(w, &run), PAM_AUTHINFO_UNAVAIL);
	waitpid(stopper, NULL, 0);
	assert_true(pam_run_saw_error(&run, "stopped on this computer while you were signing in"));
	snprintf(log, sizeof(log), "%s/daemon.log", w->dir);
	world_kill_daemon(w, SIGKILL); /* reaps it; its log is complete */
	assert_true(log_has(log, "reason=restarted"));
	assert_true(log_has(log, "daemon restarted or stopped"));
	assert_false(log_has(log, "reason=cancelled"));
	world_stop(w);
}

/* The map file made unsafe (world-writable) after the daemon started: the person is told it is
 * not set up correctly and to ask IT (never "could not be reached"), and the code is
 * PAM_AUTHINFO_UNAVAIL, so a break-glass stack still lets them in. */
static void test_map_broken_after_start_is_authinfo_unavail_and_asks_it(void **state)
{
	struct world *w = NULL;
	struct pam_run run = {.service = "nl-login", .user = "clinician", .as_user = "p9"};
	struct pam_run glass = {.service = "nl-glass2", .user = "clinician", .as_user = "p9"};
	char map[PATH_MAX];
	(void)state;
	assert_int_equal(world_start(NULL, &w), 0);
	assert_int_equal(world_activate(w), 0);
	snprintf(map, sizeof(map), "%s/nhslogin.map", w->dir);
	assert_int_equal(chmod(map, 0666), 0);
	assert_int_equal(pam_run_auth(w, &run), PAM_AUTHINFO_UNAVAIL);
	assert_int_equal(run.phone_rc, 0);
	assert_true(pam_run_saw_error(&run, "not set up correctly"));
	assert_true(pam_run_saw_error(&run, "Ask IT"));
	assert_false(pam_run_saw_error(&run, "could not be reached"));
	assert_int_equal(pam_run_auth(w, &glass), PAM_SUCCESS);
	world_stop(w);
}

/* Signed in at NHS login, but the sign-in carried no NHS number (the claim of the map): its own
 * words and PAM_AUTH_ERR, which a break-glass stack does not fall through. */
static void test_signin_without_nhs_number_is_auth_err_and_says_so(void **state)
{
	static const struct world_opts o = {.mock_users =
	                                        "[{\"username\":\"nonhs\",\"identity_level\":\"P9\"}]"};
	struct world *w = NULL;
	struct pam_run run = {.service = "nl-login", .user = "clinician", .as_user = "nonhs"};
	struct pam_run glass = {.service = "nl-glass2", .user = "clinician", .as_user = "nonhs"};
	(void)state;
	assert_int_equal(world_start(&o, &w), 0);
	assert_int_equal(world_activate(w), 0);
	assert_int_equal(pam_run_auth(w, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_rc, 0);
	assert_true(pam_run_saw_error(&run, "did not include your NHS number"));
	assert_false(pam_run_saw_error(&run, "not linked"));
	assert_int_equal(pam_run_auth(w, &glass), PAM_AUTH_ERR);
	world_stop(w);
}

int main(void)
{
	harness_under_pam_wrapper();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_signin_succeeds_for_mapped_user, NULL, NULL),
	    cmocka_unit_test(test_signin_for_another_account_is_refused),
	    cmocka_unit_test(test_declined_signin_is_refused),
	    cmocka_unit_test(test_unanswered_code_expires),
	    cmocka_unit_test(test_signin_is_not_reused_when_window_is_zero),
	    cmocka_unit_test(test_enter_prompt_mode_for_openssh),
	    cmocka_unit_test(test_caches_make_one_discovery_and_jwks_fetch),
	    cmocka_unit_test(test_conversation_without_text_is_ignored_at_once),
	    cmocka_unit_test(test_conversation_without_text_is_denied_when_configured),
	    cmocka_unit_test(test_daemon_not_running_is_authinfo_unavail),
	    cmocka_unit_test(test_bad_module_argument_is_authinfo_unavail),
	    cmocka_unit_test(test_break_glass_stack_falls_through_only_when_unavailable),
	    cmocka_unit_test(test_p5_identity_refused_when_p9_required),
	    cmocka_unit_test(test_p5_person_stopping_at_the_identity_check_is_declined_and_logged),
	    cmocka_unit_test(test_signin_reused_inside_window_only),
	    cmocka_unit_test(test_provider_unreachable_is_authinfo_unavail),
	    cmocka_unit_test(test_native_device_mode_signin),
	    cmocka_unit_test(test_daemon_killed_mid_flow_is_authinfo_unavail),
	    cmocka_unit_test(test_expiry_text_code_and_log_agree),
	    cmocka_unit_test(test_cancel_at_prompt_ends_the_attempt),
	    cmocka_unit_test(test_daemon_stopped_mid_wait_is_logged_as_restart),
	    cmocka_unit_test(test_map_broken_after_start_is_authinfo_unavail_and_asks_it),
	    cmocka_unit_test(test_signin_without_nhs_number_is_auth_err_and_says_so),
	};
	return cmocka_run_group_tests_name("pam_signin", tests, start_main, stop_main);
}
