/* Identity mapping (DESIGN.md "Identity mapping and policy"): a verified claim to a local user
 * name, through a checked, cached map file or the email_local rule. An ambiguous or malformed
 * map is an error naming file and line, never a guess. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "directory.h"
#include "mapping.h"
#include "nl_text.h"
#include "nl_err.h"

#define MAX_LINE  1024 /* longest map file line */
#define MAX_VALUE 255  /* longest claim value (sub is at most 255 characters) */
#define MAX_USER  32   /* longest local user name */

/* What the values of a map file are, which decides how they are checked and compared. */
enum value_kind {
	KIND_ANY,   /* unknown (nl_map_check_file): 10-digit values checked as NHS numbers */
	KIND_NHS,   /* every value an NHS number: 10 digits, modulus 11 check digit */
	KIND_EMAIL, /* every value an address; compared case-insensitively (stored lower-case) */
	KIND_SUB,   /* opaque */
};

struct map_entry {
	char *value; /* normalised (lower-case for addresses) */
	char *user;
	unsigned line;
};

struct map_table {
	struct map_entry *e;
	size_t n;
};

/* What identifies one version of the map file: a change to any of these means re-read. ctime
 * catches chmod/chown (a file made group-writable must stop being used). */
struct file_key {
	dev_t dev;
	ino_t ino;
	off_t size;
	mode_t mode;
	uid_t uid;
	struct timespec mtim, ctim;
};

static struct {
	pthread_mutex_t lock;
	char *path;
	enum value_kind kind;
	struct file_key key;
	struct map_table table;
	bool loaded;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static void lower_in_place(char *s)
{
	for (; *s != '\0'; s++)
		*s = ascii_lower(*s);
}

static bool ascii_caseeq(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++)
		if (ascii_lower(*a) != ascii_lower(*b))
			return false;
	return *a == *b;
}

/* A POSIX-portable user name, lower case: [a-z_][a-z0-9_.-]{0,31}. The dot is allowed (first.last
 * accounts are common where names come from a directory); it cannot lead, so "." and ".." and
 * hidden-file-like names are impossible, as are "-" options. */
static bool valid_user(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > MAX_USER || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (i = 1; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static bool all_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* An NHS number: 10 digits, the last the modulus 11 check digit of the first nine (weights 10..2;
 * 11 - remainder, 11 meaning 0 and 10 meaning the number is invalid). */
static bool valid_nhs_number(const char *s, size_t n)
{
	unsigned sum = 0, check;
	size_t i;

	if (n != 10 || !all_digits(s, n))
		return false;
	for (i = 0; i < 9; i++)
		sum += (unsigned)(s[i] - '0') * (unsigned)(10 - i);
	check = 11 - sum % 11;
	if (check == 11)
		check = 0;
	return check != 10 && check == (unsigned)(s[9] - '0');
}

/* local@domain with exactly one '@' and both parts non-empty. */
static bool looks_like_email(const char *s)
{
	const char *at = strchr(s, '@');

	return at != NULL && at != s && at[1] != '\0' && strchr(at + 1, '@') == NULL;
}

static void table_free(struct map_table *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->e[i].value);
		free(t->e[i].user);
	}
	free(t->e);
	t->e = NULL;
	t->n = 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct map_entry *x = a, *y = b;
	int c = strcmp(x->value, y->value);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Check one claim value of a map line against the file's kind; NULL if fine, else the reason. */
static const char *value_problem(const char *v, size_t n, enum value_kind kind)
{
	size_t i;

	if (n > MAX_VALUE)
		return "claim value too long";
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] == 0x7f)
			return "control character in claim value";
	switch (kind) {
	case KIND_NHS:
		if (n != 10 || !all_digits(v, n))
			return "NHS number must be 10 digits";
		if (!valid_nhs_number(v, n))
			return "NHS number has a wrong check digit";
		break;
	case KIND_ANY:
		if (n == 10 && all_digits(v, n) && !valid_nhs_number(v, n))
			return "NHS number has a wrong check digit";
		break;
	case KIND_EMAIL:
	case KIND_SUB:
		break;
	}
	return NULL;
}

/* Parse one non-comment line "local_user claim_value" into e. */
static int parse_line(const char *path, unsigned lineno, const char *s, size_t n, enum value_kind kind,
                      struct map_entry *e, char *err, size_t errlen)
{
	size_t i = 0, u0, u1, v0, v1;
	const char *why;

	u0 = i;
	while (i < n && !is_blank(s[i]))
		i++;
	u1 = i;
	while (i < n && is_blank(s[i]))
		i++;
	v0 = i;
	while (i < n && !is_blank(s[i]))
		i++;
	v1 = i;
	while (i < n && is_blank(s[i]))
		i++;
	if (v0 == v1 || i != n)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s:%u: expected \"local_user claim_value\"", path,
		               lineno);
	if (!valid_user(s + u0, u1 - u0))
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s:%u: invalid local user name (want [a-z_][a-z0-9_.-]{0,31})", path, lineno);
	if ((why = value_problem(s + v0, v1 - v0, kind)) != NULL)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s:%u: %s", path, lineno, why);
	e->user = strndup(s + u0, u1 - u0);
	e->value = strndup(s + v0, v1 - v0);
	e->line = lineno;
	if (e->user == NULL || e->value == NULL)
		return NL_ERR_NOMEM;
	if (kind == KIND_EMAIL || (kind == KIND_ANY && strchr(e->value, '@') != NULL)) {
		if (kind == KIND_EMAIL && !looks_like_email(e->value))
			return nl_errf(err, errlen, NL_ERR_CONFIG, "%s:%u: not an email address", path,
			               lineno);
		lower_in_place(e->value);
	}
	return 0;
}

/* Sort by value and refuse a value that names two different users (naming both lines). */
static int sort_and_check(const char *path, struct map_table *t, char *err, size_t errlen)
{
	size_t i;

	if (t->n > 1)
		qsort(t->e, t->n, sizeof(*t->e), entry_cmp);
	for (i = 1; i < t->n; i++) {
		const struct map_entry *a = &t->e[i - 1], *b = &t->e[i];
		if (strcmp(a->value, b->value) == 0 && strcmp(a->user, b->user) != 0) {
			/* The value itself (an NHS number, an address) stays out of logs. */
			return nl_errf(err, errlen, NL_ERR_CONFIG,
			               "%s:%u and %s:%u: the same claim value maps to \"%s\" and \"%s\"",
			               path, a->line, path, b->line, a->user, b->user);
		}
	}
	return 0;
}

/* Parse a whole map file's text into *out (sorted, unambiguous). */
static int parse_map(const char *path, const char *buf, size_t len, enum value_kind kind,
                     struct map_table *out, char *err, size_t errlen)
{
	struct map_table t = {NULL, 0};
	size_t pos = 0, cap = 0;
	unsigned lineno = 0;
	int r = NL_ERR_INTERNAL;

	if (memchr(buf, '\0', len) != NULL) {
		r = nl_errf(err, errlen, NL_ERR_CONFIG, "%s: contains a NUL byte", path);
		goto out;
	}
	while (pos < len) {
		const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - line) : len - pos, i = 0;

		pos += n + (nl != NULL);
		lineno++;
		if (n > MAX_LINE) {
			r = nl_errf(err, errlen, NL_ERR_CONFIG, "%s:%u: line too long", path, lineno);
			goto out;
		}
		while (i < n && is_blank(line[i]))
			i++;
		if (i == n || line[i] == '#')
			continue;
		if (t.n == cap) {
			size_t ncap = cap == 0 ? 64 : cap * 2;
			struct map_entry *ne = realloc(t.e, ncap * sizeof(*ne));
			if (ne == NULL) {
				r = NL_ERR_NOMEM;
				goto out;
			}
			t.e = ne;
			cap = ncap;
		}
		memset(&t.e[t.n], 0, sizeof(t.e[t.n]));
		t.n++;
		if ((r = parse_line(path, lineno, line + i, n - i, kind, &t.e[t.n - 1], err, errlen)) != 0)
			goto out;
	}
	if ((r = sort_and_check(path, &t, err, errlen)) != 0)
		goto out;
	*out = t;
	t.e = NULL;
	t.n = 0;
	r = 0;
out:
	table_free(&t);
	return r;
}

/* A map file that cannot be read is a configuration error, never "no such identity": a missing
 * file gets its fix added (the checked read's own messages say what to chmod or chown). */
static int read_problem(const char *path, int r, char *err, size_t errlen)
{
	if (r != NL_ERR_NOT_FOUND)
		return r;
	return nl_errf(err, errlen, NL_ERR_CONFIG,
	               "%s: no such file: create it (one \"local_user claim_value\" a line) or set "
	               "[identity] map_file to the map's path",
	               path);
}

/* Read (checked: owner, mode, size) and parse a map file. */
static int load_map(const char *path, enum value_kind kind, struct map_table *out, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	if ((r = nl_read_file_checked(path, false, NL_MAP_MAX_FILE, &buf, &len, err, errlen)) != 0) {
		r = read_problem(path, r, err, errlen);
		goto out;
	}
	r = parse_map(path, buf, len, kind, out, err, errlen);
out:
	free(buf);
	return r;
}

static void key_of(const struct stat *st, struct file_key *k)
{
	memset(k, 0, sizeof(*k));
	k->dev = st->st_dev;
	k->ino = st->st_ino;
	k->size = st->st_size;
	k->mode = st->st_mode;
	k->uid = st->st_uid;
	k->mtim = st->st_mtim;
	k->ctim = st->st_ctim;
}

static bool key_eq(const struct file_key *a, const struct file_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mode == b->mode &&
	       a->uid == b->uid && a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
	       a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

static void cache_drop_locked(void)
{
	table_free(&cache.table);
	free(cache.path);
	cache.path = NULL;
	cache.loaded = false;
}

/* Make the cache hold path's current contents. Called with the lock held. The key is taken
 * before reading, so a change during the read is seen on the next call and read again. */
static int cache_refresh_locked(const char *path, enum value_kind kind, char *err, size_t errlen)
{
	struct map_table t = {NULL, 0};
	struct file_key k;
	struct stat st;
	char *p = NULL;
	int r;

	if (lstat(path, &st) != 0) {
		int e = errno;
		r = nl_errf(err, errlen, e == ENOENT ? NL_ERR_NOT_FOUND : NL_ERR_IO, "%s: %s", path,
		            strerror(e));
		r = read_problem(path, r, err, errlen);
		cache_drop_locked();
		return r;
	}
	key_of(&st, &k);
	if (cache.loaded && cache.kind == kind && strcmp(cache.path, path) == 0 && key_eq(&cache.key, &k))
		return 0;
	cache_drop_locked();
	if ((r = load_map(path, kind, &t, err, errlen)) != 0)
		return r;
	if ((p = strdup(path)) == NULL) {
		table_free(&t);
		return NL_ERR_NOMEM;
	}
	cache.path = p;
	cache.kind = kind;
	cache.key = k;
	cache.table = t;
	cache.loaded = true;
	return 0;
}

static int value_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct map_entry *)elem)->value);
}

static enum value_kind kind_of(enum nl_claim c)
{
	switch (c) {
	case NL_CLAIM_NHS_NUMBER:
		return KIND_NHS;
	case NL_CLAIM_EMAIL:
		return KIND_EMAIL;
	case NL_CLAIM_SUB:
		return KIND_SUB;
	}
	return KIND_SUB;
}

static const char *claim_name(enum nl_claim c)
{
	switch (c) {
	case NL_CLAIM_NHS_NUMBER:
		return "nhs_number";
	case NL_CLAIM_EMAIL:
		return "email";
	case NL_CLAIM_SUB:
		return "sub";
	}
	return NULL;
}

/* The chosen claim as a new string, normalised for lookup; refuses an unverified email. */
static int get_claim(enum nl_claim c, const json_t *claims, char **out, char *err, size_t errlen)
{
	const char *name = claim_name(c);
	const json_t *v = name != NULL ? json_object_get(claims, name) : NULL;
	const json_t *ev;
	const char *s;
	char *copy;

	if (name == NULL)
		return NL_ERR_CONFIG;
	if (v == NULL)
		return nl_errf(err, errlen, NL_ERR_CLAIM, "the identity has no %s claim", name);
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
	    json_string_length(v) == 0 || json_string_length(v) > MAX_VALUE)
		return nl_errf(err, errlen, NL_ERR_CLAIM, "the %s claim is not a usable string", name);
	s = json_string_value(v);
	if (c == NL_CLAIM_EMAIL) {
		/* Absent email_verified is taken as the provider's word; present, it must be true. */
		ev = json_object_get(claims, "email_verified");
		if (ev != NULL && !json_is_true(ev))
			return nl_errf(err, errlen, NL_ERR_CLAIM, "the email address is not verified");
		if (!looks_like_email(s))
			return nl_errf(err, errlen, NL_ERR_CLAIM, "the email claim is not an address");
	}
	if (c == NL_CLAIM_NHS_NUMBER && !valid_nhs_number(s, strlen(s)))
		return nl_errf(err, errlen, NL_ERR_CLAIM, "the nhs_number claim is not a valid NHS number");
	if ((copy = strdup(s)) == NULL)
		return NL_ERR_NOMEM;
	if (c == NL_CLAIM_EMAIL)
		lower_in_place(copy);
	*out = copy;
	return 0;
}

static int map_by_file(const struct nl_config *cfg, const json_t *claims, char **local_user, char *err,
                       size_t errlen)
{
	const struct map_entry *e;
	char *value = NULL, *user = NULL;
	enum value_kind kind = kind_of(cfg->claim);
	int r = NL_ERR_INTERNAL;

	if (cfg->map_file == NULL || cfg->map_file[0] == '\0')
		return nl_errf(err, errlen, NL_ERR_CONFIG, "[identity] map_file is not set");
	pthread_mutex_lock(&cache.lock);
	/* The map first: with a broken map every sign-in fails, whatever the identity holds. */
	if ((r = cache_refresh_locked(cfg->map_file, kind, err, errlen)) != 0 ||
	    (r = get_claim(cfg->claim, claims, &value, err, errlen)) != 0)
		goto unlock;
	e = cache.table.n > 0
	        ? bsearch(value, cache.table.e, cache.table.n, sizeof(*cache.table.e), value_key_cmp)
	        : NULL;
	if (e == NULL) {
		r = nl_errf(err, errlen, NL_ERR_NOT_FOUND, "%s: no entry for this %s", cfg->map_file,
		            claim_name(cfg->claim));
		goto unlock;
	}
	if ((user = strdup(e->user)) == NULL) {
		r = NL_ERR_NOMEM;
		goto unlock;
	}
	r = 0;
unlock:
	pthread_mutex_unlock(&cache.lock);
	free(value);
	if (r == 0)
		*local_user = user;
	return r;
}

/* The account's uid through NSS (getpwnam_r). */
static int uid_by_name(const char *user, uid_t *uid)
{
	struct passwd pw, *res = NULL;
	size_t len = 16384;
	char *buf = malloc(len);
	int e;

	if (buf == NULL)
		return NL_ERR_NOMEM;
	e = getpwnam_r(user, &pw, buf, len, &res);
	if (e == 0 && res != NULL)
		*uid = res->pw_uid;
	free(buf);
	if (e == 0)
		return res != NULL ? 0 : NL_ERR_NOT_FOUND;
	return e == ENOENT || e == ESRCH || e == EBADF || e == EPERM ? NL_ERR_NOT_FOUND : NL_ERR_UNAVAILABLE;
}

static nl_map_uid_fn uid_lookup = uid_by_name;

void nl_map_set_uid_lookup(nl_map_uid_fn fn)
{
	uid_lookup = fn != NULL ? fn : uid_by_name;
}

/* A name from outside the map file (an email's local part, the directory's attribute; what says
 * which in messages) names an account that may sign in: an existing account of uid min_uid or
 * more, never root or nobody. */
static int account_allowed(const struct nl_config *cfg, const char *user, const char *what, char *err,
                           size_t errlen)
{
	uid_t uid = 0;
	int r;

	if ((r = uid_lookup(user, &uid)) == NL_ERR_NOT_FOUND)
		return nl_errf(err, errlen, NL_ERR_NOT_FOUND, "%s names no account here", what);
	if (r != 0)
		return nl_errf(err, errlen, r, "cannot look up the account %s names", what);
	if (uid == 0 || uid < (uid_t)cfg->min_uid || uid == (uid_t)65534 || uid >= (uid_t)-2)
		return nl_errf(err, errlen, NL_ERR_NOT_FOUND,
		               "%s names a system account (uid %lu; "
		               "[identity] min_uid is %u)",
		               what, (unsigned long)uid, cfg->min_uid);
	return 0;
}

/* email_local names an account only the provider vouches for (email_verified present and true),
 * and only a person's (account_allowed). */
static int email_local_allowed(const struct nl_config *cfg, const json_t *claims, const char *user, char *err,
                               size_t errlen)
{
	if (!json_is_true(json_object_get(claims, "email_verified")))
		return nl_errf(err, errlen, NL_ERR_CLAIM,
		               "the email address is not verified (email_verified must be present and true)");
	return account_allowed(cfg, user, "the email's local part", err, errlen);
}

/* source = ldap: the claim's value (checked as for a map file) looked up in the directory; the
 * one value found, lower-cased, must be a valid user name naming an allowed account, as for
 * email_local. */
static int map_by_directory(const struct nl_config *cfg, const json_t *claims, char **local_user, char *err,
                            size_t errlen)
{
	char *value = NULL, *user = NULL;
	int r = NL_ERR_INTERNAL;

	if ((r = get_claim(cfg->claim, claims, &value, err, errlen)) != 0 ||
	    (r = nl_dir_lookup(cfg, value, &user, err, errlen)) != 0)
		goto out;
	lower_in_place(user);
	if (!valid_user(user, strlen(user))) {
		r = nl_errf(err, errlen, NL_ERR_NOT_FOUND,
		            "directory: the entry's %s is not a valid user name", cfg->ldap_attribute);
		goto out;
	}
	if ((r = account_allowed(cfg, user, "the directory's entry", err, errlen)) != 0)
		goto out;
	*local_user = user;
	user = NULL;
	r = 0;
out:
	free(value);
	free(user);
	return r;
}

/* rule = email_local: local@domain, domain equal to email_domain (case-insensitive), local part
 * lower-cased a valid user name, and that account allowed (email_local_allowed). */
static int map_by_email_local(const struct nl_config *cfg, const json_t *claims, char **local_user, char *err,
                              size_t errlen)
{
	char *email = NULL, *at, *user = NULL;
	int r = NL_ERR_INTERNAL;

	if (cfg->email_domain == NULL || cfg->email_domain[0] == '\0')
		return nl_errf(err, errlen, NL_ERR_CONFIG, "[identity] email_domain is not set");
	if ((r = get_claim(NL_CLAIM_EMAIL, claims, &email, err, errlen)) != 0)
		return r;
	at = strchr(email, '@');
	*at = '\0';
	if (!ascii_caseeq(at + 1, cfg->email_domain)) {
		r = nl_errf(err, errlen, NL_ERR_NOT_FOUND, "the email address is not in the domain %s",
		            cfg->email_domain);
		goto out;
	}
	if (!valid_user(email, strlen(email))) {
		r = nl_errf(err, errlen, NL_ERR_NOT_FOUND, "the email's local part is not a valid user name");
		goto out;
	}
	if ((r = email_local_allowed(cfg, claims, email, err, errlen)) != 0)
		goto out;
	if ((user = strdup(email)) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	*local_user = user;
	r = 0;
out:
	free(email);
	return r;
}

int nl_map_identity(const struct nl_config *cfg, const json_t *claims, char **local_user, char *err,
                    size_t errlen)
{
	if (local_user != NULL)
		*local_user = NULL;
	if (cfg == NULL || claims == NULL || local_user == NULL || !json_is_object(claims))
		return NL_ERR_INVALID;
	if (cfg->source == NL_SOURCE_LDAP)
		return map_by_directory(cfg, claims, local_user, err, errlen);
	switch (cfg->rule) {
	case NL_MAP_FILE:
		return map_by_file(cfg, claims, local_user, err, errlen);
	case NL_MAP_EMAIL_LOCAL:
		return map_by_email_local(cfg, claims, local_user, err, errlen);
	}
	return nl_errf(err, errlen, NL_ERR_CONFIG, "[identity] unknown rule");
}

int nl_map_check_file(const char *path, char *err, size_t errlen)
{
	struct map_table t = {NULL, 0};
	int r;

	if (path == NULL)
		return NL_ERR_INVALID;
	r = load_map(path, KIND_ANY, &t, err, errlen);
	table_free(&t);
	return r;
}

int nl_map_check(const struct nl_config *cfg, char *err, size_t errlen)
{
	struct map_table t = {NULL, 0};
	int r;

	if (cfg == NULL)
		return NL_ERR_INVALID;
	if (cfg->source != NL_SOURCE_MAP_FILE || cfg->rule != NL_MAP_FILE)
		return 0;
	if (cfg->map_file == NULL || cfg->map_file[0] == '\0')
		return nl_errf(err, errlen, NL_ERR_CONFIG, "[identity] map_file is not set");
	r = load_map(cfg->map_file, kind_of(cfg->claim), &t, err, errlen);
	table_free(&t);
	return r;
}

int nl_map_check_scope(const struct nl_config *cfg, char *err, size_t errlen)
{
	enum nl_claim c;
	const char *need;

	if (cfg == NULL)
		return NL_ERR_INVALID;
	c = cfg->rule == NL_MAP_EMAIL_LOCAL ? NL_CLAIM_EMAIL : cfg->claim;
	switch (c) {
	case NL_CLAIM_NHS_NUMBER:
		need = "profile";
		break;
	case NL_CLAIM_EMAIL:
		need = "email";
		break;
	default:
		return 0; /* sub is in every ID token */
	}
	if (cfg->env.scope == NULL || nl_words_has(cfg->env.scope, need))
		return 0;
	return nl_errf(err, errlen, NL_ERR_CONFIG,
	               "%s: scope = %s has no \"%s\", but [identity] claim = %s needs it (NHS login sends %s "
	               "only for that scope): add %s to scope, once NHS login has approved it for the client",
	               cfg->env.path != NULL ? cfg->env.path : "environment file", cfg->env.scope, need,
	               claim_name(c), claim_name(c), need);
}

void nl_map_cache_flush(void)
{
	pthread_mutex_lock(&cache.lock);
	cache_drop_locked();
	pthread_mutex_unlock(&cache.lock);
	nl_dir_cache_flush();
}
