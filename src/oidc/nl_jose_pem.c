/* PEM keys through OpenSSL 3 EVP: import as cjose JWKs (the client's private key file, the mock's keys),
 * and a cjose key's public half as an EVP_PKEY or as PEM text. */
#include "config.h"
#include "nl_jose_int.h"
#include "nl_b64.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_wipe.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		nl_errf(err, errlen, r, "%s: %s", path,
		        r == NL_ERR_KEY ? "not an RSA or EC P-256 key" : "not a readable PEM key");
		goto out;
	}
	if (!priv) {
		r = nl_errf(err, errlen, NL_ERR_KEY, "%s: holds a public key, not a private key", path);
		goto out;
	}
	*out = jwk;
	jwk = NULL;
out:
	cjose_jwk_release(jwk);
	nl_free_secret_buf(buf, len + 1);
	return r;
}

/* ---- EVP public keys and PEM export -------------------------------------------------------------- */

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
EVP_PKEY *nl_jose_pkey_from_pubkey(const struct pubkey *pk)
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

	if (nl_jose_pubkey_get(jwk, &pk) != 0)
		return NULL;
	if ((pkey = nl_jose_pkey_from_pubkey(&pk)) == NULL || (bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PUBKEY(bio, pkey))
		goto out;
	if ((n = BIO_get_mem_data(bio, &data)) <= 0 || (s = malloc((size_t)n + 1)) == NULL)
		goto out;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
out:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	nl_jose_pubkey_free(&pk);
	ERR_clear_error();
	return s;
}
