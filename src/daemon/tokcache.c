/* The token cache: the last successful sign-in of each local user, in memory and as one JSON file
 * a user in a root-only directory (atomic writes), so that the reuse policy survives a restart.
 * Damaged files are set aside as NAME.bad; a disk that cannot be written only costs reuse. */
#include "config.h"
#include "tokcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nl_err.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_wipe.h"

#define TC_VERSION     1
#define TC_USER_MAX    32
#define TC_MAX_ENTRIES 100000  /* bound on what a directory listing may load */
#define TC_TMP_PREFIX  ".tmp-" /* cannot be a user name: those start with [a-z_] */
#define TC_BAD_SUFFIX  ".bad"

struct tc_entry {
	char user[TC_USER_MAX + 1];
	char *sub;
	char *vot;
	int level;
	time_t auth_time;
	time_t first_signin;
	time_t last_used;
	time_t id_exp;
	char *refresh_token; /* secret */
	struct tc_entry *next;
};

struct nl_tokcache {
	pthread_mutex_t mu;
	char *dir; /* NULL: memory only */
	bool safe; /* dir exists with safe owner/mode: we may read and write files in it */
	struct tc_entry *head;
	size_t count;
};

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "token cache: %s", msg);
}

/* [a-z_][a-z0-9_.-]{0,31}: a plain file name, never a path. */
static bool valid_user(const char *u)
{
	size_t i;

	if (u == NULL || !((u[0] >= 'a' && u[0] <= 'z') || u[0] == '_'))
		return false;
	for (i = 1; u[i] != '\0'; i++) {
		char c = u[i];
		if (i >= TC_USER_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* user has passed valid_user, so it fits; strnlen keeps that true even if it had not. */
static void copy_user(char dst[TC_USER_MAX + 1], const char *user)
{
	size_t n = strnlen(user, TC_USER_MAX);

	memcpy(dst, user, n);
	dst[n] = '\0';
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* NAME, NAME.bad or a temp file: the only names this cache creates in its directory. */
static bool our_file(const char *name)
{
	char base[TC_USER_MAX + 1];
	size_t len = strlen(name), blen = len - strlen(TC_BAD_SUFFIX);

	if (strncmp(name, TC_TMP_PREFIX, strlen(TC_TMP_PREFIX)) == 0 || valid_user(name))
		return true;
	if (!ends_with(name, TC_BAD_SUFFIX) || blen == 0 || blen > TC_USER_MAX)
		return false;
	memcpy(base, name, blen);
	base[blen] = '\0';
	return valid_user(base);
}

static void entry_free(struct tc_entry *e)
{
	if (e == NULL)
		return;
	free(e->sub);
	free(e->vot);
	nl_free_secret(e->refresh_token);
	nl_wipe(e, sizeof(*e));
	free(e);
}

static struct tc_entry *find_locked(struct nl_tokcache *tc, const char *user)
{
	struct tc_entry *e;

	for (e = tc->head; e != NULL; e = e->next)
		if (strcmp(e->user, user) == 0)
			return e;
	return NULL;
}

/* Insert e, replacing any entry of the same user. */
static void put_locked(struct nl_tokcache *tc, struct tc_entry *e)
{
	struct tc_entry **pp;

	for (pp = &tc->head; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->user, e->user) == 0) {
			struct tc_entry *old = *pp;
			e->next = old->next;
			*pp = e;
			entry_free(old);
			return;
		}
	}
	e->next = tc->head;
	tc->head = e;
	tc->count++;
}

static char *path_join(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* ---- on disk ---- */

static json_t *entry_to_json(const struct tc_entry *e)
{
	json_t *o =
	    json_pack("{s:i, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:I}", "version", TC_VERSION, "user", e->user,
	              "sub", e->sub, "vot", e->vot != NULL ? e->vot : "", "level", e->level, "auth_time",
	              (json_int_t)e->auth_time, "first_signin", (json_int_t)e->first_signin, "last_used",
	              (json_int_t)e->last_used, "id_exp", (json_int_t)e->id_exp);

	if (o != NULL && e->refresh_token != NULL &&
	    json_object_set_new(o, "refresh_token", json_string(e->refresh_token)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Write e to dir/USER atomically: temp file in the same dir, fsync, rename, fsync the dir. */
static int entry_write(const char *dir, const struct tc_entry *e)
{
	int r = NL_ERR_IO, fd = -1, saved = 0;
	json_t *o = NULL;
	char *text = NULL, *tmp = NULL, *dst = NULL;
	const char *what = "write";

	if ((o = entry_to_json(e)) == NULL || (text = nl_json_dump(o)) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	if ((dst = path_join(dir, e->user)) == NULL ||
	    asprintf(&tmp, "%s/" TC_TMP_PREFIX "XXXXXX", dir) < 0) {
		tmp = NULL;
		r = NL_ERR_NOMEM;
		goto out;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		saved = errno;
		what = "create";
		free(tmp);
		tmp = NULL;
		goto fail;
	}
	if (fchmod(fd, 0600) != 0 || write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0) {
		saved = errno;
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		saved = errno;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, dst) != 0) {
		saved = errno;
		what = "rename";
		goto fail;
	}
	free(tmp);
	tmp = NULL;
	if (fsync_dir(dir) != 0) {
		saved = errno;
		what = "sync directory for";
		goto fail;
	}
	r = 0;
	goto out;
fail:
	nl_err("token cache: cannot %s %s/%s: %s (sign-in works; reuse only until restart)", what, dir,
	       e->user, strerror(saved));
	r = NL_ERR_IO;
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	free(dst);
	nl_free_secret(text);
	json_decref(o);
	return r;
}

static int get_time(const json_t *o, const char *key, time_t *out)
{
	long long v;

	if (nl_json_int(o, key, &v) != 0 || v < 0 || v > (long long)INT64_MAX / 2)
		return -1;
	*out = (time_t)v;
	return 0;
}

/* The one parser of a cache file: a fully valid entry for user, or an error with a reason. */
static int entry_parse(const char *buf, size_t len, const char *user, struct tc_entry **out, const char **why)
{
	static const char *const known[] = {"version", "user",         "sub",          "vot",
	                                    "level",   "auth_time",    "first_signin", "last_used",
	                                    "id_exp",  "refresh_token"};
	int r = NL_ERR_INVALID;
	json_t *o = NULL;
	struct tc_entry *e = NULL;
	const char *key, *s;
	json_t *val;
	long long ver, level;
	size_t i;

	*why = "not a JSON object";
	if (nl_json_parse(buf, len, NL_TOKCACHE_MAX_FILE, 4, true, &o, NULL, 0) != 0)
		goto out;
	*why = "unknown field";
	json_object_foreach(o, key, val)
	{
		bool ok = false;
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok = ok || strcmp(key, known[i]) == 0;
		if (!ok)
			goto out;
	}
	*why = "wrong version";
	if (nl_json_int(o, "version", &ver) != 0 || ver != TC_VERSION)
		goto out;
	*why = "wrong user";
	if ((s = nl_json_str(o, "user")) == NULL || strcmp(s, user) != 0)
		goto out;
	*why = "missing or wrong field";
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	copy_user(e->user, user);
	if ((s = nl_json_str(o, "sub")) == NULL || *s == '\0' || (e->sub = strdup(s)) == NULL)
		goto out;
	if ((s = nl_json_str(o, "vot")) == NULL || (e->vot = strdup(s)) == NULL)
		goto out;
	if (nl_json_int(o, "level", &level) != 0 || (level != 0 && level != 5 && level != 9))
		goto out;
	e->level = (int)level;
	if (get_time(o, "auth_time", &e->auth_time) != 0 ||
	    get_time(o, "first_signin", &e->first_signin) != 0 ||
	    get_time(o, "last_used", &e->last_used) != 0 || get_time(o, "id_exp", &e->id_exp) != 0)
		goto out;
	if ((val = json_object_get(o, "refresh_token")) != NULL) {
		if (!json_is_string(val) || (e->refresh_token = strdup(json_string_value(val))) == NULL)
			goto out;
	}
	*out = e;
	e = NULL;
	r = 0;
out:
	entry_free(e);
	if (o != NULL && (val = json_object_get(o, "refresh_token")) != NULL && json_is_string(val))
		nl_wipe((void *)json_string_value(val), json_string_length(val));
	json_decref(o);
	return r;
}

static void set_aside(const char *dir, const char *name, const char *why)
{
	char *from = path_join(dir, name), *to = NULL;

	if (from != NULL && asprintf(&to, "%s" TC_BAD_SUFFIX, from) < 0)
		to = NULL;
	if (from == NULL || to == NULL || rename(from, to) != 0)
		nl_err("token cache: damaged file %s/%s (%s) could not be set aside", dir, name, why);
	else
		nl_warn("token cache: damaged file %s/%s (%s) set aside as %s" TC_BAD_SUFFIX, dir, name, why,
		        name);
	free(from);
	free(to);
}

/* Read dir/name, owned by us, mode 0600 or tighter, not a symlink, at most the size bound. */
static int entry_load(int dfd, const char *dir, const char *name, struct tc_entry **out)
{
	int r = NL_ERR_INVALID, fd = -1;
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	const char *why = "unreadable";

	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0) {
		why = errno == ELOOP ? "a symbolic link" : "cannot be opened";
		goto bad;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		why = "not a regular file";
		goto bad;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		why = "unsafe owner or mode";
		goto bad;
	}
	if (st.st_size > NL_TOKCACHE_MAX_FILE) {
		why = "too big";
		goto bad;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != (size_t)st.st_size) {
		why = "short read";
		goto bad;
	}
	if ((r = entry_parse(buf, got, name, out, &why)) == 0)
		goto out;
	if (r == NL_ERR_NOMEM)
		goto out;
bad:
	set_aside(dir, name, why);
	r = NL_ERR_INVALID;
out:
	if (fd >= 0)
		close(fd);
	nl_free_secret_buf(buf, got);
	return r;
}

static void load_all_locked(struct nl_tokcache *tc)
{
	DIR *d = opendir(tc->dir);
	struct dirent *de;
	size_t seen = 0;

	if (d == NULL) {
		nl_warn("token cache: cannot list %s: %s", tc->dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL && seen < TC_MAX_ENTRIES) {
		struct tc_entry *e = NULL;

		if (strncmp(de->d_name, TC_TMP_PREFIX, strlen(TC_TMP_PREFIX)) == 0) {
			unlinkat(dirfd(d), de->d_name, 0); /* left by a crash before its rename */
			continue;
		}
		/* NAME.bad files are set aside for a person to look at; a user really called x.bad
		 * loses only reuse across restarts. */
		if (!valid_user(de->d_name) || ends_with(de->d_name, TC_BAD_SUFFIX))
			continue;
		seen++;
		if (entry_load(dirfd(d), tc->dir, de->d_name, &e) == 0)
			put_locked(tc, e);
	}
	closedir(d);
}

/* Make dir (0700) if missing and check it is ours and not writable by others. */
static bool dir_prepare(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		nl_warn("token cache: cannot create %s: %s (sign-ins will not be reused after a restart)",
		        dir, strerror(errno));
		return false;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		nl_warn("token cache: %s is not a directory (sign-ins will not be reused after a restart)",
		        dir);
		return false;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		nl_err("token cache: %s has an unsafe owner or mode; not using it", dir);
		return false;
	}
	if (access(dir, W_OK) != 0)
		nl_warn("token cache: %s is not writable (sign-ins will not be reused after a restart)", dir);
	return true;
}

/* ---- public ---- */

int nl_tokcache_open(const char *dir, struct nl_tokcache **out, char *err, size_t errlen)
{
	struct nl_tokcache *tc = NULL;

	if (out == NULL)
		return NL_ERR_INTERNAL;
	if ((tc = calloc(1, sizeof(*tc))) == NULL) {
		set_err(err, errlen, "out of memory");
		return NL_ERR_NOMEM;
	}
	if (pthread_mutex_init(&tc->mu, NULL) != 0) {
		free(tc);
		set_err(err, errlen, "cannot create mutex");
		return NL_ERR_INTERNAL;
	}
	if (dir != NULL && *dir != '\0') {
		if ((tc->dir = strdup(dir)) == NULL) {
			nl_tokcache_close(tc);
			set_err(err, errlen, "out of memory");
			return NL_ERR_NOMEM;
		}
		tc->safe = dir_prepare(dir);
		if (tc->safe)
			load_all_locked(tc);
	}
	*out = tc;
	return 0;
}

static void drop_all_locked(struct nl_tokcache *tc)
{
	struct tc_entry *e, *next;

	for (e = tc->head; e != NULL; e = next) {
		next = e->next;
		entry_free(e);
	}
	tc->head = NULL;
	tc->count = 0;
}

void nl_tokcache_close(struct nl_tokcache *tc)
{
	if (tc == NULL)
		return;
	pthread_mutex_lock(&tc->mu);
	drop_all_locked(tc);
	pthread_mutex_unlock(&tc->mu);
	pthread_mutex_destroy(&tc->mu);
	free(tc->dir);
	free(tc);
}

static int entry_from_identity(const char *user, const struct nl_identity *id, time_t now,
                               struct tc_entry **out)
{
	struct tc_entry *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NL_ERR_NOMEM;
	copy_user(e->user, user);
	e->sub = strdup(id->sub);
	e->vot = strdup(id->vot != NULL ? id->vot : "");
	e->level = id->level;
	e->auth_time = id->auth_time;
	e->first_signin = now;
	e->last_used = now;
	e->id_exp = id->id_exp;
	if (id->refresh_token != NULL)
		e->refresh_token = strdup(id->refresh_token);
	if (e->sub == NULL || e->vot == NULL || (id->refresh_token != NULL && e->refresh_token == NULL)) {
		entry_free(e);
		return NL_ERR_NOMEM;
	}
	*out = e;
	return 0;
}

int nl_tokcache_store(struct nl_tokcache *tc, const char *user, const struct nl_identity *id, time_t now)
{
	int r = NL_ERR_INTERNAL;
	struct tc_entry *e = NULL;

	if (tc == NULL || id == NULL || id->sub == NULL || *id->sub == '\0')
		return NL_ERR_INVALID;
	if (!valid_user(user)) {
		nl_warn("token cache: not caching a sign-in for an unusable user name");
		return NL_ERR_INVALID;
	}
	if (id->level != 0 && id->level != 5 && id->level != 9)
		return NL_ERR_INVALID;
	if ((r = entry_from_identity(user, id, now, &e)) != 0)
		return r;
	pthread_mutex_lock(&tc->mu);
	put_locked(tc, e);
	if (tc->dir == NULL) {
		r = 0;
	} else if (!tc->safe) {
		nl_err("token cache: %s is unusable; sign-in of %s kept in memory only", tc->dir, user);
		r = NL_ERR_IO;
	} else {
		r = entry_write(tc->dir, e);
	}
	pthread_mutex_unlock(&tc->mu);
	return r;
}

bool nl_tokcache_reuse(struct nl_tokcache *tc, const char *user, unsigned reuse_window, time_t now)
{
	struct tc_entry *e;
	bool ok = false;
	time_t since;

	if (tc == NULL || reuse_window == 0 || !valid_user(user))
		return false;
	pthread_mutex_lock(&tc->mu);
	if ((e = find_locked(tc, user)) == NULL)
		goto out;
	/* The full sign-in counts from our first use or the provider's auth_time, whichever is older. */
	since = e->first_signin;
	if (e->auth_time > 0 && e->auth_time < since)
		since = e->auth_time;
	/* A clock that went backwards fails closed. */
	if (now < e->last_used || now < since)
		goto out;
	if (now - e->last_used > (time_t)reuse_window || now - e->last_used > NL_SESSION_IDLE_MAX ||
	    now - since > NL_SESSION_TOTAL_MAX)
		goto out;
	ok = true;
	e->last_used = now;
	if (tc->dir != NULL && tc->safe)
		(void)entry_write(tc->dir, e); /* best effort: memory is authoritative */
out:
	pthread_mutex_unlock(&tc->mu);
	return ok;
}

/* Remove our files: NAME, NAME.bad and leftover temp files; nothing else. */
static void remove_files_locked(struct nl_tokcache *tc)
{
	DIR *d;
	struct dirent *de;
	size_t seen = 0;

	if (tc->dir == NULL || !tc->safe || (d = opendir(tc->dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL && seen++ < 4 * TC_MAX_ENTRIES) {
		if (!our_file(de->d_name))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT)
			nl_warn("token cache: cannot remove %s/%s: %s", tc->dir, de->d_name, strerror(errno));
	}
	closedir(d);
	(void)fsync_dir(tc->dir);
}

void nl_tokcache_flush(struct nl_tokcache *tc)
{
	if (tc == NULL)
		return;
	pthread_mutex_lock(&tc->mu);
	drop_all_locked(tc);
	remove_files_locked(tc);
	pthread_mutex_unlock(&tc->mu);
}

size_t nl_tokcache_count(struct nl_tokcache *tc)
{
	size_t n;

	if (tc == NULL)
		return 0;
	pthread_mutex_lock(&tc->mu);
	n = tc->count;
	pthread_mutex_unlock(&tc->mu);
	return n;
}
