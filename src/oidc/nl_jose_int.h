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

struct alg_info {
	const char *name;
	enum key_family fam;
};

/* The entry of the algorithm table for alg, NULL for every algorithm this layer does not do. */
const struct alg_info *nl_jose_alg_lookup(const char *alg);

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

#endif
