/* Token cache on disk: it survives a restart with the right modes, keeps nothing when reuse is
 * off, sets damaged files aside, never takes a user name as a path, survives a disk that cannot be
 * written, and flushes. */
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

static void test_tokcache_store_then_reopen_finds_entry(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	nl_tokcache_close(tc);

	tc = open_cache(f->cache);
	assert_int_equal(nl_tokcache_count(tc), 1);
	assert_true(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 60));
	assert_false(reuse(f, tc, "bob", CONSOLE("tty1"), T0 + 60));
	nl_tokcache_close(tc);
}

static void test_tokcache_creates_dir_0700_and_file_0600(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	struct stat st;
	char p[512];

	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_int_equal(stat(f->cache, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(p, sizeof(p), "%s/alice", f->cache);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* only the entry itself: no temp file left behind */
	assert_int_equal(count_files(f->cache), 1);
	nl_tokcache_close(tc);
}

/* reuse_window 0: nothing of a sign-in is kept, in memory or in state_dir (no refresh token on disk). */
static void test_tokcache_nothing_kept_when_reuse_is_off(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	struct nl_identity id = ident();
	struct nl_reuse_place p = CONSOLE("tty1");

	cfg_set(&f->cfg, "reuse_window", "0");
	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_int_equal(count_files(f->cache), 0);
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 1));
	/* turned off between the start and the approval (a restart on a new config): still nothing */
	cfg_set(&f->cfg, "reuse_window", "600");
	assert_false(nl_tokcache_reuse(tc, &f->cfg, "alice", &p, T0, NULL));
	cfg_set(&f->cfg, "reuse_window", "0");
	assert_int_equal(nl_tokcache_store(tc, &f->cfg, "alice", &id, &p, T0), 0);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_int_equal(count_files(f->cache), 0);
	json_decref(id.claims);
	nl_tokcache_close(tc);
}

static void test_tokcache_damaged_file_set_aside_others_load(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	nl_tokcache_close(tc);
	write_file(f->cache, "bob", "{\"version\":2, \"user\":", 21, 0600);

	tc = open_cache(f->cache);
	assert_int_equal(nl_tokcache_count(tc), 1);
	assert_true(exists(f->cache, "bob.bad"));
	assert_false(exists(f->cache, "bob"));
	assert_true(exists(f->cache, "alice"));
	nl_tokcache_close(tc);
}

static void test_tokcache_file_for_other_user_set_aside(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	char p[512], q[512];

	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	nl_tokcache_close(tc);
	snprintf(p, sizeof(p), "%s/alice", f->cache);
	snprintf(q, sizeof(q), "%s/mallory", f->cache);
	assert_int_equal(rename(p, q), 0);

	tc = open_cache(f->cache);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_true(exists(f->cache, "mallory.bad"));
	assert_false(reuse(f, tc, "mallory", CONSOLE("tty1"), T0 + 1));
	nl_tokcache_close(tc);
}

static void test_tokcache_file_with_wrong_field_type_set_aside(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc;
	const char *text =
	    "{\"version\":2,\"user\":\"bob\",\"sub\":\"s\",\"vot\":\"P9.Cp.Cd\",\"level\":\"9\","
	    "\"auth_time\":1,\"first_signin\":1,\"id_exp\":1,\"claims\":{},\"service\":\"login\","
	    "\"rhost\":\"\",\"tty\":\"tty1\",\"by_root\":true,\"audit_session\":1,\"boot\":\"\"}";

	assert_int_equal(mkdir(f->cache, 0700), 0);
	write_file(f->cache, "bob", text, strlen(text), 0600);
	tc = open_cache(f->cache);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_true(exists(f->cache, "bob.bad"));
	nl_tokcache_close(tc);
}

/* A file of the version before places were kept cannot say where it was earned: removed. */
static void test_tokcache_file_of_older_version_removed(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc;
	const char *text = "{\"version\":1,\"user\":\"bob\",\"sub\":\"s\",\"vot\":\"P9.Cp.Cd\",\"level\":9,"
	                   "\"auth_time\":1,\"first_signin\":1,\"last_used\":1,\"id_exp\":1}";

	assert_int_equal(mkdir(f->cache, 0700), 0);
	write_file(f->cache, "bob", text, strlen(text), 0600);
	tc = open_cache(f->cache);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_false(exists(f->cache, "bob"));
	assert_false(exists(f->cache, "bob.bad"));
	nl_tokcache_close(tc);
}

/* ttys and audit sessions of an earlier boot are not this boot's: such an entry is removed. */
static void test_tokcache_entry_of_another_boot_removed(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	char *text, *boot;
	json_t *o;

	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	nl_tokcache_close(tc);
	text = read_entry(f->cache, "alice");
	assert_non_null(o = json_loads(text, 0, NULL));
	assert_int_equal(json_object_set_new(o, "boot", json_string("00000000-0000-4000-8000-000000000000")),
	                 0);
	free(text);
	assert_non_null(boot = json_dumps(o, JSON_COMPACT));
	write_file(f->cache, "alice", boot, strlen(boot), 0600);
	free(boot);
	json_decref(o);

	tc = open_cache(f->cache);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_false(exists(f->cache, "alice"));
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 10));
	nl_tokcache_close(tc);
}

static void test_tokcache_too_big_file_set_aside(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc;
	size_t n = NL_TOKCACHE_MAX_FILE + 1;
	char *big = malloc(n);

	assert_non_null(big);
	memset(big, ' ', n);
	assert_int_equal(mkdir(f->cache, 0700), 0);
	write_file(f->cache, "bob", big, n, 0600);
	free(big);
	tc = open_cache(f->cache);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_true(exists(f->cache, "bob.bad"));
	nl_tokcache_close(tc);
}

static void test_tokcache_symlink_set_aside_not_followed(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	char p[512], q[512];

	/* a valid entry for carol, reachable only through a link named carol */
	assert_int_equal(sign_in(f, tc, "carol", CONSOLE("tty1"), T0), 0);
	nl_tokcache_close(tc);
	snprintf(p, sizeof(p), "%s/carol", f->cache);
	snprintf(q, sizeof(q), "%s/real", f->dir);
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(symlink(q, p), 0);

	tc = open_cache(f->cache);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_true(exists(f->cache, "carol.bad"));
	nl_tokcache_close(tc);
}

static void test_tokcache_user_name_is_never_a_path(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);
	const char *bad[] = {"../evil", "a/b",         "..",
	                     ".",       "/etc/passwd", "Alice",
	                     "",        "-x",          "abcdefghijklmnopqrstuvwxyz0123456" /* 33 */};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sign_in(f, tc, bad[i], CONSOLE("tty1"), T0), NL_ERR_INVALID);
	assert_int_equal(sign_in(f, tc, NULL, CONSOLE("tty1"), T0), NL_ERR_INVALID);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_int_equal(count_files(f->cache), 0);
	assert_int_equal(count_files(f->dir), 2); /* the cache directory itself and the map */
	nl_tokcache_close(tc);
}

static void test_tokcache_unwritable_dir_store_io_error_keeps_memory(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc;
	char dir[160];

	/* the parent is a regular file: nothing can be created, even by root */
	write_file(f->dir, "plain", "x", 1, 0600);
	snprintf(dir, sizeof(dir), "%s/plain/cache", f->dir);
	tc = open_cache(dir);
	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), NL_ERR_IO);
	assert_int_equal(nl_tokcache_count(tc), 1);
	assert_true(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 60));
	nl_tokcache_close(tc);
}

static void test_tokcache_write_failure_after_open_io_error_keeps_memory(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	/* the directory is replaced by a regular file after opening: every write fails */
	assert_int_equal(rmdir(f->cache), 0);
	write_file(f->dir, "cache", "x", 1, 0600);
	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), NL_ERR_IO);
	assert_int_equal(nl_tokcache_count(tc), 1);
	assert_true(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 60));
	nl_tokcache_close(tc);
}

/* Only run when not root (root ignores the mode; the two tests above cover a failing disk). */
static void test_tokcache_readonly_dir_store_io_error(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(chmod(f->cache, 0500), 0);
	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), NL_ERR_IO);
	assert_int_equal(nl_tokcache_count(tc), 1);
	nl_tokcache_close(tc);
}

static void test_tokcache_flush_removes_files(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_int_equal(sign_in(f, tc, "bob", CONSOLE("tty2"), T0), 0);
	write_file(f->cache, "carol.bad", "junk", 4, 0600);
	write_file(f->cache, "README.txt", "keep", 4, 0600); /* not ours: left alone */
	assert_int_equal(count_files(f->cache), 4);
	nl_tokcache_flush(tc);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_false(exists(f->cache, "alice"));
	assert_false(exists(f->cache, "bob"));
	assert_false(exists(f->cache, "carol.bad"));
	assert_true(exists(f->cache, "README.txt"));
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 1));
	nl_tokcache_close(tc);

	tc = open_cache(f->cache);
	assert_int_equal(nl_tokcache_count(tc), 0);
	nl_tokcache_close(tc);
}

/* A fresh full sign-in replaces the entry: its place and its times. */
static void test_tokcache_store_replaces_previous_entry(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty2"), T0 + 1000), 0);
	assert_int_equal(nl_tokcache_count(tc), 1);
	assert_true(reuse(f, tc, "alice", CONSOLE("tty2"), T0 + 1500));
	assert_false(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 1500));
	nl_tokcache_close(tc);
}

static void test_tokcache_memory_only_without_dir(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc = open_cache(NULL);

	assert_int_equal(sign_in(f, tc, "alice", CONSOLE("tty1"), T0), 0);
	assert_true(reuse(f, tc, "alice", CONSOLE("tty1"), T0 + 1));
	nl_tokcache_close(tc);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_tokcache_store_then_reopen_finds_entry),
	    T(test_tokcache_creates_dir_0700_and_file_0600),
	    T(test_tokcache_nothing_kept_when_reuse_is_off),
	    T(test_tokcache_damaged_file_set_aside_others_load),
	    T(test_tokcache_file_for_other_user_set_aside),
	    T(test_tokcache_file_with_wrong_field_type_set_aside),
	    T(test_tokcache_file_of_older_version_removed),
	    T(test_tokcache_entry_of_another_boot_removed),
	    T(test_tokcache_too_big_file_set_aside),
	    T(test_tokcache_symlink_set_aside_not_followed),
	    T(test_tokcache_user_name_is_never_a_path),
	    T(test_tokcache_unwritable_dir_store_io_error_keeps_memory),
	    T(test_tokcache_write_failure_after_open_io_error_keeps_memory),
	    T(test_tokcache_flush_removes_files),
	    T(test_tokcache_store_replaces_previous_entry),
	    T(test_tokcache_memory_only_without_dir),
	    T(test_tokcache_readonly_dir_store_io_error), /* keep last: left out when root */
	};
	size_t n = sizeof(tests) / sizeof(tests[0]);

	nl_log_open("test_tokcache", NL_LOG_STDERR, false);
	if (geteuid() == 0) {
		fprintf(stderr, "# running as root: chmod cannot make a directory read-only; "
		                "test_tokcache_readonly_dir_store_io_error left out\n");
		n--;
	}
	return _cmocka_run_group_tests("tokcache_files", tests, n, NULL, NULL);
}
