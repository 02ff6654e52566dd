/* Client assertions (private_key_jwt) and the JWT claim checks: times with skew, audience and
 * azp, string claims. */
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

static json_t *assertion_claims(const char *compact)
{
	static const char *const allowed[] = {"RS512"};
	struct nl_jws *jws = NULL;
	json_t *claims;

	assert_int_equal(parse(compact, allowed, 1, &jws), 0);
	assert_string_equal(jws->typ, "JWT");
	claims = json_incref(jws->claims);
	nl_jws_free(jws);
	return claims;
}

static void test_client_assertion_claims(void **state)
{
	char *a = NULL;
	json_t *c;
	(void)state;

	assert_int_equal(nl_client_assertion(K.rsa, "RS512", "kid-9", "client-1", "https://op.example/token",
	                                     1700000000, 300, &a),
	                 0);
	c = assertion_claims(a);
	assert_string_equal(nl_jwt_str(c, "iss"), "client-1");
	assert_string_equal(nl_jwt_str(c, "sub"), "client-1");
	assert_string_equal(nl_jwt_str(c, "aud"), "https://op.example/token");
	assert_int_equal(json_integer_value(json_object_get(c, "iat")), 1700000000);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")) -
	                     json_integer_value(json_object_get(c, "iat")),
	                 300);
	assert_true(strlen(nl_jwt_str(c, "jti")) >= 22); /* >= 16 random bytes */
	json_decref(c);
	nl_free_secret(a);
}

static void test_client_assertion_jti_unique(void **state)
{
	char *a = NULL, *b = NULL;
	json_t *ca, *cb;
	(void)state;

	assert_int_equal(
	    nl_client_assertion(K.rsa, "RS512", NULL, "c", "https://op/token", 1700000000, 60, &a), 0);
	assert_int_equal(
	    nl_client_assertion(K.rsa, "RS512", NULL, "c", "https://op/token", 1700000000, 60, &b), 0);
	ca = assertion_claims(a);
	cb = assertion_claims(b);
	assert_string_not_equal(nl_jwt_str(ca, "jti"), nl_jwt_str(cb, "jti"));
	json_decref(ca);
	json_decref(cb);
	nl_free_secret(a);
	nl_free_secret(b);
}

static void test_client_assertion_verifies_with_public_key(void **state)
{
	static const char *const allowed[] = {"RS512"};
	char *a = NULL;
	cjose_jwk_t *pub = public_copy(K.rsa);
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(
	    nl_client_assertion(K.rsa, "RS512", NULL, "c", "https://op/token", 1700000000, 60, &a), 0);
	assert_int_equal(parse(a, allowed, 1, &jws), 0);
	assert_int_equal(nl_jws_verify(jws, pub), 0);
	assert_int_equal(nl_jwt_check_time(jws->claims, 1700000030, 0, true), 0);
	assert_int_equal(nl_jwt_check_aud(jws->claims, "https://op/token"), 0);
	nl_jws_free(jws);
	cjose_jwk_release(pub);
	nl_free_secret(a);
}

static void test_client_assertion_refuses_bad_lifetime(void **state)
{
	char *a = NULL;
	(void)state;

	assert_int_equal(
	    nl_client_assertion(K.rsa, "RS512", NULL, "c", "https://op/token", 1700000000, 0, &a),
	    NL_ERR_INVALID);
	assert_int_equal(
	    nl_client_assertion(K.rsa, "RS512", NULL, "c", "https://op/token", 1700000000, 301, &a),
	    NL_ERR_INVALID);
	assert_int_equal(
	    nl_client_assertion(K.rsa, "RS512", NULL, "c", "https://op/token", 1700000000, -5, &a),
	    NL_ERR_INVALID);
	assert_null(a);
}

static void test_client_assertion_refuses_empty_client_id(void **state)
{
	char *a = NULL;
	(void)state;

	assert_int_equal(
	    nl_client_assertion(K.rsa, "RS512", NULL, "", "https://op/token", 1700000000, 60, &a),
	    NL_ERR_INVALID);
	assert_int_equal(nl_client_assertion(K.rsa, "RS512", NULL, "c", NULL, 1700000000, 60, &a),
	                 NL_ERR_INVALID);
	assert_null(a);
}

/* ---- time claims ------------------------------------------------------------------------------- */

#define NOW 1700000000

static int check_time(const char *claims_json, long skew, bool require_iat)
{
	json_t *c = json_loads(claims_json, 0, NULL);
	int r;

	assert_non_null(c);
	r = nl_jwt_check_time(c, NOW, skew, require_iat);
	json_decref(c);
	return r;
}

static void test_check_time_accepts_valid_token(void **state)
{
	(void)state;
	assert_int_equal(check_time("{\"exp\":1700000300,\"iat\":1700000000,\"nbf\":1699999990}", 60, true),
	                 0);
}

static void test_check_time_expired(void **state)
{
	(void)state;
	assert_int_equal(check_time("{\"exp\":1699999000}", 60, false), NL_ERR_EXPIRED);
	assert_int_equal(check_time("{\"exp\":1700000000}", 0, false), NL_ERR_EXPIRED); /* now == exp */
	assert_int_equal(check_time("{\"exp\":-9223372036854775807}", 60, false), NL_ERR_EXPIRED);
}

static void test_check_time_within_skew(void **state)
{
	(void)state;
	assert_int_equal(check_time("{\"exp\":1699999950}", 60, false), 0);
	assert_int_equal(check_time("{\"exp\":1699999940}", 60, false), NL_ERR_EXPIRED);
	assert_int_equal(check_time("{\"exp\":1700000300,\"iat\":1700000060}", 60, false), 0);
}

static void test_check_time_iat_in_future_beyond_skew(void **state)
{
	(void)state;
	assert_int_equal(check_time("{\"exp\":1700000300,\"iat\":1700000061}", 60, false), NL_ERR_CLAIM);
}

static void test_check_time_nbf_in_future_beyond_skew(void **state)
{
	(void)state;
	assert_int_equal(check_time("{\"exp\":1700000300,\"nbf\":1700000061}", 60, false), NL_ERR_CLAIM);
}

static void test_check_time_missing_exp(void **state)
{
	(void)state;
	assert_int_equal(check_time("{\"iat\":1700000000}", 60, false), NL_ERR_CLAIM);
}

static void test_check_time_non_integer_exp(void **state)
{
	(void)state;
	assert_int_equal(check_time("{\"exp\":1700000300.0}", 60, false), NL_ERR_CLAIM);
	assert_int_equal(check_time("{\"exp\":1.7000003e9}", 60, false), NL_ERR_CLAIM);
	assert_int_equal(check_time("{\"exp\":\"1700000300\"}", 60, false), NL_ERR_CLAIM);
	assert_int_equal(check_time("{\"exp\":1700000300,\"iat\":1700000000.5}", 60, false), NL_ERR_CLAIM);
}

static void test_check_time_require_iat(void **state)
{
	(void)state;
	assert_int_equal(check_time("{\"exp\":1700000300}", 60, true), NL_ERR_CLAIM);
	assert_int_equal(check_time("{\"exp\":1700000300}", 60, false), 0);
}

static void test_check_time_huge_exp_does_not_overflow(void **state)
{
	(void)state;
	assert_int_equal(check_time("{\"exp\":9223372036854775807}", 60, false), 0);
}

/* ---- audience ----------------------------------------------------------------------------------- */

static int check_aud(const char *claims_json, const char *aud)
{
	json_t *c = json_loads(claims_json, 0, NULL);
	int r;

	assert_non_null(c);
	r = nl_jwt_check_aud(c, aud);
	json_decref(c);
	return r;
}

static void test_check_aud_string(void **state)
{
	(void)state;
	assert_int_equal(check_aud("{\"aud\":\"client-1\"}", "client-1"), 0);
}

static void test_check_aud_array_of_one(void **state)
{
	(void)state;
	assert_int_equal(check_aud("{\"aud\":[\"client-1\"]}", "client-1"), 0);
}

static void test_check_aud_wrong(void **state)
{
	(void)state;
	assert_int_equal(check_aud("{\"aud\":\"client-2\"}", "client-1"), NL_ERR_CLAIM);
	assert_int_equal(check_aud("{\"aud\":[\"client-2\"]}", "client-1"), NL_ERR_CLAIM);
	assert_int_equal(check_aud("{\"aud\":\"client-10\"}", "client-1"), NL_ERR_CLAIM);
	assert_int_equal(check_aud("{}", "client-1"), NL_ERR_CLAIM);
	assert_int_equal(check_aud("{\"aud\":[]}", "client-1"), NL_ERR_CLAIM);
}

static void test_check_aud_multiple_without_azp_refused(void **state)
{
	(void)state;
	assert_int_equal(check_aud("{\"aud\":[\"client-1\",\"other\"]}", "client-1"), NL_ERR_CLAIM);
}

static void test_check_aud_multiple_with_wrong_azp_refused(void **state)
{
	(void)state;
	assert_int_equal(check_aud("{\"aud\":[\"client-1\",\"other\"],\"azp\":\"other\"}", "client-1"),
	                 NL_ERR_CLAIM);
}

static void test_check_aud_multiple_with_right_azp_ok(void **state)
{
	(void)state;
	assert_int_equal(check_aud("{\"aud\":[\"client-1\",\"other\"],\"azp\":\"client-1\"}", "client-1"), 0);
}

static void test_check_aud_single_with_wrong_azp_refused(void **state)
{
	(void)state;
	assert_int_equal(check_aud("{\"aud\":\"client-1\",\"azp\":\"other\"}", "client-1"), NL_ERR_CLAIM);
}

static void test_check_aud_non_string_member_refused(void **state)
{
	(void)state;
	assert_int_equal(check_aud("{\"aud\":[\"client-1\",7],\"azp\":\"client-1\"}", "client-1"),
	                 NL_ERR_CLAIM);
	assert_int_equal(check_aud("{\"aud\":7}", "client-1"), NL_ERR_CLAIM);
}

static void test_jwt_str(void **state)
{
	json_t *c = json_loads("{\"s\":\"v\",\"n\":1}", 0, NULL);
	(void)state;

	assert_string_equal(nl_jwt_str(c, "s"), "v");
	assert_null(nl_jwt_str(c, "n"));
	assert_null(nl_jwt_str(c, "missing"));
	assert_null(nl_jwt_str(NULL, "s"));
	json_decref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_client_assertion_claims),
	    cmocka_unit_test(test_client_assertion_jti_unique),
	    cmocka_unit_test(test_client_assertion_verifies_with_public_key),
	    cmocka_unit_test(test_client_assertion_refuses_bad_lifetime),
	    cmocka_unit_test(test_client_assertion_refuses_empty_client_id),
	    cmocka_unit_test(test_check_time_accepts_valid_token),
	    cmocka_unit_test(test_check_time_expired),
	    cmocka_unit_test(test_check_time_within_skew),
	    cmocka_unit_test(test_check_time_iat_in_future_beyond_skew),
	    cmocka_unit_test(test_check_time_nbf_in_future_beyond_skew),
	    cmocka_unit_test(test_check_time_missing_exp),
	    cmocka_unit_test(test_check_time_non_integer_exp),
	    cmocka_unit_test(test_check_time_require_iat),
	    cmocka_unit_test(test_check_time_huge_exp_does_not_overflow),
	    cmocka_unit_test(test_check_aud_string),
	    cmocka_unit_test(test_check_aud_array_of_one),
	    cmocka_unit_test(test_check_aud_wrong),
	    cmocka_unit_test(test_check_aud_multiple_without_azp_refused),
	    cmocka_unit_test(test_check_aud_multiple_with_wrong_azp_refused),
	    cmocka_unit_test(test_check_aud_multiple_with_right_azp_ok),
	    cmocka_unit_test(test_check_aud_single_with_wrong_azp_refused),
	    cmocka_unit_test(test_check_aud_non_string_member_refused),
	    cmocka_unit_test(test_jwt_str),
	};

	return cmocka_run_group_tests_name("jose_jwt", tests, group_setup, group_teardown);
}
