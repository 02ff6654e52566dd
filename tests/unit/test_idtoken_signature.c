/* ID token rules before the claims: the compact format and its size, the signature, the alg and
 * the key chosen by kid; a valid token passes. */
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

/* b64url(header) "." b64url(payload) "." */
static char *unsigned_part(const char *header, const json_t *claims)
{
	char *h = NULL, *c = NULL, *payload = json_dumps(claims, JSON_COMPACT), *out = NULL;
	assert_int_equal(nl_b64url_encode((const uint8_t *)header, strlen(header), &h), 0);
	assert_int_equal(nl_b64url_encode((const uint8_t *)payload, strlen(payload), &c), 0);
	assert_true(asprintf(&out, "%s.%s", h, c) > 0);
	free(h);
	free(c);
	free(payload);
	return out;
}

static void test_idtoken_valid_token_passes_and_returns_claims(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *claims = NULL;
	enum nl_idtoken_rule rule = NL_RULE_FORMAT;
	char *tok = sign_a(valid_claims());
	(void)state;
	assert_int_equal(nl_idtoken_validate(tok, strlen(tok), set_a, &p, &claims, &rule), 0);
	assert_int_equal(rule, NL_RULE_NONE);
	assert_non_null(claims);
	assert_string_equal(json_string_value(json_object_get(claims, "sub")),
	                    "1b2c3d4e-0000-4000-8000-00000000abcd");
	assert_string_equal(json_string_value(json_object_get(claims, "nhs_number")), "9686368973");
	json_decref(claims);
	nl_free_secret(tok);
}

static void test_idtoken_rejects_garbage_format(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	char *tok = sign_a(valid_claims());
	char *four = NULL;
	(void)state;
	expect_fail("not-a-jwt", 9, set_a, &p, NL_ERR_INVALID, "format");
	expect_fail("", 0, set_a, &p, NL_ERR_INVALID, "format");
	assert_true(asprintf(&four, "%s.AAAA", tok) > 0);
	expect_fail(four, strlen(four), set_a, &p, NL_ERR_INVALID, "format");
	/* A NUL inside the stated length. */
	expect_fail(tok, strlen(tok) + 1, set_a, &p, NL_ERR_INVALID, "format");
	free(four);
	nl_free_secret(tok);
}

static void test_idtoken_rejects_oversized_token(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *c = valid_claims();
	char *pad = malloc(NL_JWS_MAX);
	char *tok;
	(void)state;
	assert_non_null(pad);
	memset(pad, 'x', NL_JWS_MAX - 1);
	pad[NL_JWS_MAX - 1] = '\0';
	json_object_set_new(c, "padding", json_string(pad));
	free(pad);
	tok = sign_a(c);
	assert_true(strlen(tok) > NL_JWS_MAX);
	expect_fail(tok, strlen(tok), set_a, &p, NL_ERR_TOO_BIG, "format");
	nl_free_secret(tok);
}

static void test_idtoken_rejects_signature_by_other_key_with_same_kid(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	char *tok = sign(valid_claims(), key_b, "RS512", "k1");
	(void)state;
	expect_fail(tok, strlen(tok), set_a, &p, NL_ERR_SIGNATURE, "signature");
	nl_free_secret(tok);
}

static void test_idtoken_rejects_tampered_payload(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	char *tok = sign_a(valid_claims());
	json_t *c = valid_claims();
	char *forged, *head, *dot;
	(void)state;
	/* The valid signature, over a payload whose sub changed. */
	json_object_set_new(c, "sub", json_string("someone-else"));
	head = unsigned_part("{\"alg\":\"RS512\",\"typ\":\"JWT\",\"kid\":\"k1\"}", c);
	dot = strrchr(tok, '.');
	assert_true(asprintf(&forged, "%s%s", head, dot) > 0);
	expect_fail(forged, strlen(forged), set_a, &p, NL_ERR_SIGNATURE, "signature");
	free(forged);
	free(head);
	json_decref(c);
	nl_free_secret(tok);
}

static void test_idtoken_rejects_alg_none(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *c = valid_claims();
	char *head = unsigned_part("{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}", c), *tok = NULL;
	(void)state;
	assert_true(asprintf(&tok, "%s.", head) > 0);
	expect_fail(tok, strlen(tok), set_a, &p, NL_ERR_ALG, "alg");
	free(tok);
	free(head);
	json_decref(c);
}

/* The classic confusion: HS256 with the provider's public key (PEM text) as the HMAC secret. */
static char *hs256_with_public_key(void)
{
	json_t *c = valid_claims();
	char *head = unsigned_part("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}", c);
	char *pem = nl_jwk_public_pem(key_a), *sig = NULL, *tok = NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	assert_non_null(pem);
	assert_non_null(HMAC(EVP_sha256(), pem, (int)strlen(pem), (const unsigned char *)head, strlen(head),
	                     mac, &maclen));
	assert_int_equal(nl_b64url_encode(mac, maclen, &sig), 0);
	assert_true(asprintf(&tok, "%s.%s", head, sig) > 0);
	free(sig);
	free(pem);
	free(head);
	json_decref(c);
	return tok;
}

static void test_idtoken_rejects_hs256_with_public_key_as_secret(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	char *tok = hs256_with_public_key();
	(void)state;
	expect_fail(tok, strlen(tok), set_a, &p, NL_ERR_ALG, "alg");
	free(tok);
}

static void test_idtoken_ignores_hs256_and_none_in_policy(void **state)
{
	static const char *const algs[] = {"HS256", "none"};
	struct nl_idtoken_policy p = base_policy();
	char *tok = hs256_with_public_key();
	(void)state;
	p.allowed_algs = algs;
	p.n_allowed_algs = 2;
	expect_fail(tok, strlen(tok), set_a, &p, NL_ERR_ALG, "alg");
	free(tok);
}

static void test_idtoken_rejects_rs256_when_only_rs512_allowed(void **state)
{
	static const char *const both[] = {"RS512", "RS256"};
	struct nl_idtoken_policy p = base_policy();
	char *tok = sign(valid_claims(), key_a, "RS256", "k1");
	(void)state;
	expect_fail(tok, strlen(tok), set_a, &p, NL_ERR_ALG, "alg");
	/* The same token passes when the policy allows RS256: only the alg rule refused it. */
	p.allowed_algs = both;
	p.n_allowed_algs = 2;
	expect_pass(tok, set_a, &p);
	nl_free_secret(tok);
}

static void test_idtoken_unknown_kid_is_key_error(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	char *tok = sign(valid_claims(), key_a, "RS512", "k-rotated");
	(void)state;
	expect_fail(tok, strlen(tok), set_a, &p, NL_ERR_KEY, "kid");
	nl_free_secret(tok);
}

static void test_idtoken_no_kid_with_one_key_passes(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	char *tok = sign(valid_claims(), key_a, "RS512", NULL);
	(void)state;
	expect_pass(tok, set_a, &p);
	nl_free_secret(tok);
}

static void test_idtoken_no_kid_with_two_keys_is_key_error(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	char *tok = sign(valid_claims(), key_a, "RS512", NULL);
	(void)state;
	expect_fail(tok, strlen(tok), set_ab, &p, NL_ERR_KEY, "kid");
	nl_free_secret(tok);
}

static void test_idtoken_kid_selects_from_two_keys(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	char *tok = sign(valid_claims(), key_b, "RS512", "k2");
	(void)state;
	expect_pass(tok, set_ab, &p);
	nl_free_secret(tok);
}

static void test_idtoken_no_jwks_is_key_error(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	char *tok = sign_a(valid_claims());
	(void)state;
	expect_fail(tok, strlen(tok), NULL, &p, NL_ERR_KEY, "kid");
	nl_free_secret(tok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_idtoken_valid_token_passes_and_returns_claims),
	    cmocka_unit_test(test_idtoken_rejects_garbage_format),
	    cmocka_unit_test(test_idtoken_rejects_oversized_token),
	    cmocka_unit_test(test_idtoken_rejects_signature_by_other_key_with_same_kid),
	    cmocka_unit_test(test_idtoken_rejects_tampered_payload),
	    cmocka_unit_test(test_idtoken_rejects_alg_none),
	    cmocka_unit_test(test_idtoken_rejects_hs256_with_public_key_as_secret),
	    cmocka_unit_test(test_idtoken_ignores_hs256_and_none_in_policy),
	    cmocka_unit_test(test_idtoken_rejects_rs256_when_only_rs512_allowed),
	    cmocka_unit_test(test_idtoken_unknown_kid_is_key_error),
	    cmocka_unit_test(test_idtoken_no_kid_with_one_key_passes),
	    cmocka_unit_test(test_idtoken_no_kid_with_two_keys_is_key_error),
	    cmocka_unit_test(test_idtoken_kid_selects_from_two_keys),
	    cmocka_unit_test(test_idtoken_no_jwks_is_key_error),
	};
	return cmocka_run_group_tests_name("idtoken_signature", tests, group_setup, group_teardown);
}
