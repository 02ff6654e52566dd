/* The ID token tests' fixture, shared by the tests/unit/test_idtoken_*.c programs: the provider's
 * keys and sets, made once a program, the valid claims and policy, and signing and checking helpers. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "idtoken.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_wipe.h"
#include "idtoken_fixture.h"

cjose_jwk_t *key_a;     /* the provider's key, kid "k1" */
cjose_jwk_t *key_b;     /* another key: "wrong key" and the second key of a set */
struct nl_jwks *set_a;  /* {k1: key_a} */
struct nl_jwks *set_ab; /* {k1: key_a, k2: key_b} */

static const char *const rs512[] = {"RS512"};

static cjose_jwk_t *new_rsa_key(void)
{
	static const uint8_t e[] = {0x01, 0x00, 0x01};
	cjose_err cerr;
	cjose_jwk_t *k = cjose_jwk_create_RSA_random(2048, e, sizeof(e), &cerr);
	return k;
}

/* A JWKS with the public parts of keys, kids given. */
static struct nl_jwks *make_set(cjose_jwk_t **keys, const char **kids, size_t n)
{
	json_t *doc = json_pack("{s:[]}", "keys"), *arr = json_object_get(doc, "keys");
	struct nl_jwks *set = NULL;
	cjose_err cerr;
	char *text;
	size_t i;

	for (i = 0; i < n; i++) {
		char *pub;
		json_t *jk;
		assert_true(cjose_jwk_set_kid(keys[i], kids[i], strlen(kids[i]), &cerr));
		/* No "alg" member: the same keys serve the RS256 half of the alg test. */
		pub = nl_jwk_public_json(keys[i], NULL);
		assert_non_null(pub);
		jk = json_loads(pub, 0, NULL);
		assert_non_null(jk);
		json_array_append_new(arr, jk);
		free(pub);
	}
	text = json_dumps(doc, JSON_COMPACT);
	assert_int_equal(nl_jwks_parse(text, strlen(text), &set), 0);
	free(text);
	json_decref(doc);
	return set;
}

int group_setup(void **state)
{
	cjose_jwk_t *ab[2];
	const char *kids[2] = {"k1", "k2"};
	(void)state;
	key_a = new_rsa_key();
	key_b = new_rsa_key();
	if (key_a == NULL || key_b == NULL)
		return -1;
	set_a = make_set(&key_a, kids, 1);
	ab[0] = key_a;
	ab[1] = key_b;
	set_ab = make_set(ab, kids, 2);
	return 0;
}

int group_teardown(void **state)
{
	(void)state;
	nl_jwks_free(set_a);
	nl_jwks_free(set_ab);
	cjose_jwk_release(key_a);
	cjose_jwk_release(key_b);
	return 0;
}

/* The claims of a token that passes every rule under base_policy(). */
json_t *valid_claims(void)
{
	json_t *c =
	    json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:s}", "iss", ISSUER, "sub",
	              "1b2c3d4e-0000-4000-8000-00000000abcd", "aud", CLIENT, "exp", (json_int_t)(NOW + 3600),
	              "iat", (json_int_t)(NOW - 5), "nonce", NONCE, "vot", "P9.Cp.Cd", "vtm",
	              "https://auth.example.signin.nhs.uk/trustmark/auth.example.signin.nhs.uk", "jti", "j-1",
	              "nhs_number", "9686368973");
	assert_non_null(c);
	return c;
}

struct nl_idtoken_policy base_policy(void)
{
	struct nl_idtoken_policy p = {
	    .issuer = ISSUER,
	    .client_id = CLIENT,
	    .allowed_algs = rs512,
	    .n_allowed_algs = 1,
	    .nonce = NONCE,
	    .vtr = VTR,
	    .min_level = 9,
	    .skew = 60,
	    .now = NOW,
	};
	return p;
}

/* Sign claims (consumed) with key, alg, kid. */
char *sign(json_t *claims, const cjose_jwk_t *key, const char *alg, const char *kid)
{
	char *tok = NULL;
	assert_int_equal(nl_jws_sign(key, alg, kid, claims, &tok), 0);
	json_decref(claims);
	return tok;
}

char *sign_a(json_t *claims)
{
	return sign(claims, key_a, "RS512", "k1");
}

void expect_pass(const char *tok, const struct nl_jwks *set, const struct nl_idtoken_policy *p)
{
	json_t *claims = NULL;
	enum nl_idtoken_rule rule = NL_RULE_FORMAT;
	int r = nl_idtoken_validate(tok, strlen(tok), set, p, &claims, &rule);
	if (r != 0)
		fail_msg("rejected (%d) by rule %s", r, nl_idtoken_rule_word(rule));
	assert_int_equal(rule, NL_RULE_NONE);
	assert_non_null(claims);
	json_decref(claims);
}

void expect_fail(const char *tok, size_t len, const struct nl_jwks *set, const struct nl_idtoken_policy *p,
                 int code, const char *want_rule)
{
	json_t *claims = (json_t *)0x1;
	enum nl_idtoken_rule rule = NL_RULE_NONE;
	int r = nl_idtoken_validate(tok, len, set, p, &claims, &rule);
	assert_null(claims);
	assert_int_not_equal(rule, NL_RULE_NONE);
	if (strcmp(nl_idtoken_rule_word(rule), want_rule) != 0)
		fail_msg("rule %s, want %s (code %d)", nl_idtoken_rule_word(rule), want_rule, r);
	assert_int_equal(r, code);
}
