/* Token cache: survives a restart, the reuse rule (window, 30 min idle, 12 h total), damaged files
 * set aside, user names that are never paths, a disk that cannot be written, flush. */
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

#include "nl_err.h"
#include "nl_log.h"
#include "tokcache.h"

#define T0 ((time_t)1700000000)

struct fx {
	char dir[64];   /* a fresh temporary directory */
	char cache[96]; /* dir/cache: the cache directory (not created yet) */
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/nl-test-tokcache-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->cache, sizeof(f->cache), "%s/cache", f->dir);
	*state = f;
	return 0;
}

static void rm_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char sub[512];

	if (d == NULL) {
		unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		rm_tree(sub);
	}
	closedir(d);
	chmod(path, 0700);
	rmdir(path);
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	rm_tree(f->dir);
	free(f);
	return 0;
}

static struct nl_identity ident(void)
{
	struct nl_identity id = {0};

	id.sub = (char *)"sub-1234";
	id.vot = (char *)"P9.Cp.Cd";
	id.level = 9;
	id.auth_time = T0;
	id.id_exp = T0 + 3600;
	id.refresh_token = (char *)"refresh-secret";
	return id;
}

static struct nl_tokcache *open_cache(const char *dir)
{
	struct nl_tokcache *tc = NULL;
	char err[256] = "";

	assert_int_equal(nl_tokcache_open(dir, &tc, err, sizeof(err)), 0);
	assert_non_null(tc);
	return tc;
}

static bool exists(const char *dir, const char *name)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

static void write_file(const char *dir, const char *name, const char *text, size_t len, mode_t mode)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void test_tokcache_store_then_reopen_finds_entry(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	nl_tokcache_close(tc);

	tc = open_cache(f->cache);
	assert_int_equal(nl_tokcache_count(tc), 1);
	assert_true(nl_tokcache_reuse(tc, "alice", 600, T0 + 60));
	assert_false(nl_tokcache_reuse(tc, "bob", 600, T0 + 60));
	nl_tokcache_close(tc);
}

static void test_tokcache_creates_dir_0700_and_file_0600(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);
	struct stat st;
	char p[512];

	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	assert_int_equal(stat(f->cache, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(p, sizeof(p), "%s/alice", f->cache);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* only the entry itself: no temp file left behind */
	assert_int_equal(count_files(f->cache), 1);
	nl_tokcache_close(tc);
}

static void test_tokcache_reuse_false_when_window_zero(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	assert_false(nl_tokcache_reuse(tc, "alice", 0, T0 + 1));
	nl_tokcache_close(tc);
}

static void test_tokcache_reuse_true_inside_window(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	assert_true(nl_tokcache_reuse(tc, "alice", 300, T0 + 300));
	nl_tokcache_close(tc);
}

static void test_tokcache_reuse_false_past_window(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	assert_false(nl_tokcache_reuse(tc, "alice", 300, T0 + 301));
	nl_tokcache_close(tc);
}

static void test_tokcache_reuse_counts_window_from_last_use(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	assert_true(nl_tokcache_reuse(tc, "alice", 300, T0 + 250));
	assert_true(nl_tokcache_reuse(tc, "alice", 300, T0 + 500));
	nl_tokcache_close(tc);
}

static void test_tokcache_reuse_false_past_idle_max(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	assert_false(nl_tokcache_reuse(tc, "alice", 24 * 3600, T0 + NL_SESSION_IDLE_MAX + 1));
	nl_tokcache_close(tc);
}

static void test_tokcache_reuse_false_past_total_max(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);
	time_t t;

	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	/* used every 20 minutes: never idle too long, but the full sign-in gets old */
	for (t = T0 + 1200; t <= T0 + NL_SESSION_TOTAL_MAX; t += 1200)
		assert_true(nl_tokcache_reuse(tc, "alice", 24 * 3600, t));
	assert_false(nl_tokcache_reuse(tc, "alice", 24 * 3600, T0 + NL_SESSION_TOTAL_MAX + 1));
	nl_tokcache_close(tc);
}

static void test_tokcache_reuse_false_when_clock_goes_back(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	assert_false(nl_tokcache_reuse(tc, "alice", 300, T0 - 10));
	nl_tokcache_close(tc);
}

static void test_tokcache_damaged_file_set_aside_others_load(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	nl_tokcache_close(tc);
	write_file(f->cache, "bob", "{\"version\":1, \"user\":", 21, 0600);

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
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);
	char p[512], q[512];

	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	nl_tokcache_close(tc);
	snprintf(p, sizeof(p), "%s/alice", f->cache);
	snprintf(q, sizeof(q), "%s/mallory", f->cache);
	assert_int_equal(rename(p, q), 0);

	tc = open_cache(f->cache);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_true(exists(f->cache, "mallory.bad"));
	assert_false(nl_tokcache_reuse(tc, "mallory", 600, T0 + 1));
	nl_tokcache_close(tc);
}

static void test_tokcache_file_with_wrong_field_type_set_aside(void **state)
{
	struct fx *f = *state;
	struct nl_tokcache *tc;
	const char *text =
	    "{\"version\":1,\"user\":\"bob\",\"sub\":\"s\",\"vot\":\"P9.Cp.Cd\",\"level\":\"9\","
	    "\"auth_time\":1,\"first_signin\":1,\"last_used\":1,\"id_exp\":1}";

	assert_int_equal(mkdir(f->cache, 0700), 0);
	write_file(f->cache, "bob", text, strlen(text), 0600);
	tc = open_cache(f->cache);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_true(exists(f->cache, "bob.bad"));
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
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);
	char p[512], q[512];

	/* a valid entry for carol, reachable only through a link named carol */
	assert_int_equal(nl_tokcache_store(tc, "carol", &id, T0), 0);
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
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);
	const char *bad[] = {"../evil", "a/b",         "..",
	                     ".",       "/etc/passwd", "Alice",
	                     "",        "-x",          "abcdefghijklmnopqrstuvwxyz0123456" /* 33 */};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(nl_tokcache_store(tc, bad[i], &id, T0), NL_ERR_INVALID);
	assert_int_equal(nl_tokcache_store(tc, NULL, &id, T0), NL_ERR_INVALID);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_int_equal(count_files(f->cache), 0);
	assert_int_equal(count_files(f->dir), 1); /* only the cache directory itself */
	nl_tokcache_close(tc);
}

static void test_tokcache_unwritable_dir_store_io_error_keeps_memory(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc;
	char dir[160];

	/* the parent is a regular file: nothing can be created, even by root */
	write_file(f->dir, "plain", "x", 1, 0600);
	snprintf(dir, sizeof(dir), "%s/plain/cache", f->dir);
	tc = open_cache(dir);
	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), NL_ERR_IO);
	assert_int_equal(nl_tokcache_count(tc), 1);
	assert_true(nl_tokcache_reuse(tc, "alice", 600, T0 + 60));
	nl_tokcache_close(tc);
}

static void test_tokcache_write_failure_after_open_io_error_keeps_memory(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);

	/* the directory is replaced by a regular file after opening: every write fails */
	assert_int_equal(rmdir(f->cache), 0);
	write_file(f->dir, "cache", "x", 1, 0600);
	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), NL_ERR_IO);
	assert_int_equal(nl_tokcache_count(tc), 1);
	assert_true(nl_tokcache_reuse(tc, "alice", 600, T0 + 60));
	nl_tokcache_close(tc);
}

/* Only run when not root (root ignores the mode; the two tests above cover a failing disk). */
static void test_tokcache_readonly_dir_store_io_error(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(chmod(f->cache, 0500), 0);
	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), NL_ERR_IO);
	assert_int_equal(nl_tokcache_count(tc), 1);
	nl_tokcache_close(tc);
}

static void test_tokcache_flush_removes_files(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	assert_int_equal(nl_tokcache_store(tc, "bob", &id, T0), 0);
	write_file(f->cache, "carol.bad", "junk", 4, 0600);
	write_file(f->cache, "README.txt", "keep", 4, 0600); /* not ours: left alone */
	assert_int_equal(count_files(f->cache), 4);
	nl_tokcache_flush(tc);
	assert_int_equal(nl_tokcache_count(tc), 0);
	assert_false(exists(f->cache, "alice"));
	assert_false(exists(f->cache, "bob"));
	assert_false(exists(f->cache, "carol.bad"));
	assert_true(exists(f->cache, "README.txt"));
	assert_false(nl_tokcache_reuse(tc, "alice", 600, T0 + 1));
	nl_tokcache_close(tc);

	tc = open_cache(f->cache);
	assert_int_equal(nl_tokcache_count(tc), 0);
	nl_tokcache_close(tc);
}

static void test_tokcache_store_replaces_previous_entry(void **state)
{
	struct fx *f = *state;
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(f->cache);

	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	id.auth_time = T0 + 43000;
	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0 + 43000), 0);
	assert_int_equal(nl_tokcache_count(tc), 1);
	/* a fresh full sign-in restarts the 12 h clock */
	assert_true(nl_tokcache_reuse(tc, "alice", 600, T0 + NL_SESSION_TOTAL_MAX + 100));
	nl_tokcache_close(tc);
}

static void test_tokcache_memory_only_without_dir(void **state)
{
	struct nl_identity id = ident();
	struct nl_tokcache *tc = open_cache(NULL);

	(void)state;
	assert_int_equal(nl_tokcache_store(tc, "alice", &id, T0), 0);
	assert_true(nl_tokcache_reuse(tc, "alice", 600, T0 + 1));
	nl_tokcache_close(tc);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_tokcache_store_then_reopen_finds_entry),
	    T(test_tokcache_creates_dir_0700_and_file_0600),
	    T(test_tokcache_reuse_false_when_window_zero),
	    T(test_tokcache_reuse_true_inside_window),
	    T(test_tokcache_reuse_false_past_window),
	    T(test_tokcache_reuse_counts_window_from_last_use),
	    T(test_tokcache_reuse_false_past_idle_max),
	    T(test_tokcache_reuse_false_past_total_max),
	    T(test_tokcache_reuse_false_when_clock_goes_back),
	    T(test_tokcache_damaged_file_set_aside_others_load),
	    T(test_tokcache_file_for_other_user_set_aside),
	    T(test_tokcache_file_with_wrong_field_type_set_aside),
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
	return _cmocka_run_group_tests("tokcache", tests, n, NULL, NULL);
}
