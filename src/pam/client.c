/* The module's side of the nhslogind socket: connect, one request, one reply. */
#include "config.h"
#include "module.h"
#include "nl_err.h"
#include "nl_wipe.h"

#include <unistd.h>

int nl_client_open(struct nl_client *c, const char *socket_path, int timeout_ms)
{
	c->fd = -1;
	c->lb.len = 0;
	return nl_ipc_connect(socket_path, timeout_ms, &c->fd);
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
