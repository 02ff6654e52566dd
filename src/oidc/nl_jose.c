/* JOSE on cjose and OpenSSL 3: the algorithms this layer does, JWK import from JSON with the RFC 7517/7518
 * checks of its public parameters, and key export as public JWK and RFC 7638 thumbprint. The JWKS, JWS,
 * PEM and JWT parts live in nl_jose_jwks.c, nl_jose_jws.c, nl_jose_pem.c and nl_jose_jwt.c. */
#include "config.h"
#include "nl_jose_int.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_wipe.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- algorithms ---------------------------------------------------------------------------- */

/* The only algorithms this layer signs or verifies. none, HS* (a public key must never become an
 * HMAC secret), PS384/512, ES384/512 and everything else are absent on purpose. */
static const struct alg_info known_algs[NL_JOSE_N_ALGS] = {
    {"RS256", FAM_RSA, SIG_PKCS1, "SHA256", 0},     {"RS384", FAM_RSA, SIG_PKCS1, "SHA384", 1},
    {"RS512", FAM_RSA, SIG_PKCS1, "SHA512", 2},     {"PS256", FAM_RSA, SIG_PSS, "SHA256", 3},
    {"ES256", FAM_EC_P256, SIG_ECDSA, "SHA256", 4},
};
#define N_ALGS NL_JOSE_N_ALGS

static EVP_MD *fetched_md[N_ALGS];
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

/* Kept for the life of the process; a failed fetch leaves NULL and the implicit fetch serves. */
static void fetch_mds(void)
{
	size_t i;

	for (i = 0; i < N_ALGS; i++)
		fetched_md[i] = EVP_MD_fetch(NULL, known_algs[i].md, NULL);
	ERR_clear_error();
}

const EVP_MD *nl_jose_md(const struct alg_info *a)
{
	if (pthread_once(&fetch_once, fetch_mds) == 0 && a->idx < N_ALGS && fetched_md[a->idx] != NULL)
		return fetched_md[a->idx];
	return EVP_get_digestbyname(a->md);
}

const struct alg_info *nl_jose_alg_lookup(const char *alg)
{
	size_t i;

	if (alg == NULL)
		return NULL;
	for (i = 0; i < N_ALGS; i++)
		if (strcmp(known_algs[i].name, alg) == 0)
			return &known_algs[i];
	return NULL;
}

const struct alg_info *nl_jose_alg_at(size_t i)
{
	return &known_algs[i < N_ALGS ? i : 0];
}

bool nl_jose_alg_known(const char *alg)
{
	return nl_jose_alg_lookup(alg) != NULL;
}

/* ---- public parameters of a key ------------------------------------------------------------ */

void nl_jose_pubkey_free(struct pubkey *pk)
{
	json_decref(pk->obj);
	memset(pk, 0, sizeof(*pk));
}

/* Number of significant bits in a big-endian unsigned integer. */
static size_t be_bits(const uint8_t *p, size_t len)
{
	size_t i = 0, bits;
	uint8_t top;

	while (i < len && p[i] == 0)
		i++;
	if (i == len)
		return 0;
	bits = (len - i) * 8;
	for (top = p[i]; (top & 0x80) == 0; top <<= 1)
		bits--;
	return bits;
}

static int b64_len(const char *s, size_t *len, size_t *bits)
{
	uint8_t *raw = NULL;
	size_t n = 0;
	int r;

	if (s == NULL)
		return NL_ERR_KEY;
	if ((r = nl_b64url_decode(s, strlen(s), &raw, &n)) != 0)
		return r == NL_ERR_NOMEM ? r : NL_ERR_KEY;
	if (len != NULL)
		*len = n;
	if (bits != NULL)
		*bits = be_bits(raw, n);
	free(raw);
	return 0;
}

int nl_jose_pubkey_get(const cjose_jwk_t *jwk, struct pubkey *pk)
{
	cjose_err cerr;
	char *json = NULL;
	size_t xl = 0, yl = 0;
	int r = NL_ERR_KEY;

	memset(pk, 0, sizeof(*pk));
	if (jwk == NULL)
		return NL_ERR_KEY;
	if ((json = cjose_jwk_to_json(jwk, false, &cerr)) == NULL)
		return NL_ERR_KEY;
	if ((pk->obj = json_loads(json, 0, NULL)) == NULL)
		goto out;
	switch (cjose_jwk_get_kty(jwk, &cerr)) {
	case CJOSE_JWK_KTY_RSA:
		pk->fam = FAM_RSA;
		pk->n = nl_json_str(pk->obj, "n");
		pk->e = nl_json_str(pk->obj, "e");
		if ((r = b64_len(pk->e, NULL, NULL)) != 0 || (r = b64_len(pk->n, NULL, &pk->bits)) != 0)
			goto out;
		break;
	case CJOSE_JWK_KTY_EC:
		pk->fam = FAM_EC_P256;
		pk->x = nl_json_str(pk->obj, "x");
		pk->y = nl_json_str(pk->obj, "y");
		if (cjose_jwk_EC_get_curve(jwk, &cerr) != CJOSE_JWK_EC_P_256)
			goto out;
		if ((r = b64_len(pk->x, &xl, NULL)) != 0 || (r = b64_len(pk->y, &yl, NULL)) != 0)
			goto out;
		if (xl != NL_P256_BYTES || yl != NL_P256_BYTES) {
			r = NL_ERR_KEY;
			goto out;
		}
		break;
	default:
		goto out;
	}
	r = 0;
out:
	free(json);
	if (r != 0)
		nl_jose_pubkey_free(pk);
	return r;
}

/* Does key suit alg? Also the exact signature length that alg and key produce. Called on every
 * sign and verify, so it reads the key's type and size from cjose directly (exporting the key as
 * JSON and parsing it back here cost as much as the RSA verification itself). The RSA size is
 * cjose's, RSA_size() * 8: the modulus rounded up to whole bytes. */
int nl_jose_key_fits(const cjose_jwk_t *jwk, const struct alg_info *a, size_t *sig_len)
{
	cjose_err cerr;
	size_t bits;

	if (jwk == NULL)
		return NL_ERR_KEY;
	switch (cjose_jwk_get_kty(jwk, &cerr)) {
	case CJOSE_JWK_KTY_RSA:
		bits = cjose_jwk_get_keysize(jwk, &cerr);
		if (a->fam != FAM_RSA || bits < NL_RSA_MIN_BITS || cjose_jwk_get_keydata(jwk, &cerr) == NULL)
			return NL_ERR_KEY;
		*sig_len = (bits + 7) / 8;
		return 0;
	case CJOSE_JWK_KTY_EC:
		if (a->fam != FAM_EC_P256 || cjose_jwk_EC_get_curve(jwk, &cerr) != CJOSE_JWK_EC_P_256 ||
		    cjose_jwk_get_keydata(jwk, &cerr) == NULL)
			return NL_ERR_KEY;
		*sig_len = 2 * NL_P256_BYTES;
		return 0;
	default:
		return NL_ERR_KEY;
	}
}

/* ---- JWK from JSON -------------------------------------------------------------------------- */

/* jansson frees strings without wiping them: overwrite the private members of a parsed JWK first. */
void nl_jose_jwk_wipe_private(json_t *obj)
{
	static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"};
	size_t i;

	for (i = 0; i < sizeof(priv) / sizeof(priv[0]); i++) {
		json_t *v = json_object_get(obj, priv[i]);
		if (json_is_string(v))
			nl_wipe((char *)json_string_value(v), json_string_length(v));
	}
}

/* RFC 7518 6.3.2: an RSA key's p, q, dp, dq and qi come all together (non-empty strings) or not
 * at all. cjose 0.6 leaks the numbers of a partial set (found by fuzz/fuzz_jwks). */
static bool rsa_crt_complete(const json_t *obj)
{
	static const char *const crt[] = {"p", "q", "dp", "dq", "qi"};
	const json_t *v;
	size_t i, n = 0;

	for (i = 0; i < sizeof(crt) / sizeof(crt[0]); i++) {
		if ((v = json_object_get(obj, crt[i])) == NULL)
			continue;
		if (!json_is_string(v) || json_string_length(v) == 0)
			return false;
		n++;
	}
	return n == 0 || n == sizeof(crt) / sizeof(crt[0]);
}

/* The members cjose decodes must be strict base64url strings before cjose sees them: cjose 0.6
 * aborts the process (an assert in its decoder) on some malformed values, e.g. '=' after 4k+1
 * characters (found by fuzz/fuzz_jwks). */
static int jwk_numbers_b64url(const json_t *obj)
{
	static const char *const nums[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi", "x", "y"};
	const json_t *v;
	uint8_t *raw;
	size_t i, n;
	int r;

	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if ((v = json_object_get(obj, nums[i])) == NULL)
			continue;
		raw = NULL;
		n = 0;
		if (!json_is_string(v))
			return NL_ERR_KEY;
		if ((r = nl_b64url_decode(json_string_value(v), json_string_length(v), &raw, &n)) != 0)
			return r == NL_ERR_NOMEM ? r : NL_ERR_KEY;
		nl_free_secret_buf(raw, n); /* d, p, q, ... are private */
	}
	return 0;
}

/* Why OpenSSL or cjose failed: NL_ERR_NOMEM if it ran out of memory (a key is never left out of a
 * set for that), else otherwise. Clears OpenSSL's error queue. */
static int lib_failure(int otherwise)
{
	unsigned long e;
	int r = otherwise;

	while ((e = ERR_get_error()) != 0)
		if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
			r = NL_ERR_NOMEM;
	return r;
}

/* ---- the public parameters of a JWK, as RFC 7518 and RFC 8017 define them ------------------- */

/* A Base64urlUInt member (RFC 7518 2): present, canonical base64url (no padding, nothing outside
 * the alphabet, no stray bits: nl_b64url_decode), at least one octet, and the minimum number of
 * octets - a leading zero octet is refused (RFC 7518 6.3.1.1 says so of n in as many words). The
 * bytes go to *raw (free). */
static int uint_member(const json_t *obj, const char *name, uint8_t **raw, size_t *len, char *why,
                       size_t whylen)
{
	const json_t *v = json_object_get(obj, name);
	int r;

	*raw = NULL;
	*len = 0;
	if (!json_is_string(v))
		return nl_errf(why, whylen, NL_ERR_KEY, "%s is missing or not a string", name);
	if ((r = nl_b64url_decode(json_string_value(v), json_string_length(v), raw, len)) != 0 || *len == 0) {
		free(*raw);
		*raw = NULL;
		if (r == NL_ERR_NOMEM)
			return r;
		return nl_errf(why, whylen, NL_ERR_KEY, "%s is not canonical base64url", name);
	}
	if (*len > 1 && (*raw)[0] == 0) {
		free(*raw);
		*raw = NULL;
		return nl_errf(why, whylen, NL_ERR_KEY, "%s has a leading zero octet (RFC 7518 6.3.1)", name);
	}
	return 0;
}

/* RSA public parameters (RFC 7518 6.3.1; RFC 8017 3.1: n odd, 3 <= e < n, e odd; RFC 7518 3.3:
 * at least 2048 bits, counted exactly, not rounded up to whole octets as cjose does). */
static int rsa_public_ok(const json_t *obj, char *why, size_t whylen)
{
	uint8_t *n = NULL, *e = NULL;
	size_t nl = 0, el = 0, bits;
	int r;

	if ((r = uint_member(obj, "n", &n, &nl, why, whylen)) != 0 ||
	    (r = uint_member(obj, "e", &e, &el, why, whylen)) != 0)
		goto out;
	r = NL_ERR_KEY;
	bits = be_bits(n, nl);
	if (bits < NL_RSA_MIN_BITS || bits > NL_RSA_MAX_BITS) {
		snprintf(why, whylen, "n is %zu bits, outside %d..%d (RFC 7518 3.3)", bits, NL_RSA_MIN_BITS,
		         NL_RSA_MAX_BITS);
		goto out;
	}
	if ((n[nl - 1] & 1) == 0) {
		snprintf(why, whylen, "n is even (RFC 8017 3.1)");
		goto out;
	}
	if ((e[el - 1] & 1) == 0 || (el == 1 && e[0] < 3)) {
		snprintf(why, whylen, "e is not an odd number of at least 3 (RFC 8017 3.1)");
		goto out;
	}
	if (el > nl || (el == nl && memcmp(e, n, nl) >= 0)) {
		snprintf(why, whylen, "e is not below n (RFC 8017 3.1)");
		goto out;
	}
	r = 0;
out:
	free(n);
	free(e);
	return r;
}

/* Is (x, y) a point of P-256? (OpenSSL refuses to set coordinates off the curve.) */
static int p256_on_curve(const uint8_t *x, const uint8_t *y)
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	EC_POINT *pt = g != NULL ? EC_POINT_new(g) : NULL;
	BIGNUM *bx = BN_bin2bn(x, NL_P256_BYTES, NULL), *by = BN_bin2bn(y, NL_P256_BYTES, NULL);
	int r = pt == NULL || bx == NULL || by == NULL ? NL_ERR_NOMEM : NL_ERR_KEY;

	if (r == NL_ERR_KEY && EC_POINT_set_affine_coordinates(g, pt, bx, by, NULL) == 1 &&
	    EC_POINT_is_on_curve(g, pt, NULL) == 1)
		r = 0;
	BN_free(bx);
	BN_free(by);
	EC_POINT_free(pt);
	EC_GROUP_free(g);
	return lib_failure(r);
}

/* EC public parameters (RFC 7518 6.2.1): x and y the full size of a P-256 coordinate, and the
 * point on the curve. crv was checked by the caller. */
static int ec_public_ok(const json_t *obj, char *why, size_t whylen)
{
	static const char *const names[2] = {"x", "y"};
	uint8_t *c[2] = {NULL, NULL};
	size_t len[2] = {0, 0}, i;
	int r = NL_ERR_KEY;

	for (i = 0; i < 2; i++) {
		const json_t *v = json_object_get(obj, names[i]);
		if (!json_is_string(v) || (r = nl_b64url_decode(json_string_value(v), json_string_length(v),
		                                                &c[i], &len[i])) != 0) {
			if (r != NL_ERR_NOMEM)
				r = nl_errf(why, whylen, NL_ERR_KEY,
				            "%s is missing or not canonical base64url", names[i]);
			goto out;
		}
		r = NL_ERR_KEY;
		if (len[i] != NL_P256_BYTES) {
			snprintf(why, whylen, "%s is %zu octets; P-256 needs %d (RFC 7518 6.2.1)", names[i],
			         len[i], NL_P256_BYTES);
			goto out;
		}
	}
	if ((r = p256_on_curve(c[0], c[1])) == NL_ERR_KEY)
		snprintf(why, whylen, "(x, y) is not a point of P-256");
out:
	free(c[0]);
	free(c[1]);
	return r;
}

/* A cjose key from one parsed JWK object: RSA or EC P-256 only, its public parameters checked.
 * NL_ERR_KEY with why for a key we do not use or that breaks a rule. */
int nl_jose_jwk_from_object(json_t *obj, cjose_jwk_t **out, char *why, size_t whylen)
{
	const char *kty = nl_json_str(obj, "kty"), *crv;
	json_t *kid = json_object_get(obj, "kid");
	cjose_jwk_t *jwk = NULL;
	cjose_jwk_kty_t want;
	cjose_err cerr;
	int r;

	if (!json_is_object(obj) || kty == NULL) {
		snprintf(why, whylen, "kty is missing or not a string (RFC 7517 4.1)");
		return NL_ERR_INVALID;
	}
	if (kid != NULL && !json_is_string(kid)) {
		snprintf(why, whylen, "kid is not a string (RFC 7517 4.5)");
		return NL_ERR_INVALID;
	}
	if (strcmp(kty, "RSA") == 0) {
		if (!rsa_crt_complete(obj)) {
			snprintf(why, whylen, "an incomplete set of RSA private members");
			return NL_ERR_KEY;
		}
		want = CJOSE_JWK_KTY_RSA;
	} else if (strcmp(kty, "EC") == 0) {
		crv = nl_json_str(obj, "crv");
		if (crv == NULL || strcmp(crv, "P-256") != 0) {
			snprintf(why, whylen, "an EC key on a curve other than P-256");
			return NL_ERR_KEY;
		}
		want = CJOSE_JWK_KTY_EC;
	} else {
		/* oct (a shared secret has no place here), OKP, unknown */
		snprintf(why, whylen, "kty is not RSA or EC");
		return NL_ERR_KEY;
	}
	if ((r = jwk_numbers_b64url(obj)) != 0)
		return r == NL_ERR_NOMEM ? r : nl_errf(why, whylen, r, "a number is not canonical base64url");
	r = want == CJOSE_JWK_KTY_RSA ? rsa_public_ok(obj, why, whylen) : ec_public_ok(obj, why, whylen);
	if (r != 0)
		return r;
	/* cjose reports some of its allocation failures as invalid input: a key that passed every
	 * check above is given a second attempt before it is called unusable. */
	memset(&cerr, 0, sizeof(cerr));
	if ((jwk = cjose_jwk_import_json((cjose_header_t *)obj, &cerr)) == NULL &&
	    (jwk = cjose_jwk_import_json((cjose_header_t *)obj, &cerr)) == NULL) {
		if ((r = lib_failure(NL_ERR_KEY)) == NL_ERR_NOMEM || cerr.code == CJOSE_ERR_NO_MEMORY)
			return NL_ERR_NOMEM;
		return nl_errf(why, whylen, NL_ERR_KEY, "the key could not be imported");
	}
	ERR_clear_error();
	if (cjose_jwk_get_kty(jwk, &cerr) != want ||
	    (want == CJOSE_JWK_KTY_EC && cjose_jwk_EC_get_curve(jwk, &cerr) != CJOSE_JWK_EC_P_256)) {
		cjose_jwk_release(jwk);
		snprintf(why, whylen, "the key could not be imported");
		return NL_ERR_KEY;
	}
	if (kid != NULL && cjose_jwk_get_kid(jwk, &cerr) == NULL &&
	    !cjose_jwk_set_kid(jwk, json_string_value(kid), json_string_length(kid), &cerr)) {
		cjose_jwk_release(jwk);
		return NL_ERR_NOMEM;
	}
	*out = jwk;
	return 0;
}

int nl_jwk_from_json(const char *json, size_t len, cjose_jwk_t **out)
{
	json_t *obj = NULL;
	char why[160];
	int r;

	if (out == NULL)
		return NL_ERR_INVALID;
	if ((r = nl_json_parse(json, len, NL_JWK_MAX, NL_JSON_MAX_DEPTH, true, &obj, NULL, 0)) != 0)
		return r;
	r = nl_jose_jwk_from_object(obj, out, why, sizeof(why));
	nl_jose_jwk_wipe_private(obj);
	json_decref(obj);
	return r;
}

/* ---- key export ------------------------------------------------------------------------------- */

char *nl_jwk_public_json(const cjose_jwk_t *jwk, const char *alg)
{
	const struct alg_info *a = NULL;
	struct pubkey pk;
	cjose_err cerr;
	const char *kid;
	char *s = NULL;

	if (alg != NULL && (a = nl_jose_alg_lookup(alg)) == NULL)
		return NULL;
	if (nl_jose_pubkey_get(jwk, &pk) != 0)
		return NULL;
	if (a != NULL && a->fam != pk.fam)
		goto out;
	if ((kid = cjose_jwk_get_kid(jwk, &cerr)) != NULL &&
	    json_object_set_new(pk.obj, "kid", json_string(kid)) != 0)
		goto out;
	if (json_object_set_new(pk.obj, "use", json_string("sig")) != 0)
		goto out;
	if (a != NULL && json_object_set_new(pk.obj, "alg", json_string(a->name)) != 0)
		goto out;
	s = nl_json_dump(pk.obj);
out:
	nl_jose_pubkey_free(&pk);
	return s;
}

char *nl_jwk_thumbprint(const cjose_jwk_t *jwk)
{
	struct pubkey pk;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *canon = NULL, *s = NULL;
	int n;

	if (nl_jose_pubkey_get(jwk, &pk) != 0)
		return NULL;
	/* RFC 7638 §3.2: the required members only, sorted, no whitespace. The values are base64url
	 * produced by cjose, so they need no JSON escaping. */
	if (pk.fam == FAM_RSA)
		n = asprintf(&canon, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", pk.e, pk.n);
	else
		n = asprintf(&canon, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", pk.x,
		             pk.y);
	if (n < 0) {
		canon = NULL;
		goto out;
	}
	if (!EVP_Digest(canon, (size_t)n, md, &mdlen, EVP_sha256(), NULL))
		goto out;
	if (nl_b64url_encode(md, mdlen, &s) != 0)
		s = NULL;
out:
	free(canon);
	nl_jose_pubkey_free(&pk);
	return s;
}
