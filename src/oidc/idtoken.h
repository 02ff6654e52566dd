/* ID token validation: every rule of DESIGN.md, fail closed. Pure: no I/O, the clock passed in. */
#ifndef NL_IDTOKEN_H
#define NL_IDTOKEN_H

#include "nl_jose.h"

struct nl_idtoken_policy {
	const char *issuer;              /* exact match */
	const char *client_id;           /* must be in aud; azp rules */
	const char *const *allowed_algs; /* e.g. {"RS512"} */
	size_t n_allowed_algs;
	const char *nonce; /* the flow's nonce; must equal (constant time) */
	const char *vtr;   /* JSON array of requested vectors; vot must be one of them */
	int min_level;     /* 0, 5, 9: vot's P level must be >= */
	long skew;         /* seconds, <= 60 */
	time_t now;
};

/* The ID token rules, in the order they are checked. NL_RULE_NONE: no rule failed. */
enum nl_idtoken_rule {
	NL_RULE_NONE = 0,
	NL_RULE_FORMAT,
	NL_RULE_ALG,
	NL_RULE_KID,
	NL_RULE_SIGNATURE,
	NL_RULE_ISS,
	NL_RULE_AUD,
	NL_RULE_AZP,
	NL_RULE_EXP,
	NL_RULE_IAT,
	NL_RULE_NBF,
	NL_RULE_NONCE,
	NL_RULE_SUB,
	NL_RULE_VOT,
	NL_RULE_LEVEL,
};
/* The word that names a rule in logs and error lines ("format", "alg", "kid", ...; "none" for
 * NL_RULE_NONE). Never NULL. */
const char *nl_idtoken_rule_word(enum nl_idtoken_rule rule);

/* Validate compact against set and policy. On success *claims (a new reference) holds the
 * verified claims and *rule is NL_RULE_NONE. On failure returns an nl_err and *rule names the
 * failed rule (rule may be NULL if the caller does not want it). NL_ERR_KEY with NL_RULE_KID
 * means: no key in the set fits (kid absent from it, or no kid and not exactly one candidate):
 * refetch the JWKS once. Codes: NL_ERR_INVALID/NL_ERR_TOO_BIG format, NL_ERR_ALG alg,
 * NL_ERR_SIGNATURE signature, NL_ERR_EXPIRED exp (expired), NL_ERR_CLAIM the other claim rules,
 * NL_ERR_CONFIG vot when p->vtr is not a JSON array, NL_ERR_DENIED level.
 * Policy notes: none and HS* in allowed_algs are ignored; skew is clamped to 0..60; nonce NULL
 * (device grant only) skips the nonce rule; vtr NULL fails vot. */
int nl_idtoken_validate(const char *compact, size_t len, const struct nl_jwks *set,
                        const struct nl_idtoken_policy *p, json_t **claims, enum nl_idtoken_rule *rule);
/* The identity level (0, 5, 9) of a vot like "P9.Cp.Cd", or -1 if malformed or NULL. A vot is
 * "P" one of 0/5/9, then one or more ".C" + a lower-case letter ("P9" alone, "P10.Cp" are -1). */
int nl_vot_level(const char *vot);

#endif
