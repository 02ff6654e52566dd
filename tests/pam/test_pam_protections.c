/* The sign-in's protections end to end through the real module, daemon and mock (issue 11):
 * device-code phishing, login CSRF, prompt=login, the policy, a cached sign-in reused only where it
 * was earned, number matching. Each test asserts the exact PAM code of its path. */
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

/* ---- issue 11, finding 1: device-code phishing, login CSRF, prompt=login ---- */

static char victim_page[65536];

/* The victim's phone: she opens the link someone sent her, reads the confirmation page, and
 * presses "This was not me". */
static int phone_victim_refuses(struct world *w, struct pam_run *run)
{
	struct mockproc_resp r = {0};
	char *page = NULL;
	int rc = phone_confirm(w, run->user_code, "refuse", &page, &r);

	if (rc == 0) {
		snprintf(victim_page, sizeof(victim_page), "%s", page);
		run->phone_status = r.status;
	}
	free(page);
	mockproc_resp_free(&r);
	return rc;
}

/* Phishing: someone starts a sign-in as clinician and sends the link. Before anything goes to NHS
 * login the phone is told, from the daemon's record, whose account, which computer and what kind
 * of access - and to stop if someone sent the link; "This was not me" denies the sign-in. */
static void test_phishing_link_names_the_sign_in_and_the_victim_refuses_it(void **state)
{
	struct pam_run run = {.service = "nl-login", .user = "clinician", .phone = phone_victim_refuses};
	char host[256] = "", want[400], log[PATH_MAX + 32];
	long authz = -1, authz_after = -1;
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(mockproc_stat(main_world->mock, "authorize", &authz), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_rc, 0);
	assert_int_equal(run.phone_status, 200);
	assert_non_null(strstr(victim_page, "<dt>Account</dt><dd>clinician</dd>"));
	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	snprintf(want, sizeof(want), "<dt>Computer</dt><dd>%s</dd>", host);
	assert_non_null(strstr(victim_page, want));
	assert_non_null(strstr(victim_page, "<dt>Access</dt><dd>a sign-in at this computer"));
	assert_non_null(strstr(victim_page, "PAM service: nl-login"));
	assert_non_null(strstr(victim_page, run.user_code));
	assert_non_null(strstr(victim_page, "If someone sent you this link or code, stop."));
	assert_true(pam_run_saw_error(&run, "declined"));
	assert_int_equal(mockproc_stat(main_world->mock, "authorize", &authz_after), 0);
	assert_int_equal(authz_after, authz); /* NHS login was never asked */
	snprintf(log, sizeof(log), "%s/daemon.log", main_world->dir);
	assert_true(log_has(log, "(refused at the confirmation page from 127.0.0.1)"));
}

static int other_browser_status;

/* The phone continues and signs in at NHS login, but NHS login's answer is opened in another
 * browser (no cookie: a stolen or forwarded link); with finish, the phone then opens it itself. */
static int phone_answer_elsewhere(struct world *w, struct pam_run *run, bool finish)
{
	struct mockproc_resp r = {0};
	char *cb = NULL;
	int rc = phone_to_callback(w, run->user_code, "p9", &cb);

	if (rc != 0)
		return rc;
	if ((rc = mockproc_fetch_in(NULL, "GET", cb, NULL, NULL, NULL, &r)) == 0) {
		other_browser_status = (int)r.status;
		mockproc_resp_free(&r);
		if (finish && (rc = mockproc_fetch("GET", cb, NULL, NULL, NULL, &r)) == 0)
			run->phone_status = r.status;
	}
	mockproc_resp_free(&r);
	free(cb);
	return rc;
}

static int phone_answer_stolen(struct world *w, struct pam_run *run)
{
	return phone_answer_elsewhere(w, run, false);
}

static int phone_answer_stolen_then_own(struct world *w, struct pam_run *run)
{
	return phone_answer_elsewhere(w, run, true);
}

/* Login CSRF: NHS login's answer in a browser that did not continue from the confirmation page
 * does not approve the sign-in (it runs out), nor end it (the phone's own browser still finishes
 * it), and the code is not exchanged. */
static void test_callback_in_another_browser_does_not_approve(void **state)
{
	struct pam_run stolen = {.service = "nl-login2", .user = "clinician", .phone = phone_answer_stolen};
	struct pam_run both = {
	    .service = "nl-login", .user = "clinician", .phone = phone_answer_stolen_then_own};
	long token = -1, token_after = -1;
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(mockproc_stat(main_world->mock, "token", &token), 0);
	other_browser_status = 0;
	assert_int_equal(pam_run_auth(main_world, &stolen), PAM_AUTH_ERR);
	assert_int_equal(stolen.phone_rc, 0);
	assert_int_equal(other_browser_status, 403);
	assert_true(pam_run_saw_error(&stolen, "expired"));
	assert_int_equal(mockproc_stat(main_world->mock, "token", &token_after), 0);
	assert_int_equal(token_after, token);
	other_browser_status = 0;
	assert_int_equal(pam_run_auth(main_world, &both), PAM_SUCCESS);
	assert_int_equal(both.phone_rc, 0);
	assert_int_equal(other_browser_status, 403);
	assert_int_equal(both.phone_status, 200);
}

/* prompt=login reaches NHS login on every sign-in; prompt_login = no in the environment file
 * leaves it out (the mock counts what it was asked). */
static void test_nhs_login_is_asked_for_a_fresh_sign_in_unless_switched_off(void **state)
{
	struct world_opts o = {.env_extra = "prompt_login = no"};
	struct pam_run run = {.service = "nl-login", .user = "clinician", .as_user = "p9"};
	struct pam_run run2 = {.service = "nl-login", .user = "clinician", .as_user = "p9"};
	struct world *w = NULL;
	long before = -1, after = -1;
	(void)state;
	assert_int_equal(world_activate(main_world), 0);
	assert_int_equal(mockproc_stat(main_world->mock, "authorize_prompt_login", &before), 0);
	assert_int_equal(pam_run_auth(main_world, &run), PAM_SUCCESS);
	assert_int_equal(mockproc_stat(main_world->mock, "authorize_prompt_login", &after), 0);
	assert_int_equal(after, before + 1);

	assert_int_equal(world_start(&o, &w), 0);
	assert_int_equal(world_activate(w), 0);
	assert_int_equal(pam_run_auth(w, &run2), PAM_SUCCESS);
	assert_int_equal(mockproc_stat(w->mock, "authorize", &after), 0);
	assert_true(after >= 1); /* (the user page's decision counts as /authorize too) */
	assert_int_equal(mockproc_stat(w->mock, "authorize_prompt_login", &after), 0);
	assert_int_equal(after, 0);
	world_stop(w);
	assert_int_equal(world_activate(main_world), 0);
}

/* [policy] by PAM service: a refused service is a denial at once (no code shown, PAM_AUTH_ERR,
 * one line saying which rule); other services sign in as before. */
static void test_policy_refuses_a_denied_service_at_start(void **state)
{
	struct world_opts o = {.identity_extra = "[policy]\nservices_deny = nl-login2, sshd"};
	struct pam_run refused = {.service = "nl-login2", .user = "clinician", .as_user = "p9"};
	struct pam_run allowed = {.service = "nl-login", .user = "clinician", .as_user = "p9"};
	struct world *w = NULL;
	char log[PATH_MAX + 32];
	(void)state;
	assert_int_equal(world_start(&o, &w), 0);
	assert_int_equal(world_activate(w), 0);
	assert_int_equal(pam_run_auth(w, &refused), PAM_AUTH_ERR);
	assert_int_equal(refused.user_code[0], '\0');
	assert_true(pam_run_saw_error(&refused, "does not allow signing in with NHS login this way"));
	snprintf(log, sizeof(log), "%s/daemon.log", w->dir);
	assert_true(log_has(log,
	                    "user clinician: sign-in refused by policy: PAM service nl-login2 is in [policy] "
	                    "services_deny"));
	assert_int_equal(pam_run_auth(w, &allowed), PAM_SUCCESS);
	world_stop(w);
	assert_int_equal(world_activate(main_world), 0);
}

/* [policy] by network: sshd from outside remote_networks_allow, or inside remote_networks_deny
 * (deny wins), is refused at start; from inside, and at the console, it signs in. */
static void test_policy_refuses_remote_hosts_by_network(void **state)
{
	struct world_opts o = {.identity_extra =
	                           "[policy]\nremote_networks_allow = 10.0.0.0/8, 2001:db8::/32\n"
	                           "remote_networks_deny = 10.66.0.0/16"};
	static const struct {
		const char *rhost;
		int rc;
	} cases[] = {
	    {"203.0.113.9", PAM_AUTH_ERR}, {"10.66.1.2", PAM_AUTH_ERR},      {"2001:db9::1", PAM_AUTH_ERR},
	    {"ws.example", PAM_AUTH_ERR},  {"::ffff:10.1.2.3", PAM_SUCCESS}, {"2001:db8::5", PAM_SUCCESS},
	    {"10.1.2.3", PAM_SUCCESS},
	};
	struct world *w = NULL;
	char log[PATH_MAX + 32];
	(void)state;
	assert_int_equal(world_start(&o, &w), 0);
	assert_int_equal(world_activate(w), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pam_run run = {.user = "clinician", .as_user = "p9"};
		int rc = run_at(w, &run, "sshd", "ssh", cases[i].rhost);
		if (rc != cases[i].rc)
			fail_msg("rhost %s: PAM %d, want %d", cases[i].rhost, rc, cases[i].rc);
		assert_int_equal(run.user_code[0] == '\0', rc == PAM_AUTH_ERR);
	}
	struct pam_run console = {.user = "clinician", .as_user = "p9"};
	assert_int_equal(run_at(w, &console, "login", "tty1", NULL), PAM_SUCCESS);
	snprintf(log, sizeof(log), "%s/daemon.log", w->dir);
	assert_true(log_has(log, "remote host 203.0.113.9 is not in [policy] remote_networks_allow"));
	assert_true(log_has(log, "remote host 10.66.1.2 is in [policy] remote_networks_deny"));
	assert_true(log_has(log, "remote host ws.example is not an address"));
	world_stop(w);
	assert_int_equal(world_activate(main_world), 0);
}

/* ---- issue 11, finding 2: a cached sign-in is reused only where it was earned ---- */

/* Not reused: the person was shown a fresh code, and nobody answered it. */
static void assert_not_reused(struct world *w, const char *service, const char *tty, const char *rhost)
{
	struct pam_run run = {.user = "clinician"};

	assert_int_equal(run_at(w, &run, service, tty, rhost), PAM_AUTH_ERR);
	assert_int_not_equal(run.user_code[0], '\0');
}

static void assert_reused(struct world *w, const char *user, const char *service, const char *tty,
                          const char *rhost)
{
	struct pam_run run = {.user = user};

	assert_int_equal(run_at(w, &run, service, tty, rhost), PAM_SUCCESS);
	assert_int_equal(run.user_code[0], '\0');
}

/* A world with reuse_window = 60 (or these [identity] lines) where clinician signed in with the
 * phone as `service` on tty / from rhost; if `kept`, the sign-in is in state_dir by then. */
static struct world *signed_in_world(const char *identity_extra, const char *service, const char *tty,
                                     const char *rhost, bool kept)
{
	struct world_opts o = {.identity_extra =
	                           identity_extra != NULL ? identity_extra : "reuse_window = 60"};
	struct pam_run first = {.user = "clinician", .as_user = "p9"};
	struct world *w = NULL;

	assert_int_equal(world_start(&o, &w), 0);
	assert_int_equal(world_activate(w), 0);
	assert_int_equal(run_at(w, &first, service, tty, rhost), PAM_SUCCESS);
	assert_int_not_equal(first.user_code[0], '\0');
	assert_int_equal(first.phone_rc, 0);
	if (kept)
		assert_int_equal(world_wait_kept(w, "clinician"), 0);
	else
		usleep(200 * 1000); /* what would have been kept has been by now */
	return w;
}

/* Replace the first `from` in the file at path by `to`. */
static void edit_file(const char *path, const char *from, const char *to)
{
	char buf[8192], out[8400], *at;
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_non_null(at = strstr(buf, from));
	snprintf(out, sizeof(out), "%.*s%s%s", (int)(at - buf), buf, to, at + strlen(from));
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs(out, f) >= 0, 1);
	fclose(f);
}

/* Regular files in dir (the daemon's state_dir); 0 when it does not exist. */
static int files_in(const char *dir)
{
	char cmd[PATH_MAX + 64];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "find '%s' -type f 2>/dev/null | wc -l", dir);
	assert_non_null(p = popen(cmd, "r"));
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

/* (a) clinician signed in at the console: `ssh clinician@ws` from anywhere is not let in on it. */
static void test_console_signin_not_reused_over_ssh(void **state)
{
	struct world *w = signed_in_world(NULL, "login", "tty1", NULL, true);
	(void)state;
	assert_not_reused(w, "sshd", "ssh", "203.0.113.7");
	assert_not_reused(w, "sshd", "tty1", "203.0.113.7");
	assert_reused(w, "clinician", "login", "tty1", NULL); /* where it was earned: still reused */
	world_stop(w);
}

/* (b) the console on another tty is another place. */
static void test_console_signin_not_reused_from_another_tty(void **state)
{
	struct world *w = signed_in_world(NULL, "login", "tty1", NULL, true);
	(void)state;
	assert_not_reused(w, "login", "tty2", NULL);
	assert_not_reused(w, "login", NULL, NULL); /* nowhere: nothing to bind to */
	assert_reused(w, "clinician", "login", "tty1", NULL);
	world_stop(w);
}

/* (c) a passer-by at the locked screen: a screen locker (or a display manager, which unlocks too)
 * never reuses a sign-in unless reuse_unlock_services lists it. */
static void test_screen_unlock_not_reused_unless_listed(void **state)
{
	struct world *w = signed_in_world(NULL, "xscreensaver", ":0", NULL, false);
	(void)state;
	assert_not_reused(w, "xscreensaver", ":0", NULL);
	world_stop(w);
	w = signed_in_world(NULL, "gdm-password", ":0", NULL, false);
	assert_not_reused(w, "gdm-password", ":0", NULL);
	assert_not_reused(w, "xscreensaver", ":0", NULL);
	world_stop(w);
	/* listed: reused at the same display, and only by that kind of service */
	w = signed_in_world("reuse_window = 60\nreuse_unlock_services = xscreensaver", "xscreensaver", ":0",
	                    NULL, true);
	assert_reused(w, "clinician", "xscreensaver", ":0", NULL);
	assert_not_reused(w, "xscreensaver", ":1", NULL);
	assert_not_reused(w, "login", ":0", NULL);
	world_stop(w);
}

/* (d) the map line removed after the sign-in: no reuse. */
static void test_signin_not_reused_after_map_line_removed(void **state)
{
	struct world *w = signed_in_world(NULL, "login", "tty1", NULL, true);
	char map[PATH_MAX];
	(void)state;
	assert_reused(w, "clinician", "login", "tty1", NULL);
	snprintf(map, sizeof(map), "%s/nhslogin.map", w->dir);
	edit_file(map, "clinician 9686368973\n", "");
	assert_not_reused(w, "login", "tty1", NULL);
	world_stop(w);
}

/* (d) min_level raised (a restart with the new config): a P5 sign-in made under P5 is not reused. */
static void test_signin_not_reused_after_min_level_raised(void **state)
{
	struct world_opts o = {.vtr = "[\"P9.Cp.Cd\",\"P5.Cp.Cd\"]", .identity_extra = "reuse_window = 60"};
	struct world *w = NULL;
	struct pam_run first = {.user = "nurse", .as_user = "p5"}, again = {.user = "nurse"};
	(void)state;
	assert_int_equal(world_start(&o, &w), 0);
	world_kill_daemon(w, SIGTERM);
	edit_file(w->conf, "min_level = P9", "min_level = P5");
	assert_int_equal(world_restart_daemon(w), 0);
	assert_int_equal(world_activate(w), 0);
	assert_int_equal(run_at(w, &first, "login", "tty1", NULL), PAM_SUCCESS);
	assert_int_equal(world_wait_kept(w, "nurse"), 0);
	assert_reused(w, "nurse", "login", "tty1", NULL);
	/* the kept sign-in survives a restart on the same config */
	world_kill_daemon(w, SIGTERM);
	assert_int_equal(world_restart_daemon(w), 0);
	assert_reused(w, "nurse", "login", "tty1", NULL);
	world_kill_daemon(w, SIGTERM);
	edit_file(w->conf, "min_level = P5", "min_level = P9");
	assert_int_equal(world_restart_daemon(w), 0);
	assert_int_equal(run_at(w, &again, "login", "tty1", NULL), PAM_AUTH_ERR);
	assert_int_not_equal(again.user_code[0], '\0');
	world_stop(w);
}

/* (f) reuse_window = 0: a sign-in writes nothing to state_dir (no refresh token on disk); with
 * reuse on the same sign-in is kept there, and turning reuse off removes it at the next start. */
static void test_nothing_written_to_state_dir_when_reuse_is_off(void **state)
{
	struct world *w = signed_in_world("reuse_window = 0", "login", "tty1", NULL, false);
	char dir[PATH_MAX];
	(void)state;
	snprintf(dir, sizeof(dir), "%s/state", w->dir);
	assert_int_equal(files_in(dir), 0);
	assert_not_reused(w, "login", "tty1", NULL);
	world_stop(w);

	w = signed_in_world(NULL, "login", "tty1", NULL, true);
	snprintf(dir, sizeof(dir), "%s/state", w->dir);
	assert_int_equal(files_in(dir), 1);
	world_kill_daemon(w, SIGTERM);
	edit_file(w->conf, "reuse_window = 60", "reuse_window = 0");
	assert_int_equal(world_restart_daemon(w), 0);
	assert_int_equal(files_in(dir), 0);
	assert_not_reused(w, "login", "tty1", NULL);
	world_stop(w);
}

/* Number matching (here for every sign-in): the phone shows a number and the terminal asks for it;
 * the right one signs in. A phishing victim signs in on their phone but is not at the terminal: a
 * wrong number ends the sign-in (PAM_AUTH_ERR), logged as a possible phishing attempt. */
static void test_number_matching_right_number_signs_in_wrong_one_ends_it(void **state)
{
	static const struct world_opts o = {.identity_extra = "[policy]\nnumber_matching = always"};
	struct world *w = NULL;
	struct pam_run right = {.service = "nl-login", .user = "clinician", .as_user = "p9"};
	struct pam_run wrong = {
	    .service = "nl-login", .user = "clinician", .as_user = "p9", .number_offset = 1};
	char log[PATH_MAX + 32];
	(void)state;
	assert_int_equal(world_start(&o, &w), 0);
	assert_int_equal(world_activate(w), 0);
	assert_int_equal(pam_run_auth(w, &right), PAM_SUCCESS);
	assert_true(right.phone_number >= 10 && right.phone_number <= 99);
	assert_int_equal(right.prompts, 1);
	assert_int_equal(pam_run_auth(w, &wrong), PAM_AUTH_ERR);
	assert_true(pam_run_saw_error(&wrong, "not the number shown on the phone"));
	snprintf(log, sizeof(log), "%s/daemon.log", w->dir);
	assert_true(log_has(log, "denied reason=wrong_number"));
	assert_true(log_has(log, "possible phishing attempt"));
	world_stop(w);
}

int main(void)
{
	harness_under_pam_wrapper();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_phishing_link_names_the_sign_in_and_the_victim_refuses_it),
	    cmocka_unit_test(test_callback_in_another_browser_does_not_approve),
	    cmocka_unit_test(test_nhs_login_is_asked_for_a_fresh_sign_in_unless_switched_off),
	    cmocka_unit_test(test_policy_refuses_a_denied_service_at_start),
	    cmocka_unit_test(test_policy_refuses_remote_hosts_by_network),
	    cmocka_unit_test(test_console_signin_not_reused_over_ssh),
	    cmocka_unit_test(test_console_signin_not_reused_from_another_tty),
	    cmocka_unit_test(test_screen_unlock_not_reused_unless_listed),
	    cmocka_unit_test(test_signin_not_reused_after_map_line_removed),
	    cmocka_unit_test(test_signin_not_reused_after_min_level_raised),
	    cmocka_unit_test(test_nothing_written_to_state_dir_when_reuse_is_off),
	    cmocka_unit_test(test_number_matching_right_number_signs_in_wrong_one_ends_it),
	};
	return cmocka_run_group_tests_name("pam_protections", tests, start_main, stop_main);
}
