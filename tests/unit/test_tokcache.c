/* Token cache: survives a restart, the reuse rule (the same kind of service at the same place; the
 * window, 30 min idle and 12 h total without sliding; the map and level checked again; nothing kept
 * when reuse is off), damaged files set aside, user names that are never paths, a disk that cannot
 * be written, flush. */
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

#define T0        ((time_t)1700000000)
#define ALICE_NHS "9686368973"

struct fx {
	char dir[64];         /* a fresh temporary directory */
	char cache[96];       /* dir/cache: the cache directory (not created yet) */
	char map[96];         /* dir/map: "alice ALICE_NHS" */
	struct nl_config cfg; /* reuse_window 600, claim nhs_number, the map above, min_level P9 */
};

static void write_file(const char *dir, const char *name, const char *text, size_t len, mode_t mode);

static void cfg_set(struct nl_config *cfg, const char *key, const char *value)
{
	char err[256] = "";

	if (nl_config_set(cfg, "identity", key, value, err, sizeof(err)) != 0)
		fail_msg("%s = %s: %s", key, value, err);
}

static int fx_setup(void **state)
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

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	rm_tree(f->dir);
	nl_config_free(&f->cfg);
	nl_map_cache_flush();
	free(f);
	return 0;
}

/* alice's identity; free its claims with id_done. */
static struct nl_identity ident(void)
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

/* A start at service, rhost, tty (audit session audit) by root, on its own connection. */
static struct nl_reuse_place at(const char *service, const char *rhost, const char *tty, uint32_t audit)
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

#define NO_AUDIT     NL_AUDIT_SESSION_NONE
#define CONSOLE(tty) at("login", "", tty, NO_AUDIT)
#define SSH(host)    at("sshd", host, "ssh", NO_AUDIT)

static bool reuse(struct fx *f, struct nl_tokcache *tc, const char *user, struct nl_reuse_place p, time_t now)
{
	return nl_tokcache_reuse(tc, &f->cfg, user, &p, now, NULL);
}

/* What the daemon does for a full sign-in with id at p: the start is not answered from the cache
 * (the cache notes where it came from), then the approved sign-in is stored. */
static int sign_in_id(struct fx *f, struct nl_tokcache *tc, const char *user, const struct nl_identity *id,
                      struct nl_reuse_place p, time_t now)
{
	(void)nl_tokcache_reuse(tc, &f->cfg, user, &p, now, NULL);
	return nl_tokcache_store(tc, &f->cfg, user, id, &p, now);
}

static int sign_in(struct fx *f, struct nl_tokcache *tc, const char *user, struct nl_reuse_place p,
                   time_t now)
{
	struct nl_identity id = ident();
	int r = sign_in_id(f, tc, user, &id, p, now);

	json_decref(id.claims);
	return r;
}

/* The cache file of user as a new string. */
static char *read_entry(const char *dir, const char *user)
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
	return _cmocka_run_group_tests("tokcache", tests, n, NULL, NULL);
}
