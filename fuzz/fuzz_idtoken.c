/* libFuzzer target: ID token validation (nl_idtoken_validate) with a fixed policy and JWKS.
 * First byte '1' (any odd byte): the rest is a payload that this target signs (ES256, kid chosen by
 * the byte's bits), so fuzzed claims reach the rules behind the signature. Otherwise the rest is a
 * compact token as it would come from the provider. */
#include "config.h"

#include <cjose/cjose.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_keys.h"
#include "idtoken.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_log.h"

static struct nl_jwks *set;
static cjose_jwk_t *signer;
static bool verbose; /* NL_FUZZ_VERBOSE=1: say what each input did (for reproducing) */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	nl_log_open("fuzz_idtoken", NL_LOG_STDERR, false);
	verbose = getenv("NL_FUZZ_VERBOSE") != NULL;
	if (nl_jwks_parse(FUZZ_JWKS, strlen(FUZZ_JWKS), &set) != 0 ||
	    nl_jwk_from_json(FUZZ_EC_PRIVATE_JWK, strlen(FUZZ_EC_PRIVATE_JWK), &signer) != 0)
		abort();
	return 0;
}

/* A compact ES256 JWS over payload, header {"alg":"ES256"} plus a kid picked by mode. New string. */
static char *sign_payload(uint8_t mode, const uint8_t *payload, size_t len)
{
	static const char *const kids[] = {"fuzz-ec", NULL, "fuzz-rsa", "unknown"};
	const char *kid = kids[(mode >> 1) & 3], *ser = NULL;
	cjose_header_t *h = NULL;
	cjose_jws_t *jws = NULL;
	cjose_err cerr;
	char *out = NULL;

	if ((h = cjose_header_new(&cerr)) == NULL || !cjose_header_set(h, CJOSE_HDR_ALG, "ES256", &cerr) ||
	    (kid != NULL && !cjose_header_set(h, CJOSE_HDR_KID, kid, &cerr)) ||
	    ((mode & 8) != 0 && !cjose_header_set(h, "typ", "JWT", &cerr)))
		goto out;
	/* cjose refuses an empty payload; the parser refuses it anyway. */
	if (len == 0 || (jws = cjose_jws_sign(signer, h, payload, len, &cerr)) == NULL ||
	    !cjose_jws_export(jws, &ser, &cerr))
		goto out;
	out = strdup(ser);
out:
	cjose_jws_release(jws);
	cjose_header_release(h);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const algs[] = {"RS512", "ES256", "none", "HS256"};
	const struct nl_idtoken_policy pol = {
	    .issuer = FUZZ_ISSUER,
	    .client_id = FUZZ_CLIENT_ID,
	    .allowed_algs = algs,
	    .n_allowed_algs = sizeof(algs) / sizeof(algs[0]),
	    .nonce = FUZZ_NONCE,
	    .vtr = FUZZ_VTR,
	    .min_level = 9,
	    .skew = 60,
	    .now = FUZZ_NOW,
	};
	enum nl_idtoken_rule rule = NL_RULE_NONE;
	json_t *claims = NULL;
	char *signed_token = NULL;
	const char *token;
	size_t len;
	int r;

	if (size < 1)
		return 0;
	if ((data[0] & 1) != 0) {
		if ((signed_token = sign_payload(data[0], data + 1, size - 1)) == NULL)
			return 0;
		token = signed_token;
		len = strlen(signed_token);
	} else {
		token = (const char *)data + 1;
		len = size - 1;
	}
	r = nl_idtoken_validate(token, len, set, &pol, &claims, &rule);
	if (verbose)
		fprintf(stderr, "fuzz_idtoken: %s token: %s (rule %s)\n",
		        signed_token != NULL ? "signed" : "raw", nl_strerror(r), nl_idtoken_rule_word(rule));
	/* Fail closed: claims only with success, a named rule with every failure. */
	if ((r == 0) != (claims != NULL) || (r == 0) != (rule == NL_RULE_NONE))
		abort();
	if (r == 0 && (nl_jwt_str(claims, "sub") == NULL || nl_vot_level(nl_jwt_str(claims, "vot")) < 9))
		abort();
	json_decref(claims);
	free(signed_token);
	return 0;
}
