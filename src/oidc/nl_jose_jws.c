/* Compact JWS (RFC 7515 7.1): the strict parser, verification and signing. The alg decision comes
 * before any key is touched; cjose signs. */
#include "config.h"
#include "nl_jose_int.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_wipe.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <stdlib.h>
#include <string.h>

/* ---- compact JWS ----------------------------------------------------------------------------- */

/* What the public struct does not show: the signing input (header.payload as received, kept in the
 * same allocation) and the decoded signature, verified by OpenSSL EVP directly (no second parse). */
struct jws_full {
	struct nl_jws pub;
	uint8_t *sig;
	size_t sig_len;
	size_t input_len;
	char input[]; /* input_len bytes and a NUL */
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
	free(f->sig);
	/* The payload is an ID token's claims: personal data. */
	nl_wipe(f, sizeof(*f) + f->input_len + 1);
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
	return nl_jose_json_parse((const char *)payload, len, NL_JWS_MAX, &jws->claims);
}

/* Split a compact JWS into exactly three non-empty parts: part[i] and plen[i]. */
static int jws_split(const char *compact, size_t len, const char *part[3], size_t plen[3])
{
	const char *dot1, *dot2;

	if ((dot1 = memchr(compact, '.', len)) == NULL)
		return NL_ERR_INVALID;
	if ((dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - compact))) == NULL ||
	    memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - compact)) != NULL)
		return NL_ERR_INVALID;
	part[0] = compact;
	part[1] = dot1 + 1;
	part[2] = dot2 + 1;
	plen[0] = (size_t)(dot1 - compact);
	plen[1] = (size_t)(dot2 - part[1]);
	plen[2] = (size_t)(compact + len - part[2]);
	return plen[0] == 0 || plen[1] == 0 || plen[2] == 0 ? NL_ERR_INVALID : 0;
}

int nl_jws_parse(const char *compact, size_t len, const char *const *allowed, size_t n_allowed,
                 struct nl_jws **out)
{
	struct jws_full *f = NULL;
	const char *part[3];
	size_t plen[3];
	uint8_t *hdr = NULL, *payload = NULL;
	size_t hdr_len = 0, payload_len = 0;
	int r;

	if (compact == NULL || out == NULL)
		return NL_ERR_INVALID;
	if (len > NL_JWS_MAX)
		return NL_ERR_TOO_BIG;
	if ((r = jws_split(compact, len, part, plen)) != 0)
		return r;
	if ((f = calloc(1, sizeof(*f) + plen[0] + 1 + plen[1] + 1)) == NULL)
		return NL_ERR_NOMEM;
	f->input_len = plen[0] + 1 + plen[1];
	memcpy(f->input, compact, f->input_len);
	/* Canonical base64url in every part (no padding, whitespace or stray bits): what we read is
	 * exactly what was signed. */
	if ((r = nl_b64url_decode(part[0], plen[0], &hdr, &hdr_len)) != 0 ||
	    (r = nl_b64url_decode(part[1], plen[1], &payload, &payload_len)) != 0 ||
	    (r = nl_b64url_decode(part[2], plen[2], &f->sig, &f->sig_len)) != 0)
		goto out;
	if ((r = nl_jose_json_parse((const char *)hdr, hdr_len, NL_JWS_MAX, &f->pub.header)) != 0)
		goto out;
	/* The alg decision comes before any key or signature work. */
	if ((r = jws_check_header(&f->pub, allowed, n_allowed)) != 0)
		goto out;
	if ((r = jws_parse_claims(&f->pub, payload, payload_len)) != 0)
		goto out;
	*out = &f->pub;
	f = NULL;
out:
	free(hdr);
	nl_free_secret_buf(payload, payload_len);
	nl_jws_free(f == NULL ? NULL : &f->pub);
	return r;
}

/* ---- verification (OpenSSL EVP) --------------------------------------------------------------- */

/* One DER INTEGER of a big-endian unsigned number: leading zeros dropped, a zero octet added when
 * the top bit is set. Writes at most n + 3 bytes. */
static size_t der_uint(uint8_t *p, const uint8_t *v, size_t n)
{
	size_t pad;

	while (n > 1 && v[0] == 0)
		v++, n--;
	pad = (v[0] & 0x80) != 0;
	p[0] = 0x02;
	p[1] = (uint8_t)(n + pad);
	p[2] = 0;
	memcpy(p + 2 + pad, v, n);
	return 2 + pad + n;
}

/* JWS carries ES256 as r || s, 32 octets each (RFC 7518 3.4); EVP wants the DER ECDSA-Sig-Value
 * SEQUENCE { r INTEGER, s INTEGER }. rs is 64 bytes (checked by the caller); der has 72. */
static size_t ecdsa_der(const uint8_t *rs, uint8_t der[2 + 2 * (NL_P256_BYTES + 3)])
{
	size_t n = 2;

	n += der_uint(der + n, rs, NL_P256_BYTES);
	n += der_uint(der + n, rs + NL_P256_BYTES, NL_P256_BYTES);
	der[0] = 0x30;
	der[1] = (uint8_t)(n - 2);
	return n;
}

EVP_MD_CTX *nl_jose_verify_ctx_new(EVP_PKEY *pkey, const struct alg_info *a)
{
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *ctx;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return NULL;
	/* PSS: MGF1 with the same hash and a salt as long as the hash (RFC 7518 3.5). */
	if (EVP_DigestVerifyInit(ctx, &pctx, nl_jose_md(a), NULL, pkey) != 1 ||
	    (a->kind == SIG_PSS && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	                            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))) {
		EVP_MD_CTX_free(ctx);
		ERR_clear_error();
		return NULL;
	}
	return ctx;
}

EVP_MD_CTX *nl_jose_verify_ctx_copy(const EVP_MD_CTX *ready)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx != NULL && EVP_MD_CTX_copy_ex(ctx, ready) != 1) {
		EVP_MD_CTX_free(ctx);
		ERR_clear_error();
		return NULL;
	}
	return ctx;
}

/* The second half: the signature over the signing input, with an initialised context (freed). */
static int jws_verify_ctx(const struct jws_full *f, const struct alg_info *a, EVP_MD_CTX *ctx)
{
	uint8_t der[2 + 2 * (NL_P256_BYTES + 3)];
	const uint8_t *sig = f->sig;
	size_t sig_len = f->sig_len;
	int ok;

	if (a->kind == SIG_ECDSA) {
		sig_len = ecdsa_der(f->sig, der);
		sig = der;
	}
	ok = EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)f->input, f->input_len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		ERR_clear_error();
	return ok ? 0 : NL_ERR_SIGNATURE;
}

/* A context for key and a when no set has one ready (a client's own key, a test's). */
static EVP_MD_CTX *verify_ctx_of_key(const cjose_jwk_t *key, const struct alg_info *a)
{
	struct pubkey pk;
	EVP_PKEY *pkey;
	EVP_MD_CTX *ctx;

	if (nl_jose_pubkey_get(key, &pk) != 0)
		return NULL;
	pkey = nl_jose_pkey_from_pubkey(&pk);
	nl_jose_pubkey_free(&pk);
	if (pkey == NULL)
		return NULL;
	ctx = nl_jose_verify_ctx_new(pkey, a);
	EVP_PKEY_free(pkey);
	return ctx;
}

/* Verify with key; ready is its initialised context for the alg if the caller has it at hand. */
static int jws_verify_key(struct nl_jws *jws, const cjose_jwk_t *key, const EVP_MD_CTX *ready)
{
	struct jws_full *f = (struct jws_full *)jws;
	const struct alg_info *a;
	EVP_MD_CTX *ctx;
	size_t want = 0;
	int r;

	if (jws == NULL || jws->alg == NULL)
		return NL_ERR_INVALID;
	jws->verified = false;
	if ((a = nl_jose_alg_lookup(jws->alg)) == NULL)
		return NL_ERR_ALG;
	if (key == NULL)
		return NL_ERR_KEY;
	if ((r = nl_jose_key_fits(key, a, &want)) != 0)
		return r;
	/* The exact signature length of alg and key: for ES256 the r || s split depends on it. */
	if (f->sig_len != want)
		return NL_ERR_SIGNATURE;
	if (ready != NULL)
		ctx = nl_jose_verify_ctx_copy(ready);
	else if ((ctx = nl_jose_jwks_verify_ctx(key, a)) == NULL)
		ctx = verify_ctx_of_key(key, a);
	if (ctx == NULL)
		return NL_ERR_KEY;
	r = jws_verify_ctx(f, a, ctx);
	jws->verified = r == 0;
	return r;
}

int nl_jws_verify(struct nl_jws *jws, const cjose_jwk_t *key)
{
	return jws_verify_key(jws, key, NULL);
}

int nl_jws_verify_jwks(struct nl_jws *jws, const struct nl_jwks *set)
{
	const EVP_MD_CTX *ready = NULL;
	const cjose_jwk_t *key = NULL;
	int r;

	if (jws == NULL)
		return NL_ERR_INVALID;
	jws->verified = false;
	if ((r = nl_jose_jwks_choose(set, jws->kid, jws->alg, &key, &ready)) != 0)
		return r;
	return jws_verify_key(jws, key, ready);
}

/* ---- signing (cjose) -------------------------------------------------------------------------- */

int nl_jws_sign(const cjose_jwk_t *key, const char *alg, const char *kid, const json_t *claims, char **out)
{
	return nl_jws_sign_typed(key, alg, kid, "JWT", claims, out);
}

int nl_jws_sign_typed(const cjose_jwk_t *key, const char *alg, const char *kid, const char *typ,
                      const json_t *claims, char **out)
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
	    (typ != NULL && !cjose_header_set(hdr, "typ", typ, &cerr)) ||
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
