/* The end of every sign-in (bridge callback or device-mode poll): the provider's outcome becomes
 * a mapped local account or a denial reason, the decision to approve is made here and only here,
 * the token cache learns a good sign-in, the flow is finished, and one log line says what happened
 * (never a secret). */
#include "config.h"
#include "signin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapping.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"

enum nl_reason nl_signin_reason_of(enum nl_outcome o)
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

/* How an identity became a local account, for the log: "nhs_number", "email (local part)", ... */
static const char *mapped_by(const struct nl_config *cfg)
{
	bool rule_email = cfg->rule == NL_MAP_EMAIL_LOCAL;

	switch (cfg->claim) {
	case NL_CLAIM_EMAIL:
		return rule_email ? "email, local part" : "email, map file";
	case NL_CLAIM_SUB:
		return "sub, map file";
	default:
		return "nhs_number, map file";
	}
}

/* What the person is told when the sign-in lacked the claim: which one, in their words. */
static const char *no_claim_message(const struct nl_config *cfg)
{
	if (cfg->rule == NL_MAP_EMAIL_LOCAL || cfg->claim == NL_CLAIM_EMAIL)
		return "The sign-in did not include a verified email address, which this computer uses to "
		       "find your account.";
	if (cfg->claim == NL_CLAIM_NHS_NUMBER)
		return "The sign-in did not include your NHS number, which this computer uses to find your "
		       "account.";
	return NULL; /* sub is in every ID token: the default message */
}

/* Map a verified identity; on success *mapped is a new string. The reason otherwise, with why in
 * detail (the caller's one log line says it) and, if not the reason's default, what the person
 * reads in *message. */
static enum nl_reason map_identity(const struct nl_config *cfg, const struct nl_identity *id, char **mapped,
                                   char *detail, size_t detlen, const char **message)
{
	char err[256] = "";
	const char *why;
	int r;

	if (id == NULL || id->claims == NULL) {
		snprintf(detail, detlen, "internal error: no identity with an approved outcome");
		return NL_REASON_UNAVAILABLE;
	}
	r = nl_map_identity(cfg, id->claims, mapped, err, sizeof(err));
	why = err[0] != '\0' ? err : nl_strerror(r);
	switch (r) {
	case 0:
		return NL_REASON_NONE;
	case NL_ERR_NOT_FOUND:
		snprintf(detail, detlen, "identity maps to no account: %s", why);
		return NL_REASON_NO_MAPPING;
	case NL_ERR_CLAIM: /* absent, malformed, unverified: the sign-in did not say who this is */
		snprintf(detail, detlen, "no usable claim: %s%s", why,
		         cfg->userinfo ? " (ID token and userinfo)" : " (ID token; userinfo is off)");
		*message = no_claim_message(cfg);
		return NL_REASON_NO_CLAIM;
	case NL_ERR_CONFIG:
	case NL_ERR_PERM:
	case NL_ERR_IO:
	case NL_ERR_TOO_BIG:
		/* Our own setup, not the provider: every sign-in fails until an admin fixes it. */
		snprintf(detail, detlen, "identity mapping cannot work: %s", why);
		return NL_REASON_MISCONFIGURED;
	default:
		snprintf(detail, detlen, "identity mapping failed: %s", why);
		return NL_REASON_UNAVAILABLE;
	}
}

/* Who NHS login said signed in, for the audit trail of an approval: "sub=S nhs_number=*******973".
 * The NHS number shows its last 3 digits only ("-" when absent, "?" when not 10 digits); a sub with
 * characters outside [A-Za-z0-9._:-] is shown with '?' in their place, so it cannot forge fields. */
#define SUB_PLAIN "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"
static void audit_identity(const struct nl_identity *id, char *out, size_t outlen)
{
	const char *nhs = id != NULL && id->claims != NULL
	                      ? json_string_value(json_object_get(id->claims, "nhs_number"))
	                      : NULL;
	char sub[256] = "-", masked[11] = "-";
	size_t i;

	if (id != NULL && id->sub != NULL && id->sub[0] != '\0') {
		for (i = 0; id->sub[i] != '\0' && i + 1 < sizeof(sub); i++)
			sub[i] = strchr(SUB_PLAIN, id->sub[i]) != NULL ? id->sub[i] : '?';
		sub[i] = '\0';
	}
	if (nhs != NULL && strlen(nhs) == 10 && strspn(nhs, "0123456789") == 10)
		snprintf(masked, sizeof(masked), "*******%s", nhs + 7);
	else if (nhs != NULL)
		snprintf(masked, sizeof(masked), "?");
	snprintf(out, outlen, "sub=%s nhs_number=%s", sub, masked);
}

/* The one log line of a finished flow: "flow ID: approved user=U (...) sub=S nhs_number=*******973"
 * or "flow ID: denied reason=WORD user=U (detail)", at the reason's priority (nl_reason.c: a setup
 * here that cannot work is an error, trouble with the provider a warning). id: the identity of an
 * approval (may be NULL otherwise). */
static void log_outcome(const char *flow_id, const char *user, enum nl_reason reason, const char *detail,
                        const struct nl_identity *id, bool numbered)
{
	bool has = detail != NULL && detail[0] != '\0';
	int prio = nl_reason_row(reason)->log_prio;
	char who[320];

	if (reason == NL_REASON_NONE) {
		/* with number matching the approval comes when the terminal types the number (flows.c) */
		audit_identity(id, who, sizeof(who));
		nl_log(prio, "flow %s: %s user=%s%s%s%s %s", flow_id,
		       numbered ? "signed in at NHS login, the number wanted at the terminal," : "approved",
		       user, has ? " (" : "", has ? detail : "", has ? ")" : "", who);
	} else {
		nl_log(prio, "flow %s: denied reason=%s user=%s%s%s%s", flow_id, nl_reason_word(reason), user,
		       has ? " (" : "", has ? detail : "", has ? ")" : "");
	}
}

/* The decision: a verified, mapped identity approves the flow only when it maps to the flow's own
 * user. why gets the log line's detail. (The PAM module checks the user once more, as defence in
 * depth; it never decides otherwise.) */
static enum nl_reason decide(const struct nl_config *cfg, const char *mapped, const char *flow_user,
                             char *why, size_t whylen)
{
	if (flow_user == NULL || strcmp(mapped, flow_user) != 0) {
		snprintf(why, whylen, "identity mapped to %s by %s", mapped, mapped_by(cfg));
		return NL_REASON_MISMATCH;
	}
	snprintf(why, whylen, "identity mapped by %s", mapped_by(cfg));
	return NL_REASON_NONE;
}

enum nl_reason nl_signin_complete(const struct nl_config *cfg, struct nl_flows *fl, struct nl_tokcache *tc,
                                  const char *flow_id, const char *flow_user, enum nl_outcome outcome,
                                  const struct nl_identity *id, const char *detail)
{
	enum nl_reason answered, reason = nl_signin_reason_of(outcome);
	const char *who = flow_user != NULL ? flow_user : "?";
	char *mapped = NULL, why[400] = "";
	const char *message = NULL;
	struct nl_flow_where where;
	struct nl_reuse_place place = {.conn = 0};
	int r;

	if (flow_id == NULL)
		flow_id = "?";
	if (detail != NULL)
		snprintf(why, sizeof(why), "%s", detail);
	if (reason == NL_REASON_NONE)
		reason = map_identity(cfg, id, &mapped, why, sizeof(why), &message);
	answered = reason; /* what NHS login's answer came to, before it met the flow's user */
	if (reason == NL_REASON_NONE)
		reason = decide(cfg, mapped, flow_user, why, sizeof(why));
	/* where the flow was started, read before it ends (its owner may collect it at once). A flow
	 * with number matching is never cached: its approval comes later, if ever, and a reuse would
	 * skip the number. (Asking the flow after it ended would race the terminal's answer.) */
	if (reason == NL_REASON_NONE && tc != NULL && cfg->reuse_window > 0 &&
	    nl_flows_where(fl, flow_id, &where) == 0 && !where.number_match)
		place = (struct nl_reuse_place){.service = where.service,
		                                .rhost = where.rhost,
		                                .tty = where.tty,
		                                .by_root = !where.caller_supplied,
		                                .conn = where.owner};
	/* flows records the decision and logs only the endings it causes itself (expired, cancelled);
	 * this function logs the rest, once */
	r = nl_flows_finish(fl, flow_id, reason, message);
	if (r != 0) {
		/* the flow's own end (expired or cancelled) has been logged; this is a separate event */
		nl_info("flow %s: NHS login answered (%s) after the flow had ended; ignored", flow_id,
		        answered == NL_REASON_NONE ? "approved" : nl_reason_word(answered));
		reason = NL_REASON_EXPIRED;
	} else if (reason == NL_REASON_NONE) {
		unsigned number;
		bool numbered = nl_flows_number_of(fl, flow_id, &number) == 0;
		log_outcome(flow_id, mapped, reason, why, id, numbered);
		/* only a sign-in that approved its flow may be reused (one with number matching never is:
		 * see above); a disk failure logs, sign-in goes on */
		if (place.conn != 0)
			(void)nl_tokcache_store(tc, cfg, mapped, id, &place, nl_now());
	} else {
		log_outcome(flow_id, who, reason, why, NULL, false);
	}
	free(mapped);
	return reason;
}
