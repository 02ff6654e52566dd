/* The flows table through a sign-in's life: codes of the right form, limits, expiry, one-time
 * state, outcomes, the verdict table, cancellation, the wake-up fd, and speed at scale. */
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
	    cmocka_unit_test(test_reason_words_are_the_protocols),
	    cmocka_unit_test(test_reason_rows_are_complete),
	    cmocka_unit_test(test_reason_flow_message_names_the_user),
	    cmocka_unit_test_setup_teardown(test_cancel_owner_cancels_only_its_flows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_id_cancels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notify_fd_readable_after_change, setup, teardown),
	    cmocka_unit_test(test_ten_thousand_flows_start_and_lookup_fast),
	};
	return cmocka_run_group_tests_name("flows_lifecycle", tests, NULL, NULL);
}
