/* libFuzzer target: key import from untrusted text - a JWKS document (nl_jwks_parse, then key
 * selection by kid and alg), a single JWK (nl_jwk_from_json) and PEM (nl_jwk_from_pem) - and the
 * export functions on whatever key came out. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_keys.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	nl_log_open("fuzz_jwks", NL_LOG_STDERR, false);
	return 0;
}

static void exercise_key(const cjose_jwk_t *k)
{
	char *s;

	free(nl_jwk_public_json(k, NULL));
	free(nl_jwk_public_json(k, "RS256"));
	free(nl_jwk_public_json(k, "ES256"));
	free(nl_jwk_public_pem(k));
	if ((s = nl_jwk_thumbprint(k)) != NULL && strlen(s) != 43) /* SHA-256, base64url */
		abort();
	free(s);
}

static void fuzz_set(const char *text, size_t len)
{
	static const char *const kids[] = {NULL, "fuzz-rsa", "fuzz-ec", "1", ""};
	static const char *const algs[] = {"RS256", "RS384", "RS512", "PS256", "ES256", "HS256", "none"};
	struct nl_jwks *set = NULL;
	const cjose_jwk_t *k;
	size_t i, j;

	if (nl_jwks_parse(text, len, &set) != 0) {
		if (set != NULL)
			abort();
		return;
	}
	if (nl_jwks_count(set) == 0 || nl_jwks_count(set) > NL_JWKS_MAX_KEYS)
		abort();
	for (i = 0; i < sizeof(kids) / sizeof(kids[0]); i++) {
		for (j = 0; j < sizeof(algs) / sizeof(algs[0]); j++) {
			k = NULL;
			if (nl_jwks_select(set, kids[i], algs[j], &k) == 0) {
				/* a symmetric or unknown alg must never find a key */
				if (k == NULL || !nl_jose_alg_known(algs[j]))
					abort();
				if (i == 0 && j == 0)
					exercise_key(k);
			}
		}
	}
	nl_jwks_free(set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	cjose_jwk_t *k = NULL;

	fuzz_set(text, size);
	if (nl_jwk_from_json(text, size, &k) == 0) {
		exercise_key(k);
		cjose_jwk_release(k);
	}
	/* OpenSSL 3's PEM decoders cost milliseconds a call even on garbage: only try text that
	 * could be PEM, so the JSON parsers keep their pace. */
	k = NULL;
	if (memmem(text, size, "-----BEGIN ", 11) != NULL && nl_jwk_from_pem(text, size, &k) == 0) {
		exercise_key(k);
		cjose_jwk_release(k);
	}
	return 0;
}
