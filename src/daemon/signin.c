/* The end of every sign-in (bridge callback or device-mode poll): the provider's outcome becomes
 * a mapped local account or a denial reason, the token cache learns a good sign-in, the flow is
 * finished, and one log line says what happened (never a secret). */
#include "config.h"
#include "bridge.h"

#include <stdlib.h>
#include <string.h>

#include "mapping.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"

static enum nl_flow_reason reason_of_outcome(enum nl_outcome o)
{
	switch (o) {
	case NL_OUT_OK:
		return NL_REASON_NONE;
	case NL_OUT_DENIED:
		return NL_REASON_DENIED;
	case NL_OUT_EXPIRED:
		return NL_REASON_EXPIRED;
	case NL_OUT_INVALID_TOKEN:
		return NL_REASON_INVALID_TOKEN;
	case NL_OUT_LEVEL:
		return NL_REASON_LEVEL;
	default:
		return NL_REASON_UNAVAILABLE;
	}
}

/* Map a verified identity; on success *mapped is a new string. The reason otherwise. */
static enum nl_flow_reason map_identity(const struct nl_config *cfg, const char *flow_id,
                                        const struct nl_identity *id, char **mapped)
{
	char err[256] = "";
	int r;

	if (id == NULL || id->claims == NULL) {
		nl_err("flow %s: no identity with an approved outcome", flow_id);
		return NL_REASON_UNAVAILABLE;
	}
	r = nl_map_identity(cfg, id->claims, mapped, err, sizeof(err));
	switch (r) {
	case 0:
		return NL_REASON_NONE;
	case NL_ERR_NOT_FOUND:
	case NL_ERR_CLAIM: /* unverified email, malformed claim: this identity names nobody */
		nl_info("flow %s: identity maps to no account (%s)", flow_id,
		        err[0] != '\0' ? err : nl_strerror(r));
		return NL_REASON_NO_MAPPING;
	default:
		nl_err("flow %s: identity mapping failed: %s", flow_id,
		       err[0] != '\0' ? err : nl_strerror(r));
		return NL_REASON_UNAVAILABLE;
	}
}

enum nl_flow_reason nl_signin_complete(const struct nl_config *cfg, struct nl_flows *fl,
                                       struct nl_tokcache *tc, const char *flow_id, const char *flow_user,
                                       enum nl_outcome outcome, const struct nl_identity *id,
                                       const char *detail)
{
	enum nl_flow_reason reason = reason_of_outcome(outcome);
	char *mapped = NULL;
	int r;

	if (flow_id == NULL)
		flow_id = "?";
	if (reason == NL_REASON_NONE)
		reason = map_identity(cfg, flow_id, id, &mapped);
	r = nl_flows_finish(fl, flow_id, reason, mapped, NULL);
	if (r != 0) {
		nl_notice("flow %s: ended before the sign-in finished (%s)", flow_id, nl_strerror(r));
		reason = NL_REASON_EXPIRED;
	} else if (reason == NL_REASON_NONE && (flow_user == NULL || strcmp(mapped, flow_user) != 0)) {
		/* flows made the decision; this line only explains it */
		reason = NL_REASON_MISMATCH;
		nl_notice("flow %s: denied reason=mismatch (identity maps to %s, not %s)", flow_id, mapped,
		          flow_user != NULL ? flow_user : "?");
	} else if (reason == NL_REASON_NONE) {
		nl_notice("flow %s: approved user=%s", flow_id, mapped);
		/* only a sign-in that approved its flow may be reused; a disk failure logs, sign-in goes on
		 */
		if (tc != NULL)
			(void)nl_tokcache_store(tc, mapped, id, nl_now());
	} else {
		nl_notice("flow %s: denied reason=%s%s%s%s", flow_id, nl_flow_reason_word(reason),
		          detail != NULL && detail[0] != '\0' ? " (" : "", detail != NULL ? detail : "",
		          detail != NULL && detail[0] != '\0' ? ")" : "");
	}
	free(mapped);
	return reason;
}
