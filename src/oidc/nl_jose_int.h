/* What the files of the JOSE layer (nl_jose*.c) share and nothing else sees: the algorithm table,
 * a key's public parameters, and the JWK import and EVP conversion the JWKS and JWS code build on. */
#ifndef NL_JOSE_INT_H
#define NL_JOSE_INT_H

#include "nl_jose.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NL_PEM_MAX                (64 * 1024) /* longest PEM key text or file */
#define NL_JWK_MAX                (64 * 1024) /* longest single JWK document */
#define NL_RSA_MIN_BITS           2048        /* RFC 7518 3.3 and 3.5 */
#define NL_RSA_MAX_BITS           16384       /* OpenSSL verifies nothing larger */
#define NL_P256_BYTES             32
#define NL_JTI_BYTES              24 /* 192 bits of randomness in a client assertion's jti */
#define NL_ASSERTION_MAX_LIFETIME 300

enum key_family { FAM_RSA = 1, FAM_EC_P256 };

enum sig_kind { SIG_PKCS1 = 1, SIG_PSS, SIG_ECDSA };

struct alg_info {
	const char *name;
	enum key_family fam;
	enum sig_kind kind;
	const char *md; /* the digest's OpenSSL name */
	size_t idx;     /* its place in the table */
};
#define NL_JOSE_N_ALGS 5

/* The entry of the algorithm table for alg, NULL for every algorithm this layer does not do. */
const struct alg_info *nl_jose_alg_lookup(const char *alg);
/* Entry i (< NL_JOSE_N_ALGS) of the table. */
const struct alg_info *nl_jose_alg_at(size_t i);
/* The digest of a, fetched from OpenSSL once for the process (an implicit fetch costs a lookup on
 * every signature). Never NULL for an entry of the table. */
const EVP_MD *nl_jose_md(const struct alg_info *a);

/* The public half of a cjose key, read back through its public JWK JSON (no private material ever
 * leaves cjose this way). Strings point into obj. */
struct pubkey {
	json_t *obj;
	enum key_family fam;
	const char *n, *e; /* RSA, base64url */
	const char *x, *y; /* EC P-256, base64url, 32 bytes each */
	size_t bits;       /* RSA modulus bits */
};

int nl_jose_pubkey_get(const cjose_jwk_t *jwk, struct pubkey *pk);
void nl_jose_pubkey_free(struct pubkey *pk);
/* Does key suit alg? Also the exact signature length that alg and key produce. */
int nl_jose_key_fits(const cjose_jwk_t *jwk, const struct alg_info *a, size_t *sig_len);
/* A cjose key from one parsed JWK object, its public parameters checked; why says what is wrong. */
int nl_jose_jwk_from_object(json_t *obj, cjose_jwk_t **out, char *why, size_t whylen);
/* Overwrite the private members of a parsed JWK object (jansson frees without wiping). */
void nl_jose_jwk_wipe_private(json_t *obj);
/* An OpenSSL public key with the parameters of pk. New reference, or NULL. */
EVP_PKEY *nl_jose_pkey_from_pubkey(const struct pubkey *pk);

/* nl_json_parse(buf, len, max_size, NL_JSON_MAX_DEPTH, object required), faster for the JSON
 * that tokens are made of: the same verdict and the same value. */
int nl_jose_json_parse(const char *buf, size_t len, size_t max_size, json_t **out);

/* A digest-verify context of pkey for a, initialised (digest, padding): the costly first half of
 * every verification, done once per key and alg when a key set is read. New, or NULL. */
EVP_MD_CTX *nl_jose_verify_ctx_new(EVP_PKEY *pkey, const struct alg_info *a);
/* A fresh copy of an initialised context, for one verification. New, or NULL. */
EVP_MD_CTX *nl_jose_verify_ctx_copy(const EVP_MD_CTX *ready);

/* nl_jwks_select, also handing out the key's initialised context for alg (owned by the set). */
int nl_jose_jwks_choose(const struct nl_jwks *set, const char *kid, const char *alg, const cjose_jwk_t **jwk,
                        const EVP_MD_CTX **ready);
/* A copy of the initialised context for a that the live key set holding jwk made (new), or NULL if
 * no set holds it: so that nl_jws_verify after nl_jwks_select prepares no key per signature. */
EVP_MD_CTX *nl_jose_jwks_verify_ctx(const cjose_jwk_t *jwk, const struct alg_info *a);

#endif
