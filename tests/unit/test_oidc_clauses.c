/* The OpenID client against a real nhslogin-mock child, spec clause by clause: what the provider's
 * token, userinfo, discovery, JWKS and device answers must hold. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nl_b64.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "mockproc.h"
#include "oidc.h"
#include "oidc_fixture.h"

/* ---- spec clauses: what the provider's answers must hold, one clause a test ---- */

/* A code exchange whose token response carries fault: unavailable, no identity, and err says why
 * (never a code or token). Returns nothing; want is a substring of err. */
static void assert_exchange_refused(const char *fault, const char *want)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-s", "nonce-s", NULL);
	mock_fault(fault);
	assert_int_equal(exchange(o, code, NULL, "nonce-s", &id, &oc, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_int_equal(oc, NL_OUT_UNAVAILABLE);
	assert_null(id.sub);
	assert_null(id.claims);
	if (strstr(err, want) == NULL)
		fail_msg("err \"%s\" does not say \"%s\"", err, want);
	assert_null(strstr(err, code));
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* RFC 6749 5.1: access_token REQUIRED (even when userinfo is not asked). */
static void test_token_response_without_access_token_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_no_access_token", "token response has no access_token");
}

/* RFC 6749 5.1: token_type REQUIRED. */
static void test_token_response_without_token_type_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_no_token_type", "token response has no token_type");
}

/* RFC 6749 7.1 (a type we do not understand is not used) and OIDC Core 3.1.3.3 (MUST be Bearer). */
static void test_token_response_with_token_type_other_than_bearer_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_type_mac", "token_type other than Bearer");
}

/* RFC 6749 5.1: token_type "is case insensitive". */
static void test_token_response_with_token_type_bearer_in_lower_case_is_accepted(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-t", "nonce-t", NULL);
	mock_fault("token_type_lowercase");
	if (exchange(o, code, NULL, "nonce-t", &id, &oc, err, sizeof(err)) != 0)
		fail_msg("exchange: %s", err);
	assert_int_equal(oc, NL_OUT_OK);
	nl_identity_clear(&id);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* RFC 6749 5.1 and A.14: expires_in is a number of seconds (1*DIGIT). */
static void test_token_response_with_negative_expires_in_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_expires_in_negative", "expires_in that is not a non-negative integer");
}

static void test_token_response_with_expires_in_as_a_string_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_expires_in_string", "expires_in that is not a non-negative integer");
}

/* RFC 6749 5.1: the parameters come "using the application/json media type". */
static void test_token_response_with_content_type_text_plain_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_content_type_text", "Content-Type is not application/json");
}

/* RFC 6749 5.1: the response is a JSON object ("top level structure"). */
static void test_token_response_that_is_a_json_array_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_json_array", "response is not a JSON object");
}

/* RFC 6749 5.2: error is one ASCII code of %x20-21 / %x23-5B / %x5D-7E; anything else (here markup
 * and a terminal escape) is not repeated into the log. */
static void test_token_error_with_an_unsafe_error_word_is_not_repeated(void **state)
{
	(void)state;
	assert_exchange_refused("token_error_unsafe", "token endpoint: HTTP 400");
}

/* OIDC Core 5.3.2: an unsigned UserInfo answer MUST be application/json. */
static void test_userinfo_answer_that_is_not_application_json_is_refused(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	set(&cfg, "identity", "userinfo", "true");
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-u", "nonce-u", NULL);
	mock_fault("userinfo_content_type_jwt");
	assert_int_equal(exchange(o, code, NULL, "nonce-u", &id, &oc, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_int_equal(oc, NL_OUT_UNAVAILABLE);
	assert_null(id.sub);
	assert_string_equal(err, "userinfo: Content-Type is not application/json (OIDC Core 5.3.2)");
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* A new client (cold cache) is not ready while fault is on; err says want. */
static void assert_not_ready(const char *fault, const char *want)
{
	struct nl_config cfg;
	char err[256] = "";

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	mock_fault(fault);
	assert_int_not_equal(nl_oidc_ready(o, err, sizeof(err)), 0);
	if (strstr(err, want) == NULL)
		fail_msg("err \"%s\" does not say \"%s\"", err, want);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* RFC 6749 3.1, 3.2: endpoint URIs "MUST NOT include a fragment component". */
static void test_discovery_with_a_fragment_in_an_endpoint_is_refused(void **state)
{
	(void)state;
	assert_not_ready("discovery_fragment", "token_endpoint has a fragment");
}

/* OIDC Discovery 3: the provider signs ID tokens with none of our allowed_algs - nothing would verify. */
static void test_discovery_without_a_shared_id_token_alg_is_refused(void **state)
{
	(void)state;
	assert_not_ready("discovery_algs_hs256",
	                 "id_token_signing_alg_values_supported has none of allowed_algs");
}

/* RFC 9207 3: the metadata that obliges us to require iss on the callback. */
static void test_discovery_iss_parameter_supported_is_read(void **state)
{
	struct nl_config cfg;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	assert_false(nl_oidc_iss_param_required(o));
	nl_oidc_free(o);
	nl_config_free(&cfg);
	make_cfg(&cfg, NULL);
	o = new_oidc(&cfg);
	mock_fault("discovery_iss_param");
	ready(o);
	assert_true(nl_oidc_iss_param_required(o));
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* The provider's signing key, published with private members: nothing in that set is trusted. */
static void test_jwks_with_a_private_key_is_refused(void **state)
{
	(void)state;
	assert_not_ready("jwks_private_members", "jwks refused: key 1 carries private key members");
}

/* RFC 7518 6.3.1.1: n "MUST NOT" have a leading zero octet; with it the only key is left out. */
static void test_jwks_whose_signing_key_has_a_leading_zero_in_n_is_refused(void **state)
{
	(void)state;
	assert_not_ready("jwks_n_leading_zero",
	                 "jwks refused: no usable signing key; key 1: n has a leading zero octet");
}

/* RFC 7518 3.3: at least 2048 bits, counted exactly. */
static void test_jwks_whose_signing_key_has_2047_bits_is_refused(void **state)
{
	(void)state;
	assert_not_ready("jwks_rsa_2047", "key 1: n is 2047 bits");
}

/* RFC 7517 5: a broken extra key is ignored, the others serve. */
static void test_jwks_with_a_broken_extra_key_is_ready_with_the_good_one(void **state)
{
	struct nl_config cfg;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	mock_fault("jwks_ec_off_curve");
	ready(o);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* A device authorization answer with fault is refused (unavailable); err says want. */
static void assert_device_start_refused(const char *fault, const char *want)
{
	struct nl_config cfg;
	struct nl_device_auth da;
	char err[256] = "";

	struct nl_oidc *o = device_client(&cfg, fx.issuer);
	mock_fault(fault);
	memset(&da, 0, sizeof(da));
	assert_int_equal(nl_oidc_device_start(o, &da, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_null(da.device_code);
	assert_null(da.user_code);
	if (strstr(err, want) == NULL)
		fail_msg("err \"%s\" does not say \"%s\"", err, want);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* RFC 8628 3.2: interval is the minimum wait; one we cannot keep is refused, not shortened. */
static void test_device_authorization_with_an_interval_we_cannot_keep_is_refused(void **state)
{
	(void)state;
	assert_device_start_refused("device_interval_long", "interval is not an integer of 0..60");
}

static void test_device_authorization_with_a_negative_interval_is_refused(void **state)
{
	(void)state;
	assert_device_start_refused("device_interval_negative", "interval is not an integer of 0..60");
}

/* What the workstation shows must not be able to drive its terminal. */
static void test_device_authorization_with_an_escape_in_user_code_is_refused(void **state)
{
	(void)state;
	assert_device_start_refused("device_user_code_escape", "user_code is not printable ASCII");
}

/* RFC 8628 3.2: the answer is application/json. */
static void test_device_authorization_that_is_not_application_json_is_refused(void **state)
{
	(void)state;
	assert_device_start_refused("device_content_type_text", "Content-Type is not application/json");
}

static void test_outcome_words_are_the_protocol_reasons(void **state)
{
	(void)state;
	assert_string_equal(nl_outcome_word(NL_OUT_OK), "ok");
	assert_string_equal(nl_outcome_word(NL_OUT_DENIED), "denied");
	assert_string_equal(nl_outcome_word(NL_OUT_EXPIRED), "expired");
	assert_string_equal(nl_outcome_word(NL_OUT_INVALID_TOKEN), "invalid_token");
	assert_string_equal(nl_outcome_word(NL_OUT_LEVEL), "level");
	assert_string_equal(nl_outcome_word(NL_OUT_UNAVAILABLE), "unavailable");
	assert_string_equal(nl_outcome_word(NL_OUT_PENDING), "pending");
	assert_string_equal(nl_outcome_word(NL_OUT_SLOW_DOWN), "slow_down");
}

/* A C1 control in UTF-8 (U+009B, CSI) passes a URL parser; the terminal would obey it. */
static void test_device_authorization_with_a_c1_control_in_verification_uri_is_refused(void **state)
{
	(void)state;
	assert_device_start_refused("device_uri_c1", "a verification URI is not printable ASCII");
}

#define T(f) cmocka_unit_test_setup_teardown(f, clear_faults, clear_faults)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_token_response_without_access_token_is_refused),
	    T(test_token_response_without_token_type_is_refused),
	    T(test_token_response_with_token_type_other_than_bearer_is_refused),
	    T(test_token_response_with_token_type_bearer_in_lower_case_is_accepted),
	    T(test_token_response_with_negative_expires_in_is_refused),
	    T(test_token_response_with_expires_in_as_a_string_is_refused),
	    T(test_token_response_with_content_type_text_plain_is_refused),
	    T(test_token_response_that_is_a_json_array_is_refused),
	    T(test_token_error_with_an_unsafe_error_word_is_not_repeated),
	    T(test_userinfo_answer_that_is_not_application_json_is_refused),
	    T(test_discovery_with_a_fragment_in_an_endpoint_is_refused),
	    T(test_discovery_without_a_shared_id_token_alg_is_refused),
	    T(test_discovery_iss_parameter_supported_is_read),
	    T(test_jwks_with_a_private_key_is_refused),
	    T(test_jwks_whose_signing_key_has_a_leading_zero_in_n_is_refused),
	    T(test_jwks_whose_signing_key_has_2047_bits_is_refused),
	    T(test_jwks_with_a_broken_extra_key_is_ready_with_the_good_one),
	    T(test_device_authorization_with_an_interval_we_cannot_keep_is_refused),
	    T(test_device_authorization_with_a_negative_interval_is_refused),
	    T(test_device_authorization_with_an_escape_in_user_code_is_refused),
	    T(test_device_authorization_that_is_not_application_json_is_refused),
	    T(test_outcome_words_are_the_protocol_reasons),
	    T(test_device_authorization_with_a_c1_control_in_verification_uri_is_refused),
	};
	return cmocka_run_group_tests_name("oidc_clauses", tests, group_setup, group_teardown);
}
