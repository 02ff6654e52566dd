/* The trust-wide deployment as the tests run it (DESIGN.md, "Trust-wide deployment";
 * doc/bridge.md): a real redis-server (or a primary, a replica and a sentinel), the real
 * nhslogin-mock as NHS login, N real nhslogind instances with role = bridge sharing that Redis, the
 * index key, the client key and the hosts directory, a real nginx in front of them (the README's
 * block, as written, over TLS),
 * and agents: real nhslogind with role = agent, each with its own enrolled key. The first agent is a
 * harness world (tests/lib/harness.h), so the real module under pam_wrapper signs in through it and
 * the harness's phone walks the pages through nginx (from 127.0.0.2). Everything on loopback in temp dirs;
 * every process is stopped by cluster_stop (and dies with the test). */
#ifndef CLUSTER_FIXTURE_H
#define CLUSTER_FIXTURE_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "harness.h"
#include "lbproc.h"
#include "redisproc.h"

#define CLUSTER_MAX_BRIDGES 4
#define CLUSTER_MAX_AGENTS  128
#define CLUSTER_MASTER      "nlmaster"

struct cluster_opts {
	int bridges;               /* 1..CLUSTER_MAX_BRIDGES; 0: 2 */
	bool sentinel;             /* Redis through a sentinel: primary, replica, sentinel */
	const char *daemon_extra;  /* lines added to [daemon] of the agents and bridges */
	const char *policy;        /* a [policy] section for the agents and bridges, or NULL */
	const char *agent_env;     /* lines added to the agents' environment file */
	int extra_agents;          /* agents beyond the first (not PAM worlds): 0..CLUSTER_MAX_AGENTS-1 */
	const char *mock_users;    /* as world_opts.mock_users */
	unsigned store_timeout_ms; /* [store] timeout_ms; 0: the default */
};

struct cluster_bridge {
	pid_t pid;
	int port;
	char conf[PATH_MAX + 32], log[PATH_MAX + 32], socket[108];
};

struct cluster_agent {
	pid_t pid;
	char name[32];
	char conf[PATH_MAX + 32], log[PATH_MAX + 32], socket[108];
};

struct cluster {
	char dir[64];    /* /tmp/nl-cluster.XXXXXX: hosts/, index.key, b1/, b2/, a2/, ... */
	struct world *w; /* agent 1 (ws1) and the mock; w->bridge is nginx's URL */
	struct redisproc *redis, *replica, *sentinel;
	struct cluster_bridge b[CLUSTER_MAX_BRIDGES];
	int nb;
	struct cluster_agent a[CLUSTER_MAX_AGENTS]; /* a[0] is w's daemon (conf, log, socket filled) */
	int na;
	struct lbproc lb;
	int lb_port;
	char url[64]; /* https://127.0.0.1:LB_PORT: the bridges' public_url, the agents' bridge_url */
	char hosts[96], index_key[96];
	char cert[96], cert_key[96]; /* nginx's certificate (self-signed: the agents' and the phone's CA) */
};

/* NL_ERR_* on failure; when a server the tests need is not installed, 0 with *c NULL and why set
 * (the caller reports SKIP with it). */
int cluster_start(const struct cluster_opts *o, struct cluster **out, char *why, size_t whylen);
void cluster_stop(struct cluster *c);
/* For a cmocka group setup: cluster_start, then the first agent made the world the PAM services
 * use (world_activate). -1 on failure; 0 with *c NULL and why set when a server is missing. */
int cluster_group_start(const struct cluster_opts *o, struct cluster **c, char *why, size_t whylen);
/* Kill bridge i with sig and reap it / start it again on its configuration. */
void cluster_kill_bridge(struct cluster *c, int i, int sig);
int cluster_restart_bridge(struct cluster *c, int i);
/* Does the log (a bridge's, or agent 1's: bridge -1) hold needle? */
bool cluster_log_has(const struct cluster *c, int bridge, const char *needle);
/* How many lines of bridge i's log hold needle. */
int cluster_log_count(const struct cluster *c, int bridge, const char *needle);

#endif
