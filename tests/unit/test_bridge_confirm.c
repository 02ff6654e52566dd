/* The bridge's confirmation page and the browser binding (issue 11: phishing and login CSRF): what
 * the page shows, and what a second browser or an attacker's link cannot do. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge.h"
#include "signin.h"
#include "mockproc.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "skip.h"
#include "testsrv.h"
#include "bridge_fixture.h"

/* ---- the confirmation page and the browser binding (issue 11: phishing and login CSRF) ---- */

static long stat_count(const char *endpoint)
{
	long n = -1;

	assert_int_equal(mockproc_stat(F.mp, endpoint, &n), 0);
	return n;
}

static void assert_has(const char *html, const char *needle)
{
	if (strstr(html, needle) == NULL)
		fail_msg("the page lacks \"%s\"", needle);
}

/* A flow started as a PAM stack would, with its service, remote host and terminal. */
static void start_flow_from(const char *user, const char *service, const char *rhost, const char *tty,
                            bool caller_supplied, struct nl_flow_started *s)
{
	const struct nl_flow_origin o = {.user = user,
	                                 .service = service,
	                                 .rhost = rhost,
	                                 .tty = tty,
	                                 .owner = 1,
	                                 .caller_supplied = caller_supplied};

	memset(s, 0, sizeof(*s));
	assert_int_equal(nl_flows_start_from(F.fl, &o, s), 0);
}

/* The attack: someone starts a sign-in for alice over SSH and sends her the QR code's link. Her
 * phone shows, from the daemon's record, whose account, which computer and what access - and the
 * warning - before anything goes to NHS login; "This was not me" ends the attacker's flow. */
static void test_phishing_link_shows_account_computer_access_and_the_victim_can_refuse(void **state)
{
	struct nl_flow_started s;
	char *uri = NULL, *complete = NULL, host[256] = "", *cookie;
	long authz = stat_count("authorize");
	struct resp page, r;

	(void)state;
	start_flow_from("alice", "sshd", "203.0.113.9", "ssh", false, &s);
	assert_int_equal(nl_bridge_verification_uri(F.b, s.user_code, &uri, &complete), 0);
	fetch(complete, NULL, &page);
	assert_int_equal(page.status, 200);
	assert_security_headers(&page);
	assert_has(page.body, "<dt>Account</dt><dd>alice</dd>");
	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	assert_has(page.body, host);
	assert_has(page.body, "<dt>Access</dt><dd>SSH from 203.0.113.9");
	assert_has(page.body, "PAM service: sshd, terminal ssh");
	assert_has(page.body, "<dt>Started</dt><dd>just now</dd>");
	assert_has(page.body, s.user_code);
	assert_has(page.body, "Check it is the code on the computer's screen.");
	assert_has(page.body, "Only continue if you are at this computer now and you started this sign-in. "
	                      "If someone sent you this link or code, stop.");
	assert_has(page.body, ">Continue to NHS login</button>");
	assert_has(page.body, ">This was not me</button>");
	assert_null(strstr(page.body, "reported how it is being accessed")); /* root's own record */
	cookie = header(&page, "Set-Cookie");
	assert_non_null(cookie);
	assert_true(strncmp(cookie, "__Host-nhslogin=", 16) == 0);
	assert_non_null(strstr(cookie, "; Path=/"));
	assert_non_null(strstr(cookie, "; Secure"));
	assert_non_null(strstr(cookie, "; HttpOnly"));
	assert_non_null(strstr(cookie, "; SameSite=Lax"));
	assert_null(strstr(cookie, "Domain="));
	free(cookie);
	assert_int_equal(stat_count("authorize"), authz); /* NHS login has not been asked */
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);

	answer_in(F.phone, page.body, "refuse", &r);
	assert_int_equal(r.status, 200);
	assert_has(r.body, "Sign-in stopped");
	assert_null(header(&r, "Location"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_DENIED);
	assert_int_equal(stat_count("authorize"), authz);
	/* the code is dead now */
	fetch(complete, NULL, &r);
	assert_int_equal(r.status, 400);
	assert_has(r.body, "not recognised");
	resp_free(&r);
	resp_free(&page);
	free(uri);
	free(complete);
	nl_flow_started_clear(&s);
}

/* The page states the kind of access in words, from the PAM service. */
static void test_confirm_page_names_the_kind_of_access(void **state)
{
	static const struct {
		const char *service, *rhost, *tty, *words;
	} cases[] = {
	    {"login", "", "tty1", "<dd>the console"},
	    {"sudo", "", "pts/3", "<dd>sudo"},
	    {"su", "", "pts/3", "<dd>su"},
	    {"gnome-screensaver", "", ":0", "<dd>unlocking the screen"},
	    {"gdm-password", "", ":0", "<dd>the graphical login"},
	    {"sshd", "2001:db8::7", "ssh", "<dd>SSH from 2001:db8::7"},
	    {"cockpit", "198.51.100.4", "", "<dd>a sign-in from 198.51.100.4"},
	    {"", "", "", "<dd>a sign-in at this computer"},
	};
	struct resp r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nl_flow_started s;
		char svc[300];

		start_flow_from("alice", cases[i].service, cases[i].rhost, cases[i].tty, false, &s);
		confirm_page_in(F.phone, &s, &r);
		assert_has(r.body, cases[i].words);
		snprintf(svc, sizeof(svc), "PAM service: %s",
		         cases[i].service[0] ? cases[i].service : "(none given)");
		assert_has(r.body, svc);
		resp_free(&r);
		nl_flow_started_clear(&s);
	}
}

/* A socket-group caller (not root) supplied the service, rhost and tty: the page says so, and
 * markup or control characters in them are shown inert. */
static void test_confirm_page_labels_caller_supplied_access(void **state)
{
	struct nl_flow_started s;
	struct resp r;

	(void)state;
	start_flow_from("alice", "sshd", "<b>10.9.9.9</b>\t", "ssh", true, &s);
	confirm_page_in(F.phone, &s, &r);
	assert_has(r.body, "A program running as this account reported how it is being accessed: the "
	                   "computer did not check it.");
	assert_has(r.body, "SSH from &lt;b&gt;10.9.9.9&lt;/b&gt;?");
	assert_null(strstr(r.body, "<b>10.9.9.9"));
	resp_free(&r);
	nl_flow_started_clear(&s);
}

/* "Started 40 seconds ago", from the flow's own start time. */
static time_t clock_plus_40s(void)
{
	return time(NULL) + 40;
}

static void test_confirm_page_says_how_long_ago_it_started(void **state)
{
	struct nl_flow_started s;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	nl_set_clock(clock_plus_40s);
	confirm_page_in(F.phone, &s, &r);
	nl_set_clock(NULL);
	if (strstr(r.body, "<dd>40 seconds ago</dd>") == NULL &&
	    strstr(r.body, "<dd>41 seconds ago</dd>") == NULL)
		fail_msg("no \"40 seconds ago\" on the page");
	resp_free(&r);
	nl_flow_started_clear(&s);
}

/* Login CSRF: the phone that entered the code continues (its cookie binds the flow), but the
 * callback arrives from another browser - a stolen or forwarded sign-in link. It neither finishes
 * the flow nor ends it, and the code is not exchanged; the phone's own callback still signs in. */
static void test_callback_from_another_browser_neither_finishes_nor_ends_the_flow(void **state)
{
	struct nl_flow_started s;
	char *authz, *cb;
	long token = stat_count("token");
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	cb = authorize_at_mock(authz);
	fetch_in(F.other, cb, NULL, NULL, &r);
	assert_int_equal(r.status, 403);
	assert_security_headers(&r);
	assert_has(r.body, "This sign-in was started in another browser");
	resp_free(&r);
	fetch_in(NULL, cb, NULL, NULL, &r); /* no cookies at all */
	assert_int_equal(r.status, 403);
	resp_free(&r);
	assert_int_equal(stat_count("token"), token);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_has(r.body, "Signed in - return to your workstation");
	resp_free(&r);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	free(authz);
	free(cb);
	nl_flow_started_clear(&s);
}

/* Nor can another browser end the flow with a forged error answer, or repeated parameters. */
static void test_callback_from_another_browser_cannot_deny_the_flow(void **state)
{
	struct nl_flow_started s;
	char *authz, *st, *path = NULL, *u;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	assert_non_null(st = mockproc_query_param(authz, "state"));
	assert_int_not_equal(asprintf(&path, "/callback?error=access_denied&state=%s", st), -1);
	u = bridge_url(path);
	fetch_in(F.other, u, NULL, NULL, &r);
	assert_int_equal(r.status, 403);
	resp_free(&r);
	free(u);
	free(path);
	assert_int_not_equal(asprintf(&path, "/callback?code=a&code=b&state=%s", st), -1);
	u = bridge_url(path);
	fetch_in(F.other, u, NULL, NULL, &r);
	assert_int_equal(r.status, 403);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	free(u);
	free(path);
	free(st);
	free(authz);
	nl_flow_started_clear(&s);
}

/* The attacker enters the victim's code in their own browser, continues, and sends the victim the
 * NHS login link (the real NHS login address). The victim signs in there, but the answer comes
 * back to the victim's browser, which never continued: refused, the flow is not approved. */
static void test_nhs_login_link_sent_by_an_attacker_does_not_approve(void **state)
{
	struct nl_flow_started s;
	char *authz, *cb;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code_in(F.other, &s); /* the attacker's browser */
	cb = authorize_at_mock(authz);      /* the victim signs in at NHS login */
	fetch(cb, NULL, &r);                /* ... and comes back in her own browser */
	assert_int_equal(r.status, 403);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	free(authz);
	free(cb);
	nl_flow_started_clear(&s);
}

/* Continuing needs the cookie the page set and the token made for it: a cross-site POST (no
 * cookie: SameSite=Lax), a token from another browser's page, or none, change nothing. */
static void test_continue_needs_the_pages_cookie_and_token(void **state)
{
	struct nl_flow_started s;
	struct resp page, other, r;
	char *u = bridge_url("/d/confirm"), *flow, *form = NULL;

	(void)state;
	start_flow("alice", &s);
	confirm_page_in(F.phone, &s, &page);
	answer_in(NULL, page.body, "continue", &r); /* the form's fields, no cookie */
	assert_int_equal(r.status, 403);
	assert_has(r.body, "did not keep the sign-in cookie");
	assert_null(header(&r, "Location"));
	resp_free(&r);
	confirm_page_in(F.other, &s, &other);
	answer_in(F.other, page.body, "continue", &r); /* another browser, the phone's token */
	assert_int_equal(r.status, 403);
	assert_has(r.body, "This page has expired");
	resp_free(&r);
	answer_in(F.other, page.body, "refuse", &r); /* nor may it refuse with it */
	assert_int_equal(r.status, 403);
	resp_free(&r);
	assert_non_null(flow = hidden(page.body, "flow"));
	assert_int_not_equal(asprintf(&form, "flow=%s&answer=continue", flow), -1);
	fetch(u, form, &r); /* no token */
	assert_int_equal(r.status, 403);
	resp_free(&r);
	free(form);
	fetch(u, "flow=../../x&token=a&answer=continue", &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	get_path("/d/confirm", &r);
	assert_int_equal(r.status, 405);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	/* the phone itself continues */
	answer_in(F.phone, page.body, "continue", &r);
	assert_int_equal(r.status, 302);
	resp_free(&r);
	resp_free(&page);
	resp_free(&other);
	free(flow);
	free(u);
	nl_flow_started_clear(&s);
}

/* One sign-in, one browser: once the phone continued, another browser that knows the code (it is
 * on the screen) cannot take the sign-in over; the phone can still finish it. */
static void test_second_browser_cannot_take_over_a_continued_sign_in(void **state)
{
	struct nl_flow_started s;
	struct resp page, r;
	char *authz, *cb;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	confirm_page_in(F.other, &s, &page);
	answer_in(F.other, page.body, "continue", &r);
	assert_int_equal(r.status, 409);
	assert_has(r.body, "being finished in another browser");
	assert_null(header(&r, "Location"));
	resp_free(&r);
	resp_free(&page);
	cb = authorize_at_mock(authz);
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	free(authz);
	free(cb);
	nl_flow_started_clear(&s);
}

/* A browser keeps one cookie: two pages (two tabs) of one browser both work. */
static void test_one_browser_keeps_its_cookie_across_pages(void **state)
{
	struct nl_flow_started s;
	struct resp first, second, r;
	char *c1, *c2;

	(void)state;
	start_flow("alice", &s);
	confirm_page_in(F.phone, &s, &first);
	confirm_page_in(F.phone, &s, &second);
	assert_non_null(c1 = header(&first, "Set-Cookie"));
	assert_non_null(c2 = header(&second, "Set-Cookie"));
	assert_string_equal(c1, c2);
	answer_in(F.phone, first.body, "continue", &r);
	assert_int_equal(r.status, 302);
	resp_free(&r);
	free(c1);
	free(c2);
	resp_free(&first);
	resp_free(&second);
	nl_flow_started_clear(&s);
}

/* prompt=login by default (a phishing victim with a live NHS login session must still sign in);
 * prompt_login = no leaves it out. */
static void test_prompt_login_is_sent_unless_switched_off(void **state)
{
	struct nl_flow_started s;
	char *authz, *v;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	assert_non_null(v = mockproc_query_param(authz, "prompt"));
	assert_string_equal(v, "login");
	free(v);
	free(authz);
	nl_flow_started_clear(&s);

	F.cfg.env.prompt_login = false;
	start_flow("alice", &s);
	authz = enter_code(&s);
	F.cfg.env.prompt_login = true;
	assert_null(mockproc_query_param(authz, "prompt"));
	assert_null(strstr(authz, "prompt="));
	free(authz);
	nl_flow_started_clear(&s);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_phishing_link_shows_account_computer_access_and_the_victim_can_refuse),
	    T(test_confirm_page_names_the_kind_of_access),
	    T(test_confirm_page_labels_caller_supplied_access),
	    T(test_confirm_page_says_how_long_ago_it_started),
	    T(test_callback_from_another_browser_neither_finishes_nor_ends_the_flow),
	    T(test_callback_from_another_browser_cannot_deny_the_flow),
	    T(test_nhs_login_link_sent_by_an_attacker_does_not_approve),
	    T(test_continue_needs_the_pages_cookie_and_token),
	    T(test_second_browser_cannot_take_over_a_continued_sign_in),
	    T(test_one_browser_keeps_its_cookie_across_pages),
	    T(test_prompt_login_is_sent_unless_switched_off),
	};

	return cmocka_run_group_tests_name("bridge_confirm", tests, group_setup, group_teardown);
}
