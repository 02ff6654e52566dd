/* Token cache reuse rule: the same kind of service at the same place; the window, 30 min idle and
 * 12 h total without sliding; the audit session; the map and level checked again. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapping.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_log.h"
#include "tokcache.h"
#include "tokcache_fixture.h"

static void test_tokcache_reuse_true_inside_window(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	cfg_set(&f->cfg, "reuse_window", "300");
	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_true(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 300));
	nl_tokcache_close(tc);
}

static void test_tokcache_reuse_false_past_window(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	cfg_set(&f->cfg, "reuse_window", "300");
	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 301));
	nl_tokcache_close(tc);
}

/* A reuse never moves the window: it counts from the full sign-in, and nothing is written. */
static void test_tokcache_reuse_does_not_extend_the_window(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	char *before, *after;

	cfg_set(&f->cfg, "reuse_window", "300");
	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	before = read_entry(f->cache, "alice");
	assert_true(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 250));
	assert_true(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 300));
	/* 51 s after the last reuse, 301 s after the sign-in: a sliding window would still say yes */
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 301));
	after = read_entry(f->cache, "alice");
	assert_string_equal(before, after);
	/* nor after a restart */
	nl_tokcache_close(tc);
	tc = open_cache(f->cache);
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 301));
	assert_true(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 299));
	free(before);
	free(after);
	nl_tokcache_close(tc);
}

/* A window longer than NHS login's idle limit is cut to 30 minutes after the full sign-in. */
static void test_tokcache_reuse_false_past_idle_max(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	cfg_set(&f->cfg, "reuse_window", "43200");
	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_true(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + NL_SESSION_IDLE_MAX));
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + NL_SESSION_IDLE_MAX + 1));
	nl_tokcache_close(tc);
}

/* NHS login's 12 h counts from its auth_time when that is older than our sign-in (a session that
 * NHS login kept open without asking again). */
static void test_tokcache_reuse_false_past_total_max(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	struct nl_identity id = ident();

	id.auth_time = T0 - NL_SESSION_TOTAL_MAX + 100;
	assert_int_equal(sign_in_id(f, tc, "alice", &id, CONSOLE("tty1"), T0), 0);
	assert_true(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 100));
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 101));
	json_decref(id.claims);
	nl_tokcache_close(tc);
}

static void test_tokcache_reuse_false_when_clock_goes_back(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 - 10));
	nl_tokcache_close(tc);
}

static void test_tokcache_service_classes(void **state)
{
	(void)state;
	assert_int_equal(nl_service_class("sshd"), NL_SVC_REMOTE);
	assert_int_equal(nl_service_class("login"), NL_SVC_CONSOLE);
	assert_int_equal(nl_service_class("gdm-password"), NL_SVC_GRAPHICAL);
	assert_int_equal(nl_service_class("lightdm"), NL_SVC_GRAPHICAL);
	assert_int_equal(nl_service_class("sudo"), NL_SVC_ELEVATION);
	assert_int_equal(nl_service_class("su-l"), NL_SVC_ELEVATION);
	assert_int_equal(nl_service_class("polkit-1"), NL_SVC_ELEVATION);
	assert_int_equal(nl_service_class("xscreensaver"), NL_SVC_UNLOCK);
	assert_int_equal(nl_service_class("kde"), NL_SVC_UNLOCK);
	assert_int_equal(nl_service_class("swaylock"), NL_SVC_UNLOCK);
	assert_int_equal(nl_service_class("i3lock"), NL_SVC_UNLOCK);
	assert_int_equal(nl_service_class("cron"), NL_SVC_OTHER);
	assert_int_equal(nl_service_class(""), NL_SVC_NONE);
	assert_int_equal(nl_service_class(NULL), NL_SVC_NONE);
}

/* (a) alice signed in at the console: `ssh alice@ws` is not let in on it. */
static void test_tokcache_console_signin_not_reused_over_ssh(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_false(reuse(f, tc, "alice", SSH("203.0.113.7"), T0 + 10));
	assert_false(reuse(f, tc, "alice", at("sshd", "", "tty1", NO_AUDIT), T0 + 10));
	assert_true(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 10));
	nl_tokcache_close(tc);
}

static void test_tokcache_ssh_signin_reused_only_from_the_same_host(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(sign_in(f, tc, "alice", SSH("203.0.113.7"), T0), 0);
	assert_true(reuse(f, tc, "alice", SSH("203.0.113.7"), T0 + 10));
	assert_false(reuse(f, tc, "alice", SSH("203.0.113.8"), T0 + 10));
	assert_false(reuse(f, tc, "alice", CONSOLE("ssh"), T0 + 10));
	nl_tokcache_close(tc);
}

/* (b) the same kind of service on another tty is another place. */
static void test_tokcache_not_reused_from_another_tty(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_false(reuse(f, tc, "alice", CONSOLE("tty2"), T0 + 10));
	assert_false(reuse(f, tc, "alice", CONSOLE(""), T0 + 10));
	nl_tokcache_close(tc);
}

/* (c) a passer-by at alice's locked screen: never reused unless the service is listed. */
static void test_tokcache_screen_unlock_not_reused_unless_listed(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(sign_in(f, tc, "alice", at("xscreensaver", "", ":0", NO_AUDIT), T0), 0);
	assert_false(reuse(f, tc, "alice", at("xscreensaver", "", ":0", NO_AUDIT), T0 + 10));
	assert_int_equal(nl_tokcache_count(tc), 0); /* a sign-in that can never be reused is not kept */
	assert_int_equal(sign_in(f, tc, "alice", at("gdm-password", "", ":0", NO_AUDIT), T0), 0);
	assert_false(reuse(f, tc, "alice", at("gdm-password", "", ":0", NO_AUDIT), T0 + 10));

	cfg_set(&f->cfg, "reuse_unlock_services", "gdm-password, xscreensaver");
	assert_int_equal(sign_in(f, tc, "alice", at("xscreensaver", "", ":0", NO_AUDIT), T0), 0);
	assert_true(reuse(f, tc, "alice", at("xscreensaver", "", ":0", NO_AUDIT), T0 + 10));
	assert_false(reuse(f, tc, "alice", at("xscreensaver", "", ":1", NO_AUDIT), T0 + 10));
	assert_false(reuse(f, tc, "alice", at("swaylock", "", ":0", NO_AUDIT), T0 + 10));
	nl_tokcache_close(tc);
}

/* A listed unlock service does not borrow a sign-in of another kind made at the same tty. */
static void test_tokcache_console_signin_not_reused_to_unlock(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	cfg_set(&f->cfg, "reuse_unlock_services", "vlock");
	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_false(reuse(f, tc, "alice", at("vlock", "", "tty1", NO_AUDIT), T0 + 10));
	nl_tokcache_close(tc);
}

/* Another user's `su alice` on a recycled pseudo-terminal: same tty, another audit session. */
static void test_tokcache_elevation_not_reused_in_another_audit_session(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(sign_in(f, tc, "alice", at("sudo", "", "/dev/pts/3", 5), T0), 0);
	assert_false(reuse(f, tc, "alice", at("su", "", "/dev/pts/3", 9), T0 + 10));
	assert_false(reuse(f, tc, "alice", at("su", "", "/dev/pts/3", NO_AUDIT), T0 + 10));
	assert_false(reuse(f, tc, "alice", at("su", "", "/dev/pts/4", 5), T0 + 10));
	assert_true(reuse(f, tc, "alice", at("su", "", "/dev/pts/3", 5), T0 + 10));
	nl_tokcache_close(tc);
}

/* The audit session of a sign-in is the one its start was seen with, not what the store says. */
static void test_tokcache_audit_session_comes_from_the_start(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	struct nl_identity id = ident();
	struct nl_reuse_place p = at("sudo", "", "/dev/pts/3", 5);

	assert_false(nl_tokcache_reuse(tc, &f->cfg, "alice", &p, T0, NULL));
	p.audit_session = 9;
	assert_int_equal(nl_tokcache_store(tc, &f->cfg, "alice", &id, &p, T0), 0);
	assert_false(reuse(f, tc, "alice", at("sudo", "", "/dev/pts/3", 9), T0 + 10));
	assert_true(reuse(f, tc, "alice", at("sudo", "", "/dev/pts/3", 5), T0 + 10));
	json_decref(id.claims);
	nl_tokcache_close(tc);
}

/* A start with a pid: its audit session is read from /proc, not taken from the caller. */
static void test_tokcache_audit_session_read_from_pid(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	struct nl_reuse_place p = at("sudo", "", "/dev/pts/3", 12345);
	char buf[32] = "";
	unsigned long long mine = NL_AUDIT_SESSION_NONE;
	int fd = open("/proc/self/sessionid", O_RDONLY);

	if (fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0)
		mine = strtoull(buf, NULL, 10);
	if (fd >= 0)
		close(fd);
	p.pid = getpid();
	assert_int_equal(sign_in(f, tc, "alice", p, T0), 0);
	assert_true(reuse(f, tc, "alice", at("sudo", "", "/dev/pts/3", (uint32_t)mine), T0 + 10));
	assert_false(reuse(f, tc, "alice", at("sudo", "", "/dev/pts/3", 12345), T0 + 10));
	nl_tokcache_close(tc);
}

/* [policy] number_matching asks this start for the number (an SSH start under "remote"): a kept
 * sign-in from that very host is not reused, as that would skip the number. */
static void test_tokcache_not_reused_when_number_matching_asks(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	struct nl_reuse_place asked = SSH("203.0.113.7");

	asked.needs_number = true;
	assert_int_equal(sign_in(f, tc, "alice", SSH("203.0.113.7"), T0), 0);
	assert_false(reuse(f, tc, "alice", asked, T0 + 10));
	assert_true(reuse(f, tc, "alice", SSH("203.0.113.7"), T0 + 10));
	nl_tokcache_close(tc);
}

/* A socket-group peer (a screen locker running as alice) and the root module are different
 * callers: neither reuses what the other earned. */
static void test_tokcache_not_reused_by_another_kind_of_caller(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	struct nl_reuse_place peer = CONSOLE("tty1");

	peer.by_root = false;
	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_false(reuse(f, tc, "alice", peer, T0 + 10));
	nl_tokcache_close(tc);
}

static void test_tokcache_other_services_compared_by_name(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(sign_in(f, tc, "alice", at("vpn", "", "tty1", NO_AUDIT), T0), 0);
	assert_false(reuse(f, tc, "alice", at("cups", "", "tty1", NO_AUDIT), T0 + 10));
	assert_true(reuse(f, tc, "alice", at("vpn", "", "tty1", NO_AUDIT), T0 + 10));
	nl_tokcache_close(tc);
}

/* No remote host, no tty, no audit session (or no service): nothing to bind a reuse to. */
static void test_tokcache_place_with_nothing_to_bind_is_never_kept(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(sign_in(f, tc, "alice", at("sudo", "", "", NO_AUDIT), T0), 0);
	assert_int_equal(sign_in(f, tc, "alice", at(NULL, NULL, NULL, NO_AUDIT), T0), 0);
	assert_int_equal(sign_in(f, tc, "alice", at("", "", "tty1", NO_AUDIT), T0), 0);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_false(reuse(f, tc, "alice", at("sudo", "", "", NO_AUDIT), T0 + 10));
	nl_tokcache_close(tc);
}

/* (d) the map line removed: the cached sign-in no longer opens the account. */
static void test_tokcache_not_reused_after_map_line_removed(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	const char *other = "bob 9686368906\n";

	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_true(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 10));
	write_file(f->dir, "map", other, strlen(other), 0644);
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 20));
	/* the value now names another account */
	write_file(f->dir, "map", "bob " ALICE_NHS "\n", strlen("bob " ALICE_NHS "\n"), 0644);
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 30));
	/* a map that cannot be read fails closed too */
	assert_int_equal(unlink(f->map), 0);
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 40));
	nl_tokcache_close(tc);
}

/* (d) min_level raised after the sign-in (a restart with a new config): no reuse. */
static void test_tokcache_not_reused_when_min_level_raised(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	struct nl_identity id = ident();

	cfg_set(&f->cfg, "min_level", "P5");
	id.level = 5;
	id.vot = (char *)"P5.Cp.Cd";
	assert_int_equal(sign_in_id(f, tc, "alice", &id, CONSOLE("tty1"), T0), 0);
	assert_true(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 10));
	nl_tokcache_close(tc);
	cfg_set(&f->cfg, "min_level", "P9");
	tc = open_cache(f->cache);
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 20));
	json_decref(id.claims);
	nl_tokcache_close(tc);
}

/* The file holds the claim the map needs, not the rest of the person's details. */
static void test_tokcache_keeps_only_the_claim_the_map_reads(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	char *text;

	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	text = read_entry(f->cache, "alice");
	assert_non_null(strstr(text, ALICE_NHS));
	assert_null(strstr(text, "Example"));
	free(text);
	nl_tokcache_close(tc);
}

/* A store whose start was never seen (or was seen too long ago) keeps nothing. */
static void test_tokcache_store_without_its_start_keeps_nothing(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	struct nl_identity id = ident();
	struct nl_reuse_place p = CONSOLE("tty1");

	assert_int_equal(nl_tokcache_store(tc, &f->cfg, "alice", &id, &p, T0), 0);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_false(nl_tokcache_reuse(tc, &f->cfg, "alice", &p, T0, NULL));
	assert_int_equal(nl_tokcache_store(tc, &f->cfg, "alice", &id, &p, T0 + 3 * 3600), 0);
	assert_int_equal(nl_tokcache_count(tc), 0);
	json_decref(id.claims);
	nl_tokcache_close(tc);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_tokcache_reuse_true_inside_window),
	    T(test_tokcache_reuse_false_past_window),
	    T(test_tokcache_reuse_does_not_extend_the_window),
	    T(test_tokcache_reuse_false_past_idle_max),
	    T(test_tokcache_reuse_false_past_total_max),
	    T(test_tokcache_reuse_false_when_clock_goes_back),
	    T(test_tokcache_service_classes),
	    T(test_tokcache_console_signin_not_reused_over_ssh),
	    T(test_tokcache_ssh_signin_reused_only_from_the_same_host),
	    T(test_tokcache_not_reused_from_another_tty),
	    T(test_tokcache_screen_unlock_not_reused_unless_listed),
	    T(test_tokcache_console_signin_not_reused_to_unlock),
	    T(test_tokcache_elevation_not_reused_in_another_audit_session),
	    T(test_tokcache_audit_session_comes_from_the_start),
	    T(test_tokcache_audit_session_read_from_pid),
	    T(test_tokcache_not_reused_when_number_matching_asks),
	    T(test_tokcache_not_reused_by_another_kind_of_caller),
	    T(test_tokcache_other_services_compared_by_name),
	    T(test_tokcache_place_with_nothing_to_bind_is_never_kept),
	    T(test_tokcache_not_reused_after_map_line_removed),
	    T(test_tokcache_not_reused_when_min_level_raised),
	    T(test_tokcache_keeps_only_the_claim_the_map_reads),
	    T(test_tokcache_store_without_its_start_keeps_nothing),
	};
	size_t n = sizeof(tests) / sizeof(tests[0]);

	nl_log_open("test_tokcache", NL_LOG_STDERR, false);
	return _cmocka_run_group_tests("tokcache_reuse", tests, n, NULL, NULL);
}
