/* The hostile-provider suite (issue 4, item 1), the ID token and the keys: nhslogin-mock made hostile
 * one fault at a time, and the real path pam_nhslogin.so -> nhslogind -> nhslogin-mock. Each case: the
 * sign-in fails closed with the PAM code DESIGN.md gives it, the daemon's log has exactly one line
 * naming what failed, and the next honest sign-in on the same daemon succeeds. The table of cases is
 * tests/hostile/README.md. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fnmatch.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "faultutil.h"
#include "harness.h"
#include "nl_json.h"
#include "nl_time.h"
#include "hostile_fixture.h"

/* ---- the ID token: signature and header ---- */

static void test_id_token_bad_signature_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_bad_signature", PAM_AUTH_ERR, "ID token rejected: signature");
}

static void test_id_token_alg_none_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_alg_none", PAM_AUTH_ERR, "ID token rejected: alg");
}

static void test_id_token_hs256_keyed_with_public_pem_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_hs256_public_pem", PAM_AUTH_ERR, "ID token rejected: alg");
}

static void test_id_token_hs256_keyed_with_public_modulus_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_hs256_public_n", PAM_AUTH_ERR, "ID token rejected: alg");
}

/* ---- the ID token: claims ---- */

static void test_id_token_issuer_mismatch_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_wrong_iss", PAM_AUTH_ERR, "ID token rejected: iss");
}

static void test_id_token_audience_missing_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_no_aud", PAM_AUTH_ERR, "ID token rejected: aud");
}

static void test_id_token_audience_wrong_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_wrong_aud", PAM_AUTH_ERR, "ID token rejected: aud");
}

static void test_id_token_several_audiences_without_azp_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_auds_no_azp", PAM_AUTH_ERR, "ID token rejected: azp");
}

static void test_id_token_several_audiences_with_wrong_azp_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_auds_wrong_azp", PAM_AUTH_ERR, "ID token rejected: azp");
}

static void test_id_token_expired_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_expired", PAM_AUTH_ERR, "ID token rejected: exp");
}

static void test_id_token_iat_in_the_future_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_iat_future", PAM_AUTH_ERR, "ID token rejected: iat");
}

static void test_id_token_nonce_missing_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_no_nonce", PAM_AUTH_ERR, "ID token rejected: nonce");
}

static void test_id_token_nonce_wrong_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_wrong_nonce", PAM_AUTH_ERR, "ID token rejected: nonce");
}

static void test_id_token_vot_not_among_requested_vtr_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_wrong_vot", PAM_AUTH_ERR, "ID token rejected: vot");
}

static void test_userinfo_sub_different_from_id_token_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "userinfo_wrong_sub", PAM_AUTH_ERR, "userinfo sub mismatch");
}

/* ---- keys: kid ---- */

/* OpenID RP conformance (rp-id_token-kid-absent-single-jwks): with one key there is no doubt. */
static void test_id_token_without_kid_and_one_key_is_accepted(void **state)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long jwks = stat_of(w, "jwks");
	(void)state;

	set_fault(w, "id_token_no_kid");
	assert_int_equal(signin(w, &run), PAM_SUCCESS);
	assert_int_equal(stat_of(w, "jwks"), jwks); /* no refetch was needed */
	set_fault(w, "none");
	assert_honest_signin(w);
}

static void test_id_token_without_kid_and_several_keys_is_refused(void **state)
{
	struct world *w = tok();
	(void)state;

	restart_daemon(w);
	set_fault(w, "jwks_second_key");
	flush_caches(w); /* the daemon learns the two-key set at the next sign-in */
	assert_fault_refused(w, "id_token_no_kid", PAM_AUTH_ERR, "ID token rejected: kid");
}

static void test_id_token_unknown_kid_refetches_jwks_once_then_is_refused(void **state)
{
	struct world *w = tok();
	struct pam_run again = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long jwks, mark;
	(void)state;

	restart_daemon(w);
	jwks = stat_of(w, "jwks");
	mark = log_mark(w);
	set_fault(w, "id_token_unknown_kid");
	{
		struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
		assert_int_equal(signin(w, &run), PAM_AUTH_ERR);
		assert_int_equal(run.phone_status, 502);
	}
	assert_one_log_line(w, mark, "ID token rejected: kid");
	assert_int_equal(stat_of(w, "jwks"), jwks + 1);
	/* A second unknown kid within the minute: refused without another fetch. */
	assert_int_equal(signin(w, &again), PAM_AUTH_ERR);
	assert_int_equal(stat_of(w, "jwks"), jwks + 1);
	set_fault(w, "none");
	assert_honest_signin(w);
}

static void test_signing_key_rotated_new_kid_is_accepted_after_one_refetch(void **state)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long jwks;
	(void)state;

	restart_daemon(w);
	jwks = stat_of(w, "jwks");
	set_fault(w, "rotate_key");
	assert_int_equal(signin(w, &run), PAM_SUCCESS);
	assert_int_equal(stat_of(w, "jwks"), jwks + 1);
	assert_honest_signin(w);
	assert_int_equal(stat_of(w, "jwks"), jwks + 1); /* the new key is cached now */
}

/* ---- spec clauses (issue 10): the ID token ---- */

/* RFC 7519 4.1.5: not before nbf (beyond the 60 s skew). */
static void test_id_token_nbf_in_the_future_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_nbf_future", PAM_AUTH_ERR, "ID token rejected: nbf");
}

/* OIDC Core 3.1.3.7 (3): an audience we do not trust, even with azp naming us. */
static void test_id_token_with_an_untrusted_extra_audience_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_auds_extra_azp", PAM_AUTH_ERR, "ID token rejected: aud");
}

/* ---- spec clauses: the provider's keys (RFC 7517 4-5, RFC 7518 6.2-6.3, RFC 8017 3.1) ---- */

/* A JWKS whose only key breaks a rule: left out, so the set is refused and the sign-in stops
 * before a code is shown (a cold cache makes the daemon fetch it). */
static void test_jwks_key_without_kty_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_no_kty",
	                              "unavailable: jwks refused: *key 1: kty is missing");
}

static void test_jwks_key_for_encryption_is_not_used_to_verify(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_use_enc",
	                              "unavailable: jwks refused: no usable signing key");
}

static void test_jwks_key_whose_key_ops_lack_verify_is_not_used(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_key_ops_sign_only",
	                              "unavailable: jwks refused: no usable signing key");
}

static void test_jwks_key_ops_with_a_repeated_value_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_key_ops_repeated",
	                              "unavailable: jwks refused: *key 1: key_ops repeats a value");
}

static void test_jwks_rsa_n_with_a_leading_zero_octet_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_n_leading_zero",
	                              "unavailable: jwks refused: *key 1: n has a leading zero octet");
}

static void test_jwks_rsa_e_with_a_leading_zero_octet_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_e_leading_zero",
	                              "unavailable: jwks refused: *key 1: e has a leading zero octet");
}

static void test_jwks_rsa_n_with_base64_padding_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(
	    net(), "jwks_n_padded", "unavailable: jwks refused: *key 1: a number is not canonical base64url");
}

static void test_jwks_rsa_even_modulus_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_n_even", "unavailable: jwks refused: *key 1: n is even");
}

static void test_jwks_rsa_even_exponent_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(
	    net(), "jwks_e_even", "unavailable: jwks refused: *key 1: e is not an odd number of at least 3");
}

static void test_jwks_rsa_exponent_of_one_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(
	    net(), "jwks_e_one", "unavailable: jwks refused: *key 1: e is not an odd number of at least 3");
}

/* RFC 7518 3.3: 2048 bits or more. A 2047-bit modulus fills 256 octets like a 2048-bit one. */
static void test_jwks_rsa_modulus_of_2047_bits_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_rsa_2047",
	                              "unavailable: jwks refused: *key 1: n is 2047 bits");
}

static void test_jwks_with_the_providers_private_key_in_it_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_private_members",
	                              "unavailable: jwks refused: key 1 carries private key members");
}

/* A JWKS that loads, but whose key cannot verify this token: refused under rule kid after the one
 * refetch (a fresh daemon, so that the refetch allowance is there), and the caches are flushed
 * again before the honest sign-in. */
static void assert_key_fault_refused(struct world *w, const char *fault)
{
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long mark, token = stat_of(w, "token");

	restart_daemon(w);
	set_fault(w, fault);
	flush_caches(w);
	mark = log_mark(w);
	assert_int_equal(signin(w, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_status, 502);
	assert_int_equal(stat_of(w, "token"), token + 1);
	assert_one_log_line(w, mark, "ID token rejected: kid");
	set_fault(w, "none");
	flush_caches(w);
	assert_honest_signin(w);
}

/* RFC 7517 4.4: the key's alg (RS256) is not the token's (RS512). */
static void test_jwks_key_whose_alg_is_not_the_tokens_is_not_used(void **state)
{
	(void)state;
	assert_key_fault_refused(tok(), "jwks_alg_mismatch");
}

/* RFC 7517 4.5: two RSA keys under one kid - never a guess between them. */
static void test_jwks_two_keys_with_the_signing_kid_are_never_chosen_between(void **state)
{
	(void)state;
	assert_key_fault_refused(tok(), "jwks_duplicate_kid");
}

/* RFC 7517 5: a broken extra key is ignored (one warning naming it), the signing key serves. */
static void assert_extra_key_ignored(struct world *w, const char *fault, const char *needle)
{
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long mark = log_mark(w);

	set_fault(w, fault);
	flush_caches(w);
	assert_int_equal(signin(w, &run), PAM_SUCCESS);
	assert_one_log_line(w, mark, needle);
	set_fault(w, "none");
	flush_caches(w);
	assert_honest_signin(w);
}

static void test_jwks_ec_key_with_a_short_x_is_ignored(void **state)
{
	(void)state;
	assert_extra_key_ignored(tok(), "jwks_ec_x_short",
	                         "JWKS from *1 key(s) ignored; key 2: x is 31 octets");
}

static void test_jwks_ec_key_without_y_is_ignored(void **state)
{
	(void)state;
	assert_extra_key_ignored(tok(), "jwks_ec_no_y", "JWKS from *1 key(s) ignored; key 2: y is missing");
}

static void test_jwks_ec_key_off_the_curve_is_ignored(void **state)
{
	(void)state;
	assert_extra_key_ignored(tok(), "jwks_ec_off_curve",
	                         "JWKS from *1 key(s) ignored; key 2: (x, y) is not a point of P-256");
}

int main(int argc, char **argv)
{
	harness_under_pam_wrapper();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_id_token_bad_signature_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_alg_none_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_hs256_keyed_with_public_pem_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_hs256_keyed_with_public_modulus_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_issuer_mismatch_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_audience_missing_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_audience_wrong_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_several_audiences_without_azp_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_several_audiences_with_wrong_azp_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_expired_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_iat_in_the_future_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_nonce_missing_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_nonce_wrong_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_vot_not_among_requested_vtr_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_userinfo_sub_different_from_id_token_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_without_kid_and_one_key_is_accepted, reset_faults),
	    cmocka_unit_test_setup(test_id_token_without_kid_and_several_keys_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_unknown_kid_refetches_jwks_once_then_is_refused,
	                           reset_faults),
	    cmocka_unit_test_setup(test_signing_key_rotated_new_kid_is_accepted_after_one_refetch,
	                           reset_faults),
	    cmocka_unit_test_setup(test_id_token_nbf_in_the_future_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_with_an_untrusted_extra_audience_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_key_without_kty_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_key_for_encryption_is_not_used_to_verify, reset_faults),
	    cmocka_unit_test_setup(test_jwks_key_whose_key_ops_lack_verify_is_not_used, reset_faults),
	    cmocka_unit_test_setup(test_jwks_key_ops_with_a_repeated_value_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_n_with_a_leading_zero_octet_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_e_with_a_leading_zero_octet_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_n_with_base64_padding_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_even_modulus_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_even_exponent_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_exponent_of_one_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_modulus_of_2047_bits_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_with_the_providers_private_key_in_it_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_key_whose_alg_is_not_the_tokens_is_not_used, reset_faults),
	    cmocka_unit_test_setup(test_jwks_two_keys_with_the_signing_kid_are_never_chosen_between,
	                           reset_faults),
	    cmocka_unit_test_setup(test_jwks_ec_key_with_a_short_x_is_ignored, reset_faults),
	    cmocka_unit_test_setup(test_jwks_ec_key_without_y_is_ignored, reset_faults),
	    cmocka_unit_test_setup(test_jwks_ec_key_off_the_curve_is_ignored, reset_faults),
	};
	alarm(480); /* the whole program times out on its own */
	return cmocka_run_group_tests_name("hostile_id_token", tests, NULL, stop_worlds);
}
