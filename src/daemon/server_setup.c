/* The nhslogind socket server's life: the socket made safely (its directory, a stale socket, its
 * mode and group), the connection limit, the epoll set; stop and free. */
#include "config.h"
#include "server_int.h"
#include "jobs.h"
#include "nl_err.h"
#include "nl_time.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- setup ---- */

/* The socket's directory: created 0755 if missing; else a directory that others cannot write to
 * (sticky or not), owned by root or us. */
static int prepare_dir(const char *path, char *err, size_t errlen)
{
	char *dir = strdup(path), *slash;
	struct stat st;
	int r = NL_ERR_CONFIG;

	if (dir == NULL)
		return NL_ERR_NOMEM;
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir) {
		r = 0; /* the root directory, or relative: nothing to make */
		goto out;
	}
	*slash = '\0';
	if (stat(dir, &st) != 0) {
		if (errno != ENOENT || mkdir(dir, 0755) != 0 || chmod(dir, 0755) != 0) {
			nl_errf(err, errlen, 0, "cannot create socket directory %s: %s", dir,
			        strerror(errno));
			r = NL_ERR_IO;
			goto out;
		}
		r = 0;
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		nl_errf(err, errlen, 0, "socket directory %s is not a directory", dir);
		goto out;
	}
	/* Sticky or not: in a directory others can write to, another uid could bind the path first
	 * and answer the module in the daemon's place. */
	if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 0022)) {
		nl_errf(err, errlen, 0,
		        "socket directory %s is writable by others or not owned by root (use a root-owned "
		        "0755 directory such as /run/nhslogin)",
		        dir);
		r = NL_ERR_PERM;
		goto out;
	}
	r = 0;
out:
	free(dir);
	return r;
}

/* A socket left by a daemon that died is removed; a live one, or a non-socket, is an error. */
static int clear_stale(const char *path, const struct sockaddr_un *sa, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		nl_errf(err, errlen, 0, "%s: %s", path, strerror(errno));
		return NL_ERR_IO;
	}
	if (!S_ISSOCK(st.st_mode)) {
		nl_errf(err, errlen, 0, "%s exists and is not a socket", path);
		return NL_ERR_CONFIG;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0) {
		bool live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
		close(fd);
		if (live) {
			nl_errf(err, errlen, 0, "another nhslogind is listening on %s", path);
			return NL_ERR_CONFIG;
		}
	}
	if (unlink(path) != 0) {
		nl_errf(err, errlen, 0, "cannot remove stale socket %s: %s", path, strerror(errno));
		return NL_ERR_IO;
	}
	return 0;
}

static int set_mode(const struct nl_config *cfg, const char *path, char *err, size_t errlen)
{
	struct group gr, *grp = NULL;
	char buf[4096];

	if (cfg->socket_group == NULL) {
		if (chmod(path, 0600) == 0)
			return 0;
		nl_errf(err, errlen, 0, "chmod %s: %s", path, strerror(errno));
		return NL_ERR_IO;
	}
	if (getgrnam_r(cfg->socket_group, &gr, buf, sizeof(buf), &grp) != 0 || grp == NULL) {
		nl_errf(err, errlen, 0, "socket_group %s: no such group", cfg->socket_group);
		return NL_ERR_CONFIG;
	}
	if (chown(path, (uid_t)-1, grp->gr_gid) != 0 || chmod(path, 0660) != 0) {
		nl_errf(err, errlen, 0, "setting the group of %s: %s", path, strerror(errno));
		return NL_ERR_IO;
	}
	return 0;
}

/* Raise the soft RLIMIT_NOFILE to the hard one (a socket a waiting login), and size the
 * connection limit to what is left after the bridge's and everything else's fds. */
static size_t conn_limit(void)
{
	struct rlimit rl;
	size_t fds, n;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 256;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max;
		rl.rlim_cur = want;
		/* Refused under a seccomp filter without @resources: the unit's LimitNOFILE= rules. */
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) != 0)
			return 256;
	}
	fds = rl.rlim_cur > (rlim_t)NL_SERVER_MAX_CONNS * 2 ? (size_t)NL_SERVER_MAX_CONNS * 2
	                                                    : (size_t)rl.rlim_cur;
	n = fds > 2 * NL_SERVER_RESERVED_FDS ? fds - NL_SERVER_RESERVED_FDS : fds / 2;
	return n < NL_SERVER_MAX_CONNS ? n : NL_SERVER_MAX_CONNS;
}

static int watch(struct nl_server *s, int fd, void *mark)
{
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = mark};
	return fd < 0 || epoll_ctl(s->ep_fd, EPOLL_CTL_ADD, fd, &e) == 0 ? 0 : NL_ERR_IO;
}

int nl_server_new(const struct nl_server_ctx *ctx, struct nl_server **out, char *err, size_t errlen)
{
	struct nl_server *s = NULL;
	struct sockaddr_un sa;
	struct stat st;
	const char *path;
	int r = NL_ERR_INTERNAL;

	if (ctx == NULL || ctx->cfg == NULL || ctx->flows == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	path = ctx->cfg->socket_path != NULL ? ctx->cfg->socket_path : NL_DEFAULT_SOCKET;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		nl_errf(err, errlen, 0, "socket path %s is too long", path);
		return NL_ERR_CONFIG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NL_ERR_NOMEM;
	s->ctx = *ctx;
	s->listen_fd = s->stop_fd = s->ep_fd = -1;
	s->max_conns = conn_limit();
	s->next_id = 1;
	s->started_ms = nl_mono_ms();
	if ((s->path = strdup(path)) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	if ((r = prepare_dir(path, err, errlen)) != 0 || (r = clear_stale(path, &sa, err, errlen)) != 0)
		goto out;
	if ((s->ep_fd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (s->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    (s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		nl_errf(err, errlen, 0, "socket: %s", strerror(errno));
		r = NL_ERR_IO;
		goto out;
	}
	if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		nl_errf(err, errlen, 0, "bind %s: %s", path, strerror(errno));
		r = NL_ERR_IO;
		goto out;
	}
	if (lstat(path, &st) == 0) {
		s->sock_dev = st.st_dev;
		s->sock_ino = st.st_ino;
	}
	if ((r = set_mode(ctx->cfg, path, err, errlen)) != 0)
		goto out;
	if (listen(s->listen_fd, SOMAXCONN) != 0) {
		nl_errf(err, errlen, 0, "listen %s: %s", path, strerror(errno));
		r = NL_ERR_IO;
		goto out;
	}
	if ((r = watch(s, s->listen_fd, &srv_mark_listen)) != 0 ||
	    (r = watch(s, s->stop_fd, &srv_mark_stop)) != 0 ||
	    (r = watch(s, ctx->notify_fd, &srv_mark_notify)) != 0 ||
	    (r = watch(s, ctx->signal_fd, &srv_mark_signal)) != 0 ||
	    (r = nl_jobs_new(START_WORKERS, START_QUEUE_MAX, &s->jobs)) != 0 ||
	    (r = watch(s, nl_jobs_fd(s->jobs), &srv_mark_jobs)) != 0) {
		nl_errf(err, errlen, 0, "epoll: %s", strerror(errno));
		goto out;
	}
	*out = s;
	s = NULL;
	r = 0;
out:
	nl_server_free(s);
	return r;
}

void nl_server_stop(struct nl_server *s)
{
	uint64_t one = 1;
	if (s != NULL && s->stop_fd >= 0) {
		ssize_t n = write(s->stop_fd, &one, sizeof(one));
		(void)n;
	}
}

size_t nl_server_conn_count(struct nl_server *s)
{
	return s != NULL ? __atomic_load_n(&s->nconns_public, __ATOMIC_RELAXED) : 0;
}

void nl_server_free(struct nl_server *s)
{
	struct stat st;

	if (s == NULL)
		return;
	while (s->conns != NULL)
		srv_conn_free(s, s->conns);
	s->dead = NULL;
	nl_jobs_free(s->jobs, srv_start_job_free);
	free(s->heap);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		/* Unlink only the socket we made, not one a newer daemon put there. */
		if (s->path != NULL && lstat(s->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    st.st_dev == s->sock_dev && st.st_ino == s->sock_ino)
			unlink(s->path);
	}
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->ep_fd >= 0)
		close(s->ep_fd);
	free(s->path);
	free(s);
}
