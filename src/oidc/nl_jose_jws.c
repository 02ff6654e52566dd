/* Compact JWS (RFC 7515 7.1): the strict parser, verification and signing. The alg decision comes
 * before any key is touched; cjose signs. */
#include "config.h"
#include "nl_jose_int.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_wipe.h"

#include <stdlib.h>
#include <string.h>

/* ---- compact JWS ----------------------------------------------------------------------------- */

/* What the public struct does not show: the decoded signature length, checked against the key. */
struct jws_full {
	struct nl_jws pub;
	size_t sig_len;
};

void nl_jws_free(struct nl_jws *jws)
{
	struct jws_full *f = (struct jws_full *)jws;

	if (jws == NULL)
		return;
	free(jws->alg);
	free(jws->kid);
	free(jws->typ);
	json_decref(jws->header);
	json_decref(jws->claims);
	cjose_jws_release(jws->cj);
	nl_wipe(f, sizeof(*f));
	free(f);
}

/* Header members we never honour: crit (extensions we cannot promise to understand) and every way
 * for a token to name its own key. */
static const char *const refused_headers[] = {"crit", "jku", "jwk", "x5u", "x5c"};

static int jws_check_header(struct nl_jws *jws, const char *const *allowed, size_t n_allowed)
{
	const json_t *kid = json_object_get(jws->header, "kid"), *typ = json_object_get(jws->header, "typ");
	const char *alg = nl_json_str(jws->header, "alg");
	bool listed = false;
	size_t i;

	if (alg == NULL)
		return NL_ERR_ALG;
	for (i = 0; allowed != NULL && i < n_allowed; i++)
		if (allowed[i] != NULL && strcmp(allowed[i], alg) == 0)
			listed = true;
	/* Listed is not enough: none, HS* and anything we do not know stay refused. */
	if (!listed || nl_jose_alg_lookup(alg) == NULL)
		return NL_ERR_ALG;
	for (i = 0; i < sizeof(refused_headers) / sizeof(refused_headers[0]); i++)
		if (json_object_get(jws->header, refused_headers[i]) != NULL)
			return NL_ERR_INVALID;
	if ((kid != NULL && !json_is_string(kid)) || (typ != NULL && !json_is_string(typ)))
		return NL_ERR_INVALID;
	if ((jws->alg = strdup(alg)) == NULL ||
	    (kid != NULL && (jws->kid = strdup(json_string_value(kid))) == NULL) ||
	    (typ != NULL && (jws->typ = strdup(json_string_value(typ))) == NULL))
		return NL_ERR_NOMEM;
	return 0;
}

/* A payload that looks like a JSON object must be one (no duplicate keys); anything else is an
 * opaque payload and leaves claims NULL. */
static int jws_parse_claims(struct nl_jws *jws, const uint8_t *payload, size_t len)
{
	size_t i = 0;

	while (i < len &&
	       (payload[i] == ' ' || payload[i] == '\t' || payload[i] == '\r' || payload[i] == '\n'))
		i++;
	if (i == len || payload[i] != '{')
		return 0;
	return nl_json_parse((const char *)payload, len, NL_JWS_MAX, NL_JSON_MAX_DEPTH, true, &jws->claims,
	                     NULL, 0);
}

int nl_jws_parse(const char *compact, size_t len, const char *const *allowed, size_t n_allowed,
                 struct nl_jws **out)
{
	struct jws_full *f = NULL;
	const char *part[3];
	size_t plen[3], i, dots = 0;
	uint8_t *hdr = NULL, *payload = NULL, *sig = NULL;
	size_t hdr_len = 0, payload_len = 0;
	cjose_err cerr;
	int r = NL_ERR_INVALID;

	if (compact == NULL || out == NULL)
		return NL_ERR_INVALID;
	if (len > NL_JWS_MAX)
		return NL_ERR_TOO_BIG;
	/* Exactly three non-empty parts. */
	part[0] = compact;
	for (i = 0; i < len; i++) {
		if (compact[i] != '.')
			continue;
		if (++dots > 2)
			return NL_ERR_INVALID;
		part[dots] = compact + i + 1;
	}
	if (dots != 2)
		return NL_ERR_INVALID;
	plen[0] = (size_t)(part[1] - part[0]) - 1;
	plen[1] = (size_t)(part[2] - part[1]) - 1;
	plen[2] = (size_t)(compact + len - part[2]);
	if (plen[0] == 0 || plen[1] == 0 || plen[2] == 0)
		return NL_ERR_INVALID;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NL_ERR_NOMEM;
	/* Canonical base64url in every part (no padding, whitespace or stray bits), so that what
	 * cjose decodes is exactly what was signed. */
	if ((r = nl_b64url_decode(part[0], plen[0], &hdr, &hdr_len)) != 0 ||
	    (r = nl_b64url_decode(part[1], plen[1], &payload, &payload_len)) != 0 ||
	    (r = nl_b64url_decode(part[2], plen[2], &sig, &f->sig_len)) != 0)
		goto out;
	if ((r = nl_json_parse((const char *)hdr, hdr_len, NL_JWS_MAX, NL_JSON_MAX_DEPTH, true,
	                       &f->pub.header, NULL, 0)) != 0)
		goto out;
	/* The alg decision comes before any key or signature work. */
	if ((r = jws_check_header(&f->pub, allowed, n_allowed)) != 0)
		goto out;
	if ((r = jws_parse_claims(&f->pub, payload, payload_len)) != 0)
		goto out;
	if ((f->pub.cj = cjose_jws_import(compact, len, &cerr)) == NULL) {
		r = NL_ERR_INVALID;
		goto out;
	}
	*out = &f->pub;
	f = NULL;
	r = 0;
out:
	free(hdr);
	nl_free_secret_buf(payload, payload_len);
	free(sig);
	nl_jws_free(f == NULL ? NULL : &f->pub);
	return r;
}

int nl_jws_verify(struct nl_jws *jws, const cjose_jwk_t *key)
{
	struct jws_full *f = (struct jws_full *)jws;
	const struct alg_info *a;
	size_t want = 0;
	cjose_err cerr;
	int r;

	if (jws == NULL || jws->cj == NULL)
		return NL_ERR_INVALID;
	jws->verified = false;
	if ((a = nl_jose_alg_lookup(jws->alg)) == NULL)
		return NL_ERR_ALG;
	if (key == NULL)
		return NL_ERR_KEY;
	if ((r = nl_jose_key_fits(key, a, &want)) != 0)
		return r;
	/* cjose 0.6.2 does not insist on the exact signature length (its ECDSA path splits whatever it
	 * gets in half; older PSS code reads RSA_size bytes): we do, so no odd length reaches it. */
	if (f->sig_len != want)
		return NL_ERR_SIGNATURE;
	if (!cjose_jws_verify(jws->cj, key, &cerr))
		return NL_ERR_SIGNATURE;
	jws->verified = true;
	return 0;
}

int nl_jws_verify_jwks(struct nl_jws *jws, const struct nl_jwks *set)
{
	const cjose_jwk_t *key = NULL;
	int r;

	if (jws == NULL)
		return NL_ERR_INVALID;
	jws->verified = false;
	if ((r = nl_jwks_select(set, jws->kid, jws->alg, &key)) != 0)
		return r;
	return nl_jws_verify(jws, key);
}

int nl_jws_sign(const cjose_jwk_t *key, const char *alg, const char *kid, const json_t *claims, char **out)
{
	const struct alg_info *a = nl_jose_alg_lookup(alg);
	cjose_header_t *hdr = NULL;
	cjose_jws_t *cj = NULL;
	const char *ser = NULL;
	uint8_t *plain = NULL;
	size_t want = 0, plain_len = 0;
	char *payload = NULL, *s = NULL;
	cjose_err cerr;
	int r;

	if (a == NULL)
		return NL_ERR_ALG;
	if (!json_is_object(claims) || out == NULL)
		return NL_ERR_INVALID;
	if ((r = nl_jose_key_fits(key, a, &want)) != 0)
		return r;
	r = NL_ERR_NOMEM;
	if ((payload = nl_json_dump(claims)) == NULL || (hdr = cjose_header_new(&cerr)) == NULL)
		goto out;
	if (!cjose_header_set(hdr, CJOSE_HDR_ALG, a->name, &cerr) ||
	    !cjose_header_set(hdr, "typ", "JWT", &cerr) ||
	    (kid != NULL && !cjose_header_set(hdr, CJOSE_HDR_KID, kid, &cerr)))
		goto out;
	/* Fails for a key without its private half. */
	if ((cj = cjose_jws_sign(key, hdr, (const uint8_t *)payload, strlen(payload), &cerr)) == NULL) {
		r = NL_ERR_KEY;
		goto out;
	}
	if (!cjose_jws_export(cj, &ser, &cerr) || (s = strdup(ser)) == NULL)
		goto out;
	*out = s;
	r = 0;
out:
	/* cjose frees its copies of the payload and serialization without wiping them. */
	if (ser != NULL)
		nl_wipe((char *)ser, strlen(ser));
	if (cj != NULL && cjose_jws_get_plaintext(cj, &plain, &plain_len, &cerr))
		nl_wipe(plain, plain_len);
	cjose_jws_release(cj);
	cjose_header_release(hdr);
	nl_free_secret(payload);
	return r;
}

