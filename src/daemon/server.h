/* The nhslogind socket server: the Unix socket of doc/protocol.md, a non-blocking epoll loop,
 * SO_PEERCRED on every accept, one JSON line a request, long-polled waits woken by the flows
 * table's notify fd (only the waits of the flows that changed). */
#ifndef NL_SERVER_H
#define NL_SERVER_H

#include <stddef.h>
#include "nl_config.h"
#include "agent.h"
#include "bridge.h"
#include "device.h"
#include "flows.h"
#include "oidc.h"
#include "tokcache.h"

/* Connections at once: a long-polling PAM call holds one for the whole sign-in. An idle
 * connection costs a few hundred bytes (input buffers grow only while a line arrives); the limit is
 * also capped at RLIMIT_NOFILE (raised to its hard limit at start) minus NL_SERVER_RESERVED_FDS,
 * the room kept for the bridge's connections, the provider's and files. */
#define NL_SERVER_MAX_CONNS    16384
#define NL_SERVER_RESERVED_FDS 512
/* Input bytes held over all connections; past it, a connection holding more than a small request
 * is closed as if its line were too long (16384 half-sent 64 KiB lines would be 1 GiB). */
#define NL_SERVER_INPUT_BUDGET (64 * 1024 * 1024)
#define NL_SERVER_IDLE_MS      (60 * 1000)
#define NL_SERVER_DEFAULT_WAIT 5
#define NL_SERVER_MAX_LISTED   1000 /* flows in one "flows" reply */

/* What the server works with; every object must outlive the server. */
struct nl_store;
struct nl_hostauth_hosts;

struct nl_server_ctx {
	const struct nl_config *cfg;
	struct nl_flows *flows;
	struct nl_oidc *oidc;
	struct nl_tokcache *tc;
	struct nl_bridge *bridge;
	struct nl_device *device; /* NULL: native mode not available */
	struct nl_agent *agent;   /* role = agent: the bridge's client; else NULL */
	int notify_fd;            /* read end of the flows table's eventfd/pipe */
	int signal_fd;            /* a signalfd for SIGTERM/SIGINT (stop) and SIGHUP, or -1 */
	/* role = bridge: for status only (the PAM socket starts nothing on a bridge) */
	struct nl_store *store;
	struct nl_hostauth_hosts *hosts;
};

struct nl_server;

/* Create the socket at cfg->socket_path (its directory too, 0755, if missing; a stale socket is
 * replaced, anything else at the path is an error). err gets one line on failure. */
int nl_server_new(const struct nl_server_ctx *ctx, struct nl_server **out, char *err, size_t errlen);
/* Serve until nl_server_stop or a stop signal. 0, or an error if the loop itself failed. */
int nl_server_run(struct nl_server *s);
/* Ask the loop to return. Async-signal-safe; any thread. */
void nl_server_stop(struct nl_server *s);
/* Close every connection (cancelling their flows), unlink the socket, free. NULL is fine. */
void nl_server_free(struct nl_server *s);
/* Connections open now (for tests). */
size_t nl_server_conn_count(struct nl_server *s);

#endif
