/* Shared by the tests/unit/test_idtoken_*.c programs: the keys and sets (idtoken_fixture.c), the
 * valid token's claims and policy, and the helpers that sign a token and expect a result. */
#ifndef IDTOKEN_FIXTURE_H
#define IDTOKEN_FIXTURE_H

#include <stddef.h>

#include "idtoken.h"

#define NOW         ((time_t)1700000000)
#define ISSUER      "https://auth.example.signin.nhs.uk"
#define CLIENT      "client-1234"
#define NONCE       "n-Q0hBTkdFLU1FLU5PTkNFLTAxMjM0NTY3"
#define VTR         "[\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]"
#define VTR_STEP_UP "[\"P5.Cp.Cd\",\"P5.Cp.Ck\",\"P5.Cm\",\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]"

extern cjose_jwk_t *key_a;     /* the provider's key, kid "k1" */
extern cjose_jwk_t *key_b;     /* another key: "wrong key" and the second key of a set */
extern struct nl_jwks *set_a;  /* {k1: key_a} */
extern struct nl_jwks *set_ab; /* {k1: key_a, k2: key_b} */
int group_setup(void **state);
int group_teardown(void **state);
json_t *valid_claims(void);
struct nl_idtoken_policy base_policy(void);
char *sign(json_t *claims, const cjose_jwk_t *key, const char *alg, const char *kid);
char *sign_a(json_t *claims);
void expect_pass(const char *tok, const struct nl_jwks *set, const struct nl_idtoken_policy *p);
void expect_fail(const char *tok, size_t len, const struct nl_jwks *set, const struct nl_idtoken_policy *p,
                 int code, const char *want_rule);

#endif
