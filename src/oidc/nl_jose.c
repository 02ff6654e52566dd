/* JOSE on cjose: JWK/PEM import, JWKS, strict compact JWS parse/verify/sign, JWT claim checks.
 * cjose does the signature arithmetic; this file decides what may reach it (alg list, key type,
 * canonical encoding, sizes) and converts keys to and from PEM through OpenSSL 3 EVP. */
#include "config.h"
#include "nl_jose.h"
#include "nl_b64.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_wipe.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NL_PEM_MAX                (64 * 1024) /* longest PEM key text or file */
#define NL_JWK_MAX                (64 * 1024) /* longest single JWK document */
#define NL_RSA_MIN_BITS           2048        /* RFC 7518 3.3 and 3.5 */
#define NL_RSA_MAX_BITS           16384       /* OpenSSL verifies nothing larger */
#define NL_P256_BYTES             32
#define NL_JTI_BYTES              24 /* 192 bits of randomness in a client assertion's jti */
#define NL_ASSERTION_MAX_LIFETIME 300

/* ---- algorithms ---------------------------------------------------------------------------- */

enum key_family { FAM_RSA = 1, FAM_EC_P256 };

struct alg_info {
	const char *name;
	enum key_family fam;
};

/* The only algorithms this layer signs or verifies. none, HS* (a public key must never become an
 * HMAC secret), PS384/512, ES384/512 and everything else are absent on purpose. */
static const struct alg_info known_algs[] = {
    {"RS256", FAM_RSA}, {"RS384", FAM_RSA}, {"RS512", FAM_RSA}, {"PS256", FAM_RSA}, {"ES256", FAM_EC_P256},
};

static const struct alg_info *alg_lookup(const char *alg)
{
	size_t i;

	if (alg == NULL)
		return NULL;
	for (i = 0; i < sizeof(known_algs) / sizeof(known_algs[0]); i++)
		if (strcmp(known_algs[i].name, alg) == 0)
			return &known_algs[i];
	return NULL;
}

bool nl_jose_alg_known(const char *alg)
{
	return alg_lookup(alg) != NULL;
}

/* ---- public parameters of a key ------------------------------------------------------------ */

/* The public half of a cjose key, read back through its public JWK JSON (no private material ever
 * leaves cjose this way). Strings point into obj. */
struct pubkey {
	json_t *obj;
	enum key_family fam;
	const char *n, *e; /* RSA, base64url */
	const char *x, *y; /* EC P-256, base64url, 32 bytes each */
	size_t bits;       /* RSA modulus bits */
};

static void pubkey_free(struct pubkey *pk)
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

static int pubkey_get(const cjose_jwk_t *jwk, struct pubkey *pk)
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
		pubkey_free(pk);
	return r;
}

/* Does key suit alg? Also the exact signature length that alg and key produce. Called on every
 * sign and verify, so it reads the key's type and size from cjose directly (exporting the key as
 * JSON and parsing it back here cost as much as the RSA verification itself). The RSA size is
 * cjose's, RSA_size() * 8: the modulus rounded up to whole bytes. */
static int key_fits(const cjose_jwk_t *jwk, const struct alg_info *a, size_t *sig_len)
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
static void jwk_json_wipe_private(json_t *obj)
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
static bool jwk_numbers_b64url(const json_t *obj)
{
	static const char *const nums[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi", "x", "y"};
	const json_t *v;
	uint8_t *raw;
	size_t i, n;

	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if ((v = json_object_get(obj, nums[i])) == NULL)
			continue;
		raw = NULL;
		n = 0;
		if (!json_is_string(v) ||
		    nl_b64url_decode(json_string_value(v), json_string_length(v), &raw, &n) != 0)
			return false;
		nl_free_secret_buf(raw, n); /* d, p, q, ... are private */
	}
	return true;
}

/* ---- the public parameters of a JWK, as RFC 7518 and RFC 8017 define them ------------------- */

/* A Base64urlUInt member (RFC 7518 2): present, canonical base64url (no padding, nothing outside
 * the alphabet, no stray bits: nl_b64url_decode), at least one octet, and the minimum number of
 * octets - a leading zero octet is refused (RFC 7518 6.3.1.1 says so of n in as many words). The
 * bytes go to *raw (free). */
static bool uint_member(const json_t *obj, const char *name, uint8_t **raw, size_t *len, char *why,
                        size_t whylen)
{
	const json_t *v = json_object_get(obj, name);

	*raw = NULL;
	*len = 0;
	if (!json_is_string(v)) {
		snprintf(why, whylen, "%s is missing or not a string", name);
		return false;
	}
	if (nl_b64url_decode(json_string_value(v), json_string_length(v), raw, len) != 0 || *len == 0) {
		free(*raw);
		*raw = NULL;
		snprintf(why, whylen, "%s is not canonical base64url", name);
		return false;
	}
	if (*len > 1 && (*raw)[0] == 0) {
		free(*raw);
		*raw = NULL;
		snprintf(why, whylen, "%s has a leading zero octet (RFC 7518 6.3.1)", name);
		return false;
	}
	return true;
}

/* RSA public parameters (RFC 7518 6.3.1; RFC 8017 3.1: n odd, 3 <= e < n, e odd; RFC 7518 3.3:
 * at least 2048 bits, counted exactly, not rounded up to whole octets as cjose does). */
static bool rsa_public_ok(const json_t *obj, char *why, size_t whylen)
{
	uint8_t *n = NULL, *e = NULL;
	size_t nl = 0, el = 0, bits;
	bool ok = false;

	if (!uint_member(obj, "n", &n, &nl, why, whylen) || !uint_member(obj, "e", &e, &el, why, whylen))
		goto out;
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
	ok = true;
out:
	free(n);
	free(e);
	return ok;
}

/* Is (x, y) a point of P-256? (OpenSSL refuses to set coordinates off the curve.) */
static bool p256_on_curve(const uint8_t *x, const uint8_t *y)
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	EC_POINT *pt = g != NULL ? EC_POINT_new(g) : NULL;
	BIGNUM *bx = BN_bin2bn(x, NL_P256_BYTES, NULL), *by = BN_bin2bn(y, NL_P256_BYTES, NULL);
	bool ok = pt != NULL && bx != NULL && by != NULL &&
	          EC_POINT_set_affine_coordinates(g, pt, bx, by, NULL) == 1 &&
	          EC_POINT_is_on_curve(g, pt, NULL) == 1;

	BN_free(bx);
	BN_free(by);
	EC_POINT_free(pt);
	EC_GROUP_free(g);
	ERR_clear_error();
	return ok;
}

/* EC public parameters (RFC 7518 6.2.1): x and y the full size of a P-256 coordinate, and the
 * point on the curve. crv was checked by the caller. */
static bool ec_public_ok(const json_t *obj, char *why, size_t whylen)
{
	static const char *const names[2] = {"x", "y"};
	uint8_t *c[2] = {NULL, NULL};
	size_t len[2] = {0, 0}, i;
	bool ok = false;

	for (i = 0; i < 2; i++) {
		const json_t *v = json_object_get(obj, names[i]);
		if (!json_is_string(v) ||
		    nl_b64url_decode(json_string_value(v), json_string_length(v), &c[i], &len[i]) != 0) {
			snprintf(why, whylen, "%s is missing or not canonical base64url", names[i]);
			goto out;
		}
		if (len[i] != NL_P256_BYTES) {
			snprintf(why, whylen, "%s is %zu octets; P-256 needs %d (RFC 7518 6.2.1)", names[i],
			         len[i], NL_P256_BYTES);
			goto out;
		}
	}
	if (!p256_on_curve(c[0], c[1])) {
		snprintf(why, whylen, "(x, y) is not a point of P-256");
		goto out;
	}
	ok = true;
out:
	free(c[0]);
	free(c[1]);
	return ok;
}

/* A cjose key from one parsed JWK object: RSA or EC P-256 only, its public parameters checked.
 * NL_ERR_KEY with why for a key we do not use or that breaks a rule. */
static int jwk_from_object(json_t *obj, cjose_jwk_t **out, char *why, size_t whylen)
{
	const char *kty = nl_json_str(obj, "kty"), *crv;
	json_t *kid = json_object_get(obj, "kid");
	cjose_jwk_t *jwk = NULL;
	cjose_jwk_kty_t want;
	cjose_err cerr;

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
	if (!jwk_numbers_b64url(obj)) {
		snprintf(why, whylen, "a number is not canonical base64url");
		return NL_ERR_KEY;
	}
	if (want == CJOSE_JWK_KTY_RSA ? !rsa_public_ok(obj, why, whylen) : !ec_public_ok(obj, why, whylen))
		return NL_ERR_KEY;
	if ((jwk = cjose_jwk_import_json((cjose_header_t *)obj, &cerr)) == NULL) {
		snprintf(why, whylen, "the key could not be imported");
		return NL_ERR_KEY;
	}
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
	r = jwk_from_object(obj, out, why, sizeof(why));
	jwk_json_wipe_private(obj);
	json_decref(obj);
	return r;
}

/* ---- JWK from PEM (OpenSSL 3 EVP) ------------------------------------------------------------ */

/* Never prompt for a passphrase: an encrypted key simply fails to load. */
static int pem_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* The big-endian bytes of a BIGNUM, left-padded to pad bytes if pad > 0. */
static int bn_bytes(const BIGNUM *bn, size_t pad, uint8_t **out, size_t *len)
{
	size_t n = pad > 0 ? pad : (size_t)BN_num_bytes(bn);
	uint8_t *p;

	if (n == 0)
		n = 1;
	if ((p = calloc(1, n)) == NULL)
		return NL_ERR_NOMEM;
	if (BN_bn2binpad(bn, p, (int)n) < 0) {
		free(p);
		return NL_ERR_KEY;
	}
	*out = p;
	*len = n;
	return 0;
}

#define RSA_NPARAMS 8

static int jwk_from_rsa_pkey(EVP_PKEY *pkey, bool priv, cjose_jwk_t **out)
{
	/* Order matters: n, e are public; the rest private (d, p, q, dp, dq, qi). */
	static const char *const names[RSA_NPARAMS] = {
	    OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
	    OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
	    OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
	    OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
	};
	uint8_t *v[RSA_NPARAMS] = {0};
	size_t vl[RSA_NPARAMS] = {0};
	cjose_jwk_rsa_keyspec spec;
	cjose_err cerr;
	int i, r = NL_ERR_KEY;

	for (i = 0; i < RSA_NPARAMS; i++) {
		BIGNUM *bn = NULL;
		if (i >= 2 && !priv)
			break;
		if (!EVP_PKEY_get_bn_param(pkey, names[i], &bn)) {
			if (i <= 2) /* n, e, and d for a private key are required; CRT values are optional */
				goto out;
			continue;
		}
		r = bn_bytes(bn, 0, &v[i], &vl[i]);
		BN_clear_free(bn);
		if (r != 0)
			goto out;
		r = NL_ERR_KEY;
	}
	memset(&spec, 0, sizeof(spec));
	spec.n = v[0], spec.nlen = vl[0];
	spec.e = v[1], spec.elen = vl[1];
	spec.d = v[2], spec.dlen = vl[2];
	spec.p = v[3], spec.plen = vl[3];
	spec.q = v[4], spec.qlen = vl[4];
	spec.dp = v[5], spec.dplen = vl[5];
	spec.dq = v[6], spec.dqlen = vl[6];
	spec.qi = v[7], spec.qilen = vl[7];
	if ((*out = cjose_jwk_create_RSA_spec(&spec, &cerr)) == NULL)
		goto out;
	r = 0;
out:
	for (i = 0; i < RSA_NPARAMS; i++)
		nl_free_secret_buf(v[i], vl[i]);
	return r;
}

static int jwk_from_ec_pkey(EVP_PKEY *pkey, bool priv, cjose_jwk_t **out)
{
	char group[64];
	size_t glen = 0, xl = 0, yl = 0, dl = 0;
	BIGNUM *bx = NULL, *by = NULL, *bd = NULL;
	uint8_t *x = NULL, *y = NULL, *d = NULL;
	cjose_jwk_ec_keyspec spec;
	cjose_err cerr;
	int r = NL_ERR_KEY;

	if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) ||
	    (strcmp(group, SN_X9_62_prime256v1) != 0 && strcmp(group, "P-256") != 0))
		goto out;
	if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx) ||
	    !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by))
		goto out;
	if (priv && !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &bd))
		goto out;
	if ((r = bn_bytes(bx, NL_P256_BYTES, &x, &xl)) != 0 ||
	    (r = bn_bytes(by, NL_P256_BYTES, &y, &yl)) != 0 ||
	    (priv && (r = bn_bytes(bd, NL_P256_BYTES, &d, &dl)) != 0))
		goto out;
	r = NL_ERR_KEY;
	memset(&spec, 0, sizeof(spec));
	spec.crv = CJOSE_JWK_EC_P_256;
	spec.x = x, spec.xlen = xl;
	spec.y = y, spec.ylen = yl;
	spec.d = d, spec.dlen = dl;
	if ((*out = cjose_jwk_create_EC_spec(&spec, &cerr)) == NULL)
		goto out;
	r = 0;
out:
	BN_free(bx);
	BN_free(by);
	BN_clear_free(bd);
	free(x);
	free(y);
	nl_free_secret_buf(d, dl);
	return r;
}

/* Read one key from PEM text: a private key ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")
 * if there is one, else a "PUBLIC KEY". *priv says which. */
static int pkey_from_pem(const char *pem, size_t len, EVP_PKEY **out, bool *priv)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;

	if (pem == NULL || len == 0)
		return NL_ERR_INVALID;
	if (len > NL_PEM_MAX)
		return NL_ERR_TOO_BIG;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return NL_ERR_NOMEM;
	*priv = true;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, pem_no_passphrase, NULL);
	if (pkey == NULL) {
		BIO_free(bio);
		if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
			return NL_ERR_NOMEM;
		*priv = false;
		pkey = PEM_read_bio_PUBKEY(bio, NULL, pem_no_passphrase, NULL);
	}
	BIO_free(bio);
	ERR_clear_error();
	if (pkey == NULL)
		return NL_ERR_INVALID;
	*out = pkey;
	return 0;
}

static int jwk_from_pem(const char *pem, size_t len, cjose_jwk_t **out, bool *priv)
{
	EVP_PKEY *pkey = NULL;
	int r;

	if ((r = pkey_from_pem(pem, len, &pkey, priv)) != 0)
		return r;
	if (EVP_PKEY_is_a(pkey, "RSA"))
		r = jwk_from_rsa_pkey(pkey, *priv, out);
	else if (EVP_PKEY_is_a(pkey, "EC"))
		r = jwk_from_ec_pkey(pkey, *priv, out);
	else
		r = NL_ERR_KEY; /* RSA-PSS-restricted, DSA, Ed25519, ... */
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return r;
}

int nl_jwk_from_pem(const char *pem, size_t len, cjose_jwk_t **out)
{
	bool priv = false;

	if (out == NULL)
		return NL_ERR_INVALID;
	return jwk_from_pem(pem, len, out, &priv);
}

static void set_err(char *err, size_t errlen, const char *path, const char *what)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: %s", path, what);
}

int nl_jwk_load_private_pem(const char *path, cjose_jwk_t **out, char *err, size_t errlen)
{
	cjose_jwk_t *jwk = NULL;
	char *buf = NULL;
	size_t len = 0;
	bool priv = false;
	int r;

	if (path == NULL || out == NULL)
		return NL_ERR_INVALID;
	if ((r = nl_read_file_checked(path, true, NL_PEM_MAX, &buf, &len, err, errlen)) != 0)
		return r;
	if ((r = jwk_from_pem(buf, len, &jwk, &priv)) != 0) {
		set_err(err, errlen, path,
		        r == NL_ERR_KEY ? "not an RSA or EC P-256 key" : "not a readable PEM key");
		goto out;
	}
	if (!priv) {
		r = NL_ERR_KEY;
		set_err(err, errlen, path, "holds a public key, not a private key");
		goto out;
	}
	*out = jwk;
	jwk = NULL;
out:
	cjose_jwk_release(jwk);
	nl_free_secret_buf(buf, len + 1);
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

	if (alg != NULL && (a = alg_lookup(alg)) == NULL)
		return NULL;
	if (pubkey_get(jwk, &pk) != 0)
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
	pubkey_free(&pk);
	return s;
}

static BIGNUM *bn_from_b64(const char *s)
{
	uint8_t *raw = NULL;
	size_t n = 0;
	BIGNUM *bn;

	if (nl_b64url_decode(s, strlen(s), &raw, &n) != 0)
		return NULL;
	bn = BN_bin2bn(raw, (int)n, NULL);
	free(raw);
	return bn;
}

/* An OpenSSL public key with the same parameters as the cjose key. */
static EVP_PKEY *pkey_from_pubkey(const struct pubkey *pk)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *n = NULL, *e = NULL;
	uint8_t point[1 + 2 * NL_P256_BYTES], *x = NULL, *y = NULL;
	size_t xl = 0, yl = 0;

	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto out;
	if (pk->fam == FAM_RSA) {
		if ((n = bn_from_b64(pk->n)) == NULL || (e = bn_from_b64(pk->e)) == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			goto out;
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	} else {
		if (nl_b64url_decode(pk->x, strlen(pk->x), &x, &xl) != 0 ||
		    nl_b64url_decode(pk->y, strlen(pk->y), &y, &yl) != 0 || xl != NL_P256_BYTES ||
		    yl != NL_P256_BYTES)
			goto out;
		point[0] = 0x04; /* uncompressed */
		memcpy(point + 1, x, NL_P256_BYTES);
		memcpy(point + 1 + NL_P256_BYTES, y, NL_P256_BYTES);
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1,
		                                     0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)))
			goto out;
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	}
	if (ctx == NULL || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(n);
	BN_free(e);
	free(x);
	free(y);
	ERR_clear_error();
	return pkey;
}

char *nl_jwk_public_pem(const cjose_jwk_t *jwk)
{
	struct pubkey pk;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	char *data = NULL, *s = NULL;
	long n;

	if (pubkey_get(jwk, &pk) != 0)
		return NULL;
	if ((pkey = pkey_from_pubkey(&pk)) == NULL || (bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PUBKEY(bio, pkey))
		goto out;
	if ((n = BIO_get_mem_data(bio, &data)) <= 0 || (s = malloc((size_t)n + 1)) == NULL)
		goto out;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
out:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	pubkey_free(&pk);
	ERR_clear_error();
	return s;
}

char *nl_jwk_thumbprint(const cjose_jwk_t *jwk)
{
	struct pubkey pk;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *canon = NULL, *s = NULL;
	int n;

	if (pubkey_get(jwk, &pk) != 0)
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
	pubkey_free(&pk);
	return s;
}

/* ---- JWKS --------------------------------------------------------------------------------------- */

struct jwks_key {
	cjose_jwk_t *jwk;
	char *kid; /* NULL if absent */
	char *alg; /* the key's own "alg", NULL if absent */
	enum key_family fam;
	bool ambiguous; /* another key of the same family has the same kid: never chosen */
};

struct nl_jwks {
	struct jwks_key keys[NL_JWKS_MAX_KEYS];
	size_t n;
};

void nl_jwks_free(struct nl_jwks *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++) {
		cjose_jwk_release(set->keys[i].jwk);
		free(set->keys[i].kid);
		free(set->keys[i].alg);
	}
	free(set);
}

size_t nl_jwks_count(const struct nl_jwks *set)
{
	return set == NULL ? 0 : set->n;
}

/* Why a JWKS entry is not used. notable: it breaks a rule of the RFCs (worth a warning), as
 * opposed to a well-formed key that is simply not for us (use enc, an unknown kty or alg). */
struct skip {
	char why[160];
	bool notable;
};

static bool skip_because(struct skip *sk, bool notable, const char *why)
{
	snprintf(sk->why, sizeof(sk->why), "%s", why);
	sk->notable = notable;
	return false;
}

/* RFC 7517 4.3: key_ops, when present, is an array of distinct strings that must include
 * "verify"; with "use" also present the two must agree (sig allows sign and verify only). */
static bool key_ops_for_verify(const json_t *ops, bool has_use, struct skip *sk)
{
	const json_t *op, *other;
	bool verify = false;
	size_t i, j;

	if (!json_is_array(ops))
		return skip_because(sk, true, "key_ops is not an array (RFC 7517 4.3)");
	json_array_foreach(ops, i, op)
	{
		if (!json_is_string(op))
			return skip_because(sk, true, "key_ops holds a non-string (RFC 7517 4.3)");
		for (j = 0; j < i; j++) {
			other = json_array_get(ops, j);
			if (json_string_length(other) == json_string_length(op) &&
			    strcmp(json_string_value(other), json_string_value(op)) == 0)
				return skip_because(sk, true, "key_ops repeats a value (RFC 7517 4.3)");
		}
		if (strcmp(json_string_value(op), "verify") == 0)
			verify = true;
		else if (has_use && strcmp(json_string_value(op), "sign") != 0)
			return skip_because(sk, true, "key_ops disagrees with use sig (RFC 7517 4.3)");
	}
	if (!verify)
		return skip_because(sk, false, "key_ops does not allow verify");
	return true;
}

/* Is this JWKS entry meant for verifying signatures? "use" other than sig, "key_ops" without
 * "verify", or an "alg" we do not do, all say no (RFC 7517 4.2-4.4). */
static bool jwks_entry_for_sig(const json_t *obj, const struct alg_info **alg, struct skip *sk)
{
	const json_t *use = json_object_get(obj, "use"), *ops = json_object_get(obj, "key_ops");
	const json_t *jalg = json_object_get(obj, "alg");

	*alg = NULL;
	if (use != NULL && !json_is_string(use))
		return skip_because(sk, true, "use is not a string (RFC 7517 4.2)");
	if (use != NULL && strcmp(json_string_value(use), "sig") != 0)
		return skip_because(sk, false, "use is not sig");
	if (ops != NULL && !key_ops_for_verify(ops, use != NULL, sk))
		return false;
	if (jalg != NULL && !json_is_string(jalg))
		return skip_because(sk, true, "alg is not a string (RFC 7517 4.4)");
	if (jalg != NULL && (*alg = alg_lookup(json_string_value(jalg))) == NULL)
		return skip_because(sk, false, "alg is not one we verify");
	return true;
}

/* Add one entry to the set, or leave it out with the reason in sk (returns 0 either way);
 * only NL_ERR_NOMEM fails the set. */
static int jwks_add(struct nl_jwks *set, json_t *obj, struct skip *sk)
{
	struct jwks_key *k = &set->keys[set->n];
	const struct alg_info *alg;
	const char *kid;
	cjose_jwk_t *jwk = NULL;
	cjose_err cerr;
	int r;

	sk->why[0] = '\0';
	sk->notable = false;
	if (!jwks_entry_for_sig(obj, &alg, sk))
		return 0;
	if ((r = jwk_from_object(obj, &jwk, sk->why, sizeof(sk->why))) != 0) {
		/* RFC 7517 5: ignore keys of a kty we do not understand, missing required members or
		 * with values out of range; other keys may serve. */
		if (r == NL_ERR_NOMEM)
			return r;
		sk->notable = strcmp(sk->why, "kty is not RSA or EC") != 0 &&
		              strcmp(sk->why, "an EC key on a curve other than P-256") != 0;
		return 0;
	}
	k->fam = cjose_jwk_get_kty(jwk, &cerr) == CJOSE_JWK_KTY_RSA ? FAM_RSA : FAM_EC_P256;
	if (alg != NULL && alg->fam != k->fam) {
		cjose_jwk_release(jwk);
		skip_because(sk, true, "alg does not fit the key type (RFC 7517 4.4)");
		return 0;
	}
	kid = cjose_jwk_get_kid(jwk, &cerr);
	if ((kid != NULL && (k->kid = strdup(kid)) == NULL) ||
	    (alg != NULL && (k->alg = strdup(alg->name)) == NULL)) {
		free(k->kid);
		k->kid = NULL;
		cjose_jwk_release(jwk);
		return NL_ERR_NOMEM;
	}
	k->jwk = jwk;
	set->n++;
	return 0;
}

/* RFC 7517 4.5: keys of one type in a set should have distinct kids. Two with the same kid leave
 * no way to tell which one the provider meant, so neither is ever chosen by that kid. */
static void jwks_mark_ambiguous(struct nl_jwks *set)
{
	size_t i, j;

	for (i = 0; i < set->n; i++)
		for (j = 0; j < i; j++)
			if (set->keys[i].kid != NULL && set->keys[j].kid != NULL &&
			    set->keys[i].fam == set->keys[j].fam &&
			    strcmp(set->keys[i].kid, set->keys[j].kid) == 0)
				set->keys[i].ambiguous = set->keys[j].ambiguous = true;
}

/* The private members of RFC 7518 6.2.2 and 6.3.2. A published key set is public: a key with
 * its private half in it is a provider's key made public, and nothing in such a set is trusted. */
static bool has_private_members(const json_t *obj)
{
	static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
	size_t i;

	for (i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
		if (json_object_get(obj, priv[i]) != NULL)
			return true;
	return false;
}

static void set_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

int nl_jwks_parse_report(const char *json, size_t len, struct nl_jwks **out, char *why, size_t whylen)
{
	struct nl_jwks *set = NULL;
	json_t *doc = NULL, *keys = NULL, *entry;
	struct skip sk, first = {.why = ""};
	size_t i, n_notable = 0;
	int r;

	set_why(why, whylen, "%s", "");
	if (out == NULL)
		return NL_ERR_INVALID;
	if ((r = nl_json_parse(json, len, NL_JWKS_MAX, NL_JSON_MAX_DEPTH, true, &doc, NULL, 0)) != 0) {
		set_why(why, whylen, "not a JSON object");
		return r;
	}
	r = NL_ERR_INVALID;
	if (!json_is_array(keys = json_object_get(doc, "keys"))) {
		set_why(why, whylen, "no \"keys\" array (RFC 7517 5.1)");
		keys = NULL;
		goto out;
	}
	if (json_array_size(keys) > NL_JWKS_MAX_KEYS) {
		set_why(why, whylen, "more than %d keys", NL_JWKS_MAX_KEYS);
		r = NL_ERR_TOO_BIG;
		goto out;
	}
	json_array_foreach(keys, i, entry)
	{
		if (!json_is_object(entry)) {
			set_why(why, whylen, "key %zu is not a JSON object", i + 1);
			goto out;
		}
		if (has_private_members(entry)) {
			set_why(why, whylen, "key %zu carries private key members", i + 1);
			r = NL_ERR_KEY;
			goto out;
		}
	}
	if ((set = calloc(1, sizeof(*set))) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	json_array_foreach(keys, i, entry)
	{
		if ((r = jwks_add(set, entry, &sk)) != 0)
			goto out;
		if (sk.notable && n_notable++ == 0)
			snprintf(first.why, sizeof(first.why), "key %zu: %s", i + 1, sk.why);
	}
	jwks_mark_ambiguous(set);
	if (set->n == 0) {
		set_why(why, whylen, "no usable signing key%s%s", n_notable > 0 ? "; " : "", first.why);
		r = NL_ERR_KEY;
		goto out;
	}
	if (n_notable > 0)
		set_why(why, whylen, "%zu key(s) ignored; %s", n_notable, first.why);
	*out = set;
	set = NULL;
	r = 0;
out:
	nl_jwks_free(set);
	/* jansson frees strings without wiping them; a broken set may hold private members. */
	json_array_foreach(keys, i, entry)
	{
		jwk_json_wipe_private(entry);
	}
	json_decref(doc);
	return r;
}

int nl_jwks_parse(const char *json, size_t len, struct nl_jwks **out)
{
	return nl_jwks_parse_report(json, len, out, NULL, 0);
}

int nl_jwks_select(const struct nl_jwks *set, const char *kid, const char *alg, const cjose_jwk_t **out)
{
	const struct alg_info *a = alg_lookup(alg);
	const cjose_jwk_t *found = NULL;
	size_t i, matches = 0;
	bool ambiguous = false;

	if (a == NULL)
		return NL_ERR_ALG;
	if (set == NULL || out == NULL)
		return NL_ERR_INVALID;
	for (i = 0; i < set->n; i++) {
		const struct jwks_key *k = &set->keys[i];
		if (kid != NULL && (k->kid == NULL || strcmp(k->kid, kid) != 0))
			continue;
		/* A kid shared by two keys of this type names neither, whatever their alg says. */
		if (kid != NULL && k->ambiguous && k->fam == a->fam)
			ambiguous = true;
		if (k->fam != a->fam || (k->alg != NULL && strcmp(k->alg, a->name) != 0))
			continue;
		found = k->jwk;
		matches++;
	}
	/* Exactly one candidate: never guess between keys. */
	if (matches != 1 || ambiguous)
		return NL_ERR_KEY;
	*out = found;
	return 0;
}

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
	if (!listed || alg_lookup(alg) == NULL)
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
	if ((a = alg_lookup(jws->alg)) == NULL)
		return NL_ERR_ALG;
	if (key == NULL)
		return NL_ERR_KEY;
	if ((r = key_fits(key, a, &want)) != 0)
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
	const struct alg_info *a = alg_lookup(alg);
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
	if ((r = key_fits(key, a, &want)) != 0)
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
