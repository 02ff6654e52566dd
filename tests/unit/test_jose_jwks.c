/* JWKS selection: choosing the key for a token by kid, alg and key type, and the sets refused
 * whole. */
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

/* {"keys":[...]} from cjose keys, each with its kid and the extra members given. */
static char *jwks_of(const cjose_jwk_t *a, const char *kid_a, const cjose_jwk_t *b, const char *kid_b)
{
	json_t *set = json_object(), *keys = json_array();
	const cjose_jwk_t *k[2] = {a, b};
	const char *kid[2] = {kid_a, kid_b};
	char *out;
	int i;

	for (i = 0; i < 2; i++) {
		char *pub;
		json_t *obj;
		if (k[i] == NULL)
			continue;
		pub = nl_jwk_public_json(k[i], NULL);
		obj = json_loads(pub, 0, NULL);
		if (kid[i] != NULL)
			json_object_set_new(obj, "kid", json_string(kid[i]));
		else
			json_object_del(obj, "kid");
		json_array_append_new(keys, obj);
		free(pub);
	}
	json_object_set_new(set, "keys", keys);
	out = json_dumps(set, JSON_COMPACT);
	json_decref(set);
	return out;
}

static struct nl_jwks *jwks_parse_ok(const char *json)
{
	struct nl_jwks *set = NULL;
	assert_int_equal(nl_jwks_parse(json, strlen(json), &set), 0);
	return set;
}

static void test_jwks_selects_by_kid(void **state)
{
	char *json = jwks_of(K.rsa, "one", K.rsa2, "two");
	struct nl_jwks *set = jwks_parse_ok(json);
	char *compact = sign_claims(K.rsa2, "RS256", "two", "{\"sub\":\"alice\"}");
	const cjose_jwk_t *key = NULL;
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(nl_jwks_count(set), 2);
	assert_int_equal(nl_jwks_select(set, "two", "RS256", &key), 0);
	assert_non_null(key);
	assert_string_equal(cjose_jwk_get_kid(key, NULL), "two");
	assert_int_equal(parse(compact, RS256_ONLY, 1, &jws), 0);
	assert_int_equal(nl_jws_verify_jwks(jws, set), 0);
	nl_jws_free(jws);
	nl_free_secret(compact);
	nl_jwks_free(set);
	free(json);
}

static void test_jwks_unknown_kid_is_key_error(void **state)
{
	char *json = jwks_of(K.rsa, "one", K.rsa2, "two");
	struct nl_jwks *set = jwks_parse_ok(json);
	char *compact = sign_claims(K.rsa, "RS256", "three", "{\"sub\":\"alice\"}");
	const cjose_jwk_t *key = NULL;
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(nl_jwks_select(set, "three", "RS256", &key), NL_ERR_KEY);
	assert_null(key);
	assert_int_equal(parse(compact, RS256_ONLY, 1, &jws), 0);
	assert_int_equal(nl_jws_verify_jwks(jws, set), NL_ERR_KEY);
	assert_false(jws->verified);
	nl_jws_free(jws);
	nl_free_secret(compact);
	nl_jwks_free(set);
	free(json);
}

static void test_jwks_no_kid_with_one_key_ok(void **state)
{
	char *json = jwks_of(K.rsa, NULL, NULL, NULL);
	struct nl_jwks *set = jwks_parse_ok(json);
	char *compact = sign_claims(K.rsa, "RS256", NULL, "{\"sub\":\"alice\"}");
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(parse(compact, RS256_ONLY, 1, &jws), 0);
	assert_int_equal(nl_jws_verify_jwks(jws, set), 0);
	assert_true(jws->verified);
	nl_jws_free(jws);
	nl_free_secret(compact);
	nl_jwks_free(set);
	free(json);
}

static void test_jwks_no_kid_with_two_rsa_keys_refused(void **state)
{
	char *json = jwks_of(K.rsa, "one", K.rsa2, "two");
	struct nl_jwks *set = jwks_parse_ok(json);
	const cjose_jwk_t *key = NULL;
	(void)state;

	assert_int_equal(nl_jwks_select(set, NULL, "RS256", &key), NL_ERR_KEY);
	assert_null(key);
	nl_jwks_free(set);
	free(json);
}

static void test_jwks_no_kid_picks_the_only_key_of_the_alg_type(void **state)
{
	char *json = jwks_of(K.rsa, "r", K.ec, "e");
	struct nl_jwks *set = jwks_parse_ok(json);
	const cjose_jwk_t *key = NULL;
	(void)state;

	assert_int_equal(nl_jwks_select(set, NULL, "ES256", &key), 0);
	assert_string_equal(cjose_jwk_get_kid(key, NULL), "e");
	assert_int_equal(nl_jwks_select(set, NULL, "RS512", &key), 0);
	assert_string_equal(cjose_jwk_get_kid(key, NULL), "r");
	nl_jwks_free(set);
	free(json);
}

static void test_jwks_kid_of_key_with_wrong_type_refused(void **state)
{
	char *json = jwks_of(K.rsa, "r", K.ec, "e");
	struct nl_jwks *set = jwks_parse_ok(json);
	const cjose_jwk_t *key = NULL;
	(void)state;

	assert_int_equal(nl_jwks_select(set, "e", "RS256", &key), NL_ERR_KEY);
	assert_null(key);
	nl_jwks_free(set);
	free(json);
}

static void test_jwks_select_refuses_unknown_alg(void **state)
{
	char *json = jwks_of(K.rsa, "r", NULL, NULL);
	struct nl_jwks *set = jwks_parse_ok(json);
	const cjose_jwk_t *key = NULL;
	(void)state;

	assert_int_equal(nl_jwks_select(set, "r", "HS256", &key), NL_ERR_ALG);
	assert_null(key);
	nl_jwks_free(set);
	free(json);
}

static void test_jwks_respects_the_keys_own_alg(void **state)
{
	char *pub = nl_jwk_public_json(K.rsa, "RS512"), *json = NULL;
	struct nl_jwks *set;
	const cjose_jwk_t *key = NULL;
	(void)state;

	assert_non_null(strstr(pub, "\"alg\":\"RS512\""));
	assert_true(asprintf(&json, "{\"keys\":[%s]}", pub) > 0);
	set = jwks_parse_ok(json);
	assert_int_equal(nl_jwks_select(set, NULL, "RS256", &key), NL_ERR_KEY);
	assert_int_equal(nl_jwks_select(set, NULL, "RS512", &key), 0);
	nl_jwks_free(set);
	free(json);
	free(pub);
}

static void test_jwks_skips_oct_key(void **state)
{
	char *rsa = nl_jwk_public_json(K.rsa, NULL), *json = NULL;
	struct nl_jwks *set;
	const cjose_jwk_t *key = NULL;
	(void)state;

	assert_true(asprintf(&json,
	                     "{\"keys\":[{\"kty\":\"oct\",\"use\":\"sig\",\"k\":"
	                     "\"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg\"},"
	                     "%s]}",
	                     rsa) > 0);
	set = jwks_parse_ok(json);
	assert_int_equal(nl_jwks_count(set), 1);
	assert_int_equal(nl_jwks_select(set, NULL, "RS256", &key), 0);
	nl_jwks_free(set);
	free(json);
	free(rsa);
}

static void test_jwks_only_oct_key_is_refused(void **state)
{
	static const char json[] =
	    "{\"keys\":[{\"kty\":\"oct\",\"k\":\"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg\"}]}";
	struct nl_jwks *set = NULL;
	(void)state;

	assert_int_equal(nl_jwks_parse(json, strlen(json), &set), NL_ERR_KEY);
	assert_null(set);
}

static void test_jwks_skips_use_enc(void **state)
{
	char *a = nl_jwk_public_json(K.rsa, NULL), *b = nl_jwk_public_json(K.rsa2, NULL), *json = NULL;
	json_t *enc = json_loads(b, 0, NULL);
	char *enc_text;
	struct nl_jwks *set;
	const cjose_jwk_t *key = NULL;
	(void)state;

	json_object_set_new(enc, "use", json_string("enc"));
	enc_text = json_dumps(enc, JSON_COMPACT);
	assert_true(asprintf(&json, "{\"keys\":[%s,%s]}", enc_text, a) > 0);
	set = jwks_parse_ok(json);
	assert_int_equal(nl_jwks_count(set), 1);
	/* With the enc key gone, one RSA key is left and no kid is needed. */
	assert_int_equal(nl_jwks_select(set, NULL, "RS256", &key), 0);
	nl_jwks_free(set);
	free(json);
	free(enc_text);
	json_decref(enc);
	free(a);
	free(b);
}

static void test_jwks_skips_unknown_kty(void **state)
{
	char *a = nl_jwk_public_json(K.rsa, NULL), *json = NULL;
	struct nl_jwks *set;
	(void)state;

	assert_true(
	    asprintf(&json, "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"},%s]}", a) > 0);
	set = jwks_parse_ok(json);
	assert_int_equal(nl_jwks_count(set), 1);
	nl_jwks_free(set);
	free(json);
	free(a);
}

static void test_jwks_too_many_keys_refused(void **state)
{
	char *a = nl_jwk_public_json(K.rsa, NULL);
	size_t alen = strlen(a), i, cap = (NL_JWKS_MAX_KEYS + 1) * (alen + 1) + 16, off = 0;
	char *json = malloc(cap);
	struct nl_jwks *set = NULL;
	(void)state;

	off += (size_t)snprintf(json + off, cap - off, "{\"keys\":[");
	for (i = 0; i < NL_JWKS_MAX_KEYS + 1; i++)
		off += (size_t)snprintf(json + off, cap - off, "%s%s", i ? "," : "", a);
	snprintf(json + off, cap - off, "]}");
	assert_int_equal(nl_jwks_parse(json, strlen(json), &set), NL_ERR_TOO_BIG);
	assert_null(set);
	free(json);
	free(a);
}

static void test_jwks_malformed_json_refused(void **state)
{
	static const char *const bad[] = {
	    "{\"keys\":[", "{\"keys\":{}}", "[]", "{}", "{\"keys\":[1]}", "{\"keys\":[],\"keys\":[]}",
	};
	struct nl_jwks *set = NULL;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(nl_jwks_parse(bad[i], strlen(bad[i]), &set), NL_ERR_INVALID);
		assert_null(set);
	}
}

static void test_jwks_empty_set_refused(void **state)
{
	static const char json[] = "{\"keys\":[]}";
	struct nl_jwks *set = NULL;
	(void)state;

	assert_int_equal(nl_jwks_parse(json, strlen(json), &set), NL_ERR_KEY);
	assert_null(set);
}

/* ---- JWKS: the key parameters of RFC 7517/7518 and RFC 8017, one clause a test -------------- */

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jwks_selects_by_kid),
	    cmocka_unit_test(test_jwks_unknown_kid_is_key_error),
	    cmocka_unit_test(test_jwks_no_kid_with_one_key_ok),
	    cmocka_unit_test(test_jwks_no_kid_with_two_rsa_keys_refused),
	    cmocka_unit_test(test_jwks_no_kid_picks_the_only_key_of_the_alg_type),
	    cmocka_unit_test(test_jwks_kid_of_key_with_wrong_type_refused),
	    cmocka_unit_test(test_jwks_select_refuses_unknown_alg),
	    cmocka_unit_test(test_jwks_respects_the_keys_own_alg),
	    cmocka_unit_test(test_jwks_skips_oct_key),
	    cmocka_unit_test(test_jwks_only_oct_key_is_refused),
	    cmocka_unit_test(test_jwks_skips_use_enc),
	    cmocka_unit_test(test_jwks_skips_unknown_kty),
	    cmocka_unit_test(test_jwks_too_many_keys_refused),
	    cmocka_unit_test(test_jwks_malformed_json_refused),
	    cmocka_unit_test(test_jwks_empty_set_refused),
	};

	return cmocka_run_group_tests_name("jose_jwks", tests, group_setup, group_teardown);
}
