/* ID token rules: a valid token passes; each rule of DESIGN.md fails with its own word when exactly
 * one thing differs from the valid token; nl_vot_level's grammar. */
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

#define NOW         ((time_t)1700000000)
#define ISSUER      "https://auth.example.signin.nhs.uk"
#define CLIENT      "client-1234"
#define NONCE       "n-Q0hBTkdFLU1FLU5PTkNFLTAxMjM0NTY3"
#define VTR         "[\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]"
#define VTR_STEP_UP "[\"P5.Cp.Cd\",\"P5.Cp.Ck\",\"P5.Cm\",\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]"

static cjose_jwk_t *key_a;     /* the provider's key, kid "k1" */
static cjose_jwk_t *key_b;     /* another key: "wrong key" and the second key of a set */
static struct nl_jwks *set_a;  /* {k1: key_a} */
static struct nl_jwks *set_ab; /* {k1: key_a, k2: key_b} */

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

static int group_setup(void **state)
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

static int group_teardown(void **state)
{
	(void)state;
	nl_jwks_free(set_a);
	nl_jwks_free(set_ab);
	cjose_jwk_release(key_a);
	cjose_jwk_release(key_b);
	return 0;
}

/* The claims of a token that passes every rule under base_policy(). */
static json_t *valid_claims(void)
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

static struct nl_idtoken_policy base_policy(void)
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
static char *sign(json_t *claims, const cjose_jwk_t *key, const char *alg, const char *kid)
{
	char *tok = NULL;
	assert_int_equal(nl_jws_sign(key, alg, kid, claims, &tok), 0);
	json_decref(claims);
	return tok;
}

static char *sign_a(json_t *claims)
{
	return sign(claims, key_a, "RS512", "k1");
}

static void expect_pass(const char *tok, const struct nl_jwks *set, const struct nl_idtoken_policy *p)
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

static void expect_fail(const char *tok, size_t len, const struct nl_jwks *set,
                        const struct nl_idtoken_policy *p, int code, const char *want_rule)
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

/* Sign the valid claims after one change and expect the rule to fail. */
static void expect_claims_fail(json_t *claims, int code, const char *want_rule)
{
	struct nl_idtoken_policy p = base_policy();
	char *tok = sign_a(claims);
	expect_fail(tok, strlen(tok), set_a, &p, code, want_rule);
	nl_free_secret(tok);
}

static void expect_claims_pass(json_t *claims, const struct nl_idtoken_policy *p)
{
	char *tok = sign_a(claims);
	expect_pass(tok, set_a, p);
	nl_free_secret(tok);
}

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

static void test_idtoken_rejects_wrong_issuer(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "iss", json_string("https://auth.evil.example"));
	expect_claims_fail(c, NL_ERR_CLAIM, "iss");
}

static void test_idtoken_rejects_issuer_with_trailing_slash(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "iss", json_string(ISSUER "/"));
	expect_claims_fail(c, NL_ERR_CLAIM, "iss");
}

static void test_idtoken_rejects_missing_issuer(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_del(c, "iss");
	expect_claims_fail(c, NL_ERR_CLAIM, "iss");
}

static void test_idtoken_rejects_missing_aud(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_del(c, "aud");
	expect_claims_fail(c, NL_ERR_CLAIM, "aud");
}

static void test_idtoken_rejects_wrong_aud(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "aud", json_string("client-12345"));
	expect_claims_fail(c, NL_ERR_CLAIM, "aud");
}

static void test_idtoken_rejects_aud_array_without_client(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "aud", json_pack("[s,s]", "other-1", "other-2"));
	expect_claims_fail(c, NL_ERR_CLAIM, "aud");
}

static void test_idtoken_accepts_aud_array_of_one(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "aud", json_pack("[s]", CLIENT));
	expect_claims_pass(c, &p);
}

static void test_idtoken_rejects_several_audiences_without_azp(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "aud", json_pack("[s,s]", CLIENT, "another-client"));
	expect_claims_fail(c, NL_ERR_CLAIM, "azp");
}

/* OIDC Core 3.1.3.7 (3): "MUST be rejected if ... it contains additional audiences not trusted by
 * the Client". azp naming us does not make another-client trusted. */
static void test_id_token_rejects_untrusted_extra_audience_even_with_azp(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "aud", json_pack("[s,s]", CLIENT, "another-client"));
	json_object_set_new(c, "azp", json_string(CLIENT));
	expect_claims_fail(c, NL_ERR_CLAIM, "aud");
}

static void test_id_token_accepts_our_client_id_twice_in_aud_with_azp(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "aud", json_pack("[s,s]", CLIENT, CLIENT));
	json_object_set_new(c, "azp", json_string(CLIENT));
	expect_claims_pass(c, &p);
}

static void test_idtoken_rejects_wrong_azp(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "azp", json_string("another-client"));
	expect_claims_fail(c, NL_ERR_CLAIM, "azp");
}

static void test_idtoken_rejects_exp_past_beyond_skew(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "exp", json_integer(NOW - 61));
	expect_claims_fail(c, NL_ERR_EXPIRED, "exp");
}

static void test_idtoken_accepts_exp_within_skew(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "exp", json_integer(NOW - 59));
	expect_claims_pass(c, &p);
}

static void test_idtoken_clamps_skew_to_sixty_seconds(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *c = valid_claims();
	char *tok;
	(void)state;
	p.skew = 3600;
	json_object_set_new(c, "exp", json_integer(NOW - 120));
	tok = sign_a(c);
	expect_fail(tok, strlen(tok), set_a, &p, NL_ERR_EXPIRED, "exp");
	nl_free_secret(tok);
}

static void test_idtoken_rejects_missing_exp(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_del(c, "exp");
	expect_claims_fail(c, NL_ERR_CLAIM, "exp");
}

static void test_idtoken_rejects_exp_as_string(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "exp", json_string("1700003600"));
	expect_claims_fail(c, NL_ERR_CLAIM, "exp");
}

static void test_idtoken_rejects_iat_in_future_beyond_skew(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "iat", json_integer(NOW + 61));
	expect_claims_fail(c, NL_ERR_CLAIM, "iat");
}

static void test_idtoken_accepts_iat_in_future_within_skew(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "iat", json_integer(NOW + 60));
	expect_claims_pass(c, &p);
}

/* RFC 7519 4.1.5: "MUST NOT be accepted for processing" before nbf (DESIGN.md: at most 60 s skew). */
static void test_id_token_rejects_nbf_in_the_future(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "nbf", json_integer(NOW + 61));
	expect_claims_fail(c, NL_ERR_CLAIM, "nbf");
}

static void test_id_token_rejects_nbf_an_hour_ahead_even_with_a_longer_policy_skew(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *c = valid_claims();
	char *tok;
	(void)state;
	json_object_set_new(c, "nbf", json_integer(NOW + 3600));
	p.skew = 7200; /* clamped to 60 */
	tok = sign_a(c);
	expect_fail(tok, strlen(tok), set_a, &p, NL_ERR_CLAIM, "nbf");
	nl_free_secret(tok);
}

static void test_id_token_accepts_nbf_in_the_past_or_within_skew(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "nbf", json_integer(NOW - 5));
	expect_claims_pass(c, &p);
	c = valid_claims();
	json_object_set_new(c, "nbf", json_integer(NOW + 60));
	expect_claims_pass(c, &p);
}

static void test_id_token_rejects_nbf_that_is_not_an_integer(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "nbf", json_string("0"));
	expect_claims_fail(c, NL_ERR_CLAIM, "nbf");
	c = valid_claims();
	json_object_set_new(c, "nbf", json_null());
	expect_claims_fail(c, NL_ERR_CLAIM, "nbf");
}

static void test_idtoken_rejects_missing_iat(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_del(c, "iat");
	expect_claims_fail(c, NL_ERR_CLAIM, "iat");
}

static void test_idtoken_rejects_missing_nonce(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_del(c, "nonce");
	expect_claims_fail(c, NL_ERR_CLAIM, "nonce");
}

static void test_idtoken_rejects_wrong_nonce(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "nonce", json_string("n-Q0hBTkdFLU1FLU5PTkNFLTAxMjM0NTY4"));
	expect_claims_fail(c, NL_ERR_CLAIM, "nonce");
}

static void test_idtoken_rejects_nonce_prefix(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "nonce", json_string("n-Q0hBTkdFLU1FLU5PTkNF"));
	expect_claims_fail(c, NL_ERR_CLAIM, "nonce");
}

static void test_idtoken_null_policy_nonce_skips_nonce_rule(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *c = valid_claims();
	(void)state;
	p.nonce = NULL;
	json_object_del(c, "nonce");
	expect_claims_pass(c, &p);
}

static void test_idtoken_rejects_missing_sub(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_del(c, "sub");
	expect_claims_fail(c, NL_ERR_CLAIM, "sub");
}

static void test_idtoken_rejects_empty_sub(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_set_new(c, "sub", json_string(""));
	expect_claims_fail(c, NL_ERR_CLAIM, "sub");
}

static void test_idtoken_rejects_overlong_sub(void **state)
{
	char big[257];
	json_t *c = valid_claims();
	(void)state;
	memset(big, 'a', 256);
	big[256] = '\0';
	json_object_set_new(c, "sub", json_string(big));
	expect_claims_fail(c, NL_ERR_CLAIM, "sub");
}

static void test_idtoken_rejects_missing_vot(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	json_object_del(c, "vot");
	expect_claims_fail(c, NL_ERR_CLAIM, "vot");
}

static void test_idtoken_rejects_vot_not_requested(void **state)
{
	json_t *c = valid_claims();
	(void)state;
	/* A well-formed P9 vector, but not one of those asked for. */
	json_object_set_new(c, "vot", json_string("P9.Cp"));
	expect_claims_fail(c, NL_ERR_CLAIM, "vot");
}

static void test_idtoken_rejects_policy_without_vtr(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	char *tok = sign_a(valid_claims());
	(void)state;
	p.vtr = NULL;
	expect_fail(tok, strlen(tok), set_a, &p, NL_ERR_CONFIG, "vot");
	p.vtr = "\"P9.Cp.Cd\"";
	expect_fail(tok, strlen(tok), set_a, &p, NL_ERR_CONFIG, "vot");
	nl_free_secret(tok);
}

static void test_idtoken_rejects_p5_when_min_level_9(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *c = valid_claims();
	char *tok;
	(void)state;
	p.vtr = VTR_STEP_UP;
	json_object_set_new(c, "vot", json_string("P5.Cp.Cd"));
	tok = sign_a(c);
	expect_fail(tok, strlen(tok), set_a, &p, NL_ERR_DENIED, "level");
	/* The same token at min_level 5: only the level rule refused it. */
	p.min_level = 5;
	expect_pass(tok, set_a, &p);
	nl_free_secret(tok);
}

static void test_idtoken_accepts_p9_with_min_level_9(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *c = valid_claims();
	(void)state;
	p.vtr = VTR_STEP_UP;
	json_object_set_new(c, "vot", json_string("P9.Cm"));
	expect_claims_pass(c, &p);
}

static void test_idtoken_accepts_p0_with_min_level_0(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	json_t *c = valid_claims();
	(void)state;
	p.vtr = "[\"P0.Cp.Cd\",\"P0.Cp.Ck\",\"P0.Cm\"]";
	p.min_level = 0;
	json_object_set_new(c, "vot", json_string("P0.Cp.Cd"));
	expect_claims_pass(c, &p);
}

static void test_idtoken_no_jwks_is_key_error(void **state)
{
	struct nl_idtoken_policy p = base_policy();
	char *tok = sign_a(valid_claims());
	(void)state;
	expect_fail(tok, strlen(tok), NULL, &p, NL_ERR_KEY, "kid");
	nl_free_secret(tok);
}

static void test_vot_level_table(void **state)
{
	static const struct {
		const char *vot;
		int level;
	} t[] = {
	    {"P9.Cp.Cd", 9}, {"P9.Cp.Ck", 9},   {"P9.Cm", 9},      {"P9.Cp", 9},   {"P5.Cp.Cd", 5},
	    {"P0.Cp.Cd", 0}, {"P9", -1},        {"P10.Cp", -1},    {"P1.Cp", -1},  {"X9.Cp.Cd", -1},
	    {"", -1},        {"P9.", -1},       {"P9.C", -1},      {"P9.Cp.", -1}, {"p9.Cp", -1},
	    {"P9.CP", -1},   {"P9..Cp", -1},    {"P9.Mp", -1},     {"P9.Cpx", -1}, {"P9 .Cp", -1},
	    {".Cp", -1},     {"P9.Cp.Cd ", -1}, {"P9.Cp.Cd.", -1},
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (nl_vot_level(t[i].vot) != t[i].level)
			fail_msg("nl_vot_level(\"%s\") = %d, want %d", t[i].vot, nl_vot_level(t[i].vot),
			         t[i].level);
	assert_int_equal(nl_vot_level(NULL), -1);
}

/* The words of the rules are what logs and error lines have always said. */
static void test_idtoken_rule_words_are_the_log_words(void **state)
{
	static const char *const want[] = {"none", "format", "alg", "kid", "signature",
	                                   "iss",  "aud",    "azp", "exp", "iat",
	                                   "nbf",  "nonce",  "sub", "vot", "level"};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_string_equal(nl_idtoken_rule_word((enum nl_idtoken_rule)i), want[i]);
	assert_int_equal(NL_RULE_LEVEL + 1, (int)(sizeof(want) / sizeof(want[0])));
	assert_string_equal(nl_idtoken_rule_word((enum nl_idtoken_rule)99), "format");
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
	    cmocka_unit_test(test_idtoken_rejects_wrong_issuer),
	    cmocka_unit_test(test_idtoken_rejects_issuer_with_trailing_slash),
	    cmocka_unit_test(test_idtoken_rejects_missing_issuer),
	    cmocka_unit_test(test_idtoken_rejects_missing_aud),
	    cmocka_unit_test(test_idtoken_rejects_wrong_aud),
	    cmocka_unit_test(test_idtoken_rejects_aud_array_without_client),
	    cmocka_unit_test(test_idtoken_accepts_aud_array_of_one),
	    cmocka_unit_test(test_idtoken_rejects_several_audiences_without_azp),
	    cmocka_unit_test(test_id_token_rejects_untrusted_extra_audience_even_with_azp),
	    cmocka_unit_test(test_id_token_accepts_our_client_id_twice_in_aud_with_azp),
	    cmocka_unit_test(test_idtoken_rejects_wrong_azp),
	    cmocka_unit_test(test_idtoken_rejects_exp_past_beyond_skew),
	    cmocka_unit_test(test_idtoken_accepts_exp_within_skew),
	    cmocka_unit_test(test_idtoken_clamps_skew_to_sixty_seconds),
	    cmocka_unit_test(test_idtoken_rejects_missing_exp),
	    cmocka_unit_test(test_idtoken_rejects_exp_as_string),
	    cmocka_unit_test(test_idtoken_rejects_iat_in_future_beyond_skew),
	    cmocka_unit_test(test_idtoken_accepts_iat_in_future_within_skew),
	    cmocka_unit_test(test_idtoken_rejects_missing_iat),
	    cmocka_unit_test(test_id_token_rejects_nbf_in_the_future),
	    cmocka_unit_test(test_id_token_rejects_nbf_an_hour_ahead_even_with_a_longer_policy_skew),
	    cmocka_unit_test(test_id_token_accepts_nbf_in_the_past_or_within_skew),
	    cmocka_unit_test(test_id_token_rejects_nbf_that_is_not_an_integer),
	    cmocka_unit_test(test_idtoken_rejects_missing_nonce),
	    cmocka_unit_test(test_idtoken_rejects_wrong_nonce),
	    cmocka_unit_test(test_idtoken_rejects_nonce_prefix),
	    cmocka_unit_test(test_idtoken_null_policy_nonce_skips_nonce_rule),
	    cmocka_unit_test(test_idtoken_rejects_missing_sub),
	    cmocka_unit_test(test_idtoken_rejects_empty_sub),
	    cmocka_unit_test(test_idtoken_rejects_overlong_sub),
	    cmocka_unit_test(test_idtoken_rejects_missing_vot),
	    cmocka_unit_test(test_idtoken_rejects_vot_not_requested),
	    cmocka_unit_test(test_idtoken_rejects_policy_without_vtr),
	    cmocka_unit_test(test_idtoken_rejects_p5_when_min_level_9),
	    cmocka_unit_test(test_idtoken_accepts_p9_with_min_level_9),
	    cmocka_unit_test(test_idtoken_accepts_p0_with_min_level_0),
	    cmocka_unit_test(test_vot_level_table),
	    cmocka_unit_test(test_idtoken_rule_words_are_the_log_words),
	};
	return cmocka_run_group_tests_name("idtoken", tests, group_setup, group_teardown);
}
