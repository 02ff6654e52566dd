/* JOSE known answers and round trips: the RFC 7515/7520/7638 vectors, sign + verify with every alg
 * we sign with (checked by OpenSSL too), and the keys nl_jws_sign refuses. */
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

static EVP_PKEY *evp_from_pem(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(pk);
	return pk;
}
/* ---- RFC known-answer vectors ------------------------------------------------------------------ */

static void test_rfc7515_a2_rs256_verifies(void **state)
{
	char *jws_text = read_fixture("rfc7515_a2.jws");
	cjose_jwk_t *key = jwk_fixture("rfc7515_a2_jwk.json");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(jws_text, RS256_ONLY, 1, &jws), 0);
	assert_false(jws->verified);
	assert_int_equal(nl_jws_verify(jws, key), 0);
	assert_true(jws->verified);
	nl_jws_free(jws);
	cjose_jwk_release(key);
	free(jws_text);
}

static void test_rfc7515_a2_claims_are_parsed(void **state)
{
	char *jws_text = read_fixture("rfc7515_a2.jws");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(jws_text, RS256_ONLY, 1, &jws), 0);
	assert_string_equal(jws->alg, "RS256");
	assert_null(jws->kid);
	assert_string_equal(nl_jwt_str(jws->claims, "iss"), "joe");
	assert_int_equal(json_integer_value(json_object_get(jws->claims, "exp")), 1300819380);
	assert_true(json_is_true(json_object_get(jws->claims, "http://example.com/is_root")));
	nl_jws_free(jws);
	free(jws_text);
}

static void test_rfc7515_a2_fails_with_other_rsa_key(void **state)
{
	char *jws_text = read_fixture("rfc7515_a2.jws");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(jws_text, RS256_ONLY, 1, &jws), 0);
	assert_int_equal(nl_jws_verify(jws, K.rsa), NL_ERR_SIGNATURE);
	assert_false(jws->verified);
	nl_jws_free(jws);
	free(jws_text);
}

static void test_rfc7515_a3_es256_verifies(void **state)
{
	static const char *const allowed[] = {"ES256"};
	char *jws_text = read_fixture("rfc7515_a3.jws");
	cjose_jwk_t *key = jwk_fixture("rfc7515_a3_jwk.json");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(jws_text, allowed, 1, &jws), 0);
	assert_int_equal(nl_jws_verify(jws, key), 0);
	assert_true(jws->verified);
	nl_jws_free(jws);
	cjose_jwk_release(key);
	free(jws_text);
}

/* RFC 7520 §4, Figure 7 (U+2019 as UTF-8). */
#define RFC7520_PAYLOAD                                                                                      \
	"It\xe2\x80\x99s a dangerous business, Frodo, going out your door. You step onto the road, and if "  \
	"you "                                                                                               \
	"don't keep your feet, there\xe2\x80\x99s no knowing where you might be swept off to."

static void test_rfc7520_4_1_rs256_verifies(void **state)
{
	char *jws_text = read_fixture("rfc7520_4_1_rs256.jws");
	cjose_jwk_t *key = jwk_fixture("rfc7520_3_3_rsa_public.json");
	struct nl_jws *jws = NULL;
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	(void)state;

	assert_int_equal(parse(jws_text, RS256_ONLY, 1, &jws), 0);
	assert_string_equal(jws->kid, "bilbo.baggins@hobbiton.example");
	assert_null(jws->claims); /* the payload is prose, not a JSON object */
	assert_int_equal(nl_jws_verify(jws, key), 0);
	/* The payload that was verified is the prose of RFC 7520 4 (the middle part, decoded). */
	assert_int_equal(nl_b64url_decode(strchr(jws_text, '.') + 1,
	                                  (size_t)(strrchr(jws_text, '.') - strchr(jws_text, '.') - 1),
	                                  &plain, &plain_len),
	                 0);
	assert_int_equal(plain_len, strlen(RFC7520_PAYLOAD));
	assert_memory_equal(plain, RFC7520_PAYLOAD, plain_len);
	free(plain);
	nl_jws_free(jws);
	cjose_jwk_release(key);
	free(jws_text);
}

static void test_rfc7520_4_1_verifies_through_jwks_by_kid(void **state)
{
	char *jws_text = read_fixture("rfc7520_4_1_rs256.jws");
	char *jwk = read_fixture("rfc7520_3_3_rsa_public.json"), *set_json = NULL;
	struct nl_jwks *set = NULL;
	struct nl_jws *jws = NULL;
	(void)state;

	assert_true(asprintf(&set_json, "{\"keys\":[%s]}", jwk) > 0);
	assert_int_equal(nl_jwks_parse(set_json, strlen(set_json), &set), 0);
	assert_int_equal(parse(jws_text, RS256_ONLY, 1, &jws), 0);
	assert_int_equal(nl_jws_verify_jwks(jws, set), 0);
	assert_true(jws->verified);
	nl_jws_free(jws);
	nl_jwks_free(set);
	free(set_json);
	free(jwk);
	free(jws_text);
}

static void test_rfc7520_4_2_ps384_refused_as_not_allowed(void **state)
{
	/* Listed by a careless caller, still refused: PS384 is not an algorithm we do. */
	static const char *const allowed[] = {"PS384", "PS256", "RS256"};
	char *jws_text = read_fixture("rfc7520_4_2_ps384.jws");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(jws_text, allowed, 3, &jws), NL_ERR_ALG);
	assert_null(jws);
	free(jws_text);
}

static void test_rfc7520_4_3_es512_refused_as_not_allowed(void **state)
{
	static const char *const allowed[] = {"ES512", "ES256"};
	char *jws_text = read_fixture("rfc7520_4_3_es512.jws");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(jws_text, allowed, 2, &jws), NL_ERR_ALG);
	assert_null(jws);
	free(jws_text);
}

static void test_rfc7520_p521_key_refused(void **state)
{
	char *json = read_fixture("rfc7520_3_1_ec_public.json");
	cjose_jwk_t *jwk = NULL;
	(void)state;

	assert_int_equal(nl_jwk_from_json(json, strlen(json), &jwk), NL_ERR_KEY);
	assert_null(jwk);
	free(json);
}

static void test_rfc7638_thumbprint(void **state)
{
	cjose_jwk_t *key = jwk_fixture("rfc7638_3_1_jwk.json");
	char *tp = nl_jwk_thumbprint(key);
	(void)state;

	assert_non_null(tp);
	assert_string_equal(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	free(tp);
	cjose_jwk_release(key);
}

static void test_thumbprint_of_ec_key_is_stable_across_export(void **state)
{
	cjose_jwk_t *pub = public_copy(K.ec);
	char *a = nl_jwk_thumbprint(K.ec), *b = nl_jwk_thumbprint(pub);
	(void)state;

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(strlen(a), 43);
	assert_string_equal(a, b);
	free(a);
	free(b);
	cjose_jwk_release(pub);
}

/* ---- sign + verify round trips ---------------------------------------------------------------- */

static void test_round_trip_rs256(void **state)
{
	(void)state;
	round_trip(K.rsa, "RS256");
}

static void test_round_trip_rs384(void **state)
{
	(void)state;
	round_trip(K.rsa, "RS384");
}

static void test_round_trip_rs512(void **state)
{
	(void)state;
	round_trip(K.rsa, "RS512");
}

static void test_round_trip_ps256(void **state)
{
	(void)state;
	round_trip(K.rsa, "PS256");
}

static void test_round_trip_es256(void **state)
{
	(void)state;
	round_trip(K.ec, "ES256");
}

/* The typed signer writes the typ asked for, or none; the plain signer keeps writing "JWT". */
static void test_sign_typed_sets_or_leaves_out_typ(void **state)
{
	static const char *const allowed[] = {"ES256"};
	json_t *claims = json_pack("{s:s}", "sub", "alice");
	cjose_jwk_t *pub = public_copy(K.ec);
	char *typed = NULL, *untyped = NULL;
	struct nl_jws *jws = NULL;
	(void)state;

	assert_non_null(claims);
	assert_int_equal(nl_jws_sign_typed(K.ec, "ES256", "e1", "nl-host+jwt", claims, &typed), 0);
	assert_int_equal(parse(typed, allowed, 1, &jws), 0);
	assert_string_equal(jws->typ, "nl-host+jwt");
	assert_string_equal(json_string_value(json_object_get(jws->header, "typ")), "nl-host+jwt");
	assert_int_equal(nl_jws_verify(jws, pub), 0);
	nl_jws_free(jws);
	assert_int_equal(nl_jws_sign_typed(K.ec, "ES256", NULL, NULL, claims, &untyped), 0);
	assert_int_equal(parse(untyped, allowed, 1, &jws), 0);
	assert_null(jws->typ);
	assert_null(json_object_get(jws->header, "typ"));
	assert_null(jws->kid);
	assert_int_equal(nl_jws_verify(jws, pub), 0);
	nl_jws_free(jws);
	nl_free_secret(typed);
	nl_free_secret(untyped);
	cjose_jwk_release(pub);
	json_decref(claims);
}

/* Verify compact with OpenSSL alone, from the PEM we export. */
static int evp_verify(const cjose_jwk_t *key, const char *compact, bool pss, bool ecdsa)
{
	char *pem = nl_jwk_public_pem(key);
	EVP_PKEY *pk;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const char *dot = strrchr(compact, '.');
	uint8_t *sig = NULL, *der = NULL;
	size_t siglen = 0;
	int derlen, ok;

	assert_non_null(pem);
	pk = evp_from_pem(pem);
	assert_int_equal(nl_b64url_decode(dot + 1, strlen(dot + 1), &sig, &siglen), 0);
	assert_int_equal(EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, pk), 1);
	if (pss) {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
		/* RFC 7518 §3.5: the salt is as long as the hash. */
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
	}
	if (ecdsa) {
		ECDSA_SIG *es = ECDSA_SIG_new();
		assert_int_equal(siglen, 64);
		assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)),
		                 1);
		derlen = i2d_ECDSA_SIG(es, &der);
		assert_true(derlen > 0);
		ok = EVP_DigestVerify(ctx, der, (size_t)derlen, (const unsigned char *)compact,
		                      (size_t)(dot - compact));
		OPENSSL_free(der);
		ECDSA_SIG_free(es);
	} else {
		ok = EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)compact,
		                      (size_t)(dot - compact));
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	free(sig);
	free(pem);
	return ok;
}

static void test_ps256_signature_verifies_with_openssl(void **state)
{
	char *compact = sign_claims(K.rsa, "PS256", NULL, "{\"a\":1}");
	(void)state;
	assert_int_equal(evp_verify(K.rsa, compact, true, false), 1);
	nl_free_secret(compact);
}

static void test_rs256_signature_verifies_with_openssl(void **state)
{
	char *compact = sign_claims(K.rsa, "RS256", NULL, "{\"a\":1}");
	(void)state;
	assert_int_equal(evp_verify(K.rsa, compact, false, false), 1);
	nl_free_secret(compact);
}

static void test_es256_signature_verifies_with_openssl(void **state)
{
	char *compact = sign_claims(K.ec, "ES256", NULL, "{\"a\":1}");
	(void)state;
	assert_int_equal(evp_verify(K.ec, compact, false, true), 1);
	nl_free_secret(compact);
}

static void test_sign_refuses_public_only_key(void **state)
{
	cjose_jwk_t *pub = public_copy(K.rsa);
	json_t *claims = json_pack("{s:s}", "a", "b");
	char *out = NULL;
	(void)state;

	assert_int_equal(nl_jws_sign(pub, "RS256", NULL, claims, &out), NL_ERR_KEY);
	assert_null(out);
	json_decref(claims);
	cjose_jwk_release(pub);
}

static void test_sign_refuses_hs256(void **state)
{
	json_t *claims = json_pack("{s:s}", "a", "b");
	char *out = NULL;
	(void)state;

	assert_int_equal(nl_jws_sign(K.rsa, "HS256", NULL, claims, &out), NL_ERR_ALG);
	assert_null(out);
	json_decref(claims);
}

static void test_sign_refuses_key_of_wrong_type(void **state)
{
	json_t *claims = json_pack("{s:s}", "a", "b");
	char *out = NULL;
	(void)state;

	assert_int_equal(nl_jws_sign(K.ec, "RS512", NULL, claims, &out), NL_ERR_KEY);
	assert_int_equal(nl_jws_sign(K.rsa, "ES256", NULL, claims, &out), NL_ERR_KEY);
	assert_null(out);
	json_decref(claims);
}

/* ---- tampering -------------------------------------------------------------------------------- */

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc7515_a2_rs256_verifies),
	    cmocka_unit_test(test_rfc7515_a2_claims_are_parsed),
	    cmocka_unit_test(test_rfc7515_a2_fails_with_other_rsa_key),
	    cmocka_unit_test(test_rfc7515_a3_es256_verifies),
	    cmocka_unit_test(test_rfc7520_4_1_rs256_verifies),
	    cmocka_unit_test(test_rfc7520_4_1_verifies_through_jwks_by_kid),
	    cmocka_unit_test(test_rfc7520_4_2_ps384_refused_as_not_allowed),
	    cmocka_unit_test(test_rfc7520_4_3_es512_refused_as_not_allowed),
	    cmocka_unit_test(test_rfc7520_p521_key_refused),
	    cmocka_unit_test(test_rfc7638_thumbprint),
	    cmocka_unit_test(test_thumbprint_of_ec_key_is_stable_across_export),
	    cmocka_unit_test(test_round_trip_rs256),
	    cmocka_unit_test(test_round_trip_rs384),
	    cmocka_unit_test(test_round_trip_rs512),
	    cmocka_unit_test(test_round_trip_ps256),
	    cmocka_unit_test(test_round_trip_es256),
	    cmocka_unit_test(test_sign_typed_sets_or_leaves_out_typ),
	    cmocka_unit_test(test_ps256_signature_verifies_with_openssl),
	    cmocka_unit_test(test_rs256_signature_verifies_with_openssl),
	    cmocka_unit_test(test_es256_signature_verifies_with_openssl),
	    cmocka_unit_test(test_sign_refuses_public_only_key),
	    cmocka_unit_test(test_sign_refuses_hs256),
	    cmocka_unit_test(test_sign_refuses_key_of_wrong_type),
	};

	return cmocka_run_group_tests_name("jose_vectors", tests, group_setup, group_teardown);
}
