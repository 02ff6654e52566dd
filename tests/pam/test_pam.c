/* The sign-in end to end: the real pam_nhslogin.so in a real PAM stack (pam_wrapper +
 * libpamtest), a real nhslogind over its socket, a real nhslogin-mock over HTTP, and a phone
 * that walks the pages. Each test asserts the exact PAM code of its path. */
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

static struct world *main_world;

static int start_main(void **state)
{
	static const struct world_opts o = {.mock_args = {NULL}};
	(void)state;
	return world_start(&o, &main_world) == 0 ? 0 : -1;
}

static int stop_main(void **state)
{
	(void)state;
	world_stop(main_world);
	main_world = NULL;
	return 0;
}

/* Does the file at path contain needle? (A daemon log: small, read whole, at most 4 MiB.) */
static bool log_has(const char *path, const char *needle)
{
	static char buf[4 << 20];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

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

static int run_at(struct world *w, struct pam_run *run, const char *service, const char *tty,
                  const char *rhost);

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

/* ---- issue 11, finding 2: a cached sign-in is reused only where it was earned ---- */

/* Run PAM through nl-items as `service` would: PAM_SERVICE, PAM_TTY and PAM_RHOST set (NULL: unset). */
static int run_at(struct world *w, struct pam_run *run, const char *service, const char *tty,
                  const char *rhost)
{
	int rc;

	setenv("PAM_SERVICE", service, 1);
	if (tty != NULL)
		setenv("PAM_TTY", tty, 1);
	if (rhost != NULL)
		setenv("PAM_RHOST", rhost, 1);
	run->service = "nl-items";
	rc = pam_run_auth(w, run);
	unsetenv("PAM_SERVICE");
	unsetenv("PAM_TTY");
	unsetenv("PAM_RHOST");
	return rc;
}

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
	    cmocka_unit_test(test_phishing_link_names_the_sign_in_and_the_victim_refuses_it),
	    cmocka_unit_test(test_callback_in_another_browser_does_not_approve),
	    cmocka_unit_test(test_nhs_login_is_asked_for_a_fresh_sign_in_unless_switched_off),
	    cmocka_unit_test(test_policy_refuses_a_denied_service_at_start),
	    cmocka_unit_test(test_policy_refuses_remote_hosts_by_network),
	    cmocka_unit_test(test_cancel_at_prompt_ends_the_attempt),
	    cmocka_unit_test(test_daemon_stopped_mid_wait_is_logged_as_restart),
	    cmocka_unit_test(test_map_broken_after_start_is_authinfo_unavail_and_asks_it),
	    cmocka_unit_test(test_signin_without_nhs_number_is_auth_err_and_says_so),
	    cmocka_unit_test(test_console_signin_not_reused_over_ssh),
	    cmocka_unit_test(test_console_signin_not_reused_from_another_tty),
	    cmocka_unit_test(test_screen_unlock_not_reused_unless_listed),
	    cmocka_unit_test(test_signin_not_reused_after_map_line_removed),
	    cmocka_unit_test(test_signin_not_reused_after_min_level_raised),
	    cmocka_unit_test(test_nothing_written_to_state_dir_when_reuse_is_off),
	    cmocka_unit_test(test_number_matching_right_number_signs_in_wrong_one_ends_it),
	};
	return cmocka_run_group_tests_name("pam", tests, start_main, stop_main);
}
