/* The strict compact JWS parser: tampering, algorithm confusion, forbidden headers, duplicate
 * members and every refusal of a malformed or oversized serialization. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nl_b64.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_wipe.h"
#include "jose_fixture.h"

/* compact with its signature cut to its first keep bytes, re-encoded canonically. */
static char *truncate_signature(const char *compact, size_t keep)
{
	const char *dot = strrchr(compact, '.');
	uint8_t *sig = NULL;
	size_t siglen = 0;
	char *s, *out = NULL;

	assert_int_equal(nl_b64url_decode(dot + 1, strlen(dot + 1), &sig, &siglen), 0);
	assert_true(keep < siglen);
	s = b64(sig, keep);
	assert_true(asprintf(&out, "%.*s.%s", (int)(dot - compact), compact, s) > 0);
	free(s);
	free(sig);
	return out;
}

static void test_jws_rejects_tampered_payload(void **state)
{
	char *compact = sign_claims(K.rsa, "RS256", NULL, "{\"sub\":\"alice\"}");
	char *forged = b64s("{\"sub\":\"mallory\"}"), *dot1 = strchr(compact, '.'),
	     *dot2 = strrchr(compact, '.');
	char *tampered;
	struct nl_jws *jws = NULL;
	(void)state;

	*dot1 = '\0';
	tampered = join3(compact, forged, dot2 + 1);
	assert_int_equal(parse(tampered, RS256_ONLY, 1, &jws), 0);
	assert_int_equal(nl_jws_verify(jws, K.rsa), NL_ERR_SIGNATURE);
	assert_false(jws->verified);
	nl_jws_free(jws);
	free(tampered);
	free(forged);
	free(compact);
}

static void test_jws_rejects_tampered_signature(void **state)
{
	char *compact = sign_claims(K.rsa, "RS256", NULL, "{\"sub\":\"alice\"}");
	char *sig = strrchr(compact, '.') + 1;
	struct nl_jws *jws = NULL;
	(void)state;

	/* A middle character: the encoding stays canonical, only the value changes. */
	sig[10] = sig[10] == 'A' ? 'B' : 'A';
	assert_int_equal(parse(compact, RS256_ONLY, 1, &jws), 0);
	assert_int_equal(nl_jws_verify(jws, K.rsa), NL_ERR_SIGNATURE);
	nl_jws_free(jws);
	free(compact);
}

static void test_jws_rejects_truncated_signature(void **state)
{
	char *compact = sign_claims(K.rsa, "RS256", NULL, "{\"sub\":\"alice\"}");
	char *cut = truncate_signature(compact, 255);
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(cut, RS256_ONLY, 1, &jws), 0);
	assert_int_equal(nl_jws_verify(jws, K.rsa), NL_ERR_SIGNATURE);
	nl_jws_free(jws);
	free(cut);
	free(compact);
}

static void test_es256_rejects_truncated_signature(void **state)
{
	static const char *const allowed[] = {"ES256"};
	char *compact = sign_claims(K.ec, "ES256", NULL, "{\"sub\":\"alice\"}");
	char *cut = truncate_signature(compact, 63);
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(cut, allowed, 1, &jws), 0);
	assert_int_equal(nl_jws_verify(jws, K.ec), NL_ERR_SIGNATURE);
	nl_jws_free(jws);
	free(cut);
	free(compact);
}

static void test_jws_rejects_signature_by_other_key(void **state)
{
	char *compact = sign_claims(K.rsa2, "RS256", NULL, "{\"sub\":\"alice\"}");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(compact, RS256_ONLY, 1, &jws), 0);
	assert_int_equal(nl_jws_verify(jws, K.rsa), NL_ERR_SIGNATURE);
	nl_jws_free(jws);
	free(compact);
}

/* ---- algorithm decisions ---------------------------------------------------------------------- */

static void test_crafted_token_verifies(void **state)
{
	/* The control for the crafted-token tests below: the crafting itself is sound. */
	char *compact = craft("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", "{\"sub\":\"alice\"}");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(compact, RS256_ONLY, 1, &jws), 0);
	assert_int_equal(nl_jws_verify(jws, K.evp_rsa_pub), 0);
	nl_jws_free(jws);
	free(compact);
}

static void test_jws_rejects_alg_none(void **state)
{
	static const char *const allowed[] = {"none", "RS256"};
	char *h = b64s("{\"alg\":\"none\"}"), *p = b64s("{\"sub\":\"alice\"}");
	char *with_sig = join3(h, p, "AAAA"), *unsigned_jws = NULL;
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(with_sig, allowed, 2, &jws), NL_ERR_ALG);
	assert_null(jws);
	assert_true(asprintf(&unsigned_jws, "%s.%s.", h, p) > 0);
	assert_int_equal(parse(unsigned_jws, allowed, 2, &jws), NL_ERR_INVALID);
	assert_null(jws);
	free(unsigned_jws);
	free(with_sig);
	free(h);
	free(p);
}

static void test_jws_rejects_hs256_with_rsa_public_key_as_secret(void **state)
{
	/* The classic confusion: HMAC keyed with the verifier's public RSA key (PEM text, and n). */
	static const char *const allowed[] = {"HS256", "RS256"};
	char *pem = nl_jwk_public_pem(K.evp_rsa_pub);
	char *h = b64s("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"), *p = b64s("{\"sub\":\"admin\"}");
	char *input = NULL, *s, *compact;
	unsigned char mac[32];
	size_t maclen = 0;
	struct nl_jws *jws = NULL;
	(void)state;

	assert_non_null(pem);
	assert_true(asprintf(&input, "%s.%s", h, p) > 0);
	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, pem, strlen(pem),
	                          (unsigned char *)input, strlen(input), mac, sizeof(mac), &maclen));
	s = b64(mac, maclen);
	compact = join3(h, p, s);
	assert_int_equal(parse(compact, allowed, 2, &jws), NL_ERR_ALG);
	assert_null(jws);
	free(compact);
	free(s);
	free(input);
	free(h);
	free(p);
	free(pem);
}

static void test_jws_rejects_hs256_keyed_with_modulus(void **state)
{
	static const char *const allowed[] = {"HS256", "RS256"};
	char *json = nl_jwk_public_json(K.rsa, NULL);
	json_t *obj = json_loads(json, 0, NULL);
	const char *n = json_string_value(json_object_get(obj, "n"));
	uint8_t *nbytes = NULL;
	size_t nlen = 0, maclen = 0;
	char *h = b64s("{\"alg\":\"HS256\"}"), *p = b64s("{\"sub\":\"admin\"}"), *input = NULL, *s, *compact;
	unsigned char mac[32];
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(nl_b64url_decode(n, strlen(n), &nbytes, &nlen), 0);
	assert_true(asprintf(&input, "%s.%s", h, p) > 0);
	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, nbytes, nlen, (unsigned char *)input,
	                          strlen(input), mac, sizeof(mac), &maclen));
	s = b64(mac, maclen);
	compact = join3(h, p, s);
	assert_int_equal(parse(compact, allowed, 2, &jws), NL_ERR_ALG);
	assert_null(jws);
	free(compact);
	free(s);
	free(input);
	free(h);
	free(p);
	free(nbytes);
	json_decref(obj);
	free(json);
}

static void test_jws_rejects_alg_not_in_allowed_list(void **state)
{
	/* nl_jws_parse takes no key at all: the refusal necessarily comes before any key is consulted. */
	static const char *const allowed[] = {"RS512"};
	char *compact = sign_claims(K.rsa, "RS256", NULL, "{\"sub\":\"alice\"}");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(compact, allowed, 1, &jws), NL_ERR_ALG);
	assert_null(jws);
	assert_int_equal(parse(compact, NULL, 0, &jws), NL_ERR_ALG);
	assert_null(jws);
	free(compact);
}

static void test_jws_rejects_unknown_alg_even_if_listed(void **state)
{
	static const char *const allowed[] = {"RS1", "RS256"};
	char *compact = craft("{\"alg\":\"RS1\"}", "{\"sub\":\"alice\"}");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(compact, allowed, 2, &jws), NL_ERR_ALG);
	assert_null(jws);
	free(compact);
}

static void test_jws_rejects_missing_or_non_string_alg(void **state)
{
	char *a = craft("{\"typ\":\"JWT\"}", "{\"sub\":\"alice\"}");
	char *b = craft("{\"alg\":[\"RS256\"]}", "{\"sub\":\"alice\"}");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(a, RS256_ONLY, 1, &jws), NL_ERR_ALG);
	assert_int_equal(parse(b, RS256_ONLY, 1, &jws), NL_ERR_ALG);
	assert_null(jws);
	free(a);
	free(b);
}

static void test_jws_rejects_rs512_token_with_ec_key(void **state)
{
	static const char *const allowed[] = {"RS512"};
	char *compact = sign_claims(K.rsa, "RS512", NULL, "{\"sub\":\"alice\"}");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(compact, allowed, 1, &jws), 0);
	assert_int_equal(nl_jws_verify(jws, K.ec), NL_ERR_KEY);
	assert_false(jws->verified);
	nl_jws_free(jws);
	free(compact);
}

static void test_jws_rejects_es256_token_with_rsa_key(void **state)
{
	static const char *const allowed[] = {"ES256"};
	char *compact = sign_claims(K.ec, "ES256", NULL, "{\"sub\":\"alice\"}");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(compact, allowed, 1, &jws), 0);
	assert_int_equal(nl_jws_verify(jws, K.rsa), NL_ERR_KEY);
	nl_jws_free(jws);
	free(compact);
}

static void test_jws_rejects_rsa_key_below_2048_bits(void **state)
{
	EVP_PKEY *small = EVP_RSA_gen(1024);
	char *pem = pem_of(small, 0);
	char *compact = craft_rs256(small, "{\"alg\":\"RS256\"}", "{\"sub\":\"alice\"}");
	cjose_jwk_t *key = NULL;
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(nl_jwk_from_pem(pem, strlen(pem), &key), 0);
	assert_int_equal(parse(compact, RS256_ONLY, 1, &jws), 0);
	assert_int_equal(nl_jws_verify(jws, key), NL_ERR_KEY);
	nl_jws_free(jws);
	cjose_jwk_release(key);
	free(compact);
	free(pem);
	EVP_PKEY_free(small);
}

static void test_jose_alg_known(void **state)
{
	(void)state;
	assert_true(nl_jose_alg_known("RS256"));
	assert_true(nl_jose_alg_known("RS384"));
	assert_true(nl_jose_alg_known("RS512"));
	assert_true(nl_jose_alg_known("PS256"));
	assert_true(nl_jose_alg_known("ES256"));
	assert_false(nl_jose_alg_known("none"));
	assert_false(nl_jose_alg_known("HS256"));
	assert_false(nl_jose_alg_known("PS384"));
	assert_false(nl_jose_alg_known("ES512"));
	assert_false(nl_jose_alg_known("rs256"));
	assert_false(nl_jose_alg_known(NULL));
}

/* ---- header and structure refusals -------------------------------------------------------------- */

static void assert_header_refused(const char *header)
{
	char *compact = craft(header, "{\"sub\":\"alice\"}");
	struct nl_jws *jws = NULL;

	assert_int_equal(parse(compact, RS256_ONLY, 1, &jws), NL_ERR_INVALID);
	assert_null(jws);
	free(compact);
}

static void test_jws_rejects_crit_header(void **state)
{
	(void)state;
	assert_header_refused("{\"alg\":\"RS256\",\"crit\":[\"exp\"],\"exp\":1}");
}

static void test_jws_rejects_jku_header(void **state)
{
	(void)state;
	assert_header_refused("{\"alg\":\"RS256\",\"jku\":\"https://evil.example/jwks\"}");
}

static void test_jws_rejects_jwk_header(void **state)
{
	(void)state;
	assert_header_refused("{\"alg\":\"RS256\",\"jwk\":{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}}");
}

static void test_jws_rejects_x5u_header(void **state)
{
	(void)state;
	assert_header_refused("{\"alg\":\"RS256\",\"x5u\":\"https://evil.example/cert\"}");
}

static void test_jws_rejects_x5c_header(void **state)
{
	(void)state;
	assert_header_refused("{\"alg\":\"RS256\",\"x5c\":[\"MIIB\"]}");
}

static void test_jws_rejects_non_string_kid(void **state)
{
	(void)state;
	assert_header_refused("{\"alg\":\"RS256\",\"kid\":7}");
}

static void test_jws_rejects_duplicate_header_key(void **state)
{
	(void)state;
	assert_header_refused("{\"alg\":\"RS256\",\"alg\":\"RS256\"}");
}

static void test_jws_rejects_header_not_an_object(void **state)
{
	(void)state;
	assert_header_refused("[\"RS256\"]");
}

static void test_jws_rejects_duplicate_payload_key(void **state)
{
	char *compact = craft("{\"alg\":\"RS256\"}", "{\"sub\":\"alice\",\"sub\":\"root\"}");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(compact, RS256_ONLY, 1, &jws), NL_ERR_INVALID);
	assert_null(jws);
	free(compact);
}

static void test_jws_rejects_padding(void **state)
{
	char *compact = sign_claims(K.rsa, "RS256", NULL, "{\"sub\":\"alice\"}"), *padded = NULL;
	struct nl_jws *jws = NULL;
	(void)state;

	assert_true(asprintf(&padded, "%s=", compact) > 0);
	assert_int_equal(parse(padded, RS256_ONLY, 1, &jws), NL_ERR_INVALID);
	assert_null(jws);
	free(padded);
	free(compact);
}

static void test_jws_rejects_padding_inside_a_part(void **state)
{
	/* {"alg":"RS256"} encodes to 20 characters; add standard padding to the header. */
	char *h = b64s("{\"alg\":\"RS256\"}"), *p = b64s("{\"a\":1}"), *hp = NULL, *compact;
	struct nl_jws *jws = NULL;
	(void)state;

	assert_true(asprintf(&hp, "%s==", h) > 0);
	compact = join3(hp, p, "AAAA");
	assert_int_equal(parse(compact, RS256_ONLY, 1, &jws), NL_ERR_INVALID);
	assert_null(jws);
	free(compact);
	free(hp);
	free(h);
	free(p);
}

static void test_jws_rejects_whitespace(void **state)
{
	char *compact = sign_claims(K.rsa, "RS256", NULL, "{\"sub\":\"alice\"}"), *spaced = NULL;
	char *dot = strchr(compact, '.');
	struct nl_jws *jws = NULL;
	(void)state;

	*dot = '\0';
	assert_true(asprintf(&spaced, "%s.\n%s", compact, dot + 1) > 0);
	assert_int_equal(parse(spaced, RS256_ONLY, 1, &jws), NL_ERR_INVALID);
	assert_null(jws);
	free(spaced);
	free(compact);
}

static void test_jws_rejects_four_parts(void **state)
{
	char *compact = sign_claims(K.rsa, "RS256", NULL, "{\"sub\":\"alice\"}"), *four = NULL;
	struct nl_jws *jws = NULL;
	(void)state;

	assert_true(asprintf(&four, "%s.AAAA", compact) > 0);
	assert_int_equal(parse(four, RS256_ONLY, 1, &jws), NL_ERR_INVALID);
	assert_null(jws);
	free(four);
	free(compact);
}

static void test_jws_rejects_two_parts(void **state)
{
	char *compact = sign_claims(K.rsa, "RS256", NULL, "{\"sub\":\"alice\"}");
	struct nl_jws *jws = NULL;
	(void)state;

	*strrchr(compact, '.') = '\0';
	assert_int_equal(parse(compact, RS256_ONLY, 1, &jws), NL_ERR_INVALID);
	assert_null(jws);
	free(compact);
}

static void test_jws_rejects_empty_parts(void **state)
{
	char *h = b64s("{\"alg\":\"RS256\"}"), *p = b64s("{\"a\":1}");
	char *no_header = join3("", p, "AAAA"), *no_payload = join3(h, "", "AAAA"), *no_sig = join3(h, p, "");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(no_header, RS256_ONLY, 1, &jws), NL_ERR_INVALID);
	assert_int_equal(parse(no_payload, RS256_ONLY, 1, &jws), NL_ERR_INVALID);
	assert_int_equal(parse(no_sig, RS256_ONLY, 1, &jws), NL_ERR_INVALID);
	assert_int_equal(parse("..", RS256_ONLY, 1, &jws), NL_ERR_INVALID);
	assert_null(jws);
	free(no_header);
	free(no_payload);
	free(no_sig);
	free(h);
	free(p);
}

static void test_jws_rejects_oversized(void **state)
{
	size_t n = NL_JWS_MAX + 1;
	char *big = malloc(n + 1);
	struct nl_jws *jws = NULL;
	(void)state;

	assert_non_null(big);
	memset(big, 'A', n);
	big[10] = '.';
	big[20] = '.';
	big[n] = '\0';
	assert_int_equal(parse(big, RS256_ONLY, 1, &jws), NL_ERR_TOO_BIG);
	assert_null(jws);
	free(big);
}

/* ---- JWKS ------------------------------------------------------------------------------------- */

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jws_rejects_tampered_payload),
	    cmocka_unit_test(test_jws_rejects_tampered_signature),
	    cmocka_unit_test(test_jws_rejects_truncated_signature),
	    cmocka_unit_test(test_es256_rejects_truncated_signature),
	    cmocka_unit_test(test_jws_rejects_signature_by_other_key),
	    cmocka_unit_test(test_crafted_token_verifies),
	    cmocka_unit_test(test_jws_rejects_alg_none),
	    cmocka_unit_test(test_jws_rejects_hs256_with_rsa_public_key_as_secret),
	    cmocka_unit_test(test_jws_rejects_hs256_keyed_with_modulus),
	    cmocka_unit_test(test_jws_rejects_alg_not_in_allowed_list),
	    cmocka_unit_test(test_jws_rejects_unknown_alg_even_if_listed),
	    cmocka_unit_test(test_jws_rejects_missing_or_non_string_alg),
	    cmocka_unit_test(test_jws_rejects_rs512_token_with_ec_key),
	    cmocka_unit_test(test_jws_rejects_es256_token_with_rsa_key),
	    cmocka_unit_test(test_jws_rejects_rsa_key_below_2048_bits),
	    cmocka_unit_test(test_jose_alg_known),
	    cmocka_unit_test(test_jws_rejects_crit_header),
	    cmocka_unit_test(test_jws_rejects_jku_header),
	    cmocka_unit_test(test_jws_rejects_jwk_header),
	    cmocka_unit_test(test_jws_rejects_x5u_header),
	    cmocka_unit_test(test_jws_rejects_x5c_header),
	    cmocka_unit_test(test_jws_rejects_non_string_kid),
	    cmocka_unit_test(test_jws_rejects_duplicate_header_key),
	    cmocka_unit_test(test_jws_rejects_header_not_an_object),
	    cmocka_unit_test(test_jws_rejects_duplicate_payload_key),
	    cmocka_unit_test(test_jws_rejects_padding),
	    cmocka_unit_test(test_jws_rejects_padding_inside_a_part),
	    cmocka_unit_test(test_jws_rejects_whitespace),
	    cmocka_unit_test(test_jws_rejects_four_parts),
	    cmocka_unit_test(test_jws_rejects_two_parts),
	    cmocka_unit_test(test_jws_rejects_empty_parts),
	    cmocka_unit_test(test_jws_rejects_oversized),
	};

	return cmocka_run_group_tests_name("jose_jws", tests, group_setup, group_teardown);
}
