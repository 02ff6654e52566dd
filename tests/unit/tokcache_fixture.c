/* The token cache tests' fixture, shared by the tests/unit/test_tokcache_*.c programs: a fresh
 * directory, map and configuration for each test, and the steps of a sign-in that the cache sees. */
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

void write_file(const char *dir, const char *name, const char *text, size_t len, mode_t mode);

void cfg_set(struct nl_config *cfg, const char *key, const char *value)
{
	char err[256] = "";

	if (nl_config_set(cfg, "identity", key, value, err, sizeof(err)) != 0)
		fail_msg("%s = %s: %s", key, value, err);
}

int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/nl-test-tokcache-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->cache, sizeof(f->cache), "%s/cache", f->dir);
	snprintf(f->map, sizeof(f->map), "%s/map", f->dir);
	write_file(f->dir, "map", "alice " ALICE_NHS "\n", strlen("alice " ALICE_NHS "\n"), 0644);
	nl_config_init(&f->cfg);
	cfg_set(&f->cfg, "claim", "nhs_number");
	cfg_set(&f->cfg, "map_file", f->map);
	cfg_set(&f->cfg, "min_level", "P9");
	cfg_set(&f->cfg, "reuse_window", "600");
	nl_map_cache_flush();
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

int fx_teardown(void **state)
{
	struct fx *f = *state;

	rm_tree(f->dir);
	nl_config_free(&f->cfg);
	nl_map_cache_flush();
	free(f);
	return 0;
}

/* alice's identity; free its claims with id_done. */
struct nl_identity ident(void)
{
	struct nl_identity id = {0};

	id.claims = json_pack("{s:s, s:s, s:s}", "sub", "sub-1234", "nhs_number", ALICE_NHS, "family_name",
	                      "Example");
	assert_non_null(id.claims);
	id.sub = (char *)"sub-1234";
	id.vot = (char *)"P9.Cp.Cd";
	id.level = 9;
	id.auth_time = T0;
	id.id_exp = T0 + 3600;
	id.refresh_token = (char *)"refresh-secret";
	return id;
}

struct nl_tokcache *open_cache(const char *dir)
{
	struct nl_tokcache *tc = NULL;
	char err[256] = "";

	assert_int_equal(nl_tokcache_open(dir, &tc, err, sizeof(err)), 0);
	assert_non_null(tc);
	return tc;
}

bool exists(const char *dir, const char *name)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

void write_file(const char *dir, const char *name, const char *text, size_t len, mode_t mode)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

size_t count_files(const char *dir)
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

/* A start at service, rhost, tty (audit session audit) by root, on its own connection. */
struct nl_reuse_place at(const char *service, const char *rhost, const char *tty, uint32_t audit)
{
	static uint64_t next_conn = 1;
	struct nl_reuse_place p = {.service = service,
	                           .rhost = rhost,
	                           .tty = tty,
	                           .by_root = true,
	                           .audit_session = audit,
	                           .conn = next_conn++};
	return p;
}

bool reuse(struct fx *f, struct nl_tokcache *tc, const char *user, struct nl_reuse_place p, time_t now)
{
	return nl_tokcache_reuse(tc, &f->cfg, user, &p, now, NULL);
}

/* What the daemon does for a full sign-in with id at p: the start is not answered from the cache
 * (the cache notes where it came from), then the approved sign-in is stored. */
int sign_in_id(struct fx *f, struct nl_tokcache *tc, const char *user, const struct nl_identity *id,
               struct nl_reuse_place p, time_t now)
{
	(void)nl_tokcache_reuse(tc, &f->cfg, user, &p, now, NULL);
	return nl_tokcache_store(tc, &f->cfg, user, id, &p, now);
}

int sign_in(struct fx *f, struct nl_tokcache *tc, const char *user, struct nl_reuse_place p, time_t now)
{
	struct nl_identity id = ident();
	int r = sign_in_id(f, tc, user, &id, p, now);

	json_decref(id.claims);
	return r;
}

/* The cache file of user as a new string. */
char *read_entry(const char *dir, const char *user)
{
	char p[512], *buf = calloc(1, NL_TOKCACHE_MAX_FILE + 1);
	int fd;
	ssize_t n;

	assert_non_null(buf);
	snprintf(p, sizeof(p), "%s/%s", dir, user);
	assert_true((fd = open(p, O_RDONLY)) >= 0);
	n = read(fd, buf, NL_TOKCACHE_MAX_FILE);
	close(fd);
	assert_true(n > 0);
	return buf;
}
