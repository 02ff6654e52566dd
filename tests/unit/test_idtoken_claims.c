/* ID token claim rules: each rule of DESIGN.md fails with its own word when exactly one claim
 * differs from the valid token (iss, aud, azp, exp, iat, nbf, nonce, sub, vot); nl_vot_level's
 * grammar. */
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
	return cmocka_run_group_tests_name("idtoken_claims", tests, group_setup, group_teardown);
}
