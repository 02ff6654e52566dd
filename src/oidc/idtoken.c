/* ID token validation (DESIGN.md "ID token validation"): each rule in order, fail closed, the
 * failed rule named by one word. Pure: no I/O; the clock comes in the policy. */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "idtoken.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_wipe.h"

#define MAX_SKEW     60   /* DESIGN.md: at most 60 s either way */
#define MAX_SUB      255  /* NHS login: sub is at most 255 characters */
#define MAX_NONCE    512  /* our nonces are ~43 characters */
#define MAX_VOT      64   /* "P9.Cp.Cd" and friends */
#define MAX_VTR_SIZE 4096 /* the requested vtr JSON array */
#define MAX_ALGS     16   /* algorithms a policy may allow */

/* One word a rule, for logs and error lines; the words are those of DESIGN.md. */
static const char *const rule_words[] = {
    [NL_RULE_NONE] = "none",
    [NL_RULE_FORMAT] = "format",
    [NL_RULE_ALG] = "alg",
    [NL_RULE_KID] = "kid",
    [NL_RULE_SIGNATURE] = "signature",
    [NL_RULE_ISS] = "iss",
    [NL_RULE_AUD] = "aud",
    [NL_RULE_AZP] = "azp",
    [NL_RULE_EXP] = "exp",
    [NL_RULE_IAT] = "iat",
    [NL_RULE_NBF] = "nbf",
    [NL_RULE_NONCE] = "nonce",
    [NL_RULE_SUB] = "sub",
    [NL_RULE_VOT] = "vot",
    [NL_RULE_LEVEL] = "level",
};

/* An out-of-range value is a bug; "format" keeps the log line it goes into well formed. */
const char *nl_idtoken_rule_word(enum nl_idtoken_rule rule)
{
	if ((size_t)rule >= sizeof(rule_words) / sizeof(rule_words[0]) || rule_words[rule] == NULL)
		return "format";
	return rule_words[rule];
}

/* The value of a string claim, or NULL if absent, not a string, or holding a NUL byte (which
 * would let "iss\0junk" compare equal to "iss" through strcmp). */
static const char *claim_str(const json_t *claims, const char *name)
{
	const json_t *v = json_object_get(claims, name);
	const char *s;

	if (!json_is_string(v))
		return NULL;
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return NULL;
	return s;
}

/* Algorithms of the policy that may ever be used: known to the JOSE layer, never none or HS*. */
static size_t usable_algs(const struct nl_idtoken_policy *p, const char **out, size_t max)
{
	size_t i, n = 0;

	if (p->allowed_algs == NULL)
		return 0;
	for (i = 0; i < p->n_allowed_algs && n < max; i++) {
		const char *a = p->allowed_algs[i];
		if (a == NULL || strcmp(a, "none") == 0 || strncmp(a, "HS", 2) == 0 || !nl_jose_alg_known(a))
			continue;
		out[n++] = a;
	}
	return n;
}

/* After the strict parser refused a token: was it for a disallowed alg? ({"alg":"none"} tokens
 * usually come with an empty signature, which the parser refuses first.) Only names the rule;
 * the token fails either way. */
static bool header_alg_refused(const char *compact, size_t len, const char *const *algs, size_t n_algs)
{
	const char *dot = memchr(compact, '.', len);
	uint8_t *hdr = NULL;
	size_t hdr_len = 0, i;
	json_t *h = NULL;
	const char *alg;
	bool refused = false;

	if (dot == NULL || nl_b64url_decode(compact, (size_t)(dot - compact), &hdr, &hdr_len) != 0)
		return false;
	if (nl_json_parse((const char *)hdr, hdr_len, NL_JWS_MAX, NL_JSON_MAX_DEPTH, true, &h, NULL, 0) != 0)
		goto out;
	if ((alg = claim_str(h, "alg")) == NULL)
		goto out;
	refused = true;
	for (i = 0; i < n_algs; i++)
		if (strcmp(alg, algs[i]) == 0)
			refused = false;
out:
	json_decref(h);
	free(hdr);
	return refused;
}

static int check_iss(const json_t *claims, const struct nl_idtoken_policy *p)
{
	const char *iss = claim_str(claims, "iss");

	/* Exact: "https://x/" and "https://x" are different issuers. */
	if (iss == NULL || p->issuer == NULL || strcmp(iss, p->issuer) != 0)
		return NL_ERR_CLAIM;
	return 0;
}

/* aud is client_id, or an array of strings containing it. *n_aud gets the audience count. */
static int check_aud(const json_t *claims, const char *client_id, size_t *n_aud)
{
	const json_t *aud = json_object_get(claims, "aud");
	const json_t *v;
	size_t i;
	bool found = false;

	if (client_id == NULL || aud == NULL)
		return NL_ERR_CLAIM;
	if (json_is_string(aud)) {
		*n_aud = 1;
		return strcmp(json_string_value(aud), client_id) == 0 &&
		               strlen(client_id) == json_string_length(aud)
		           ? 0
		           : NL_ERR_CLAIM;
	}
	if (!json_is_array(aud) || json_array_size(aud) == 0)
		return NL_ERR_CLAIM;
	json_array_foreach(aud, i, v)
	{
		if (!json_is_string(v))
			return NL_ERR_CLAIM;
		if (strcmp(json_string_value(v), client_id) == 0 &&
		    strlen(client_id) == json_string_length(v))
			found = true;
	}
	*n_aud = json_array_size(aud);
	return found ? 0 : NL_ERR_CLAIM;
}

/* OIDC Core 3.1.3.7 (4, 5): several audiences need azp; a present azp must be client_id. */
static int check_azp(const json_t *claims, const char *client_id, size_t n_aud)
{
	const json_t *v = json_object_get(claims, "azp");
	const char *azp;

	if (v == NULL)
		return n_aud > 1 ? NL_ERR_CLAIM : 0;
	azp = claim_str(claims, "azp");
	if (azp == NULL || strcmp(azp, client_id) != 0)
		return NL_ERR_CLAIM;
	return 0;
}

/* OIDC Core 3.1.3.7 (3): a token listing audiences the client does not trust is refused. We trust
 * no audience but ourselves, so every member of an aud array must be client_id. Checked after azp,
 * so that "several audiences without (or with a wrong) azp" keeps its own word. */
static int check_aud_trusted(const json_t *claims, const char *client_id)
{
	const json_t *aud = json_object_get(claims, "aud"), *v;
	size_t i;

	if (!json_is_array(aud))
		return 0; /* a string aud was compared whole by check_aud */
	json_array_foreach(aud, i, v)
	{
		if (!json_is_string(v) || strlen(client_id) != json_string_length(v) ||
		    strcmp(json_string_value(v), client_id) != 0)
			return NL_ERR_CLAIM;
	}
	return 0;
}

/* An integer time claim; NL_ERR_CLAIM if absent or not an integer. */
static int time_claim(const json_t *claims, const char *name, json_int_t *out)
{
	const json_t *v = json_object_get(claims, name);

	if (!json_is_integer(v))
		return NL_ERR_CLAIM;
	*out = json_integer_value(v);
	return 0;
}

/* exp must be after now - skew (written so that no sum can overflow). */
static int check_exp(const json_t *claims, time_t now, long skew)
{
	json_int_t exp;

	if (time_claim(claims, "exp", &exp) != 0)
		return NL_ERR_CLAIM;
	if (exp <= (json_int_t)now - skew)
		return NL_ERR_EXPIRED;
	return 0;
}

/* iat must not be after now + skew. */
static int check_iat(const json_t *claims, time_t now, long skew)
{
	json_int_t iat;

	if (time_claim(claims, "iat", &iat) != 0)
		return NL_ERR_CLAIM;
	if (iat > (json_int_t)now + skew)
		return NL_ERR_CLAIM;
	return 0;
}

/* RFC 7519 4.1.5: a token must not be accepted before its nbf (if present); skew as for iat. */
static int check_nbf(const json_t *claims, time_t now, long skew)
{
	json_int_t nbf;

	if (json_object_get(claims, "nbf") == NULL)
		return 0;
	if (time_claim(claims, "nbf", &nbf) != 0 || nbf > (json_int_t)now + skew)
		return NL_ERR_CLAIM;
	return 0;
}

static int check_nonce(const json_t *claims, const char *want)
{
	const char *nonce = claim_str(claims, "nonce");

	if (nonce == NULL || *nonce == '\0' || strlen(nonce) > MAX_NONCE || *want == '\0')
		return NL_ERR_CLAIM;
	return nl_ct_streq(nonce, want) ? 0 : NL_ERR_CLAIM;
}

static int check_sub(const json_t *claims)
{
	const char *sub = claim_str(claims, "sub");

	if (sub == NULL || *sub == '\0' || strlen(sub) > MAX_SUB)
		return NL_ERR_CLAIM;
	return 0;
}

/* vot must equal one of the strings of the requested vtr array. A policy without a well-formed
 * vtr is a configuration error, and fails too. */
static int check_vot(const json_t *claims, const char *vtr, const char **vot_out)
{
	const char *vot = claim_str(claims, "vot");
	json_t *arr = NULL, *v;
	size_t i;
	int r = NL_ERR_CLAIM;

	if (vot == NULL || strlen(vot) > MAX_VOT)
		return NL_ERR_CLAIM;
	if (vtr == NULL || nl_json_parse(vtr, strlen(vtr), MAX_VTR_SIZE, 2, false, &arr, NULL, 0) != 0)
		return NL_ERR_CONFIG;
	if (!json_is_array(arr)) {
		r = NL_ERR_CONFIG;
		goto out;
	}
	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), vot) == 0 &&
		    json_string_length(v) == strlen(vot)) {
			*vot_out = vot;
			r = 0;
			break;
		}
	}
out:
	json_decref(arr);
	return r;
}

int nl_vot_level(const char *vot)
{
	size_t i, len;
	int level;

	if (vot == NULL)
		return -1;
	len = strlen(vot);
	/* "P" level, then one or more ".C" + credential letter; nothing else. */
	if (len < 5 || len > MAX_VOT || vot[0] != 'P')
		return -1;
	switch (vot[1]) {
	case '0':
		level = 0;
		break;
	case '5':
		level = 5;
		break;
	case '9':
		level = 9;
		break;
	default:
		return -1;
	}
	for (i = 2; i < len; i += 3) {
		if (len - i < 3 || vot[i] != '.' || vot[i + 1] != 'C' || vot[i + 2] < 'a' || vot[i + 2] > 'z')
			return -1;
	}
	return level;
}

/* The claims rules, after the signature has been verified. */
static int check_claims(const json_t *claims, const struct nl_idtoken_policy *p, long skew,
                        enum nl_idtoken_rule *rule)
{
	const char *vot = NULL;
	size_t n_aud = 0;
	int level, r;

	*rule = NL_RULE_ISS;
	if ((r = check_iss(claims, p)) != 0)
		return r;
	*rule = NL_RULE_AUD;
	if ((r = check_aud(claims, p->client_id, &n_aud)) != 0)
		return r;
	*rule = NL_RULE_AZP;
	if ((r = check_azp(claims, p->client_id, n_aud)) != 0)
		return r;
	*rule = NL_RULE_AUD;
	if ((r = check_aud_trusted(claims, p->client_id)) != 0)
		return r;
	*rule = NL_RULE_EXP;
	if ((r = check_exp(claims, p->now, skew)) != 0)
		return r;
	*rule = NL_RULE_IAT;
	if ((r = check_iat(claims, p->now, skew)) != 0)
		return r;
	*rule = NL_RULE_NBF;
	if ((r = check_nbf(claims, p->now, skew)) != 0)
		return r;
	/* Only the device grant has no nonce of ours to compare. */
	*rule = NL_RULE_NONCE;
	if (p->nonce != NULL && (r = check_nonce(claims, p->nonce)) != 0)
		return r;
	*rule = NL_RULE_SUB;
	if ((r = check_sub(claims)) != 0)
		return r;
	*rule = NL_RULE_VOT;
	if ((r = check_vot(claims, p->vtr, &vot)) != 0)
		return r;
	*rule = NL_RULE_LEVEL;
	level = nl_vot_level(vot);
	if (level < 0 || level < p->min_level)
		return NL_ERR_DENIED;
	*rule = NL_RULE_NONE;
	return 0;
}

int nl_idtoken_validate(const char *compact, size_t len, const struct nl_jwks *set,
                        const struct nl_idtoken_policy *p, json_t **claims, enum nl_idtoken_rule *rule)
{
	const char *algs[MAX_ALGS];
	enum nl_idtoken_rule failed = NL_RULE_FORMAT;
	const cjose_jwk_t *key = NULL;
	struct nl_jws *jws = NULL;
	size_t n_algs;
	long skew;
	int r = NL_ERR_INTERNAL;

	if (claims != NULL)
		*claims = NULL;
	if (compact == NULL || p == NULL || claims == NULL) {
		r = NL_ERR_INVALID;
		goto out;
	}
	if (len == 0 || len > NL_JWS_MAX || memchr(compact, '\0', len) != NULL) {
		r = len > NL_JWS_MAX ? NL_ERR_TOO_BIG : NL_ERR_INVALID;
		goto out;
	}
	/* A policy asking for more than 60 s gets 60 s; a negative one gets none. */
	skew = p->skew < 0 ? 0 : p->skew > MAX_SKEW ? MAX_SKEW : p->skew;

	n_algs = usable_algs(p, algs, MAX_ALGS);
	if (n_algs == 0) {
		failed = NL_RULE_ALG;
		r = NL_ERR_ALG;
		goto out;
	}
	if ((r = nl_jws_parse(compact, len, algs, n_algs, &jws)) != 0) {
		if (r == NL_ERR_ALG || header_alg_refused(compact, len, algs, n_algs)) {
			failed = NL_RULE_ALG;
			r = NL_ERR_ALG;
		}
		goto out;
	}
	if (jws->claims == NULL || !json_is_object(jws->claims)) {
		r = NL_ERR_INVALID;
		goto out;
	}

	failed = NL_RULE_KID;
	if (set == NULL) {
		r = NL_ERR_KEY;
		goto out;
	}
	if ((r = nl_jwks_select(set, jws->kid, jws->alg, &key)) != 0) {
		r = NL_ERR_KEY;
		goto out;
	}

	/* NL_ERR_KEY is reserved for "kid not in the set" (the caller refetches the JWKS on it); a
	 * key of the wrong type for alg is a signature failure. */
	failed = NL_RULE_SIGNATURE;
	if ((r = nl_jws_verify(jws, key)) != 0 || !jws->verified) {
		r = NL_ERR_SIGNATURE;
		goto out;
	}

	if ((r = check_claims(jws->claims, p, skew, &failed)) != 0)
		goto out;

	*claims = json_incref(jws->claims);
	failed = NL_RULE_NONE;
	r = 0;
out:
	if (rule != NULL)
		*rule = failed;
	nl_jws_free(jws);
	return r;
}
