/* The agent role (doc/bridge.md): a workstation's nhslogind that starts each sign-in at the central
 * bridge with a signed request, long-polls the bridge for its end, and decides it itself: the ID
 * token the bridge hands over is checked against NHS login's own keys with this agent's nonce,
 * mapped here, and ended through nl_signin_complete. One thread a flow, so that long-polls do not
 * wait for each other; at most max_flows of them. */
#ifndef NL_AGENT_H
#define NL_AGENT_H

#include <cjose/cjose.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "nl_config.h"
#include "flows.h"
#include "oidc.h"
#include "tokcache.h"

#define NL_AGENT_WAIT        25          /* seconds of one long-poll (the API's most) */
#define NL_AGENT_MAX_BODY    (16 * 1024) /* the API's bodies are at most 16 KiB */
#define NL_AGENT_FLOW_MAX    64          /* the bridge's flow id: [A-Za-z0-9_-]{1,64} */
#define NL_AGENT_NONCE_BYTES 32
#define NL_AGENT_BACKOFF_MS  500  /* first wait after a failed poll; doubled up to the next */
#define NL_AGENT_BACKOFF_MAX 4000 /* the longest wait between polls of a bridge that fails */

struct nl_agent;

/* Load the workstation's key (cfg->agent_host_key, else NL_AGENT_HOST_KEY_DEFAULT) and name
 * (cfg->agent_name, else the host name). err names the key's path and `nhsloginctl enroll` when
 * the key is missing or unsafe. The objects passed must outlive the agent. */
#define NL_AGENT_HOST_KEY_DEFAULT NL_SYSCONFDIR "/nhslogin/host.key" /* as nhsloginctl enroll */
int nl_agent_new(const struct nl_config *cfg, struct nl_flows *fl, struct nl_oidc *oidc,
                 struct nl_tokcache *tc, struct nl_agent **out, char *err, size_t errlen);
/* Stop every poller (a long-poll in progress is abandoned within about a second) and free. NULL is
 * fine. */
void nl_agent_stop(struct nl_agent *a);

/* What the bridge made of a start: its flow and what the person is shown. */
struct nl_agent_flow {
	char flow[NL_AGENT_FLOW_MAX + 1];
	char nonce[64]; /* ours: secret until the sign-in ends */
	char *user_code, *verification_uri, *verification_uri_complete;
	int expires_in;
};
void nl_agent_flow_clear(struct nl_agent_flow *f);

struct nl_agent_start {
	const char *user, *service, *rhost, *tty;
	bool number_match;
	unsigned ttl;
};
/* On a worker: choose a nonce and POST /agent/v1/flows. 0 and *out filled; else NL_ERR_UNAVAILABLE
 * (unreachable, 5xx, 401, an answer that is not the API's) or NL_ERR_LIMIT (429), err saying why
 * (never a secret). */
int nl_agent_create(struct nl_agent *a, const struct nl_agent_start *st, struct nl_agent_flow *out, char *err,
                    size_t errlen);
/* On the loop: poll the bridge for af (started with st) and end local flow flow_id through
 * nl_signin_complete. Takes af's nonce (wiped there). NL_ERR_LIMIT when max_flows pollers run. */
int nl_agent_add(struct nl_agent *a, const char *flow_id, const struct nl_agent_start *st,
                 struct nl_agent_flow *af);
/* On the loop: the bridge made af but this computer will not use it (its own limits refused the
 * start, or the asker left before the answer): DELETE it at the bridge from a thread of its own, so
 * that it does not hold a place in the bridge's bounds on pending flows until it expires. Wipes af's
 * nonce. Nothing is returned: a flow that cannot be cancelled ends by itself. */
void nl_agent_forget(struct nl_agent *a, struct nl_agent_flow *af);
size_t nl_agent_count(struct nl_agent *a);

/* For nhsloginctl status. */
struct nl_agent_info {
	char bridge_url[512];
	char name[64];
	time_t last_error_at; /* 0: none */
	char last_error[256];
};
void nl_agent_info(struct nl_agent *a, struct nl_agent_info *out);

/* ---- pure helpers (tests/unit/test_agent_api.c) ---- */

/* The request target for suffix ("/agent/v1/flows", ...) under bridge_url's path: "/p" + suffix
 * for https://h/p/, suffix for https://h. New string in *path; the URL to request in *url. */
int nl_agent_target(const char *bridge_url, const char *suffix, char **url, char **path);
/* What the bridge's denial reason word comes to (unknown words: NL_OUT_DENIED). */
enum nl_outcome nl_agent_outcome_of(const char *reason);
/* Is s a flow id of the API: [A-Za-z0-9_-]{1,64}? */
bool nl_agent_flow_id_ok(const char *s);

#endif
