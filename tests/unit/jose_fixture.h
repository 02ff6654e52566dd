/* Shared by the tests/unit/test_jose_*.c programs: the group's keys and the helpers that make and
 * parse tokens (jose_fixture.c). */
#ifndef JOSE_FIXTURE_H
#define JOSE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "nl_jose.h"

/* Keys made once for the whole group: RSA generation is slow. */
struct keys {
	cjose_jwk_t *rsa;         /* cjose_jwk_create_RSA_random(2048) */
	cjose_jwk_t *rsa2;        /* a second, unrelated RSA key */
	cjose_jwk_t *ec;          /* cjose_jwk_create_EC_random(P-256) */
	EVP_PKEY *evp_rsa;        /* OpenSSL key to craft tokens by hand */
	cjose_jwk_t *evp_rsa_pub; /* its public half, through nl_jwk_from_pem */
};

extern struct keys K;
extern const char *const RS256_ONLY[];
char *read_fixture(const char *name);
cjose_jwk_t *jwk_fixture(const char *name);
int parse(const char *compact, const char *const *allowed, size_t n, struct nl_jws **out);
char *b64(const void *p, size_t n);
char *b64s(const char *s);
char *join3(const char *a, const char *b, const char *c);
char *craft_rs256(EVP_PKEY *pk, const char *header, const char *payload);
char *craft(const char *header, const char *payload);
char *pem_of(EVP_PKEY *pk, int kind);
cjose_jwk_t *public_copy(const cjose_jwk_t *jwk);
char *sign_claims(const cjose_jwk_t *key, const char *alg, const char *kid, const char *claims_json);
int group_setup(void **state);
int group_teardown(void **state);
void round_trip(const cjose_jwk_t *key, const char *alg);

#endif
