/* The flows table: codes of the right form, limits, expiry, one-time state, outcomes, the guessing
 * limit, the wake-up fd, and speed at scale. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "flows.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_time.h"
#include "nl_wipe.h"

static time_t fake_now = 1700000000;
static time_t fake_clock(void)
{
	return fake_now;
}

struct fx {
	struct nl_config cfg;
	struct nl_flows *fl;
	int efd;
};

static int setup_with(void **state, unsigned max_flows, unsigned per_user)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	fx->cfg.flow_ttl = 300;
	fx->cfg.max_flows = max_flows;
	fx->cfg.max_flows_per_user = per_user;
	fx->cfg.code_attempts = 5;
	fx->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(fx->efd >= 0);
	fake_now = 1700000000;
	nl_set_clock(fake_clock);
	assert_int_equal(nl_flows_new(&fx->cfg, fx->efd, &fx->fl), 0);
	*state = fx;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 1024, 3);
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	nl_flows_free(fx->fl);
	close(fx->efd);
	free(fx);
	nl_set_clock(NULL);
	return 0;
}

static void start_ok(struct fx *fx, const char *user, uint64_t owner, struct nl_flow_started *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(nl_flows_start(fx->fl, user, "sshd", "10.0.0.5", "ssh", owner, s), 0);
}

static bool user_code_well_formed(const char *c)
{
	if (strlen(c) != NL_USER_CODE_LEN + 1 || c[4] != '-')
		return false;
	for (size_t i = 0; i < strlen(c); i++)
		if (i != 4 && strchr(NL_USER_CODE_ALPHABET, c[i]) == NULL)
			return false;
	return true;
}

static void test_start_returns_distinct_codes_of_right_form(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started a, b;

	start_ok(fx, "alice", 1, &a);
	start_ok(fx, "bob", 2, &b);
	assert_true(user_code_well_formed(a.user_code));
	assert_true(user_code_well_formed(b.user_code));
	assert_string_not_equal(a.user_code, b.user_code);
	assert_true(strlen(a.device_code) >= 22); /* >= 128 bits in base64url */
	assert_string_not_equal(a.device_code, b.device_code);
	assert_int_equal(strlen(a.id), 18);
	assert_memory_equal(a.id, "f-", 2);
	assert_int_equal(strspn(a.id + 2, "0123456789abcdef"), 16);
	assert_string_not_equal(a.id, b.id);
	assert_int_equal(a.expires_in, 300);
	assert_int_equal(nl_flows_count(fx->fl), 2);
	nl_flow_started_clear(&a);
	nl_flow_started_clear(&b);
}

static void test_user_code_normalize_accepts_case_spaces_and_missing_dash(void **state)
{
	char out[NL_USER_CODE_LEN + 1];
	(void)state;
	assert_int_equal(nl_user_code_normalize("kpwd-rhxt", out), 0);
	assert_string_equal(out, "KPWDRHXT");
	assert_int_equal(nl_user_code_normalize(" KPWD RHXT ", out), 0);
	assert_string_equal(out, "KPWDRHXT");
	assert_int_equal(nl_user_code_normalize("KpWdRhXt", out), 0);
	assert_string_equal(out, "KPWDRHXT");
}

static void test_user_code_normalize_refuses_lookalikes_and_bad_length(void **state)
{
	char out[NL_USER_CODE_LEN + 1];
	(void)state;
	assert_int_equal(nl_user_code_normalize("KPWD-RHX0", out), NL_ERR_INVALID); /* zero */
	assert_int_equal(nl_user_code_normalize("OPWD-RHXT", out), NL_ERR_INVALID);
	assert_int_equal(nl_user_code_normalize("IPWD-RHXT", out), NL_ERR_INVALID);
	assert_int_equal(nl_user_code_normalize("lPWD-RHXT", out), NL_ERR_INVALID);
	assert_int_equal(nl_user_code_normalize("SPWD-RHX5", out), NL_ERR_INVALID);
	assert_int_equal(nl_user_code_normalize("BPWD-RHX8", out), NL_ERR_INVALID);
	assert_int_equal(nl_user_code_normalize("KPWD-RHX", out), NL_ERR_INVALID);
	assert_int_equal(nl_user_code_normalize("KPWD-RHXTT", out), NL_ERR_INVALID);
	assert_int_equal(nl_user_code_normalize("", out), NL_ERR_INVALID);
}

static void test_start_rejects_bad_user_name(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s = {0};
	char longname[NL_USER_MAX + 2];

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(nl_flows_start(fx->fl, "", NULL, NULL, NULL, 1, &s), NL_ERR_INVALID);
	assert_int_equal(nl_flows_start(fx->fl, "al\nice", NULL, NULL, NULL, 1, &s), NL_ERR_INVALID);
	assert_int_equal(nl_flows_start(fx->fl, longname, NULL, NULL, NULL, 1, &s), NL_ERR_INVALID);
	assert_null(s.device_code);
}

static int start_at(struct fx *fx, const char *user, const char *rhost, const char *tty,
                    struct nl_flow_started *s)
{
	memset(s, 0, sizeof(*s));
	return nl_flows_start(fx->fl, user, rhost != NULL ? "sshd" : "login", rhost, tty, 1, s);
}

static void test_start_limit_per_user(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s[5];

	for (int i = 0; i < 3; i++)
		start_ok(fx, "alice", 1, &s[i]);
	/* A fourth from the same host is refused... */
	assert_int_equal(start_at(fx, "alice", "10.0.0.5", "ssh", &s[3]), NL_ERR_LIMIT);
	/* ...but not one at the computer itself, nor another user's. */
	assert_int_equal(start_at(fx, "alice", NULL, "tty1", &s[3]), 0);
	start_ok(fx, "bob", 1, &s[4]);
	/* An ended flow no longer counts against its user. */
	assert_int_equal(nl_flows_cancel(fx->fl, s[0].device_code), 0);
	nl_flow_started_clear(&s[0]);
	start_ok(fx, "alice", 1, &s[0]);
	for (int i = 0; i < 5; i++)
		nl_flow_started_clear(&s[i]);
}

/* Remote sign-ins for alice from many hosts fill her share; one at the console still starts, by
 * ending her oldest remote one. Another remote one is "unavailable" (break-glass), not a denial. */
static void test_console_start_evicts_oldest_remote_when_user_share_is_full(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s[3 * NL_FLOWS_USER_FACTOR], local, extra;
	struct nl_flow_status st;
	char host[32];
	size_t n = sizeof(s) / sizeof(s[0]);

	for (size_t i = 0; i < n; i++) {
		snprintf(host, sizeof(host), "203.0.113.%zu", i + 1);
		assert_int_equal(start_at(fx, "alice", host, "ssh", &s[i]), 0);
	}
	assert_int_equal(start_at(fx, "alice", "203.0.113.200", "ssh", &extra), NL_ERR_UNAVAILABLE);
	assert_int_equal(start_at(fx, "alice", NULL, "tty1", &local), 0);
	/* The oldest remote flow was the one ended, as cancelled. */
	assert_int_equal(nl_flows_status(fx->fl, s[0].device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_DENIED);
	assert_int_equal(st.reason, NL_REASON_CANCELLED);
	assert_int_equal(nl_flows_status(fx->fl, s[1].device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_PENDING);
	for (size_t i = 0; i < n; i++)
		nl_flow_started_clear(&s[i]);
	nl_flow_started_clear(&local);
	nl_flow_started_clear(&extra);
}

static void test_start_limit_total(void **state)
{
	struct fx *fx;
	struct nl_flow_started s[3] = {0};
	struct nl_flow_started extra = {0};
	struct nl_flow_status st;

	setup_with(state, 3, 3);
	fx = *state;
	start_ok(fx, "a", 1, &s[0]);
	start_ok(fx, "b", 1, &s[1]);
	start_ok(fx, "c", 1, &s[2]);
	/* A full table refuses another remote sign-in as unavailable (the break-glass code)... */
	assert_int_equal(start_at(fx, "d", "10.0.0.9", "ssh", &extra), NL_ERR_UNAVAILABLE);
	/* ...and makes room for one at the computer itself by ending the oldest remote one. */
	assert_int_equal(start_at(fx, "d", NULL, "tty1", &extra), 0);
	/* (the ended flow made the room: it is gone, its waiter is told not_found) */
	assert_int_equal(nl_flows_status(fx->fl, s[0].device_code, &st), NL_ERR_NOT_FOUND);
	assert_int_equal(nl_flows_status(fx->fl, s[1].device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_PENDING);
	nl_flow_started_clear(&extra);
	/* A flow that has ended gives way to a new one. */
	assert_int_equal(nl_flows_cancel(fx->fl, s[1].device_code), 0);
	assert_int_equal(start_at(fx, "e", "10.0.0.9", "ssh", &extra), 0);
	for (int i = 0; i < 3; i++)
		nl_flow_started_clear(&s[i]);
	nl_flow_started_clear(&extra);
	teardown(state);
}

static void test_flow_expires_with_clock(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_status st;

	start_ok(fx, "alice", 1, &s);
	fake_now += 299;
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_PENDING);
	assert_int_equal(st.expires_in, 1);
	fake_now += 1;
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_DENIED);
	assert_int_equal(st.reason, NL_REASON_EXPIRED);
	assert_string_equal(nl_reason_word(st.reason), "expired");
	nl_flow_started_clear(&s);
}

static void test_sweep_expires_pending_flows(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;

	start_ok(fx, "alice", 1, &s);
	assert_int_equal(nl_flows_sweep(fx->fl), 0);
	fake_now += 301;
	assert_int_equal(nl_flows_sweep(fx->fl), 1);
	assert_int_equal(nl_flows_count(fx->fl), 0);
	nl_flow_started_clear(&s);
}

static void test_outcome_is_read_once(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_status st;

	start_ok(fx, "alice", 1, &s);
	assert_int_equal(nl_flows_cancel(fx->fl, s.device_code), 0);
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), 0);
	assert_int_equal(st.reason, NL_REASON_CANCELLED);
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), NL_ERR_NOT_FOUND);
	nl_flow_started_clear(&s);
}

static void test_status_unknown_device_code_not_found(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_status st;
	char *wrong;

	start_ok(fx, "alice", 1, &s);
	wrong = strdup(s.device_code);
	wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
	assert_int_equal(nl_flows_status(fx->fl, wrong, &st), NL_ERR_NOT_FOUND);
	assert_int_equal(nl_flows_status(fx->fl, "", &st), NL_ERR_NOT_FOUND);
	free(wrong);
	nl_flow_started_clear(&s);
}

/* The phone's side: user code -> authz (state, challenge) -> state -> exchange (verifier). */
static void begin_and_take(struct fx *fx, struct nl_flow_started *s, struct nl_flow_exchange *x)
{
	struct nl_flow_authz a = {0};
	assert_int_equal(nl_flows_begin_authz(fx->fl, s->user_code, "192.0.2.1", &a), 0);
	assert_string_equal(a.id, s->id);
	assert_int_equal(nl_flows_take_state(fx->fl, a.state, x), 0);
	nl_flow_authz_clear(&a);
}

static void test_begin_authz_challenge_is_s256_of_verifier(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_authz a = {0};
	struct nl_flow_exchange x = {0};
	unsigned char md[32];
	unsigned int mdlen = 0;
	char *want = NULL;
	char lower[NL_USER_CODE_LEN + 2];

	start_ok(fx, "alice", 1, &s);
	for (size_t i = 0; i < sizeof(lower); i++)
		lower[i] = (char)(s.user_code[i] >= 'A' && s.user_code[i] <= 'Z' ? s.user_code[i] + 32
		                                                                 : s.user_code[i]);
	assert_int_equal(nl_flows_begin_authz(fx->fl, lower, "192.0.2.1", &a), 0);
	assert_true(strlen(a.state) >= 32 && strlen(a.nonce) >= 32);
	assert_int_equal(nl_flows_take_state(fx->fl, a.state, &x), 0);
	assert_string_equal(x.user, "alice");
	assert_string_equal(x.nonce, a.nonce);
	assert_true(strlen(x.code_verifier) >= 43);
	assert_int_equal(EVP_Digest(x.code_verifier, strlen(x.code_verifier), md, &mdlen, EVP_sha256(), NULL),
	                 1);
	assert_int_equal(nl_b64url_encode(md, mdlen, &want), 0);
	assert_string_equal(a.code_challenge, want);
	free(want);
	nl_flow_authz_clear(&a);
	nl_flow_exchange_clear(&x);
	nl_flow_started_clear(&s);
}

static void test_take_state_only_once(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_authz a = {0};
	struct nl_flow_exchange x = {0}, y = {0};

	start_ok(fx, "alice", 1, &s);
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "192.0.2.1", &a), 0);
	assert_int_equal(nl_flows_take_state(fx->fl, a.state, &x), 0);
	assert_int_equal(nl_flows_take_state(fx->fl, a.state, &y), NL_ERR_NOT_FOUND);
	assert_null(y.code_verifier);
	/* Nor can the code start a second sign-in once the callback has it. */
	nl_flow_authz_clear(&a);
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "192.0.2.1", &a), NL_ERR_EXPIRED);
	nl_flow_exchange_clear(&x);
	nl_flow_started_clear(&s);
}

/* ---- the confirmation page and the browser binding (issue 11, finding 1) ---- */

static const unsigned char browser_a[NL_FLOW_BROWSER_LEN] = {1, 2, 3};
static const unsigned char browser_b[NL_FLOW_BROWSER_LEN] = {1, 2, 4};

/* The flow id the phone's code names (as the bridge learns it before the confirmation page). */
static void code_to_id(struct fx *fx, const struct nl_flow_started *s)
{
	struct nl_flow_authz a = {0};

	assert_int_equal(nl_flows_begin_authz(fx->fl, s->user_code, "192.0.2.1", &a), 0);
	assert_string_equal(a.id, s->id);
	nl_flow_authz_clear(&a);
}

static void test_view_states_the_flows_own_record(void **state)
{
	struct fx *fx = *state;
	const struct nl_flow_origin o = {.user = "alice",
	                                 .service = "sshd",
	                                 .rhost = "203.0.113.9",
	                                 .tty = "ssh",
	                                 .owner = 1,
	                                 .caller_supplied = true};
	struct nl_flow_started s = {0};
	struct nl_flow_view v;
	time_t started = fake_now;

	assert_int_equal(nl_flows_start_from(fx->fl, &o, &s), 0);
	fake_now += 40;
	assert_int_equal(nl_flows_view(fx->fl, s.id, &v), 0);
	assert_string_equal(v.id, s.id);
	assert_string_equal(v.user, "alice");
	assert_string_equal(v.service, "sshd");
	assert_string_equal(v.rhost, "203.0.113.9");
	assert_string_equal(v.tty, "ssh");
	assert_true(v.caller_supplied);
	assert_int_equal(v.started_at, started);
	assert_string_equal(v.user_code, s.user_code);
	assert_int_equal(nl_flows_view(fx->fl, "f-0000000000000000", &v), NL_ERR_NOT_FOUND);
	fake_now += 300; /* past its expiry */
	assert_int_equal(nl_flows_view(fx->fl, s.id, &v), NL_ERR_EXPIRED);
	nl_flow_started_clear(&s);
}

static void test_bind_browser_first_one_keeps_the_flow(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_authz a = {0}, again = {0}, other = {0};

	start_ok(fx, "alice", 1, &s);
	code_to_id(fx, &s);
	assert_int_equal(nl_flows_bind_browser(fx->fl, s.id, browser_a, &a), 0);
	assert_string_equal(a.id, s.id);
	assert_non_null(a.state);
	assert_int_equal(nl_flows_bind_browser(fx->fl, s.id, browser_a, &again), 0); /* the same browser */
	assert_string_equal(again.state, a.state);
	assert_int_equal(nl_flows_bind_browser(fx->fl, s.id, browser_b, &other), NL_ERR_PERM);
	assert_null(other.state);
	nl_flow_authz_clear(&a);
	nl_flow_authz_clear(&again);
	nl_flow_started_clear(&s);
}

/* A callback is taken only from the bound browser; any other leaves the flow as it was. */
static void test_take_state_bound_only_from_the_bound_browser(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_authz a = {0};
	struct nl_flow_exchange x = {0};
	struct nl_flow_status st;

	start_ok(fx, "alice", 1, &s);
	code_to_id(fx, &s);
	assert_int_equal(nl_flows_bind_browser(fx->fl, s.id, browser_a, &a), 0);
	assert_int_equal(nl_flows_take_state_bound(fx->fl, a.state, NULL, "198.51.100.1", &x), NL_ERR_PERM);
	assert_string_equal(x.id, s.id);
	assert_null(x.code_verifier);
	assert_int_equal(nl_flows_take_state_bound(fx->fl, a.state, browser_b, "198.51.100.1", &x),
	                 NL_ERR_PERM);
	assert_null(x.code_verifier);
	assert_int_equal(nl_flows_take_state_bound(fx->fl, "no-such-state", browser_a, "192.0.2.1", &x),
	                 NL_ERR_NOT_FOUND);
	assert_int_equal(nl_flows_take_state_bound(fx->fl, a.state, browser_a, "192.0.2.1", &x), 0);
	assert_string_equal(x.user, "alice");
	assert_non_null(x.code_verifier);
	nl_flow_exchange_clear(&x);
	assert_int_equal(nl_flows_take_state_bound(fx->fl, a.state, browser_a, "192.0.2.1", &x),
	                 NL_ERR_NOT_FOUND);
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_PENDING); /* until the exchange's outcome finishes it */
	nl_flow_authz_clear(&a);
	nl_flow_started_clear(&s);
}

/* Before any browser continued, no callback is taken (nobody was sent to NHS login from here). */
static void test_take_state_bound_before_any_browser_continued_is_refused(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_authz a = {0};
	struct nl_flow_exchange x = {0};

	start_ok(fx, "alice", 1, &s);
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "192.0.2.1", &a), 0);
	assert_int_equal(nl_flows_take_state_bound(fx->fl, a.state, browser_a, "192.0.2.1", &x), NL_ERR_PERM);
	assert_null(x.code_verifier);
	nl_flow_authz_clear(&a);
	nl_flow_started_clear(&s);
}

static void test_refuse_ends_the_flow_denied(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_status st;
	struct nl_flow_view v;
	struct nl_flow_authz a = {0};

	start_ok(fx, "alice", 1, &s);
	code_to_id(fx, &s);
	assert_int_equal(nl_flows_refuse(fx->fl, s.id, "192.0.2.1"), 0);
	assert_int_equal(nl_flows_view(fx->fl, s.id, &v), NL_ERR_EXPIRED);
	assert_int_equal(nl_flows_bind_browser(fx->fl, s.id, browser_a, &a), NL_ERR_EXPIRED);
	assert_int_equal(nl_flows_refuse(fx->fl, s.id, "192.0.2.1"), NL_ERR_EXPIRED);
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_DENIED);
	assert_int_equal(st.reason, NL_REASON_DENIED);
	assert_non_null(strstr(st.message, "This was not me"));
	nl_flow_started_clear(&s);
}

static void test_finish_approved_approves(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_exchange x = {0};
	struct nl_flow_status st;

	start_ok(fx, "alice", 1, &s);
	begin_and_take(fx, &s, &x);
	assert_int_equal(nl_flows_finish(fx->fl, x.id, NL_REASON_NONE, NULL), 0);
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_APPROVED);
	assert_string_equal(st.user, "alice");
	/* A second finish cannot change the outcome. */
	assert_int_equal(nl_flows_finish(fx->fl, x.id, NL_REASON_NONE, NULL), NL_ERR_NOT_FOUND);
	nl_flow_exchange_clear(&x);
	nl_flow_started_clear(&s);
}

/* signin.c decides a mismatch; the flow records it, and its message names the flow's own user. */
static void test_finish_mismatch_names_the_flows_user(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_exchange x = {0};
	struct nl_flow_status st;

	start_ok(fx, "alice", 1, &s);
	begin_and_take(fx, &s, &x);
	assert_int_equal(nl_flows_finish(fx->fl, x.id, NL_REASON_MISMATCH, NULL), 0);
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_DENIED);
	assert_int_equal(st.reason, NL_REASON_MISMATCH);
	assert_non_null(strstr(st.message, "alice"));
	nl_flow_exchange_clear(&x);
	nl_flow_started_clear(&s);
}

static void test_finish_with_reason_denies_with_that_reason(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_status st;

	start_ok(fx, "alice", 1, &s);
	assert_int_equal(nl_flows_finish(fx->fl, s.id, NL_REASON_LEVEL, "level P5\nbelow P9"), 0);
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_DENIED);
	assert_int_equal(st.reason, NL_REASON_LEVEL);
	assert_string_equal(st.message, "level P5 below P9"); /* one line */
	nl_flow_started_clear(&s);
}

/* ---- the verdict table (nl_reason.c) ---- */

/* The reason words are the socket protocol's (doc/protocol.md): these stay, each reads back as
 * itself, and no two reasons share a word. (A new reason needs no line here.) */
static void test_reason_words_are_the_protocols(void **state)
{
	static const char *const words[] = {
	    "denied",       "expired",     "mismatch",  "no_mapping", "level",  "invalid_token", "cancelled",
	    "wrong_number", "unavailable", "restarted", "no_claim",   "policy", "misconfigured"};
	enum nl_reason r;

	(void)state;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		assert_true(nl_reason_from_word(words[i], &r));
		assert_int_not_equal(r, NL_REASON_NONE);
		assert_string_equal(nl_reason_word(r), words[i]);
	}
	for (unsigned i = NL_REASON_NONE + 1; i < NL_REASON_COUNT; i++) {
		assert_true(nl_reason_from_word(nl_reason_word((enum nl_reason)i), &r));
		assert_int_equal(r, i);
	}
	assert_string_equal(nl_reason_word(NL_REASON_NONE), "none");
	assert_false(nl_reason_from_word("none", &r)); /* never a denial */
	assert_false(nl_reason_from_word("Denied", &r));
	assert_false(nl_reason_from_word(NULL, &r));
	assert_string_equal(nl_reason_word((enum nl_reason)99), "denied");
}

/* Every denial says something on each surface; only a failure of the setup or of reaching NHS login
 * lets a PAM stack fall back (DESIGN.md: PAM_AUTHINFO_UNAVAIL), the rest is PAM_AUTH_ERR. */
static void test_reason_rows_are_complete(void **state)
{
	(void)state;
	for (unsigned i = NL_REASON_NONE + 1; i < NL_REASON_COUNT; i++) {
		const struct nl_reason_row *row = nl_reason_row((enum nl_reason)i);
		bool falls_back =
		    i == NL_REASON_UNAVAILABLE || i == NL_REASON_RESTARTED || i == NL_REASON_MISCONFIGURED;
		assert_non_null(row->terminal);
		assert_non_null(row->admin);
		assert_true(row->flow[0] != '\0' && row->phone_title[0] != '\0' &&
		            row->phone_text[0] != '\0');
		assert_true(row->phone_status == 403 || row->phone_status == 410 ||
		            row->phone_status == 500 || row->phone_status == 502);
		assert_false(row->phone_ok);
		assert_int_equal(row->falls_back, falls_back);
	}
	assert_true(nl_reason_row(NL_REASON_NONE)->phone_ok);
	assert_int_equal(nl_reason_row(NL_REASON_NONE)->phone_status, 200);
}

/* The flow's message names the flow's own user where the reason says so, and always fits. */
static void test_reason_flow_message_names_the_user(void **state)
{
	char out[NL_FIELD_MAX], small[8];

	(void)state;
	nl_reason_flow_message(NL_REASON_MISMATCH, "alice", out, sizeof(out));
	assert_string_equal(out, "This NHS login is not linked to the account alice.");
	nl_reason_flow_message(NL_REASON_EXPIRED, "alice", out, sizeof(out));
	assert_string_equal(out, "The sign-in code has expired.");
	nl_reason_flow_message(NL_REASON_MISMATCH, "alice", small, sizeof(small));
	assert_string_equal(small, "This NH");
}

static void test_cancel_owner_cancels_only_its_flows(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started a, b;
	struct nl_flow_status st;

	start_ok(fx, "alice", 7, &a);
	start_ok(fx, "bob", 8, &b);
	nl_flows_cancel_owner(fx->fl, 7);
	assert_int_equal(nl_flows_status(fx->fl, a.device_code, &st), 0);
	assert_int_equal(st.reason, NL_REASON_CANCELLED);
	assert_int_equal(nl_flows_status(fx->fl, b.device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_PENDING);
	assert_false(nl_flows_pending_id(fx->fl, a.id));
	assert_true(nl_flows_pending_id(fx->fl, b.id));
	nl_flow_started_clear(&a);
	nl_flow_started_clear(&b);
}

static void test_cancel_id_cancels(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started a;
	struct nl_flow_status st;
	enum nl_flow_state was = NL_FLOW_APPROVED;

	start_ok(fx, "alice", 7, &a);
	assert_int_equal(nl_flows_cancel_id(fx->fl, "f-0000000000000000", &was), NL_ERR_NOT_FOUND);
	assert_int_equal(nl_flows_cancel_id(fx->fl, a.id, &was), 0);
	assert_int_equal(was, NL_FLOW_PENDING);
	/* Again, before its owner has read the outcome: it has ended, stays so, and says it was. */
	assert_int_equal(nl_flows_cancel_id(fx->fl, a.id, &was), 0);
	assert_int_equal(was, NL_FLOW_DENIED);
	assert_int_equal(nl_flows_status(fx->fl, a.device_code, &st), 0);
	assert_int_equal(st.reason, NL_REASON_CANCELLED);
	nl_flow_started_clear(&a);
}

/* A valid-looking code that is not s's. */
static void other_code(const struct nl_flow_started *s, char *out)
{
	snprintf(out, NL_USER_CODE_LEN + 2, "%s", s->user_code);
	out[0] = out[0] == 'A' ? 'C' : 'A';
}

static void test_guessing_limit_per_client(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_authz a = {0};
	char wrong[NL_USER_CODE_LEN + 2];

	start_ok(fx, "alice", 1, &s);
	other_code(&s, wrong);
	for (unsigned i = 0; i < fx->cfg.code_attempts; i++)
		assert_int_equal(nl_flows_begin_authz(fx->fl, wrong, "198.51.100.7", &a), NL_ERR_NOT_FOUND);
	/* Now even the right code is refused from that address ... */
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "198.51.100.7", &a), NL_ERR_LIMIT);
	assert_null(a.state);
	/* ... but not from another, and not after ten minutes. */
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "198.51.100.8", &a), 0);
	nl_flow_authz_clear(&a);
	nl_flow_started_clear(&s);
	fake_now += 600;
	start_ok(fx, "alice", 1, &s);
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "198.51.100.7", &a), 0);
	nl_flow_authz_clear(&a);
	nl_flow_started_clear(&s);
}

/* Wrong codes from many addresses slow each of them down; they never refuse a phone that has not
 * guessed itself (the old global cap refused everyone for a minute after 100). */
static void test_guessing_limit_global_across_clients(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_authz a = {0};
	char wrong[NL_USER_CODE_LEN + 2], client[32];
	int i, refused = 0;

	start_ok(fx, "alice", 1, &s);
	other_code(&s, wrong);
	for (i = 0; i < 1000; i++) {
		snprintf(client, sizeof(client), "203.0.113.%d", i % 250);
		int r = nl_flows_begin_authz(fx->fl, wrong, client, &a);
		assert_true(r == NL_ERR_NOT_FOUND || r == NL_ERR_LIMIT);
		refused += r == NL_ERR_LIMIT;
	}
	assert_true(refused > 0);
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "198.51.100.254", &a), 0);
	nl_flow_authz_clear(&a);
	nl_flow_started_clear(&s);
}

static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void drain(int fd)
{
	uint64_t v;
	while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
}

static void test_notify_fd_readable_after_change(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_status st;

	start_ok(fx, "alice", 1, &s);
	drain(fx->efd);
	assert_false(readable(fx->efd));
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), 0); /* a read is no change */
	assert_false(readable(fx->efd));
	assert_int_equal(nl_flows_finish(fx->fl, s.id, NL_REASON_DENIED, NULL), 0);
	assert_true(readable(fx->efd));
	nl_flow_started_clear(&s);
}

static int64_t cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_ten_thousand_flows_start_and_lookup_fast(void **state)
{
	enum { N = 10000 };
	struct fx *fx;
	struct nl_flow_started *s = calloc(N, sizeof(*s));
	struct nl_flow_status st;
	int64_t t0;
	char user[32];

	setup_with(state, 100000, 3);
	fx = *state;
	assert_non_null(s);
	/* One log line a flow: keep them off the test output. */
	int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
	assert_true(saved >= 0 && devnull >= 0);
	dup2(devnull, 2);
	t0 = cpu_ms();
	for (int i = 0; i < N; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		assert_int_equal(nl_flows_start(fx->fl, user, NULL, NULL, NULL, (uint64_t)i, &s[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(nl_flows_status(fx->fl, s[i].device_code, &st), 0);
		assert_int_equal(st.state, NL_FLOW_PENDING);
	}
	/* CPU time, so that a loaded build machine does not make the test flaky. */
	/* A speed bound; under valgrind (NL_TEST_TIMEOUT_SCALE > 1) only the work is checked. */
	if (getenv("NL_TEST_TIMEOUT_SCALE") == NULL)
		assert_true(cpu_ms() - t0 < 2000);
	dup2(saved, 2);
	close(saved);
	close(devnull);
	assert_int_equal(nl_flows_count(fx->fl), N);
	for (int i = 0; i < N; i++)
		nl_flow_started_clear(&s[i]);
	free(s);
	teardown(state);
}

/* ---- the wrong-code limit against many addresses (issue 11, finding 6) ---- */

/* n wrong codes, round-robin over `clients` addresses prefix.0 .. prefix.(clients-1); how many of
 * them were refused before the code was looked at. */
static int guess_round_robin(struct fx *fx, const char *wrong, const char *prefix, int clients, int n)
{
	struct nl_flow_authz a = {0};
	char client[48];
	int refused = 0;

	for (int i = 0; i < n; i++) {
		snprintf(client, sizeof(client), "%s.%d", prefix, i % clients);
		int r = nl_flows_begin_authz(fx->fl, wrong, client, &a);
		assert_true(r == NL_ERR_NOT_FOUND || r == NL_ERR_LIMIT);
		refused += r == NL_ERR_LIMIT;
	}
	assert_null(a.state);
	return refused;
}

/* The attack of finding 6: 1,000 wrong codes from 100 addresses, then the person who saw the
 * screen types the right code on a phone of its own: it is accepted at once. */
static void test_thousand_wrong_codes_from_hundred_addresses_never_refuse_a_fresh_phone(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_authz a = {0};
	char wrong[NL_USER_CODE_LEN + 2];

	start_ok(fx, "alice", 1, &s);
	other_code(&s, wrong);
	assert_true(guess_round_robin(fx, wrong, "203.0.113", 100, 1000) > 0);
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "198.51.100.77", &a), 0);
	assert_non_null(a.state);
	nl_flow_authz_clear(&a);
	nl_flow_started_clear(&s);
}

/* While wrong codes arrive at 100 a minute from everyone, each address may enter 3 (not
 * code_attempts) before it is refused - the right code too, as the code is not looked at. */
static void test_many_addresses_guessing_cut_each_address_to_three(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_authz a = {0};
	char wrong[NL_USER_CODE_LEN + 2];

	start_ok(fx, "alice", 1, &s);
	other_code(&s, wrong);
	/* 100 addresses, one wrong code each: the 100th in the minute turns the pressure on */
	assert_int_equal(guess_round_robin(fx, wrong, "203.0.113", 100, 100), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(nl_flows_begin_authz(fx->fl, wrong, "192.0.2.9", &a), NL_ERR_NOT_FOUND);
	assert_int_equal(nl_flows_begin_authz(fx->fl, wrong, "192.0.2.9", &a), NL_ERR_NOT_FOUND);
	assert_int_equal(nl_flows_begin_authz(fx->fl, wrong, "192.0.2.9", &a), NL_ERR_LIMIT);
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "192.0.2.9", &a), NL_ERR_LIMIT);
	assert_null(a.state);
	/* two quiet minutes: code_attempts (5) again, so that address has 2 left */
	fake_now += 121;
	assert_int_equal(nl_flows_begin_authz(fx->fl, wrong, "192.0.2.9", &a), NL_ERR_NOT_FOUND);
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "192.0.2.9", &a), 0);
	nl_flow_authz_clear(&a);
	nl_flow_started_clear(&s);
}

/* One address guessing alone is stopped at code_attempts, whatever else is going on. */
static void test_one_address_guessing_is_throttled_at_code_attempts(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	char wrong[NL_USER_CODE_LEN + 2];
	int refused;

	start_ok(fx, "alice", 1, &s);
	other_code(&s, wrong);
	refused = guess_round_robin(fx, wrong, "198.51.100", 1, 1000);
	assert_int_equal(refused, 1000 - (int)fx->cfg.code_attempts);
	nl_flow_started_clear(&s);
}

/* An IPv6 address counts by its /64: a guesser cannot take a fresh address from its own
 * prefix for each guess. An IPv4-mapped address counts as the IPv4 one. */
static void test_ipv6_addresses_count_by_their_64(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_authz a = {0};
	char wrong[NL_USER_CODE_LEN + 2], client[64];

	start_ok(fx, "alice", 1, &s);
	other_code(&s, wrong);
	for (unsigned i = 0; i < fx->cfg.code_attempts; i++) {
		snprintf(client, sizeof(client), "2001:db8:1:2::%x", i + 1);
		assert_int_equal(nl_flows_begin_authz(fx->fl, wrong, client, &a), NL_ERR_NOT_FOUND);
	}
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "2001:db8:1:2:ffff:ffff:ffff:ffff", &a),
	                 NL_ERR_LIMIT);
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "2001:db8:1:3::1", &a), 0);
	nl_flow_authz_clear(&a);
	for (unsigned i = 0; i < fx->cfg.code_attempts; i++)
		assert_int_equal(nl_flows_begin_authz(fx->fl, wrong, "::ffff:192.0.2.44", &a),
		                 NL_ERR_NOT_FOUND);
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "192.0.2.44", &a), NL_ERR_LIMIT);
	nl_flow_started_clear(&s);
}

/* More addresses than the table remembers: the bookkeeping stays bounded and correct for the
 * addresses it holds, and a fresh phone still gets in. */
static void test_guessing_from_more_addresses_than_remembered_stays_bounded(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_authz a = {0};
	char wrong[NL_USER_CODE_LEN + 2], client[64];

	start_ok(fx, "alice", 1, &s);
	other_code(&s, wrong);
	for (int i = 0; i < 20000; i++) {
		snprintf(client, sizeof(client), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		int r = nl_flows_begin_authz(fx->fl, wrong, client, &a);
		assert_true(r == NL_ERR_NOT_FOUND || r == NL_ERR_LIMIT);
	}
	assert_int_equal(nl_flows_begin_authz(fx->fl, s.user_code, "198.51.100.200", &a), 0);
	nl_flow_authz_clear(&a);
	nl_flow_started_clear(&s);
}

/* ---- number matching ---- */

static void start_numbered(struct fx *fx, const char *user, struct nl_flow_started *s,
                           struct nl_flow_exchange *x)
{
	const struct nl_flow_origin o = {.user = user,
	                                 .service = "sshd",
	                                 .rhost = "10.0.0.5",
	                                 .tty = "ssh",
	                                 .owner = 1,
	                                 .number_match = true};
	memset(s, 0, sizeof(*s));
	assert_int_equal(nl_flows_start_from(fx->fl, &o, s), 0);
	begin_and_take(fx, s, x);
	assert_int_equal(nl_flows_finish(fx->fl, x->id, NL_REASON_NONE, NULL), 0);
}

/* Signed in at NHS login, the flow is not approved yet: it wants the number the phone shows. */
static void test_number_matching_waits_for_the_number(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_exchange x = {0};
	struct nl_flow_status st;
	unsigned n;
	char typed[8];

	start_numbered(fx, "alice", &s, &x);
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_PENDING);
	assert_true(st.want_number);
	assert_int_equal(nl_flows_number_of(fx->fl, x.id, &n), 0);
	assert_true(n >= 10 && n <= 99);
	snprintf(typed, sizeof(typed), "%u", n);
	assert_int_equal(nl_flows_enter_number(fx->fl, s.device_code, typed), 0);
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_APPROVED);
	assert_string_equal(st.user, "alice");
	nl_flow_exchange_clear(&x);
	nl_flow_started_clear(&s);
}

/* A wrong number ends the flow as wrong_number; it cannot be tried again. */
static void test_number_matching_wrong_number_ends_the_flow(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	struct nl_flow_exchange x = {0};
	struct nl_flow_status st;
	unsigned n;
	char typed[8];

	start_numbered(fx, "alice", &s, &x);
	assert_int_equal(nl_flows_number_of(fx->fl, x.id, &n), 0);
	snprintf(typed, sizeof(typed), "%u", n == 99 ? 98 : n + 1);
	assert_int_equal(nl_flows_enter_number(fx->fl, s.device_code, typed), NL_ERR_DENIED);
	snprintf(typed, sizeof(typed), "%u", n);
	assert_int_equal(nl_flows_enter_number(fx->fl, s.device_code, typed), NL_ERR_EXPIRED);
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_DENIED);
	assert_int_equal(st.reason, NL_REASON_WRONG_NUMBER);
	nl_flow_exchange_clear(&x);
	nl_flow_started_clear(&s);
}

/* No number before the phone has signed in; none for a flow without number matching. */
static void test_number_matching_refuses_a_number_before_sign_in(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;
	const struct nl_flow_origin o = {
	    .user = "alice", .service = "sshd", .rhost = "10.0.0.5", .owner = 1, .number_match = true};
	unsigned n;

	memset(&s, 0, sizeof(s));
	assert_int_equal(nl_flows_start_from(fx->fl, &o, &s), 0);
	assert_int_equal(nl_flows_enter_number(fx->fl, s.device_code, "42"), NL_ERR_INVALID);
	assert_int_equal(nl_flows_number_of(fx->fl, s.id, &n), NL_ERR_NOT_FOUND);
	nl_flow_started_clear(&s);
	start_ok(fx, "bob", 1, &s);
	assert_int_equal(nl_flows_enter_number(fx->fl, s.device_code, "42"), NL_ERR_INVALID);
	nl_flow_started_clear(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_start_returns_distinct_codes_of_right_form, setup, teardown),
	    cmocka_unit_test(test_user_code_normalize_accepts_case_spaces_and_missing_dash),
	    cmocka_unit_test(test_user_code_normalize_refuses_lookalikes_and_bad_length),
	    cmocka_unit_test_setup_teardown(test_start_rejects_bad_user_name, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_start_limit_per_user, setup, teardown),
	    cmocka_unit_test(test_start_limit_total),
	    cmocka_unit_test_setup_teardown(test_console_start_evicts_oldest_remote_when_user_share_is_full,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flow_expires_with_clock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sweep_expires_pending_flows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outcome_is_read_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status_unknown_device_code_not_found, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_begin_authz_challenge_is_s256_of_verifier, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_take_state_only_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_view_states_the_flows_own_record, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bind_browser_first_one_keeps_the_flow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_take_state_bound_only_from_the_bound_browser, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_take_state_bound_before_any_browser_continued_is_refused,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refuse_ends_the_flow_denied, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_finish_approved_approves, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_number_matching_waits_for_the_number, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_number_matching_wrong_number_ends_the_flow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_number_matching_refuses_a_number_before_sign_in, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_finish_mismatch_names_the_flows_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_finish_with_reason_denies_with_that_reason, setup, teardown),
	    cmocka_unit_test(test_reason_words_are_the_protocols),
	    cmocka_unit_test(test_reason_rows_are_complete),
	    cmocka_unit_test(test_reason_flow_message_names_the_user),
	    cmocka_unit_test_setup_teardown(test_cancel_owner_cancels_only_its_flows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_id_cancels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_guessing_limit_per_client, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_guessing_limit_global_across_clients, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notify_fd_readable_after_change, setup, teardown),
	    cmocka_unit_test(test_ten_thousand_flows_start_and_lookup_fast),
	    cmocka_unit_test_setup_teardown(
	        test_thousand_wrong_codes_from_hundred_addresses_never_refuse_a_fresh_phone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_addresses_guessing_cut_each_address_to_three, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_one_address_guessing_is_throttled_at_code_attempts, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_ipv6_addresses_count_by_their_64, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_guessing_from_more_addresses_than_remembered_stays_bounded,
	                                    setup, teardown),
	};
	return cmocka_run_group_tests_name("flows", tests, NULL, NULL);
}
