/* Test helper: real redis-server and redis-sentinel processes in throwaway directories, on loopback
 * ports chosen by the kernel, for the store's tests. Every process dies with the test process
 * (PR_SET_PDEATHSIG) and redisproc_free stops it and removes its directory. */
#ifndef NL_TEST_REDISPROC_H
#define NL_TEST_REDISPROC_H

#include <stdbool.h>
#include <sys/types.h>

#define REDISPROC_START_TIMEOUT_MS 30000 /* PING must answer within this */

struct redisproc;

/* Is /usr/bin/redis-server (or $REDIS_SERVER) there? If not, *why says what is missing. */
bool redisproc_available(const char **why);
bool redisproc_sentinel_available(const char **why);

/* A redis-server with no persistence, on 127.0.0.1:PORT and a Unix socket in its directory; a replica
 * of primary when primary is not NULL. NL_ERR_TIMEOUT if it does not answer PING in time. */
int redisproc_start(const struct redisproc *primary, struct redisproc **out);
/* A redis-sentinel monitoring primary under master_name (quorum 1, down after 500 ms, failover
 * timeout 2 s); its configuration file is writable (sentinel rewrites it). */
int redisproc_start_sentinel(const struct redisproc *primary, const char *master_name,
                             struct redisproc **out);

int redisproc_port(const struct redisproc *rp);
const char *redisproc_socket(const struct redisproc *rp); /* servers only */
pid_t redisproc_pid(const struct redisproc *rp);
/* SIGKILL and reap, keeping the directory and port; redisproc_restart starts it again there. */
void redisproc_kill(struct redisproc *rp);
int redisproc_restart(struct redisproc *rp);
/* Stop (if running), remove the directory, free. NULL is fine. */
void redisproc_free(struct redisproc *rp);

/* Is the replica's link to its primary up (INFO replication)? */
bool redisproc_replica_synced(const struct redisproc *replica);
/* How many replicas the sentinel knows for master_name. */
int redisproc_sentinel_replicas(const struct redisproc *sentinel, const char *master_name);

#endif
