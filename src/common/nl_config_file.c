/* Configuration: safe file opening, for the configuration files and every secret or map file they
 * name: no symbolic links, regular files only, size-capped, owner and mode checked. */
#include "config.h"
#include "nl_config.h"
#include "nl_config_int.h"
#include "nl_err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nl_wipe.h"

/* ---- safe file opening ---- */

int nl_cfg_open_checked(const char *path, bool secret, size_t max_size, bool check_owner, int *fd_out,
                        size_t *size_out, char *err, size_t errlen)
{
	struct stat st;
	int fd = -1, r = NL_ERR_INTERNAL;
	mode_t mode;

	/* O_NONBLOCK so that a FIFO planted at the path cannot hang us before fstat refuses it. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = errno == ENOENT ? NL_ERR_NOT_FOUND : errno == EACCES ? NL_ERR_PERM : NL_ERR_IO;
		if (errno == ELOOP)
			nl_errf(err, errlen, r, "%s: is a symbolic link (refused)", path);
		else
			nl_errf(err, errlen, r, "%s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		r = nl_errf(err, errlen, NL_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = nl_errf(err, errlen, NL_ERR_PERM, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size < 0 || (unsigned long long)st.st_size > max_size) {
		r = nl_errf(err, errlen, NL_ERR_TOO_BIG, "%s: larger than %zu bytes", path, max_size);
		goto out;
	}
	mode = st.st_mode & 07777;
	if (check_owner) {
		if ((r = nl_check_owner_mode(path, &st, err, errlen)) != 0)
			goto out;
		if (secret && (mode & (S_IRWXG | S_IRWXO)) != 0) {
			r = nl_errf(err, errlen, NL_ERR_PERM,
			            "%s: holds a secret but group/other may access it (mode %04o); "
			            "run chmod 600",
			            path, (unsigned)mode);
			goto out;
		}
	}
	if (fcntl(fd, F_SETFL, 0) != 0) {
		r = nl_errf(err, errlen, NL_ERR_IO, "%s: fcntl: %s", path, strerror(errno));
		goto out;
	}
	*fd_out = fd;
	if (size_out != NULL)
		*size_out = (size_t)st.st_size;
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

int nl_open_checked(const char *path, bool secret, size_t max_size, int *fd, char *err, size_t errlen)
{
	return nl_cfg_open_checked(path, secret, max_size, true, fd, NULL, err, errlen);
}

int nl_cfg_read_checked(const char *path, bool secret, size_t max_size, bool check_owner, char **out,
                        size_t *len_out, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t size = 0, len = 0, cap;
	ssize_t n;
	int fd = -1, r = NL_ERR_INTERNAL;

	if ((r = nl_cfg_open_checked(path, secret, max_size, check_owner, &fd, &size, err, errlen)) != 0)
		goto out;
	/* One byte more than fstat said, to notice a file that grew past the cap meanwhile. */
	cap = size + 1;
	if ((buf = malloc(cap + 1)) == NULL) {
		r = nl_errf(err, errlen, NL_ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	while (len < cap) {
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = nl_errf(err, errlen, NL_ERR_IO, "%s: read: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > size) {
		r = nl_errf(err, errlen, NL_ERR_IO, "%s: changed while being read", path);
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*len_out = len;
	buf = NULL;
	r = 0;
out:
	if (buf != NULL)
		nl_free_secret_buf(buf, cap + 1);
	if (fd >= 0)
		close(fd);
	return r;
}

int nl_check_owner_mode(const char *path, const struct stat *st, char *err, size_t errlen)
{
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return nl_errf(err, errlen, NL_ERR_PERM, "%s: owned by uid %u; must be owned by root", path,
		               (unsigned)st->st_uid);
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return nl_errf(err, errlen, NL_ERR_PERM,
		               "%s: is group- or world-writable (mode %04o); run chmod go-w", path,
		               (unsigned)(st->st_mode & 07777));
	return 0;
}

void nl_file_stamp_of(const struct stat *st, struct nl_file_stamp *out)
{
	memset(out, 0, sizeof(*out));
	out->dev = st->st_dev;
	out->ino = st->st_ino;
	out->size = st->st_size;
	out->mode = st->st_mode;
	out->uid = st->st_uid;
	out->mtim = st->st_mtim;
	out->ctim = st->st_ctim;
}

bool nl_file_stamp_same(const struct nl_file_stamp *a, const struct nl_file_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mode == b->mode &&
	       a->uid == b->uid && a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
	       a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

int nl_read_file_checked(const char *path, bool secret, size_t max_size, char **out, size_t *len, char *err,
                         size_t errlen)
{
	return nl_cfg_read_checked(path, secret, max_size, true, out, len, err, errlen);
}
