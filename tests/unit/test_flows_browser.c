/* The flows table as the phone's browser meets it: the confirmation page and the browser binding
 * (issue 11, finding 1), the wrong-code limits (finding 6) and number matching. */
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
#include "flows_fixture.h"

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

/* An agent's flow: the bridge's phone showed 42, so 42 is the number the terminal must type (not
 * one drawn here); any other ends the flow. */
static void test_number_set_by_the_agent_is_the_one_wanted(void **state)
{
	struct fx *fx = *state;
	const struct nl_flow_origin o = {
	    .user = "alice", .service = "sshd", .rhost = "10.0.0.5", .owner = 1, .number_match = true};
	struct nl_flow_started s, s2;
	struct nl_flow_status st;
	unsigned n = 0;

	memset(&s, 0, sizeof(s));
	memset(&s2, 0, sizeof(s2));
	assert_int_equal(nl_flows_start_from(fx->fl, &o, &s), 0);
	assert_int_equal(nl_flows_set_number(fx->fl, s.id, 9), NL_ERR_INVALID);
	assert_int_equal(nl_flows_set_number(fx->fl, s.id, 100), NL_ERR_INVALID);
	assert_int_equal(nl_flows_set_number(fx->fl, s.id, 42), 0);
	assert_int_equal(nl_flows_finish(fx->fl, s.id, NL_REASON_NONE, NULL), 0);
	assert_int_equal(nl_flows_number_of(fx->fl, s.id, &n), 0);
	assert_int_equal(n, 42);
	/* wanted now: it cannot be changed any more */
	assert_int_equal(nl_flows_set_number(fx->fl, s.id, 43), NL_ERR_INVALID);
	assert_int_equal(nl_flows_enter_number(fx->fl, s.device_code, "42"), 0);
	assert_int_equal(nl_flows_status(fx->fl, s.device_code, &st), 0);
	assert_int_equal(st.state, NL_FLOW_APPROVED);
	/* a second flow, set to 42, typed 41: wrong_number */
	assert_int_equal(nl_flows_start_from(fx->fl, &o, &s2), 0);
	assert_int_equal(nl_flows_set_number(fx->fl, s2.id, 42), 0);
	assert_int_equal(nl_flows_finish(fx->fl, s2.id, NL_REASON_NONE, NULL), 0);
	assert_int_equal(nl_flows_enter_number(fx->fl, s2.device_code, "41"), NL_ERR_DENIED);
	assert_int_equal(nl_flows_status(fx->fl, s2.device_code, &st), 0);
	assert_int_equal(st.reason, NL_REASON_WRONG_NUMBER);
	nl_flow_started_clear(&s);
	nl_flow_started_clear(&s2);
}

/* Only a pending flow with number matching takes a number. */
static void test_number_set_refused_without_number_matching(void **state)
{
	struct fx *fx = *state;
	struct nl_flow_started s;

	start_ok(fx, "bob", 1, &s);
	assert_int_equal(nl_flows_set_number(fx->fl, s.id, 42), NL_ERR_INVALID);
	assert_int_equal(nl_flows_set_number(fx->fl, "no-such-flow", 42), NL_ERR_NOT_FOUND);
	assert_int_equal(nl_flows_cancel(fx->fl, s.device_code), 0);
	assert_int_equal(nl_flows_set_number(fx->fl, s.id, 42), NL_ERR_NOT_FOUND);
	nl_flow_started_clear(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
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
	    cmocka_unit_test_setup_teardown(test_number_set_by_the_agent_is_the_one_wanted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_number_set_refused_without_number_matching, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_number_matching_refuses_a_number_before_sign_in, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_finish_mismatch_names_the_flows_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_finish_with_reason_denies_with_that_reason, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_guessing_limit_per_client, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_guessing_limit_global_across_clients, setup, teardown),
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
	return cmocka_run_group_tests_name("flows_browser", tests, NULL, NULL);
}
