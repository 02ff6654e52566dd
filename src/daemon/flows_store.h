/* The bridge role's flows (doc/bridge.md): the same nl_flows object, with every flow in Redis
 * (libnlstore) so that any bridge instance serves any step. The functions of flows.h that the
 * phone pages call work on it unchanged; these are what the agent API and the callback add. */
#ifndef NL_FLOWS_STORE_H
#define NL_FLOWS_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "flows.h"

struct nl_store;

/* A flows table that keeps nothing itself: flows in st (which must outlive it). index_key (the
 * store's, NL_STORE_HKEY_MIN..64 bytes) keys the states derived from flow ids, so that any instance
 * can rebuild a flow's state for /authorize and none is ever stored; it is not kept. */
int nl_flows_new_store(const struct nl_config *cfg, struct nl_store *st, const unsigned char *index_key,
                       size_t keylen, struct nl_flows **out);
/* The table's store, NULL for a local table. */
struct nl_store *nl_flows_store(const struct nl_flows *fl);

/* An agent's POST /agent/v1/flows (fields checked by the caller: bounded, nonce base64url). */
struct nl_flow_request {
	const char *host; /* the enrolled name that signed the request */
	const char *user, *service, *rhost, *tty, *nonce;
	bool number_match;
	unsigned ttl; /* 0: flow_ttl; capped by it */
};
struct nl_flow_made {
	char id[NL_FLOW_ID_LEN];
	char user_code[NL_USER_CODE_LEN + 2]; /* display form */
	int expires_in;
};
/* The bounds on pending flows at the bridge, counted in Redis over every instance (nothing stops
 * or delays them but a flow's end, delete or expiry): a workstation may have max_flows pending,
 * and one user at one workstation (NL_FLOWS_USER_FACTOR + 1) x max_flows_per_user. An agent with
 * the same settings never has more than NL_FLOWS_USER_FACTOR x max_flows_per_user of one user
 * pending itself; the extra max_flows_per_user is room for the starts it makes at the bridge
 * before its own limits act (a sign-in at the computer itself ends a remote one, cancelled at the
 * bridge a moment later; so is a start its own limits refuse, or whose asker left: nl_agent_forget),
 * so that an honest workstation's people meet its own limits first. */
#define NL_FLOWS_BRIDGE_USER_FACTOR (NL_FLOWS_USER_FACTOR + 1)
/* NL_ERR_INVALID (bad user name or field), NL_ERR_UNAVAILABLE (Redis), NL_ERR_LIMIT (a bound above;
 * logged with the workstation's name). */
int nl_flows_store_create(struct nl_flows *fl, const struct nl_flow_request *rq, struct nl_flow_made *out);
/* The flow id as host sees it: NL_ERR_NOT_FOUND for no such flow or another host's. *outcome (a
 * new reference) is NULL while pending; *expires_in the seconds left. */
int nl_flows_store_read(struct nl_flows *fl, const char *id, const char *host, json_t **outcome,
                        int *expires_in);
/* DELETE by the host that made it: a pending flow ends cancelled. 0 or NL_ERR_NOT_FOUND. */
int nl_flows_store_cancel(struct nl_flows *fl, const char *id, const char *host);
/* The callback's claim (nl_flows_take_state_bound's contract); host (NL_HOSTAUTH_NAME_MAX + 1
 * bytes, may be NULL) and *number_match are the flow's. */
struct nl_flow_claim_info {
	char host[64];
	bool number_match;
};
int nl_flows_store_claim(struct nl_flows *fl, const char *state, const unsigned char *browser,
                         const char *client, struct nl_flow_exchange *out, struct nl_flow_claim_info *info);
/* End pending flow id with outcome (taken by reference, not stolen). NL_ERR_EXPIRED if it had
 * ended, NL_ERR_NOT_FOUND. */
int nl_flows_store_end(struct nl_flows *fl, const char *id, const json_t *outcome);

#endif
