/* The host-limit readers of nhsloginctl check (src/ctl/hostlimits.c): sshd's time format, login.defs,
 * sshd_config with Include and Match, `sshd -T` output, pam.d lines and services, against the fixtures
 * in tests/ctl/data/host and odd input made on the spot. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostlimits.h"
#include "nl_err.h"

/* A fixture's path: tests/ctl/data/host/NAME in the source tree. */
static const char *fx(const char *name)
{
	static char path[1024];
	const char *top = getenv("NL_TOP_SRCDIR");
	snprintf(path, sizeof(path), "%s/tests/ctl/data/host/%s", top != NULL && top[0] != '\0' ? top : ".",
	         name);
	return path;
}

/* ---- sshd's time format ---- */

static unsigned sshd_time(const char *s)
{
	unsigned v = 12345;
	assert_int_equal(ctl_sshd_time(s, &v), 0);
	return v;
}

static void test_sshd_time_reads_plain_seconds(void **state)
{
	(void)state;
	assert_int_equal(sshd_time("120"), 120);
	assert_int_equal(sshd_time("0"), 0);
}

static void test_sshd_time_reads_units(void **state)
{
	(void)state;
	assert_int_equal(sshd_time("2m"), 120);
	assert_int_equal(sshd_time("2M"), 120);
	assert_int_equal(sshd_time("90s"), 90);
	assert_int_equal(sshd_time("1h30s"), 3630);
	assert_int_equal(sshd_time("1m30"), 90);
	assert_int_equal(sshd_time("1d"), 86400);
	assert_int_equal(sshd_time("1W"), 604800);
}

static void test_sshd_time_rejects_what_sshd_rejects(void **state)
{
	static const char *const bad[] = {"", "m", "2x", "-1", "1.5m", "1 m", "99999999999", "4000000w"};
	unsigned v = 7;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ctl_sshd_time(bad[i], &v) != NL_ERR_INVALID)
			fail_msg("'%s' was accepted", bad[i]);
		assert_int_equal(v, 7);
	}
}

/* ---- login.defs ---- */

static void test_login_defs_last_value_wins(void **state)
{
	static const char text[] =
	    "LOGIN_TIMEOUT 60\n# LOGIN_TIMEOUT 10\nLOGIN_TIMEOUT\t90\nLOGIN_TIMEOUT x\n";
	struct ctl_limit lim = {.secs = 1};

	(void)state;
	ctl_login_defs_parse(text, sizeof(text) - 1, &lim);
	assert_true(lim.found);
	assert_int_equal(lim.secs, 90);
	assert_int_equal(lim.line, 3);
}

static void test_login_defs_reads_the_debian_file(void **state)
{
	struct ctl_limit lim;

	(void)state;
	assert_int_equal(ctl_login_defs_read(fx("login.defs"), &lim), 0);
	assert_true(lim.found);
	assert_int_equal(lim.secs, 60);
	assert_int_equal(lim.line, 13);
	assert_string_equal(lim.file, fx("login.defs"));
	assert_int_equal(ctl_login_defs_read(fx("login.defs-300"), &lim), 0);
	assert_int_equal(lim.secs, 300);
	assert_int_equal(lim.line, 5);
}

static void test_login_defs_without_the_key_is_60(void **state)
{
	struct ctl_limit lim;

	(void)state;
	assert_int_equal(ctl_login_defs_read(fx("login.defs-none"), &lim), 0);
	assert_false(lim.found);
	assert_int_equal(lim.secs, CTL_LOGIN_TIMEOUT_DEFAULT);
}

static void test_login_defs_missing_file_is_not_found_with_default(void **state)
{
	struct ctl_limit lim;

	(void)state;
	assert_int_equal(ctl_login_defs_read(fx("no-such-login.defs"), &lim), NL_ERR_NOT_FOUND);
	assert_false(lim.found);
	assert_int_equal(lim.secs, 60);
	/* a directory is no login.defs */
	assert_int_equal(ctl_login_defs_read(fx("pamd-none"), &lim), NL_ERR_IO);
}

/* ---- sshd_config ---- */

static void test_sshd_config_first_value_wins_through_include(void **state)
{
	struct ctl_limit lim;

	(void)state;
	assert_int_equal(ctl_sshd_config_read(fx("sshd-include/sshd_config"), &lim), 0);
	assert_true(lim.found);
	assert_int_equal(lim.secs, 120);
	assert_string_equal(lim.file, fx("sshd-include/sshd_config.d/50-nhslogin.conf"));
	assert_int_equal(lim.line, 3);
}

static void test_sshd_config_reads_a_unit(void **state)
{
	struct ctl_limit lim;

	(void)state;
	assert_int_equal(ctl_sshd_config_read(fx("sshd-units/sshd_config"), &lim), 0);
	assert_int_equal(lim.secs, 120);
	assert_int_equal(lim.line, 3);
}

static void test_sshd_config_takes_keyword_equals_value_in_any_case(void **state)
{
	struct ctl_limit lim;

	(void)state;
	assert_int_equal(ctl_sshd_config_read(fx("sshd-300/sshd_config"), &lim), 0);
	assert_true(lim.found);
	assert_int_equal(lim.secs, 300);
}

static void test_sshd_config_ignores_a_match_block(void **state)
{
	struct ctl_limit lim;

	(void)state;
	assert_int_equal(ctl_sshd_config_read(fx("sshd-match/sshd_config"), &lim), 0);
	assert_false(lim.found);
	assert_int_equal(lim.secs, CTL_LOGIN_GRACE_DEFAULT);
}

static void test_sshd_config_without_value_is_120(void **state)
{
	struct ctl_limit lim;

	(void)state;
	assert_int_equal(ctl_sshd_config_read(fx("sshd-default/sshd_config"), &lim), 0);
	assert_false(lim.found);
	assert_int_equal(lim.secs, 120);
	assert_string_equal(lim.file, fx("sshd-default/sshd_config"));
}

static void test_sshd_config_include_of_itself_ends(void **state)
{
	struct ctl_limit lim;

	(void)state;
	assert_int_equal(ctl_sshd_config_read(fx("sshd-loop/sshd_config"), &lim), 0);
	assert_false(lim.found);
	assert_int_equal(lim.secs, 120);
}

static void test_sshd_T_output_gives_the_grace_time(void **state)
{
	static const char out[] = "port 22\naddressfamily any\nlogingracetime 300\nx11forwarding no\n";
	static const char none[] = "port 22\nlogingracetime\n";
	unsigned v = 0;

	(void)state;
	assert_int_equal(ctl_sshd_T_parse(out, sizeof(out) - 1, &v), 0);
	assert_int_equal(v, 300);
	assert_int_equal(ctl_sshd_T_parse(none, sizeof(none) - 1, &v), NL_ERR_NOT_FOUND);
}

/* ---- pam.d ---- */

static struct ctl_pam_line pam_line(const char *text)
{
	struct ctl_pam_line pl;
	ctl_pam_parse_line(text, &pl);
	return pl;
}

static void test_pam_line_finds_the_module_and_its_timeout(void **state)
{
	struct ctl_pam_line pl;

	(void)state;
	pl =
	    pam_line("auth\t[success=done authinfo_unavail=ignore default=die]\tpam_nhslogin.so enter_prompt "
	             "timeout=110");
	assert_int_equal(pl.kind, CTL_PAM_MODULE);
	assert_int_equal(pl.timeout, 110);
	pl = pam_line("-auth required /usr/lib/x86_64-linux-gnu/security/pam_nhslogin.so");
	assert_int_equal(pl.kind, CTL_PAM_MODULE);
	assert_int_equal(pl.timeout, -1);
	pl = pam_line("AUTH sufficient pam_nhslogin.so timeout=30 timeout=45 # timeout=400");
	assert_int_equal(pl.kind, CTL_PAM_MODULE);
	assert_int_equal(pl.timeout, 45);
	pl = pam_line("auth required pam_nhslogin.so timeout=9999");
	assert_int_equal(pl.kind, CTL_PAM_MODULE);
	assert_int_equal(pl.timeout, -1);
}

static void test_pam_line_ignores_other_lines(void **state)
{
	static const char *const other[] = {"",
	                                    "   ",
	                                    "# auth required pam_nhslogin.so",
	                                    "account required pam_nhslogin.so",
	                                    "session optional pam_nhslogin.so",
	                                    "auth required pam_nhslogin.sox",
	                                    "auth required",
	                                    "auth [success=1 default=ignore",
	                                    "@include"};

	(void)state;
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		if (pam_line(other[i]).kind != CTL_PAM_OTHER)
			fail_msg("'%s' was taken", other[i]);
}

static void test_pam_line_finds_includes(void **state)
{
	struct ctl_pam_line pl;

	(void)state;
	pl = pam_line("@include common-auth-nhslogin");
	assert_int_equal(pl.kind, CTL_PAM_INCLUDE);
	assert_string_equal(pl.target, "common-auth-nhslogin");
	pl = pam_line("auth include system-auth");
	assert_int_equal(pl.kind, CTL_PAM_INCLUDE);
	assert_string_equal(pl.target, "system-auth");
	pl = pam_line("auth\tsubstack\tpassword-auth");
	assert_int_equal(pl.kind, CTL_PAM_INCLUDE);
	assert_string_equal(pl.target, "password-auth");
	/* only the auth part matters */
	assert_int_equal(pam_line("account include system-auth").kind, CTL_PAM_OTHER);
}

static void test_pamd_fragments_are_not_services(void **state)
{
	(void)state;
	assert_true(ctl_pamd_is_fragment("common-auth-nhslogin"));
	assert_true(ctl_pamd_is_fragment("system-auth"));
	assert_true(ctl_pamd_is_fragment("password-auth"));
	assert_false(ctl_pamd_is_fragment("login"));
	assert_false(ctl_pamd_is_fragment("su-l"));
}

static void test_pamd_scan_follows_include_of_common_auth_nhslogin(void **state)
{
	struct ctl_pam_use uses[8];
	size_t n = 99;

	(void)state;
	assert_int_equal(ctl_pamd_scan(fx("pamd-login"), uses, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(uses[0].service, "login");
	assert_string_equal(uses[0].file, fx("pamd-login/common-auth-nhslogin"));
	assert_int_equal(uses[0].line, 2);
	assert_int_equal(uses[0].timeout, -1);
}

static void test_pamd_scan_lists_services_in_name_order(void **state)
{
	static const char *const want[] = {"gdm-password", "login", "sshd", "sudo"};
	static const int timeouts[] = {240, 290, -1, 170};
	struct ctl_pam_use uses[8];
	size_t n = 0;

	(void)state;
	assert_int_equal(ctl_pamd_scan(fx("pamd-within"), uses, 8, &n), 0);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(uses[i].service, want[i]);
		assert_int_equal(uses[i].timeout, timeouts[i]);
	}
	/* and never more than asked for */
	assert_int_equal(ctl_pamd_scan(fx("pamd-within"), uses, 2, &n), 0);
	assert_int_equal(n, 2);
}

static void test_pamd_scan_include_loop_ends(void **state)
{
	struct ctl_pam_use uses[4];
	size_t n = 99;

	(void)state;
	assert_int_equal(ctl_pamd_scan(fx("pamd-loop"), uses, 4, &n), 0);
	assert_int_equal(n, 0);
}

static void test_pamd_scan_missing_dir_is_not_found(void **state)
{
	struct ctl_pam_use uses[1];
	size_t n = 99;

	(void)state;
	assert_int_equal(ctl_pamd_scan(fx("no-such-pam.d"), uses, 1, &n), NL_ERR_NOT_FOUND);
	assert_int_equal(n, 0);
}

/* ---- odd input, made on the spot ---- */

static void write_bytes(const char *dir, const char *name, const void *data, size_t len)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A continued line, an over-long line, NUL bytes, a file too big, a directory, a backup copy. */
static void test_pamd_scan_survives_odd_files(void **state)
{
	static const char cont[] = "auth [success=done \\\n default=die] \\\n pam_nhslogin.so timeout=120\n"
	                           "auth required pam_nhslogin.so timeout=\0"
	                           "100\n"
	                           "\r\n\x01\xff garbage \x7f\n";
	char dir[] = "/tmp/nl-hostlimits.XXXXXX", path[256];
	struct ctl_pam_use uses[8];
	size_t n = 0, big = CTL_HOST_FILE_MAX + 1;
	char *text = malloc(big);

	(void)state;
	assert_non_null(text);
	assert_non_null(mkdtemp(dir));
	write_bytes(dir, "a-cont", cont, sizeof(cont) - 1);
	memset(text, 'x', big);
	memcpy(text, "auth required pam_nhslogin.so ", 30);
	write_bytes(dir, "b-long", text, 5000); /* one line longer than CTL_HOST_LINE_MAX */
	write_bytes(dir, "c-big", text, big);
	write_bytes(dir, "d-copy.dpkg-old", cont, sizeof(cont) - 1);
	snprintf(path, sizeof(path), "%s/e-dir", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(ctl_pamd_scan(dir, uses, 8, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(uses[0].service, "a-cont");
	assert_int_equal(uses[0].line, 1);
	assert_int_equal(uses[0].timeout, 120);
	assert_int_equal(uses[1].line, 4);
	assert_int_equal(uses[1].timeout, -1); /* "timeout=" then a NUL: no value */
	free(text);
	if (getenv("NL_KEEP_TEST_DIR") == NULL)
		nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_host_files_survive_odd_input(void **state)
{
	static const char odd[] = "LOGIN_TIMEOUT\nLOGIN_TIMEOUT 99999999999\nLoginGraceTime \"\nInclude\n"
	                          "LOGIN_TIMEOUT \"45\nlogingracetime 1x\n\0\0\0\n";
	char dir[] = "/tmp/nl-hostlimits.XXXXXX", path[256];
	struct ctl_limit lim;
	unsigned v = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_bytes(dir, "odd", odd, sizeof(odd) - 1);
	snprintf(path, sizeof(path), "%s/odd", dir);
	assert_int_equal(ctl_login_defs_read(path, &lim), 0);
	assert_true(lim.found); /* "45 (an unclosed quote) is read as 45 */
	assert_int_equal(lim.secs, 45);
	assert_int_equal(ctl_sshd_config_read(path, &lim), 0);
	assert_false(lim.found);
	assert_int_equal(ctl_sshd_T_parse(odd, sizeof(odd) - 1, &v), NL_ERR_NOT_FOUND);
	if (getenv("NL_KEEP_TEST_DIR") == NULL)
		nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sshd_time_reads_plain_seconds),
	    cmocka_unit_test(test_sshd_time_reads_units),
	    cmocka_unit_test(test_sshd_time_rejects_what_sshd_rejects),
	    cmocka_unit_test(test_login_defs_last_value_wins),
	    cmocka_unit_test(test_login_defs_reads_the_debian_file),
	    cmocka_unit_test(test_login_defs_without_the_key_is_60),
	    cmocka_unit_test(test_login_defs_missing_file_is_not_found_with_default),
	    cmocka_unit_test(test_sshd_config_first_value_wins_through_include),
	    cmocka_unit_test(test_sshd_config_reads_a_unit),
	    cmocka_unit_test(test_sshd_config_takes_keyword_equals_value_in_any_case),
	    cmocka_unit_test(test_sshd_config_ignores_a_match_block),
	    cmocka_unit_test(test_sshd_config_without_value_is_120),
	    cmocka_unit_test(test_sshd_config_include_of_itself_ends),
	    cmocka_unit_test(test_sshd_T_output_gives_the_grace_time),
	    cmocka_unit_test(test_pam_line_finds_the_module_and_its_timeout),
	    cmocka_unit_test(test_pam_line_ignores_other_lines),
	    cmocka_unit_test(test_pam_line_finds_includes),
	    cmocka_unit_test(test_pamd_fragments_are_not_services),
	    cmocka_unit_test(test_pamd_scan_follows_include_of_common_auth_nhslogin),
	    cmocka_unit_test(test_pamd_scan_lists_services_in_name_order),
	    cmocka_unit_test(test_pamd_scan_include_loop_ends),
	    cmocka_unit_test(test_pamd_scan_missing_dir_is_not_found),
	    cmocka_unit_test(test_pamd_scan_survives_odd_files),
	    cmocka_unit_test(test_host_files_survive_odd_input),
	};

	return cmocka_run_group_tests_name("hostlimits", tests, NULL, NULL);
}
