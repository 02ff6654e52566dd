/* The token cache on disk: one JSON file a user, written atomically (temp, fsync, rename), read
 * back and checked after a restart; a damaged file is set aside as NAME.bad with a log line. */
#include "config.h"
#include "tokcache_int.h"
#include "nl_text.h"

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

#include "mapping.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_wipe.h"

/* ---- on disk ---- */

static json_t *entry_to_json(const struct tc_entry *e)
{
	json_t *o = json_pack(
	    "{s:i, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:O, s:s, s:s, s:s, s:b, s:I, s:s}", "version",
	    TC_VERSION, "user", e->user, "sub", e->sub, "vot", e->vot != NULL ? e->vot : "", "level",
	    e->level, "auth_time", (json_int_t)e->auth_time, "first_signin", (json_int_t)e->first_signin,
	    "id_exp", (json_int_t)e->id_exp, "claims", e->claims, "service", e->service, "rhost", e->rhost,
	    "tty", e->tty, "by_root", e->by_root, "audit_session", (json_int_t)e->audit, "boot", e->boot);

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

int tokcache_fsync_dir(const char *dir)
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
int tokcache_entry_write(const char *dir, const struct tc_entry *e)
{
	int r = NL_ERR_IO, fd = -1, saved = 0;
	json_t *o = NULL;
	char *text = NULL, *tmp = NULL, *dst = NULL;
	const char *what = "write";

	if ((o = entry_to_json(e)) == NULL || (text = nl_json_dump(o)) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	if ((dst = tokcache_path_join(dir, e->user)) == NULL ||
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
	if (tokcache_fsync_dir(dir) != 0) {
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

/* A copy of a string field of at most max bytes without control characters ("" allowed). */
static int get_place_str(const json_t *o, const char *key, char **out)
{
	const json_t *v = json_object_get(o, key);
	const char *s;
	size_t i, n;

	if (!json_is_string(v) || (n = json_string_length(v)) > TC_PLACE_MAX)
		return -1;
	s = json_string_value(v);
	for (i = 0; i < n; i++)
		if (nl_text_is_control((unsigned char)s[i]))
			return -1;
	return (*out = strdup(s)) != NULL ? 0 : -1;
}

/* The claims kept for the map check: an object of string (or email_verified boolean) values. */
static int get_claims(const json_t *o, json_t **out)
{
	const json_t *c = json_object_get(o, "claims");
	const char *key;
	json_t *val;

	if (!json_is_object(c) || json_object_size(c) > 4)
		return -1;
	json_object_foreach((json_t *)c, key, val)
	{
		if (!json_is_string(val) && !json_is_boolean(val))
			return -1;
	}
	return (*out = json_deep_copy(c)) != NULL ? 0 : -1;
}

static int get_place(const json_t *o, struct tc_entry *e)
{
	const json_t *b = json_object_get(o, "by_root");
	const char *boot = nl_json_str(o, "boot");
	long long audit;

	if (get_place_str(o, "service", &e->service) != 0 || get_place_str(o, "rhost", &e->rhost) != 0 ||
	    get_place_str(o, "tty", &e->tty) != 0 || !json_is_boolean(b) ||
	    nl_json_int(o, "audit_session", &audit) != 0 || audit < 0 || audit > (long long)UINT32_MAX ||
	    boot == NULL || strlen(boot) > TC_BOOT_LEN)
		return -1;
	e->by_root = json_is_true(b);
	e->audit = (uint32_t)audit;
	snprintf(e->boot, sizeof(e->boot), "%s", boot);
	return 0;
}

/* The one parser of a cache file: a fully valid entry for user, or an error with a reason.
 * NL_ERR_NOT_FOUND for a well-formed file of the older version (no place: never reusable). */
static int entry_parse(const char *buf, size_t len, const char *user, struct tc_entry **out, const char **why)
{
	static const char *const known[] = {"version", "user",          "sub",          "vot",
	                                    "level",   "auth_time",     "first_signin", "id_exp",
	                                    "claims",  "service",       "rhost",        "tty",
	                                    "by_root", "audit_session", "boot",         "refresh_token"};
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
	*why = "from an older version";
	if (nl_json_int(o, "version", &ver) == 0 && ver == TC_VERSION_OLD) {
		r = NL_ERR_NOT_FOUND;
		goto out;
	}
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
	tokcache_copy_user(e->user, user);
	if ((s = nl_json_str(o, "sub")) == NULL || *s == '\0' || (e->sub = strdup(s)) == NULL)
		goto out;
	if ((s = nl_json_str(o, "vot")) == NULL || (e->vot = strdup(s)) == NULL)
		goto out;
	if (nl_json_int(o, "level", &level) != 0 || (level != 0 && level != 5 && level != 9))
		goto out;
	e->level = (int)level;
	if (get_time(o, "auth_time", &e->auth_time) != 0 ||
	    get_time(o, "first_signin", &e->first_signin) != 0 || get_time(o, "id_exp", &e->id_exp) != 0)
		goto out;
	if (get_claims(o, &e->claims) != 0 || get_place(o, e) != 0)
		goto out;
	if ((val = json_object_get(o, "refresh_token")) != NULL) {
		if (!json_is_string(val) || (e->refresh_token = strdup(json_string_value(val))) == NULL)
			goto out;
	}
	*out = e;
	e = NULL;
	r = 0;
out:
	tokcache_entry_free(e);
	if (o != NULL && (val = json_object_get(o, "refresh_token")) != NULL && json_is_string(val))
		nl_wipe((void *)json_string_value(val), json_string_length(val));
	json_decref(o);
	return r;
}

static void set_aside(const char *dir, const char *name, const char *why)
{
	char *from = tokcache_path_join(dir, name), *to = NULL;

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
	if ((r = entry_parse(buf, got, name, out, &why)) == 0 || r == NL_ERR_NOMEM || r == NL_ERR_NOT_FOUND)
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

void tokcache_load_all_locked(struct nl_tokcache *tc)
{
	DIR *d = opendir(tc->dir);
	struct dirent *de;
	size_t seen = 0;
	int r;

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
		if (!tokcache_valid_user(de->d_name) || tokcache_ends_with(de->d_name, TC_BAD_SUFFIX))
			continue;
		seen++;
		r = entry_load(dirfd(d), tc->dir, de->d_name, &e);
		if (r == 0 && strcmp(e->boot, tc->boot) == 0) {
			tokcache_put_locked(tc, e);
			continue;
		}
		/* A sign-in of an earlier boot was earned at ttys and sessions that are gone; one of
		 * an older version does not say where it was earned. Neither can ever be reused. */
		tokcache_entry_free(e);
		if (r == 0 || r == NL_ERR_NOT_FOUND) {
			nl_info("token cache: %s/%s is %s; removed", tc->dir, de->d_name,
			        r == 0 ? "from an earlier boot" : "from an older version");
			unlinkat(dirfd(d), de->d_name, 0);
		}
	}
	closedir(d);
}

/* Make dir (0700) if missing and check it is ours and not writable by others. */
bool tokcache_dir_prepare(const char *dir)
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
