/* JWT claim checks (RFC 7519: exp, iat, nbf, aud, azp) and the private_key_jwt client assertion
 * (RFC 7523). */
#include "config.h"
#include "nl_jose_int.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_wipe.h"

#include <limits.h>
#include <string.h>

/* ---- JWT claims ------------------------------------------------------------------------------- */

/* An integer NumericDate. Real numbers are refused: 1.5e9 or 1e300 are not worth the ambiguity. */
static int claim_time(const json_t *claims, const char *name, bool required, long long *out, bool *present)
{
	json_t *v = json_object_get(claims, name);

	*present = v != NULL;
	if (v == NULL)
		return required ? NL_ERR_CLAIM : 0;
	if (!json_is_integer(v))
		return NL_ERR_CLAIM;
	*out = json_integer_value(v);
	return 0;
}

int nl_jwt_check_time(const json_t *claims, time_t now, long skew, bool require_iat)
{
	long long exp = 0, iat = 0, nbf = 0, t = (long long)now;
	bool has_exp, has_iat, has_nbf;
	int r;

	if (!json_is_object(claims) || skew < 0 || skew > 86400 || t < 0 || t > LLONG_MAX / 2)
		return NL_ERR_CLAIM;
	if ((r = claim_time(claims, "exp", true, &exp, &has_exp)) != 0 ||
	    (r = claim_time(claims, "iat", require_iat, &iat, &has_iat)) != 0 ||
	    (r = claim_time(claims, "nbf", false, &nbf, &has_nbf)) != 0)
		return r;
	/* now < exp + skew, written so that no sum can overflow. */
	if (exp <= t - skew)
		return NL_ERR_EXPIRED;
	if (has_iat && iat > t + skew)
		return NL_ERR_CLAIM;
	if (has_nbf && nbf > t + skew)
		return NL_ERR_CLAIM;
	return 0;
}

int nl_jwt_check_aud(const json_t *claims, const char *audience)
{
	const json_t *aud = json_object_get(claims, "aud"), *azp = json_object_get(claims, "azp"), *v;
	bool found = false;
	size_t i;

	if (!json_is_object(claims) || audience == NULL || *audience == '\0')
		return NL_ERR_CLAIM;
	if (azp != NULL && (!json_is_string(azp) || strcmp(json_string_value(azp), audience) != 0))
		return NL_ERR_CLAIM;
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), audience) == 0 ? 0 : NL_ERR_CLAIM;
	if (!json_is_array(aud) || json_array_size(aud) == 0)
		return NL_ERR_CLAIM;
	json_array_foreach(aud, i, v)
	{
		if (!json_is_string(v))
			return NL_ERR_CLAIM;
		if (strcmp(json_string_value(v), audience) == 0)
			found = true;
	}
	if (!found)
		return NL_ERR_CLAIM;
	/* Several audiences: the token must say it was issued to us (OIDC Core §3.1.3.7). */
	if (json_array_size(aud) > 1 && azp == NULL)
		return NL_ERR_CLAIM;
	return 0;
}

const char *nl_jwt_str(const json_t *claims, const char *name)
{
	return nl_json_str(claims, name);
}

/* ---- client assertion ------------------------------------------------------------------------- */

int nl_client_assertion(const cjose_jwk_t *key, const char *alg, const char *kid, const char *client_id,
                        const char *audience, time_t now, long lifetime, char **out)
{
	json_t *claims = NULL;
	char *jti = NULL;
	int r;

	if (out == NULL || client_id == NULL || *client_id == '\0' || audience == NULL || *audience == '\0')
		return NL_ERR_INVALID;
	if (lifetime < 1 || lifetime > NL_ASSERTION_MAX_LIFETIME || now < 0)
		return NL_ERR_INVALID;
	if ((r = nl_random_token(NL_JTI_BYTES, &jti)) != 0)
		return r;
	claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", client_id, "sub", client_id, "aud",
	                   audience, "jti", jti, "iat", (json_int_t)now, "exp", (json_int_t)now + lifetime);
	if (claims == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	r = nl_jws_sign(key, alg, kid, claims, out);
out:
	json_decref(claims);
	nl_free_secret(jti);
	return r;
}
