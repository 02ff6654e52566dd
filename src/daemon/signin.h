/* The end of every sign-in, bridge callback or device-mode poll: the one place that decides
 * whether a sign-in approves its flow, and logs it. */
#ifndef NL_SIGNIN_H
#define NL_SIGNIN_H

#include "nl_config.h"
#include "nl_reason.h"
#include "flows.h"
#include "oidc.h"
#include "tokcache.h"

/* Given the provider's outcome and (on NL_OUT_OK) the verified identity, map it to a local account
 * (nl_map_identity) and decide: approved only when that account is the flow's user (flow_user),
 * else the reason. Stores an approval in the token cache, finishes the flow with the decision and
 * logs one line (flow id, outcome, mapped user; never a secret). detail (may be NULL) is the
 * one-line reason for the log. tc may be NULL (no caching). Returns how the flow ended:
 * NL_REASON_NONE for approved, else the reason (NL_REASON_EXPIRED if the flow had already ended). */
enum nl_reason nl_signin_complete(const struct nl_config *cfg, struct nl_flows *fl, struct nl_tokcache *tc,
                                  const char *flow_id, const char *flow_user, enum nl_outcome outcome,
                                  const struct nl_identity *id, const char *detail);

/* The reason a flow ends with for a provider's outcome (NL_REASON_NONE for NL_OUT_OK). */
enum nl_reason nl_signin_reason_of(enum nl_outcome o);

#endif
