/* The module's side of the nhslogind socket: connect, one request, one reply. */
#include "config.h"
#include "module.h"
#include "nl_err.h"
#include "nl_wipe.h"

#include <sys/socket.h>
#include <unistd.h>

/* Whoever listens on the socket path decides sign-ins: it must be nhslogind, which runs as root
 * (or, for a module running as a user, e.g. a screen locker or the test suite, as that user).
 * Anyone else could have bound the path first in a directory others can write to. */
static int check_daemon(int fd, uid_t *peer)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr))
		return NL_ERR_PERM;
	*peer = cr.uid;
	return cr.uid == 0 || cr.uid == geteuid() ? 0 : NL_ERR_PERM;
}

int nl_client_open(struct nl_client *c, const char *socket_path, int timeout_ms, uid_t *peer)
{
	int r;

	c->fd = -1;
	c->lb.len = 0;
	*peer = (uid_t)-1;
	if ((r = nl_ipc_connect(socket_path, timeout_ms, &c->fd)) != 0)
		return r;
	if ((r = check_daemon(c->fd, peer)) != 0)
		nl_client_close(c);
	return r;
}

int nl_client_call(struct nl_client *c, const json_t *req, int timeout_ms, json_t **reply)
{
	int r;

	if ((r = nl_ipc_send(c->fd, req, timeout_ms)) != 0)
		return r;
	r = nl_ipc_recv(c->fd, &c->lb, timeout_ms, reply);
	nl_wipe(c->lb.buf, sizeof(c->lb.buf));
	c->lb.len = 0;
	return r;
}

void nl_client_close(struct nl_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	nl_wipe(c->lb.buf, sizeof(c->lb.buf));
	c->lb.len = 0;
}
