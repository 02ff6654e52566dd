/* The token cache: the last successful sign-in of each local user, in memory and as one JSON file
 * a user in a root-only directory (atomic writes), so that the reuse policy survives a restart.
 * Damaged files are set aside as NAME.bad; a disk that cannot be written only costs reuse.
 * The reuse rule lives here: the same kind of service at the same place, never sliding, the map
 * and the level checked again (nhslogin.conf(5), SIGN-IN REUSE). tokcache_file.c holds the files.
 */
#include "config.h"
#include "tokcache_int.h"

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

bool tokcache_valid_user(const char *u)
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
void tokcache_copy_user(char dst[TC_USER_MAX + 1], const char *user)
{
	size_t n = strnlen(user, TC_USER_MAX);

	memcpy(dst, user, n);
	dst[n] = '\0';
}

bool tokcache_ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* NAME, NAME.bad or a temp file: the only names this cache creates in its directory. */
static bool our_file(const char *name)
{
	char base[TC_USER_MAX + 1];
	size_t len = strlen(name), blen = len - strlen(TC_BAD_SUFFIX);

	if (strncmp(name, TC_TMP_PREFIX, strlen(TC_TMP_PREFIX)) == 0 || tokcache_valid_user(name))
		return true;
	if (!tokcache_ends_with(name, TC_BAD_SUFFIX) || blen == 0 || blen > TC_USER_MAX)
		return false;
	memcpy(base, name, blen);
	base[blen] = '\0';
	return tokcache_valid_user(base);
}

void tokcache_entry_free(struct tc_entry *e)
{
	if (e == NULL)
		return;
	free(e->sub);
	free(e->vot);
	nl_free_secret(e->refresh_token);
	json_decref(e->claims);
	free(e->service);
	free(e->rhost);
	free(e->tty);
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
void tokcache_put_locked(struct nl_tokcache *tc, struct tc_entry *e)
{
	struct tc_entry **pp;

	for (pp = &tc->head; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->user, e->user) == 0) {
			struct tc_entry *old = *pp;
			e->next = old->next;
			*pp = e;
			tokcache_entry_free(old);
			return;
		}
	}
	e->next = tc->head;
	tc->head = e;
	tc->count++;
}

char *tokcache_path_join(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* ---- the kind of service and the place ---- */

/* Display managers also unlock their desktops (GNOME Shell unlocks through gdm-password,
 * light-locker through lightdm): nothing in a start tells a login from an unlock. */
static const char *const graphical_services[] = {"gdm",
                                                 "gdm-password",
                                                 "gdm-fingerprint",
                                                 "gdm-smartcard",
                                                 "gdm-autologin",
                                                 "lightdm",
                                                 "lightdm-greeter",
                                                 "sddm",
                                                 "sddm-greeter",
                                                 "xdm",
                                                 "kdm",
                                                 "lxdm",
                                                 "slim",
                                                 "greetd",
                                                 "ly",
                                                 NULL};
static const char *const elevation_services[] = {"sudo",   "sudo-i", "su",      "su-l",      "polkit-1",
                                                 "pkexec", "doas",   "runuser", "runuser-l", NULL};
static const char *const unlock_services[] = {"xscreensaver",
                                              "gnome-screensaver",
                                              "kde",
                                              "kscreensaver",
                                              "kscreenlocker",
                                              "cinnamon-screensaver",
                                              "mate-screensaver",
                                              "xfce4-screensaver",
                                              "budgie-screensaver",
                                              "i3lock",
                                              "swaylock",
                                              "hyprlock",
                                              "waylock",
                                              "gtklock",
                                              "xlock",
                                              "xsecurelock",
                                              "light-locker",
                                              "vlock",
                                              "physlock",
                                              NULL};

static bool in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

enum nl_svc_class nl_service_class(const char *service)
{
	if (service == NULL || *service == '\0')
		return NL_SVC_NONE;
	if (strcmp(service, "sshd") == 0)
		return NL_SVC_REMOTE;
	if (strcmp(service, "login") == 0)
		return NL_SVC_CONSOLE;
	if (in_list(graphical_services, service))
		return NL_SVC_GRAPHICAL;
	if (in_list(elevation_services, service))
		return NL_SVC_ELEVATION;
	if (in_list(unlock_services, service))
		return NL_SVC_UNLOCK;
	return NL_SVC_OTHER;
}

const char *nl_service_class_word(enum nl_svc_class c)
{
	switch (c) {
	case NL_SVC_NONE:
		return "no service";
	case NL_SVC_REMOTE:
		return "remote shell";
	case NL_SVC_CONSOLE:
		return "console";
	case NL_SVC_GRAPHICAL:
		return "graphical login";
	case NL_SVC_ELEVATION:
		return "elevation";
	case NL_SVC_UNLOCK:
		return "screen unlock";
	case NL_SVC_OTHER:
		return "service";
	}
	return "service";
}

/* Is service one of cfg's reuse_unlock_services (comma- or space-separated)? */
static bool unlock_listed(const struct nl_config *cfg, const char *service)
{
	const char *p = cfg->reuse_unlock_services;
	size_t n = strlen(service), len;

	while (p != NULL && *p != '\0') {
		len = strcspn(p, ", \t");
		if (len == n && strncmp(p, service, n) == 0)
			return true;
		p += len;
		p += strspn(p, ", \t");
	}
	return false;
}

static const char *str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* Can a sign-in at (service, rhost, tty, audit) ever be reused? NULL if so, else why not. */
static const char *place_unusable(const struct nl_config *cfg, const char *service, const char *rhost,
                                  const char *tty, uint32_t audit)
{
	enum nl_svc_class c = nl_service_class(service);

	if (c == NL_SVC_NONE)
		return "no PAM service named";
	if ((c == NL_SVC_UNLOCK || c == NL_SVC_GRAPHICAL) && !unlock_listed(cfg, service))
		return "a screen unlock or display manager not listed in reuse_unlock_services";
	if (*str_or_empty(rhost) == '\0' && *str_or_empty(tty) == '\0' && audit == NL_AUDIT_SESSION_NONE)
		return "no remote host, tty or audit session to bind it to";
	return NULL;
}

/* Was e earned where `here` asks from? NULL if so, else why not. */
static const char *place_differs(const struct tc_entry *e, const char *boot,
                                 const struct nl_reuse_place *here, uint32_t audit)
{
	enum nl_svc_class c = nl_service_class(here->service);

	if (c != nl_service_class(e->service) ||
	    (c == NL_SVC_OTHER && strcmp(e->service, str_or_empty(here->service)) != 0))
		return "another kind of service";
	if (strcmp(e->rhost, str_or_empty(here->rhost)) != 0)
		return "another remote host";
	if (*e->rhost == '\0' && strcmp(e->tty, str_or_empty(here->tty)) != 0)
		return "another tty";
	if (e->audit != audit)
		return "another audit session";
	if (e->by_root != here->by_root)
		return "another kind of caller";
	if (strcmp(e->boot, boot) != 0)
		return "an earlier boot";
	return NULL;
}

/* The audit session of process pid (/proc/PID/sessionid); NONE if unknown. */
static uint32_t audit_session_of(pid_t pid)
{
	char path[64], buf[16];
	unsigned long long v;
	ssize_t n;
	char *end;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/sessionid", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NL_AUDIT_SESSION_NONE;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NL_AUDIT_SESSION_NONE;
	buf[n] = '\0';
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\0' && *end != '\n') || v > UINT32_MAX)
		return NL_AUDIT_SESSION_NONE;
	return (uint32_t)v;
}

static uint32_t audit_of(const struct nl_reuse_place *p)
{
	return p->pid > 0 ? audit_session_of(p->pid) : p->audit_session;
}

/* This boot's id, or "" (then every entry counts as this boot's). */
static void read_boot_id(char out[TC_BOOT_LEN + 1])
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, out, TC_BOOT_LEN) : -1;

	if (fd >= 0)
		close(fd);
	out[n == TC_BOOT_LEN ? TC_BOOT_LEN : 0] = '\0';
}

/* ---- notes: the audit session of a start, for the sign-in it leads to ---- */

static void note_locked(struct nl_tokcache *tc, uint64_t conn, uint32_t audit, time_t now)
{
	struct tc_note *n;

	if (tc->notes == NULL && (tc->notes = calloc(TC_NOTES, sizeof(*tc->notes))) == NULL)
		return; /* the sign-in goes on; it only will not be kept for reuse */
	n = &tc->notes[tc->note_next];
	tc->note_next = (tc->note_next + 1) % TC_NOTES;
	n->conn = conn;
	n->audit = audit;
	n->at = now;
}

/* The newest note of conn, taken (forgotten); false if none that is recent. */
static bool take_note_locked(struct nl_tokcache *tc, uint64_t conn, time_t now, uint32_t *audit)
{
	size_t i, k;

	if (tc->notes == NULL || conn == 0)
		return false;
	for (i = 1; i <= TC_NOTES; i++) {
		k = (tc->note_next + TC_NOTES - i) % TC_NOTES;
		if (tc->notes[k].conn != conn)
			continue;
		tc->notes[k].conn = 0;
		if (now < tc->notes[k].at || now - tc->notes[k].at > TC_NOTE_AGE)
			return false;
		*audit = tc->notes[k].audit;
		return true;
	}
	return false;
}

/* ---- public ---- */

int nl_tokcache_open(const char *dir, struct nl_tokcache **out, char *err, size_t errlen)
{
	struct nl_tokcache *tc = NULL;

	if (out == NULL)
		return NL_ERR_INTERNAL;
	if ((tc = calloc(1, sizeof(*tc))) == NULL)
		return nl_errf(err, errlen, NL_ERR_NOMEM, "token cache: out of memory");
	if (pthread_mutex_init(&tc->mu, NULL) != 0) {
		free(tc);
		return nl_errf(err, errlen, NL_ERR_INTERNAL, "token cache: cannot create mutex");
	}
	read_boot_id(tc->boot);
	if (dir != NULL && *dir != '\0') {
		if ((tc->dir = strdup(dir)) == NULL) {
			nl_tokcache_close(tc);
			return nl_errf(err, errlen, NL_ERR_NOMEM, "token cache: out of memory");
		}
		tc->safe = tokcache_dir_prepare(dir);
		if (tc->safe)
			tokcache_load_all_locked(tc);
	}
	*out = tc;
	return 0;
}

static void drop_all_locked(struct nl_tokcache *tc)
{
	struct tc_entry *e, *next;

	for (e = tc->head; e != NULL; e = next) {
		next = e->next;
		tokcache_entry_free(e);
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
	free(tc->notes);
	free(tc->dir);
	free(tc);
}

/* The claims the mapping reads under cfg, and nothing more (the cache keeps no other personal
 * data): the configured claim, the email for rule email_local, and email_verified with an email. */
static json_t *claims_for_map(const struct nl_config *cfg, const json_t *claims)
{
	const char *name = cfg->claim == NL_CLAIM_EMAIL ? "email"
	                   : cfg->claim == NL_CLAIM_SUB ? "sub"
	                                                : "nhs_number";
	json_t *out = json_object(), *v;

	if (cfg->rule == NL_MAP_EMAIL_LOCAL)
		name = "email";
	if (out == NULL)
		return NULL;
	if ((v = json_object_get(claims, name)) != NULL && json_is_string(v) &&
	    json_object_set(out, name, v) != 0)
		goto fail;
	if (strcmp(name, "email") == 0 && (v = json_object_get(claims, "email_verified")) != NULL &&
	    json_is_boolean(v) && json_object_set(out, "email_verified", v) != 0)
		goto fail;
	return out;
fail:
	json_decref(out);
	return NULL;
}

static int entry_from_identity(const struct nl_config *cfg, const char *user, const struct nl_identity *id,
                               const struct nl_reuse_place *where, uint32_t audit, const char *boot,
                               time_t now, struct tc_entry **out)
{
	struct tc_entry *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NL_ERR_NOMEM;
	tokcache_copy_user(e->user, user);
	e->sub = strdup(id->sub);
	e->vot = strdup(id->vot != NULL ? id->vot : "");
	e->level = id->level;
	e->auth_time = id->auth_time;
	e->first_signin = now;
	e->id_exp = id->id_exp;
	if (id->refresh_token != NULL)
		e->refresh_token = strdup(id->refresh_token);
	e->claims = claims_for_map(cfg, id->claims);
	e->service = strndup(str_or_empty(where->service), TC_PLACE_MAX);
	e->rhost = strndup(str_or_empty(where->rhost), TC_PLACE_MAX);
	e->tty = strndup(str_or_empty(where->tty), TC_PLACE_MAX);
	e->by_root = where->by_root;
	e->audit = audit;
	snprintf(e->boot, sizeof(e->boot), "%s", boot);
	if (e->sub == NULL || e->vot == NULL || (id->refresh_token != NULL && e->refresh_token == NULL) ||
	    e->claims == NULL || e->service == NULL || e->rhost == NULL || e->tty == NULL) {
		tokcache_entry_free(e);
		return NL_ERR_NOMEM;
	}
	*out = e;
	return 0;
}

int nl_tokcache_store(struct nl_tokcache *tc, const struct nl_config *cfg, const char *user,
                      const struct nl_identity *id, const struct nl_reuse_place *where, time_t now)
{
	int r = NL_ERR_INTERNAL;
	struct tc_entry *e = NULL;
	const char *why;
	uint32_t audit = NL_AUDIT_SESSION_NONE;
	bool noted;

	if (tc == NULL || cfg == NULL || where == NULL || id == NULL || id->sub == NULL || *id->sub == '\0' ||
	    id->claims == NULL)
		return NL_ERR_INVALID;
	if (cfg->reuse_window == 0)
		return 0; /* reuse is off: nothing of a sign-in is kept, in memory or on disk */
	if (!tokcache_valid_user(user)) {
		nl_warn("token cache: not caching a sign-in for an unusable user name");
		return NL_ERR_INVALID;
	}
	if (id->level != 0 && id->level != 5 && id->level != 9)
		return NL_ERR_INVALID;
	pthread_mutex_lock(&tc->mu);
	noted = take_note_locked(tc, where->conn, now, &audit);
	pthread_mutex_unlock(&tc->mu);
	why = noted ? place_unusable(cfg, where->service, where->rhost, where->tty, audit)
	            : "its start was not seen";
	if (why != NULL) {
		nl_debug("token cache: sign-in of %s not kept for reuse: %s", user, why);
		return 0;
	}
	if ((r = entry_from_identity(cfg, user, id, where, audit, tc->boot, now, &e)) != 0)
		return r;
	pthread_mutex_lock(&tc->mu);
	tokcache_put_locked(tc, e);
	if (tc->dir == NULL) {
		r = 0;
	} else if (!tc->safe) {
		nl_err("token cache: %s is unusable; sign-in of %s kept in memory only", tc->dir, user);
		r = NL_ERR_IO;
	} else {
		r = tokcache_entry_write(tc->dir, e);
	}
	pthread_mutex_unlock(&tc->mu);
	return r;
}

/* The time rule: within reuse_window and NHS login's 30 min idle of the full sign-in (a reuse
 * does not touch NHS login's session, so it never moves this), and within 12 h of the older of
 * that sign-in and NHS login's auth_time. NULL if now is inside, else why not. */
static const char *time_outside(const struct tc_entry *e, unsigned reuse_window, time_t now)
{
	time_t since = e->first_signin;

	if (e->auth_time > 0 && e->auth_time < since)
		since = e->auth_time;
	if (now < e->first_signin || now < since)
		return "the clock went backwards"; /* fails closed */
	if (now - e->first_signin > (time_t)reuse_window)
		return "past reuse_window";
	if (now - e->first_signin > NL_SESSION_IDLE_MAX)
		return "past NHS login's 30 minute idle limit";
	if (now - since > NL_SESSION_TOTAL_MAX)
		return "past NHS login's 12 hour limit";
	return NULL;
}

/* Everything but the map, under the lock; on NULL *claims is a copy for the map check. */
static const char *reuse_check_locked(struct nl_tokcache *tc, const struct nl_config *cfg, const char *user,
                                      const struct nl_reuse_place *where, uint32_t audit, time_t now,
                                      json_t **claims)
{
	struct tc_entry *e;
	const char *why;

	if ((e = find_locked(tc, user)) == NULL)
		return "no cached sign-in";
	if ((why = place_differs(e, tc->boot, where, audit)) != NULL ||
	    (why = time_outside(e, cfg->reuse_window, now)) != NULL)
		return why;
	if (e->level < cfg->min_level)
		return "its identity level is below min_level";
	if ((*claims = json_deep_copy(e->claims)) == NULL)
		return "out of memory";
	return NULL;
}

/* Does the map (read again if it changed) still give user for these claims? NULL if so. */
static const char *map_differs(const struct nl_config *cfg, const char *user, const json_t *claims)
{
	char *mapped = NULL, err[256] = "";
	int r = nl_map_identity(cfg, claims, &mapped, err, sizeof(err));
	bool same = r == 0 && strcmp(mapped, user) == 0;

	free(mapped);
	if (same)
		return NULL;
	return r == 0 || r == NL_ERR_NOT_FOUND ? "the map no longer links it to this account"
	                                       : "the identity mapping cannot be checked";
}

bool nl_tokcache_reuse(struct nl_tokcache *tc, const struct nl_config *cfg, const char *user,
                       const struct nl_reuse_place *where, time_t now, const char **why)
{
	const char *no = "reuse is off", *unusable;
	json_t *claims = NULL;
	uint32_t audit;

	if (tc == NULL || cfg == NULL || where == NULL || cfg->reuse_window == 0)
		goto out;
	audit = audit_of(where);
	unusable = where->needs_number ? "number matching asks this start for the number"
	                               : place_unusable(cfg, where->service, where->rhost, where->tty, audit);
	pthread_mutex_lock(&tc->mu);
	/* whatever the answer, a flow this connection starts was asked for from here */
	if (unusable == NULL)
		note_locked(tc, where->conn, audit, now);
	if (!tokcache_valid_user(user) || find_locked(tc, user) == NULL)
		no = "no cached sign-in";
	else if ((no = unusable) == NULL)
		no = reuse_check_locked(tc, cfg, user, where, audit, now, &claims);
	pthread_mutex_unlock(&tc->mu);
	if (no == NULL)
		no = map_differs(cfg, user, claims);
out:
	json_decref(claims);
	if (why != NULL)
		*why = no;
	return no == NULL;
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
	(void)tokcache_fsync_dir(tc->dir);
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
