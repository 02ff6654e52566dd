/* JWKS key parameters, one clause of RFC 7517/7518 and RFC 8017 a test: which keys of a set are
 * left out, and the sets refused for holding a private key or a repeated kid. */
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

/* The public JWK of key as a JSON object, with kid. */
static json_t *pub_obj(const cjose_jwk_t *key, const char *kid)
{
	char *pub = nl_jwk_public_json(key, NULL);
	json_t *o;

	assert_non_null(pub);
	o = json_loads(pub, 0, NULL);
	assert_non_null(o);
	free(pub);
	json_object_set_new(o, "kid", json_string(kid));
	return o;
}

/* The decoded bytes of a base64url member (free). */
static uint8_t *member_bytes(const json_t *o, const char *name, size_t *len)
{
	const char *v = json_string_value(json_object_get(o, name));
	uint8_t *raw = NULL;

	assert_non_null(v);
	assert_int_equal(nl_b64url_decode(v, strlen(v), &raw, len), 0);
	return raw;
}

static void set_member_bytes(json_t *o, const char *name, const uint8_t *p, size_t len)
{
	char *enc = NULL;

	assert_int_equal(nl_b64url_encode(p, len, &enc), 0);
	json_object_set_new(o, name, json_string(enc));
	free(enc);
}

/* {"keys":[a, b]} (b may be NULL); a and b are kept. */
static char *set_text(const json_t *a, const json_t *b)
{
	json_t *doc = json_pack("{s:[O]}", "keys", a);
	char *t;

	if (b != NULL)
		json_array_append(json_object_get(doc, "keys"), (json_t *)b);
	t = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return t;
}

/* bad (kid "bad") alone is no usable set; beside a good RSA key it is left out, its kid chooses
 * nothing, and the report names want (NULL: a key simply not for us, not worth a warning). bad is
 * consumed. */
static void assert_key_left_out(json_t *bad, const char *want)
{
	json_t *good = pub_obj(K.rsa2, "good");
	struct nl_jwks *set = NULL;
	const cjose_jwk_t *key = NULL;
	char why[256] = "", *t;

	json_object_set_new(bad, "kid", json_string("bad"));
	t = set_text(bad, NULL);
	assert_int_equal(nl_jwks_parse_report(t, strlen(t), &set, why, sizeof(why)), NL_ERR_KEY);
	assert_null(set);
	assert_non_null(strstr(why, "no usable signing key"));
	free(t);
	t = set_text(bad, good);
	assert_int_equal(nl_jwks_parse_report(t, strlen(t), &set, why, sizeof(why)), 0);
	assert_int_equal(nl_jwks_count(set), 1);
	assert_int_equal(nl_jwks_select(set, "bad", "RS256", &key), NL_ERR_KEY);
	assert_int_equal(nl_jwks_select(set, "bad", "ES256", &key), NL_ERR_KEY);
	assert_int_equal(nl_jwks_select(set, "good", "RS256", &key), 0);
	if (want == NULL)
		assert_string_equal(why, "");
	else if (strstr(why, want) == NULL || strstr(why, "key 1: ") == NULL)
		fail_msg("report \"%s\" does not name \"%s\"", why, want);
	nl_jwks_free(set);
	free(t);
	json_decref(good);
	json_decref(bad);
}

static void test_jwks_leaves_out_a_key_without_kty(void **state)
{
	json_t *k = pub_obj(K.rsa, "x");
	(void)state;
	json_object_del(k, "kty");
	assert_key_left_out(k, "kty is missing");
}

static void test_jwks_leaves_out_a_key_whose_use_is_not_sig(void **state)
{
	json_t *k = pub_obj(K.rsa, "x"), *k2 = pub_obj(K.rsa, "x");
	(void)state;
	json_object_set_new(k, "use", json_string("enc"));
	assert_key_left_out(k, NULL);
	json_object_set_new(k2, "use", json_integer(1));
	assert_key_left_out(k2, "use is not a string");
}

static void test_jwks_leaves_out_key_ops_without_verify(void **state)
{
	json_t *k = pub_obj(K.rsa, "x");
	(void)state;
	json_object_set_new(k, "key_ops", json_pack("[s]", "sign"));
	assert_key_left_out(k, NULL);
}

static void test_jwks_leaves_out_key_ops_with_a_repeated_value(void **state)
{
	json_t *k = pub_obj(K.rsa, "x");
	(void)state;
	json_object_set_new(k, "key_ops", json_pack("[s,s]", "verify", "verify"));
	assert_key_left_out(k, "key_ops repeats a value");
}

static void test_jwks_leaves_out_key_ops_with_a_non_string(void **state)
{
	json_t *k = pub_obj(K.rsa, "x");
	(void)state;
	json_object_set_new(k, "key_ops", json_pack("[s,i]", "verify", 7));
	assert_key_left_out(k, "key_ops holds a non-string");
}

static void test_jwks_leaves_out_key_ops_that_disagree_with_use(void **state)
{
	json_t *k = pub_obj(K.rsa, "x");
	(void)state;
	json_object_set_new(k, "use", json_string("sig"));
	json_object_set_new(k, "key_ops", json_pack("[s,s]", "verify", "encrypt"));
	assert_key_left_out(k, "key_ops disagrees with use");
}

static void test_jwks_accepts_key_ops_verify_with_use_sig(void **state)
{
	json_t *k = pub_obj(K.rsa, "x");
	struct nl_jwks *set = NULL;
	char *t;
	(void)state;
	json_object_set_new(k, "use", json_string("sig"));
	json_object_set_new(k, "key_ops", json_pack("[s,s]", "sign", "verify"));
	t = set_text(k, NULL);
	assert_int_equal(nl_jwks_parse(t, strlen(t), &set), 0);
	assert_int_equal(nl_jwks_count(set), 1);
	nl_jwks_free(set);
	free(t);
	json_decref(k);
}

static void test_jwks_leaves_out_a_key_whose_alg_does_not_fit_its_type(void **state)
{
	json_t *k = pub_obj(K.rsa, "x");
	(void)state;
	json_object_set_new(k, "alg", json_string("ES256"));
	assert_key_left_out(k, "alg does not fit the key type");
}

static void test_jwks_key_alg_must_match_the_jws_alg(void **state)
{
	json_t *k = pub_obj(K.rsa, "x");
	struct nl_jwks *set = NULL;
	const cjose_jwk_t *key = NULL;
	char *t;
	(void)state;
	json_object_set_new(k, "alg", json_string("RS256"));
	t = set_text(k, NULL);
	assert_int_equal(nl_jwks_parse(t, strlen(t), &set), 0);
	assert_int_equal(nl_jwks_select(set, "x", "RS512", &key), NL_ERR_KEY);
	assert_int_equal(nl_jwks_select(set, "x", "RS256", &key), 0);
	nl_jwks_free(set);
	free(t);
	json_decref(k);
}

/* n or e with a zero octet in front: the same number, but not its minimal encoding. */
static json_t *rsa_with_leading_zero(const char *name)
{
	json_t *k = pub_obj(K.rsa, "x");
	size_t len = 0;
	uint8_t *raw = member_bytes(k, name, &len), *z = calloc(1, len + 1);

	memcpy(z + 1, raw, len);
	set_member_bytes(k, name, z, len + 1);
	free(raw);
	free(z);
	return k;
}

static void test_jwks_leaves_out_rsa_n_with_a_leading_zero_octet(void **state)
{
	(void)state;
	assert_key_left_out(rsa_with_leading_zero("n"), "n has a leading zero octet");
}

static void test_jwks_leaves_out_rsa_e_with_a_leading_zero_octet(void **state)
{
	(void)state;
	assert_key_left_out(rsa_with_leading_zero("e"), "e has a leading zero octet");
}

static void test_jwk_from_json_refuses_rsa_n_with_a_leading_zero_octet(void **state)
{
	json_t *k = rsa_with_leading_zero("n");
	char *t = json_dumps(k, JSON_COMPACT);
	cjose_jwk_t *jwk = NULL;
	(void)state;
	assert_int_equal(nl_jwk_from_json(t, strlen(t), &jwk), NL_ERR_KEY);
	assert_null(jwk);
	free(t);
	json_decref(k);
}

static void test_jwks_leaves_out_rsa_n_with_padding(void **state)
{
	json_t *k = pub_obj(K.rsa, "x");
	char *padded = NULL;
	(void)state;
	/* 256 octets encode to 342 characters and 2 of padding */
	assert_true(asprintf(&padded, "%s==", json_string_value(json_object_get(k, "n"))) > 0);
	json_object_set_new(k, "n", json_string(padded));
	free(padded);
	assert_key_left_out(k, "not canonical base64url");
}

static json_t *rsa_with_e(const uint8_t *e, size_t len)
{
	json_t *k = pub_obj(K.rsa, "x");
	set_member_bytes(k, "e", e, len);
	return k;
}

static void test_jwks_leaves_out_rsa_even_e(void **state)
{
	static const uint8_t e65536[] = {1, 0, 0};
	(void)state;
	assert_key_left_out(rsa_with_e(e65536, sizeof(e65536)), "e is not an odd number of at least 3");
}

static void test_jwks_leaves_out_rsa_e_of_one(void **state)
{
	static const uint8_t one[] = {1};
	(void)state;
	assert_key_left_out(rsa_with_e(one, sizeof(one)), "e is not an odd number of at least 3");
}

static void test_jwks_leaves_out_rsa_e_not_below_n(void **state)
{
	json_t *k = pub_obj(K.rsa, "x");
	size_t len = 0;
	uint8_t *n = member_bytes(k, "n", &len);
	(void)state;
	set_member_bytes(k, "e", n, len); /* n is odd, so e = n passes the parity rule */
	free(n);
	assert_key_left_out(k, "e is not below n");
}

static void test_jwks_leaves_out_rsa_even_n(void **state)
{
	json_t *k = pub_obj(K.rsa, "x");
	size_t len = 0;
	uint8_t *n = member_bytes(k, "n", &len);
	(void)state;
	n[len - 1] ^= 1;
	set_member_bytes(k, "n", n, len);
	free(n);
	assert_key_left_out(k, "n is even");
}

/* An RSA key of bits made by OpenSSL, as a public JWK object. */
static json_t *rsa_of_bits(int bits)
{
	EVP_PKEY *pk = EVP_RSA_gen((unsigned)bits);
	char *pem = pem_of(pk, 0);
	cjose_jwk_t *jwk = NULL;
	json_t *o;

	assert_int_equal(nl_jwk_from_pem(pem, strlen(pem), &jwk), 0);
	o = pub_obj(jwk, "x");
	cjose_jwk_release(jwk);
	free(pem);
	EVP_PKEY_free(pk);
	return o;
}

/* RFC 7518 3.3: "A key of size 2048 bits or larger MUST be used". 2047 bits still fill 256
 * octets, which is all cjose's key size looks at. */
static void test_jwks_leaves_out_rsa_modulus_of_2047_bits(void **state)
{
	(void)state;
	assert_key_left_out(rsa_of_bits(2047), "n is 2047 bits");
}

static void test_jwks_leaves_out_rsa_modulus_of_1024_bits(void **state)
{
	(void)state;
	assert_key_left_out(rsa_of_bits(1024), "n is 1024 bits");
}

static void test_jwks_leaves_out_ec_x_of_31_octets(void **state)
{
	json_t *k = pub_obj(K.ec, "x");
	size_t len = 0;
	uint8_t *x = member_bytes(k, "x", &len);
	(void)state;
	set_member_bytes(k, "x", x + 1, len - 1);
	free(x);
	assert_key_left_out(k, "x is 31 octets");
}

static void test_jwks_leaves_out_ec_y_of_33_octets(void **state)
{
	json_t *k = pub_obj(K.ec, "x");
	size_t len = 0;
	uint8_t *y = member_bytes(k, "y", &len), *z = calloc(1, len + 1);
	(void)state;
	memcpy(z + 1, y, len);
	set_member_bytes(k, "y", z, len + 1);
	free(y);
	free(z);
	assert_key_left_out(k, "y is 33 octets");
}

static void test_jwks_leaves_out_ec_key_without_y(void **state)
{
	json_t *k = pub_obj(K.ec, "x");
	(void)state;
	json_object_del(k, "y");
	assert_key_left_out(k, "y is missing");
}

static void test_jwks_leaves_out_ec_point_off_the_curve(void **state)
{
	json_t *k = pub_obj(K.ec, "x");
	size_t len = 0;
	uint8_t *y = member_bytes(k, "y", &len);
	(void)state;
	y[len - 1] ^= 1;
	set_member_bytes(k, "y", y, len);
	free(y);
	assert_key_left_out(k, "not a point of P-256");
}

/* A key set with a private key in it (the provider's own key made public): nothing is trusted. */
static void assert_private_set_refused(const cjose_jwk_t *key)
{
	char *priv = cjose_jwk_to_json(key, true, NULL), *t = NULL, why[256] = "";
	char *good = nl_jwk_public_json(K.rsa2, NULL);
	struct nl_jwks *set = NULL;

	assert_non_null(priv);
	assert_non_null(strstr(priv, "\"d\""));
	assert_true(asprintf(&t, "{\"keys\":[%s,%s]}", good, priv) > 0);
	assert_int_equal(nl_jwks_parse_report(t, strlen(t), &set, why, sizeof(why)), NL_ERR_KEY);
	assert_null(set);
	assert_string_equal(why, "key 2 carries private key members");
	nl_free_secret(t);
	nl_free_secret(priv);
	free(good);
}

static void test_jwks_refuses_a_set_holding_an_rsa_private_key(void **state)
{
	(void)state;
	assert_private_set_refused(K.rsa);
}

static void test_jwks_refuses_a_set_holding_an_ec_private_key(void **state)
{
	(void)state;
	assert_private_set_refused(K.ec);
}

/* RFC 7517 4.5: two keys of one type with one kid - the kid names neither, even where only one of
 * them declares the token's alg. */
static void test_jwks_never_chooses_between_two_keys_with_the_same_kid(void **state)
{
	json_t *a = pub_obj(K.rsa, "dup"), *b = pub_obj(K.rsa2, "dup");
	struct nl_jwks *set = NULL;
	const cjose_jwk_t *key = NULL;
	char *t;
	(void)state;

	json_object_set_new(a, "alg", json_string("RS512"));
	json_object_set_new(b, "alg", json_string("RS256"));
	t = set_text(a, b);
	assert_int_equal(nl_jwks_parse(t, strlen(t), &set), 0);
	assert_int_equal(nl_jwks_count(set), 2);
	assert_int_equal(nl_jwks_select(set, "dup", "RS512", &key), NL_ERR_KEY);
	assert_int_equal(nl_jwks_select(set, "dup", "RS256", &key), NL_ERR_KEY);
	assert_null(key);
	nl_jwks_free(set);
	free(t);
	json_decref(a);
	json_decref(b);
}

static void test_jwks_same_kid_on_keys_of_different_types_is_fine(void **state)
{
	json_t *a = pub_obj(K.rsa, "same"), *b = pub_obj(K.ec, "same");
	struct nl_jwks *set = NULL;
	const cjose_jwk_t *key = NULL;
	char *t;
	(void)state;

	t = set_text(a, b);
	assert_int_equal(nl_jwks_parse(t, strlen(t), &set), 0);
	assert_int_equal(nl_jwks_select(set, "same", "RS512", &key), 0);
	assert_int_equal(nl_jwks_select(set, "same", "ES256", &key), 0);
	nl_jwks_free(set);
	free(t);
	json_decref(a);
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jwks_leaves_out_a_key_without_kty),
	    cmocka_unit_test(test_jwks_leaves_out_a_key_whose_use_is_not_sig),
	    cmocka_unit_test(test_jwks_leaves_out_key_ops_without_verify),
	    cmocka_unit_test(test_jwks_leaves_out_key_ops_with_a_repeated_value),
	    cmocka_unit_test(test_jwks_leaves_out_key_ops_with_a_non_string),
	    cmocka_unit_test(test_jwks_leaves_out_key_ops_that_disagree_with_use),
	    cmocka_unit_test(test_jwks_accepts_key_ops_verify_with_use_sig),
	    cmocka_unit_test(test_jwks_leaves_out_a_key_whose_alg_does_not_fit_its_type),
	    cmocka_unit_test(test_jwks_key_alg_must_match_the_jws_alg),
	    cmocka_unit_test(test_jwks_leaves_out_rsa_n_with_a_leading_zero_octet),
	    cmocka_unit_test(test_jwks_leaves_out_rsa_e_with_a_leading_zero_octet),
	    cmocka_unit_test(test_jwk_from_json_refuses_rsa_n_with_a_leading_zero_octet),
	    cmocka_unit_test(test_jwks_leaves_out_rsa_n_with_padding),
	    cmocka_unit_test(test_jwks_leaves_out_rsa_even_e),
	    cmocka_unit_test(test_jwks_leaves_out_rsa_e_of_one),
	    cmocka_unit_test(test_jwks_leaves_out_rsa_e_not_below_n),
	    cmocka_unit_test(test_jwks_leaves_out_rsa_even_n),
	    cmocka_unit_test(test_jwks_leaves_out_rsa_modulus_of_2047_bits),
	    cmocka_unit_test(test_jwks_leaves_out_rsa_modulus_of_1024_bits),
	    cmocka_unit_test(test_jwks_leaves_out_ec_x_of_31_octets),
	    cmocka_unit_test(test_jwks_leaves_out_ec_y_of_33_octets),
	    cmocka_unit_test(test_jwks_leaves_out_ec_key_without_y),
	    cmocka_unit_test(test_jwks_leaves_out_ec_point_off_the_curve),
	    cmocka_unit_test(test_jwks_refuses_a_set_holding_an_rsa_private_key),
	    cmocka_unit_test(test_jwks_refuses_a_set_holding_an_ec_private_key),
	    cmocka_unit_test(test_jwks_never_chooses_between_two_keys_with_the_same_kid),
	    cmocka_unit_test(test_jwks_same_kid_on_keys_of_different_types_is_fine),
	};

	return cmocka_run_group_tests_name("jose_jwks_keys", tests, group_setup, group_teardown);
}
