/* libFuzzer target: the strict compact JWS parser and verifier (nl_jws_parse, nl_jws_verify_jwks)
 * against a fixed JWKS, and the JWT time and audience checks on whatever claims the parser kept. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_keys.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_log.h"

static struct nl_jwks *set;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	nl_log_open("fuzz_jws", NL_LOG_STDERR, false);
	if (nl_jwks_parse(FUZZ_JWKS, strlen(FUZZ_JWKS), &set) != 0 || nl_jwks_count(set) != 3)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const allowed[] = {"RS256", "RS512", "PS256", "ES256"};
	struct nl_jws *jws = NULL;
	int r;

	r = nl_jws_parse((const char *)data, size, allowed, sizeof(allowed) / sizeof(allowed[0]), &jws);
	if (r != 0) {
		if (jws != NULL) /* results are handed out only on success */
			abort();
		return 0;
	}
	if (jws->alg == NULL || jws->header == NULL || jws->verified)
		abort();
	r = nl_jws_verify_jwks(jws, set);
	if ((r == 0) != jws->verified)
		abort();
	if (jws->claims != NULL) {
		(void)nl_jwt_check_time(jws->claims, FUZZ_NOW, 60, false);
		(void)nl_jwt_check_time(jws->claims, FUZZ_NOW, 0, true);
		(void)nl_jwt_check_aud(jws->claims, FUZZ_CLIENT_ID);
		(void)nl_jwt_check_aud(jws->claims, "joe");
		(void)nl_jwt_str(jws->claims, "sub");
	}
	nl_jws_free(jws);
	return 0;
}
