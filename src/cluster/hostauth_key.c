/* The workstation's side of enrolment: its name, and its ES256 key pair, made once (0600, O_EXCL,
 * never through a symbolic link) and loaded as a secret. */
#include "config.h"
#include "hostauth.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_wipe.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool nl_hostauth_name_ok(const char *name)
{
	size_t i, n;

	if (name == NULL || (n = strnlen(name, NL_HOSTAUTH_NAME_MAX + 1)) == 0 || n > NL_HOSTAUTH_NAME_MAX)
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (i = 1; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
			return false;
		/* "a..b" is harmless as a file name, but nothing needs it. */
		if (c == '.' && name[i - 1] == '.')
			return false;
	}
	return true;
}

int nl_hostauth_default_name(char name[NL_HOSTAUTH_NAME_MAX + 1])
{
	char host[256];
	size_t i;

	memset(host, 0, sizeof(host));
	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	for (i = 0; host[i] != '\0'; i++)
		host[i] = (char)tolower((unsigned char)host[i]);
	snprintf(name, NL_HOSTAUTH_NAME_MAX + 1, "%s", host);
	return nl_hostauth_name_ok(host) ? 0 : NL_ERR_INVALID;
}

/* The parent directory of path, opened and checked: a directory, owned by root or us, not writable
 * by group or others (else someone could swap the key file between our checks). */
static int open_key_dir(const char *path, int *dfd_out, char *err, size_t errlen)
{
	char *copy = strdup(path), *dir;
	struct stat st;
	int dfd = -1, r;

	if (copy == NULL)
		return nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
	dir = dirname(copy);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = nl_errf(err, errlen, errno == ENOENT ? NL_ERR_NOT_FOUND : NL_ERR_IO,
		            "%s: cannot open: %s", dir, strerror(errno));
		goto out;
	}
	if (fstat(dfd, &st) != 0) {
		r = nl_errf(err, errlen, NL_ERR_IO, "%s: cannot stat: %s", dir, strerror(errno));
		goto out;
	}
	if ((r = nl_check_owner_mode(dir, &st, err, errlen)) != 0)
		goto out;
	*dfd_out = dfd;
	dfd = -1;
	r = 0;
out:
	if (dfd >= 0)
		close(dfd);
	free(copy);
	return r;
}

/* A new P-256 private key as PKCS#8 PEM in a memory BIO (wiped by the caller before BIO_free). */
static BIO *new_key_pem(void)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	BIO *bio = NULL;

	if (pkey != NULL && (bio = BIO_new(BIO_s_mem())) != NULL &&
	    PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
		BIO_free(bio);
		bio = NULL;
	}
	EVP_PKEY_free(pkey);
	if (bio == NULL)
		ERR_clear_error();
	return bio;
}

static void bio_free_wiped(BIO *bio)
{
	char *data = NULL;
	long n;

	if (bio == NULL)
		return;
	if ((n = BIO_get_mem_data(bio, &data)) > 0 && data != NULL)
		OPENSSL_cleanse(data, (size_t)n);
	BIO_free(bio);
}

/* Write the PEM text to a file created here (name in dfd), 0600, synced. */
static int write_new_file(int dfd, const char *name, const char *data, size_t len, char *err, size_t errlen)
{
	size_t done = 0;
	ssize_t n;
	int fd, r = 0;

	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return nl_errf(err, errlen, errno == EEXIST ? NL_ERR_PERM : NL_ERR_IO,
		               "%s: cannot create: %s", name, strerror(errno));
	/* The mode does not depend on the umask. */
	if (fchmod(fd, 0600) != 0)
		r = nl_errf(err, errlen, NL_ERR_IO, "%s: chmod: %s", name, strerror(errno));
	while (r == 0 && done < len) {
		n = write(fd, data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = nl_errf(err, errlen, NL_ERR_IO, "%s: write: %s", name, strerror(errno));
		else
			done += (size_t)n;
	}
	if (r == 0 && fsync(fd) != 0)
		r = nl_errf(err, errlen, NL_ERR_IO, "%s: fsync: %s", name, strerror(errno));
	if (close(fd) != 0 && r == 0)
		r = nl_errf(err, errlen, NL_ERR_IO, "%s: close: %s", name, strerror(errno));
	if (r != 0)
		unlinkat(dfd, name, 0);
	return r;
}

/* Replace: a fresh temporary name beside the key, then rename over it (atomic; a symbolic link at
 * path is replaced, not followed). */
static int replace_file(int dfd, const char *base, const char *data, size_t len, char *err, size_t errlen)
{
	char tmp[NAME_MAX + 1];
	uint8_t rnd[8];
	int r;

	if ((r = nl_random_bytes(rnd, sizeof(rnd))) != 0)
		return nl_errf(err, errlen, r, "no random numbers");
	if (snprintf(tmp, sizeof(tmp), ".%.200s.%02x%02x%02x%02x%02x%02x%02x%02x.new", base, rnd[0], rnd[1],
	             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]) >= (int)sizeof(tmp))
		return nl_errf(err, errlen, NL_ERR_INVALID, "%s: name too long", base);
	if ((r = write_new_file(dfd, tmp, data, len, err, errlen)) != 0)
		return r;
	if (renameat(dfd, tmp, dfd, base) != 0) {
		r = nl_errf(err, errlen, NL_ERR_IO, "%s: cannot replace: %s", base, strerror(errno));
		unlinkat(dfd, tmp, 0);
	}
	return r;
}

int nl_hostauth_key_create(const char *path, bool replace, bool *created, char *err, size_t errlen)
{
	char *copy = NULL, *base;
	char *data = NULL;
	struct stat st;
	BIO *bio = NULL;
	long len;
	int dfd = -1, r;

	if (path == NULL || *path != '/' || created == NULL)
		return nl_errf(err, errlen, NL_ERR_INVALID, "the key path must be absolute");
	*created = false;
	if ((r = open_key_dir(path, &dfd, err, errlen)) != 0)
		return r;
	if ((copy = strdup(path)) == NULL) {
		r = nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
		goto out;
	}
	base = basename(copy);
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0) {
		r = nl_errf(err, errlen, NL_ERR_INVALID, "%s: not a file name", path);
		goto out;
	}
	if (!replace && fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0)
		goto out; /* r == 0, *created false: the caller loads what is there */
	if ((bio = new_key_pem()) == NULL || (len = BIO_get_mem_data(bio, &data)) <= 0) {
		r = nl_errf(err, errlen, NL_ERR_INTERNAL, "cannot make a P-256 key (OpenSSL)");
		goto out;
	}
	if (replace)
		r = replace_file(dfd, base, data, (size_t)len, err, errlen);
	else
		r = write_new_file(dfd, base, data, (size_t)len, err, errlen);
	if (r == 0)
		*created = true;
out:
	bio_free_wiped(bio);
	free(copy);
	if (dfd >= 0)
		close(dfd);
	return r;
}

int nl_hostauth_key_load(const char *path, cjose_jwk_t **out, char *err, size_t errlen)
{
	cjose_jwk_t *jwk = NULL;
	char *kid = NULL;
	cjose_err cerr;
	int r;

	if (out == NULL)
		return NL_ERR_INVALID;
	if ((r = nl_jwk_load_private_pem(path, &jwk, err, errlen)) != 0)
		return r;
	if (cjose_jwk_get_kty(jwk, &cerr) != CJOSE_JWK_KTY_EC) {
		r = nl_errf(err, errlen, NL_ERR_KEY, "%s: not an EC P-256 key (ES256)", path);
		goto out;
	}
	/* The kid the bridge matches: the public key's RFC 7638 thumbprint. */
	if ((kid = nl_jwk_thumbprint(jwk)) == NULL || !cjose_jwk_set_kid(jwk, kid, strlen(kid), &cerr)) {
		r = nl_errf(err, errlen, NL_ERR_KEY, "%s: not an EC P-256 key (ES256)", path);
		goto out;
	}
	*out = jwk;
	jwk = NULL;
out:
	free(kid);
	cjose_jwk_release(jwk);
	return r;
}
