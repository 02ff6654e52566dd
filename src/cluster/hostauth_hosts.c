/* The bridge's enrolment directory: hosts_dir/NAME.pem, one workstation's public key each. Keys are
 * read on demand and kept in a bounded cache, but the directory and the file are looked at on every
 * request (an open and two stats), so that removing a file revokes its workstation at once and
 * replacing it (re-enrolment) takes effect on the next request. */
#include "config.h"
#include "hostauth_int.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_wipe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct entry {
	char name[NL_HOSTAUTH_NAME_MAX + 1];
	uint32_t hash;
	struct nl_file_stamp id;
	struct host_key *key;
	uint64_t used; /* the cache's clock at its last use, for eviction */
};

struct nl_hostauth_hosts {
	char *dir;
	size_t max;
	pthread_mutex_t lock;
	struct entry *entries; /* n of max, unordered */
	size_t n;
	uint64_t clock;
};

int hostauth_fail(struct nl_hostauth_error *err, int ret, enum nl_hostauth_reason reason, const char *fmt,
                  ...)
{
	va_list ap;

	if (err != NULL) {
		err->reason = reason;
		va_start(ap, fmt);
		vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
		va_end(ap);
	}
	return ret;
}

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a: names are checked, short, and chosen by the operator */

	while (*s != '\0')
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

int nl_hostauth_hosts_new(const char *dir, size_t max_cached, struct nl_hostauth_hosts **out)
{
	struct nl_hostauth_hosts *h;

	if (dir == NULL || *dir != '/' || out == NULL)
		return NL_ERR_INVALID;
	if (max_cached == 0)
		max_cached = NL_HOSTAUTH_CACHE_MAX;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NL_ERR_NOMEM;
	if ((h->dir = strdup(dir)) == NULL ||
	    (h->entries = calloc(max_cached, sizeof(*h->entries))) == NULL ||
	    pthread_mutex_init(&h->lock, NULL) != 0) {
		free(h->dir);
		free(h->entries);
		free(h);
		return NL_ERR_NOMEM;
	}
	h->max = max_cached;
	*out = h;
	return 0;
}

static void key_release(struct host_key *k)
{
	if (k != NULL && --k->refs == 0) {
		nl_jwks_free(k->set);
		free(k);
	}
}

void nl_hostauth_hosts_free(struct nl_hostauth_hosts *h)
{
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < h->n; i++)
		key_release(h->entries[i].key);
	pthread_mutex_destroy(&h->lock);
	free(h->entries);
	free(h->dir);
	free(h);
}

size_t nl_hostauth_hosts_cached(struct nl_hostauth_hosts *h)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = h->n;
	pthread_mutex_unlock(&h->lock);
	return n;
}

void hostauth_hosts_put(struct nl_hostauth_hosts *h, struct host_key *key)
{
	if (key == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	key_release(key);
	pthread_mutex_unlock(&h->lock);
}

/* Owned by root (or by us, for tests and unprivileged bridges) and writable by nobody else: the
 * rule of every file we trust (the message is the caller's, with its reason word). */
static bool owner_mode_ok(const struct stat *st)
{
	return nl_check_owner_mode(NULL, st, NULL, 0) == 0;
}

static int open_dir(const struct nl_hostauth_hosts *h, int *dfd, struct nl_hostauth_error *err)
{
	struct stat st;
	int fd;

	if ((fd = open(h->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return hostauth_fail(err, NL_ERR_PERM, NL_HOSTAUTH_E_HOSTS_UNSAFE, "hosts directory %s: %s",
		                     h->dir, strerror(errno));
	if (fstat(fd, &st) != 0 || !owner_mode_ok(&st)) {
		close(fd);
		return hostauth_fail(err, NL_ERR_PERM, NL_HOSTAUTH_E_HOSTS_UNSAFE,
		                     "hosts directory %s: must be owned by root and not group/world-writable",
		                     h->dir);
	}
	*dfd = fd;
	return 0;
}

/* The file's current state: absent (unknown host), or a safe regular file. */
static int stat_host_file(const struct nl_hostauth_hosts *h, int dfd, const char *file, const char *name,
                          struct stat *st, struct nl_hostauth_error *err)
{
	if (fstatat(dfd, file, st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return hostauth_fail(err, NL_ERR_NOT_FOUND, NL_HOSTAUTH_E_UNKNOWN_HOST,
			                     "workstation %s is not enrolled (no %s/%s)", name, h->dir, file);
		return hostauth_fail(err, NL_ERR_IO, NL_HOSTAUTH_E_HOSTS_UNSAFE, "%s/%s: %s", h->dir, file,
		                     strerror(errno));
	}
	if (!S_ISREG(st->st_mode) || !owner_mode_ok(st) || st->st_size > NL_HOSTAUTH_PUB_MAX)
		return hostauth_fail(err, NL_ERR_PERM, NL_HOSTAUTH_E_HOSTS_UNSAFE,
		                     "%s/%s: must be a regular file up to %d bytes, owned by root, not "
		                     "group/world-writable",
		                     h->dir, file, NL_HOSTAUTH_PUB_MAX);
	return 0;
}

/* The key set of one ES256 key from a PEM public key (kid: its thumbprint). */
static int key_from_pem(const char *pem, size_t len, struct host_key **out)
{
	cjose_jwk_t *jwk = NULL;
	char *kid = NULL, *pub = NULL, *doc = NULL;
	struct host_key *k = NULL;
	cjose_err cerr;
	int r;

	if ((r = nl_jwk_from_pem(pem, len, &jwk)) != 0)
		goto out;
	r = NL_ERR_KEY;
	if (cjose_jwk_get_kty(jwk, &cerr) != CJOSE_JWK_KTY_EC || (kid = nl_jwk_thumbprint(jwk)) == NULL ||
	    !cjose_jwk_set_kid(jwk, kid, strlen(kid), &cerr) ||
	    (pub = nl_jwk_public_json(jwk, NL_HOSTAUTH_JWS_ALG)) == NULL)
		goto out;
	r = NL_ERR_NOMEM;
	if (asprintf(&doc, "{\"keys\":[%s]}", pub) < 0) {
		doc = NULL;
		goto out;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		goto out;
	/* The set's rules apply: a point of P-256, no private members. */
	if ((r = nl_jwks_parse(doc, strlen(doc), &k->set)) != 0)
		goto out;
	k->refs = 1;
	*out = k;
	k = NULL;
out:
	free(k);
	free(doc);
	free(pub);
	free(kid);
	cjose_jwk_release(jwk);
	return r;
}

/* Read the file (opened without following links; the same file that was stat'ed) into a key. */
static int load_host_file(const struct nl_hostauth_hosts *h, int dfd, const char *file,
                          const struct stat *seen, struct host_key **out, struct nl_hostauth_error *err)
{
	char buf[NL_HOSTAUTH_PUB_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd, r;

	fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return hostauth_fail(err, errno == ENOENT ? NL_ERR_NOT_FOUND : NL_ERR_IO,
		                     errno == ENOENT ? NL_HOSTAUTH_E_UNKNOWN_HOST
		                                     : NL_HOSTAUTH_E_HOSTS_UNSAFE,
		                     "%s/%s: %s", h->dir, file, strerror(errno));
	if (fstat(fd, &st) != 0 || st.st_dev != seen->st_dev || st.st_ino != seen->st_ino) {
		close(fd);
		return hostauth_fail(err, NL_ERR_IO, NL_HOSTAUTH_E_HOSTS_UNSAFE, "%s/%s: changed while read",
		                     h->dir, file);
	}
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if ((r = key_from_pem(buf, len, out)) != 0)
		return hostauth_fail(err, r, NL_HOSTAUTH_E_HOST_KEY_BAD,
		                     "%s/%s: not an EC P-256 public key (%s)", h->dir, file, nl_strerror(r));
	return 0;
}

static struct entry *find(struct nl_hostauth_hosts *h, const char *name, uint32_t hash)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (h->entries[i].hash == hash && strcmp(h->entries[i].name, name) == 0)
			return &h->entries[i];
	return NULL;
}

static void drop(struct nl_hostauth_hosts *h, struct entry *e)
{
	key_release(e->key);
	*e = h->entries[--h->n];
}

/* A slot for name: a free one, or the least recently used. */
static struct entry *slot(struct nl_hostauth_hosts *h)
{
	size_t i, old = 0;

	if (h->n < h->max)
		return &h->entries[h->n++];
	for (i = 1; i < h->n; i++)
		if (h->entries[i].used < h->entries[old].used)
			old = i;
	key_release(h->entries[old].key);
	return &h->entries[old];
}

/* Keep k for name at the state id (the cache takes a reference of its own). */
static void remember(struct nl_hostauth_hosts *h, const char *name, uint32_t hash,
                     const struct nl_file_stamp *id, struct host_key *k)
{
	struct entry *e;

	pthread_mutex_lock(&h->lock);
	if ((e = find(h, name, hash)) != NULL)
		key_release(e->key);
	else
		e = slot(h);
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->hash = hash;
	e->id = *id;
	e->key = k;
	e->used = ++h->clock;
	k->refs++;
	pthread_mutex_unlock(&h->lock);
}

/* The cached key if the file is still the one it was read from; a stale entry is dropped. */
static struct host_key *cached(struct nl_hostauth_hosts *h, const char *name, uint32_t hash,
                               const struct nl_file_stamp *id)
{
	struct host_key *k = NULL;
	struct entry *e;

	pthread_mutex_lock(&h->lock);
	if ((e = find(h, name, hash)) != NULL) {
		if (nl_file_stamp_same(&e->id, id)) {
			k = e->key;
			k->refs++;
			e->used = ++h->clock;
		} else {
			drop(h, e);
		}
	}
	pthread_mutex_unlock(&h->lock);
	return k;
}

static void forget(struct nl_hostauth_hosts *h, const char *name, uint32_t hash)
{
	struct entry *e;

	pthread_mutex_lock(&h->lock);
	if ((e = find(h, name, hash)) != NULL)
		drop(h, e);
	pthread_mutex_unlock(&h->lock);
}

int hostauth_hosts_get(struct nl_hostauth_hosts *h, const char *name, struct host_key **out,
                       struct nl_hostauth_error *err)
{
	char file[NL_HOSTAUTH_NAME_MAX + 8];
	uint32_t hash = name_hash(name);
	struct host_key *k = NULL;
	struct nl_file_stamp id;
	struct stat st;
	int dfd = -1, r;

	/* Defence in depth: the caller has checked the name already. */
	if (!nl_hostauth_name_ok(name))
		return hostauth_fail(err, NL_ERR_INVALID, NL_HOSTAUTH_E_BAD_NAME, "not a workstation name");
	snprintf(file, sizeof(file), "%s.pem", name);
	if ((r = open_dir(h, &dfd, err)) != 0)
		goto out;
	if ((r = stat_host_file(h, dfd, file, name, &st, err)) != 0) {
		forget(h, name, hash); /* revoked: let the memory go too */
		goto out;
	}
	nl_file_stamp_of(&st, &id);
	if ((k = cached(h, name, hash, &id)) == NULL) {
		if ((r = load_host_file(h, dfd, file, &st, &k, err)) != 0)
			goto out;
		remember(h, name, hash, &id, k);
	}
	*out = k;
	r = 0;
out:
	if (dfd >= 0)
		close(dfd);
	return r;
}

/* ---- the operator's listing ---- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void nl_hostauth_files_free(char **files, size_t n)
{
	size_t i;

	for (i = 0; files != NULL && i < n; i++)
		free(files[i]);
	free(files);
}

/* Add a copy of name to *files (n used of *cap). */
static int files_add(char ***files, size_t *n, size_t *cap, const char *name)
{
	char **grown;

	if (*n == *cap) {
		size_t want = *cap != 0 ? *cap * 2 : 64;
		if ((grown = realloc(*files, want * sizeof(**files))) == NULL)
			return NL_ERR_NOMEM;
		*files = grown;
		*cap = want;
	}
	if (((*files)[*n] = strdup(name)) == NULL)
		return NL_ERR_NOMEM;
	(*n)++;
	return 0;
}

int nl_hostauth_hosts_list(struct nl_hostauth_hosts *h, size_t max, char ***files, size_t *n, bool *cut,
                           struct nl_hostauth_error *err)
{
	char **list = NULL;
	size_t count = 0, cap = 0;
	bool more = false;
	struct dirent *de;
	DIR *d = NULL;
	int dfd = -1, r;

	if (h == NULL || files == NULL || n == NULL || cut == NULL)
		return hostauth_fail(err, NL_ERR_INVALID, NL_HOSTAUTH_E_INTERNAL, "bad call");
	if ((r = open_dir(h, &dfd, err)) != 0)
		return r;
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return hostauth_fail(err, NL_ERR_IO, NL_HOSTAUTH_E_INTERNAL, "hosts directory %s: %s", h->dir,
		                     strerror(errno));
	}
	r = 0;
	while (r == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (count == max) {
			more = true;
			break;
		}
		if (files_add(&list, &count, &cap, de->d_name) != 0)
			r = hostauth_fail(err, NL_ERR_NOMEM, NL_HOSTAUTH_E_INTERNAL, "out of memory");
	}
	if (r == 0 && de == NULL && errno != 0)
		r = hostauth_fail(err, NL_ERR_IO, NL_HOSTAUTH_E_INTERNAL, "hosts directory %s: %s", h->dir,
		                  strerror(errno));
	closedir(d);
	if (r != 0) {
		nl_hostauth_files_free(list, count);
		return r;
	}
	if (count > 1)
		qsort(list, count, sizeof(*list), cmp_names);
	*files = list;
	*n = count;
	*cut = more;
	return 0;
}

/* The name in FILE = NAME.pem, if NAME is a workstation name. */
static bool name_of_file(const char *file, char name[NL_HOSTAUTH_NAME_MAX + 1])
{
	size_t len = strnlen(file, NL_HOSTAUTH_NAME_MAX + 5);

	name[0] = '\0';
	if (len <= 4 || len > NL_HOSTAUTH_NAME_MAX + 4 || strcmp(file + len - 4, ".pem") != 0)
		return false;
	memcpy(name, file, len - 4);
	name[len - 4] = '\0';
	if (!nl_hostauth_name_ok(name)) {
		name[0] = '\0';
		return false;
	}
	return true;
}

int nl_hostauth_hosts_check_file(struct nl_hostauth_hosts *h, const char *file,
                                 char name[NL_HOSTAUTH_NAME_MAX + 1], char **thumbprint,
                                 struct nl_hostauth_error *err)
{
	struct host_key *k = NULL;
	const cjose_jwk_t *jwk = NULL;
	char *thumb = NULL;
	int r;

	if (err != NULL) {
		err->reason = NL_HOSTAUTH_E_OK;
		err->detail[0] = '\0';
	}
	if (h == NULL || file == NULL || name == NULL || thumbprint == NULL)
		return hostauth_fail(err, NL_ERR_INVALID, NL_HOSTAUTH_E_INTERNAL, "bad call");
	if (!name_of_file(file, name))
		return hostauth_fail(err, NL_ERR_INVALID, NL_HOSTAUTH_E_BAD_NAME,
		                     "not NAME.pem for a workstation name: the bridge never reads it");
	if ((r = hostauth_hosts_get(h, name, &k, err)) != 0)
		return r;
	/* The thumbprint of the key itself, as enroll computes it from the private key. */
	if (nl_jwks_select(k->set, NULL, NL_HOSTAUTH_JWS_ALG, &jwk) != 0 ||
	    (thumb = nl_jwk_thumbprint(jwk)) == NULL)
		r = hostauth_fail(err, NL_ERR_INTERNAL, NL_HOSTAUTH_E_INTERNAL, "%s: no thumbprint", name);
	hostauth_hosts_put(h, k);
	if (r == 0)
		*thumbprint = thumb;
	return r;
}
