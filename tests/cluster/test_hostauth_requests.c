/* Enrolled workstations, end to end: requests signed by the agent's code and checked by the bridge's
 * against a real hosts directory, and the attacks on the request itself (a replay, a stale or early
 * request, a request altered in transit, a token naming its own key or alg or of another type, a
 * malformed header). Then the cost of a signature and of its check (diagnostics). Shared fixture:
 * hostauth_fixture.c. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hostauth.h"
#include "hostauth_fixture.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_wipe.h"

static char *payload_text(const char *iss, time_t now)
{
	json_t *c = claims_of(iss, "POST", PATH, BODY, now, now + 30, NULL);
	char *s = json_dumps(c, JSON_COMPACT);

	json_decref(c);
	assert_non_null(s);
	return s;
}

/* ---- a request accepted, and one replayed ---- */

static void test_valid_request_is_accepted_with_its_enrolled_name(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	static const char *const es256[] = {"ES256"};
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(strncmp(v, "NL-Host ", 8), 0);
	assert_int_equal(nl_jws_parse(v + 8, strlen(v + 8), es256, 1, &jws), 0);
	assert_string_equal(jws->typ, NL_HOSTAUTH_JWS_TYP);
	nl_jws_free(jws);
	assert_accepted(v, "POST", PATH, BODY, T0, "ws-a");
	free(v);
}

static void test_empty_body_request_is_accepted(void **state)
{
	char *v = sign(fx.b, "ws-b", "GET", "/api/v1/flows/f-1", "", AUD, T0);
	(void)state;

	assert_accepted(v, "GET", "/api/v1/flows/f-1", "", T0, "ws-b");
	free(v);
}

static void test_replayed_request_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	(void)state;

	assert_accepted(v, "POST", PATH, BODY, T0 + 1, "ws-a");
	assert_refused(v, "POST", PATH, BODY, T0 + 2, NL_HOSTAUTH_E_REPLAYED);
	free(v);
}

static void test_replay_cache_failure_refuses(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	(void)state;

	fx.rp.fail = true;
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_REPLAY_STORE);
	fx.rp.fail = false;
	free(v);
}

/* ---- time ---- */

static void test_expired_request_is_refused(void **state)
{
	/* Signed 100 s ago: exp was 70 s ago, past the 30 s of skew. */
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0 - 100);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_EXPIRED);
	free(v);
}

static void test_request_within_skew_is_accepted(void **state)
{
	/* A bridge clock 25 s ahead of the agent's, then 25 s behind. */
	char *late = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0 - NL_HOSTAUTH_LIFETIME - 25);
	char *early = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0 + 25);
	(void)state;

	assert_accepted(late, "POST", PATH, BODY, T0, "ws-a");
	assert_accepted(early, "POST", PATH, BODY, T0, "ws-a");
	free(late);
	free(early);
}

static void test_request_issued_in_the_future_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0 + NL_HOSTAUTH_SKEW + 5);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_NOT_YET_VALID);
	free(v);
}

static void test_lifetime_over_60_seconds_is_refused(void **state)
{
	char *kid = nl_jwk_thumbprint(fx.a);
	char *v = signed_value(fx.a, kid, claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 61, NULL));
	char *zero = signed_value(fx.a, kid, claims_of("ws-a", "POST", PATH, BODY, T0, T0, NULL));
	char *sixty = signed_value(fx.a, kid, claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 60, NULL));
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_LIFETIME);
	assert_refused(zero, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_LIFETIME);
	assert_accepted(sixty, "POST", PATH, BODY, T0, "ws-a");
	free(v);
	free(zero);
	free(sixty);
	free(kid);
}

/* Times at the ends of the integer range are refused without arithmetic overflow (found by
 * fuzz_hostauth: the lifetime in the refusal's message was exp - iat whatever they were; the
 * sanitizer build stops on the overflow). */
static void test_extreme_times_are_refused_without_overflow(void **state)
{
	static const struct {
		long long iat, exp;
		enum nl_hostauth_reason why;
	} cases[] = {
	    {-9223372036854775807LL, 9223372036854775807LL, NL_HOSTAUTH_E_LIFETIME},
	    {5, -9223372036854775807LL - 1, NL_HOSTAUTH_E_LIFETIME},
	    {0, 9223372036854775807LL, NL_HOSTAUTH_E_LIFETIME},
	    {9223372036854775807LL - 30, 9223372036854775807LL, NL_HOSTAUTH_E_NOT_YET_VALID},
	};
	char *kid = nl_jwk_thumbprint(fx.a), *v;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = signed_value(fx.a, kid,
		                 claims_of("ws-a", "POST", PATH, BODY, cases[i].iat, cases[i].exp, NULL));
		assert_refused(v, "POST", PATH, BODY, T0, cases[i].why);
		free(v);
	}
	free(kid);
}

/* ---- what the signature binds ---- */

static void test_request_for_another_bridge_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, "https://signin.other-trust.nhs.uk", T0);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_AUDIENCE);
	free(v);
}

static void test_changed_method_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "GET", PATH, BODY, AUD, T0);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_METHOD);
	free(v);
}

static void test_changed_path_or_query_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	char *w = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	(void)state;

	assert_refused(v, "POST", "/api/v1/flows/f-2/cancel", BODY, T0, NL_HOSTAUTH_E_PATH);
	assert_refused(w, "POST", "/api/v1/flows?wait=30", BODY, T0, NL_HOSTAUTH_E_PATH);
	free(v);
	free(w);
}

static void test_body_changed_by_one_byte_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	char body[] = BODY;
	(void)state;

	body[10] ^= 1; /* "alice" -> "alhce" */
	assert_refused(v, "POST", PATH, body, T0, NL_HOSTAUTH_E_BODY);
	free(v);
}

static void test_short_jti_is_refused(void **state)
{
	char *kid = nl_jwk_thumbprint(fx.a);
	char *v = signed_value(fx.a, kid, claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 30, "AAAAAAAAAAA"));
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_JTI);
	free(v);
	free(kid);
}

/* ---- tokens that choose their own alg or key ---- */

static void test_alg_none_is_refused(void **state)
{
	char *payload = payload_text("ws-a", T0);
	char *v = by_hand("{\"alg\":\"none\"}", payload, (const uint8_t *)"\0", 1, NULL);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_ALG);
	free(v);
	free(payload);
}

static void test_hs256_with_the_public_key_as_secret_is_refused(void **state)
{
	char *payload = payload_text("ws-a", T0), *pem = nl_jwk_public_pem(fx.a), *input = NULL, *v;
	uint8_t mac[32];
	unsigned int maclen = sizeof(mac);
	(void)state;

	free(by_hand("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, mac, 1, &input));
	assert_non_null(
	    HMAC(EVP_sha256(), pem, (int)strlen(pem), (const uint8_t *)input, strlen(input), mac, &maclen));
	v = by_hand("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, mac, maclen, NULL);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_ALG);
	free(v);
	free(input);
	free(pem);
	free(payload);
}

static void test_rs256_and_es512_are_refused(void **state)
{
	char *payload = payload_text("ws-a", T0);
	char *rs = by_hand("{\"alg\":\"RS512\"}", payload, (const uint8_t *)"sig", 3, NULL);
	char *es = by_hand("{\"alg\":\"ES512\"}", payload, (const uint8_t *)"sig", 3, NULL);
	(void)state;

	assert_refused(rs, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_ALG);
	assert_refused(es, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_ALG);
	free(rs);
	free(es);
	free(payload);
}

static void test_header_carrying_its_own_key_is_refused(void **state)
{
	char *payload = payload_text("ws-c", T0), *jwk = nl_jwk_public_json(fx.c, "ES256"), *hdr = NULL;
	char *with_jwk, *with_x5c, *control;
	(void)state;

	/* Valid ES256 signatures (by A) over headers that name a key: refused for naming it. */
	assert_true(asprintf(&hdr, "{\"alg\":\"ES256\",\"typ\":\"nl-host+jwt\",\"jwk\":%s}", jwk) > 0);
	with_jwk = es256_by_hand(hdr, payload);
	with_x5c = es256_by_hand("{\"alg\":\"ES256\",\"typ\":\"nl-host+jwt\",\"x5c\":[\"MIIB\"]}", payload);
	assert_refused(with_jwk, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_MALFORMED);
	assert_refused(with_x5c, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_MALFORMED);
	/* The hand-made signer is sound: the same header without a key, for ws-a, passes. */
	free(payload);
	payload = payload_text("ws-a", T0);
	control = es256_by_hand(TYPED_HEADER, payload);
	assert_accepted(control, "POST", PATH, BODY, T0, "ws-a");
	free(control);
	free(with_jwk);
	free(with_x5c);
	free(hdr);
	free(jwk);
	free(payload);
}

/* ---- tokens of another type signed with an enrolled key ---- */

/* Every claim a valid request has: only the typ can refuse these. */
static void test_request_typed_jwt_is_refused(void **state)
{
	char *kid = nl_jwk_thumbprint(fx.a);
	char *v = signed_typed(fx.a, kid, "JWT", claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 30, NULL));
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TYP);
	free(v);
	free(kid);
}

static void test_request_without_typ_is_refused(void **state)
{
	char *kid = nl_jwk_thumbprint(fx.a);
	char *v = signed_typed(fx.a, kid, NULL, claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 30, NULL));
	char *payload = payload_text("ws-a", T0);
	char *by_hand_v = es256_by_hand("{\"alg\":\"ES256\"}", payload);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TYP);
	assert_refused(by_hand_v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TYP);
	free(v);
	free(by_hand_v);
	free(payload);
	free(kid);
}

/* An ID token (typ JWT) signed by a workstation's key, carrying the request's claims as well: refused
 * for its typ alone. A client assertion made by the project's own code with that key, likewise, and
 * before its missing claims are looked at. */
static void test_id_token_signed_by_an_enrolled_key_is_refused(void **state)
{
	char *kid = nl_jwk_thumbprint(fx.a), *bh = bh_of(BODY), *jti = NULL, *assertion = NULL, *ca;
	json_t *c;
	char *v;
	(void)state;

	assert_int_equal(nl_random_token(16, &jti), 0);
	c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s}", "iss", "ws-a",
	              "sub", "9686368973", "aud", AUD, "nonce", "n-0S6_WzA2Mj", "vot", "P9.Cp.Cd", "iat",
	              (json_int_t)T0, "exp", (json_int_t)T0 + 30, "auth_time", (json_int_t)T0, "jti", jti,
	              "htm", "POST", "htu", PATH, "bh", bh, "identity_proofing_level", "P9");
	assert_non_null(c);
	v = signed_typed(fx.a, kid, "JWT", c);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TYP);
	assert_int_equal(nl_client_assertion(fx.a, "ES256", kid, "ws-a", AUD, T0, 30, &assertion), 0);
	assert_true(asprintf(&ca, "NL-Host %s", assertion) > 0);
	assert_refused(ca, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TYP);
	free(ca);
	nl_free_secret(assertion);
	free(v);
	free(jti);
	free(bh);
	free(kid);
}

/* typ is a media type (RFC 7515 4.1.9): any case, "application/" implied; nothing else is it. */
static void test_typ_is_compared_as_a_media_type(void **state)
{
	static const char *const same[] = {"nl-host+jwt", "NL-Host+JWT", "application/nl-host+jwt"};
	static const char *const other[] = {"at+jwt",
	                                    "nl-host",
	                                    "nl-host+jwt ",
	                                    "application/jwt",
	                                    "nl-host+jwt2",
	                                    "application/application/nl-host+jwt",
	                                    ""};
	char *kid = nl_jwk_thumbprint(fx.a), *v;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		v = signed_typed(fx.a, kid, same[i],
		                 claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 30, NULL));
		assert_accepted(v, "POST", PATH, BODY, T0, "ws-a");
		free(v);
	}
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		v = signed_typed(fx.a, kid, other[i],
		                 claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 30, NULL));
		assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TYP);
		free(v);
	}
	free(kid);
}

/* ---- the header itself ---- */

static void test_oversize_header_is_refused(void **state)
{
	char *v = malloc(NL_HOSTAUTH_HEADER_MAX + 16);
	(void)state;

	assert_non_null(v);
	memcpy(v, "NL-Host ", 8);
	memset(v + 8, 'A', NL_HOSTAUTH_HEADER_MAX);
	v[NL_HOSTAUTH_HEADER_MAX + 8] = '\0';
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TOO_BIG);
	free(v);
}

static void test_malformed_values_are_refused(void **state)
{
	static const char *const values[] = {"",
	                                     "NL-Host",
	                                     "NL-Host ",
	                                     "Bearer abc.def.ghi",
	                                     "NL-Host a.b",
	                                     "NL-Host a.b.c.d",
	                                     "NL-Host  a.b.c",
	                                     "NL-Host a.b.c ",
	                                     "NL-Host a+b.c.d"};
	char *good = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0), *json_ser = NULL;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		assert_refused(values[i], "POST", PATH, BODY, T0, NL_HOSTAUTH_E_MALFORMED);
	/* The JSON serialization of a JWS is not accepted, only the compact one. */
	assert_true(asprintf(&json_ser, "NL-Host {\"payload\":\"%s\"}", good + 8) > 0);
	assert_refused(json_ser, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_MALFORMED);
	free(json_ser);
	free(good);
}

/* ---- cost (diagnostics, not assertions) ---- */

/* The benchmark's replay cache: an answer without a search, so that the figure is the check's own
 * (the bridge's is one Redis round trip, measured with the store). */
static enum nl_hostauth_replay replay_new(void *ctx, const char *name, const char *jti, time_t expires_at)
{
	(void)name;
	(void)jti;
	(void)expires_at;
	(*(unsigned long *)ctx)++;
	return NL_HOSTAUTH_REPLAY_NEW;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long bench_n(long dflt)
{
	const char *s = getenv("NL_HOSTAUTH_BENCH_N");

	return s != NULL && atol(s) > 0 ? atol(s) : dflt;
}

/* ES256 request signatures and their full check (directory, cache, signature, claims, replay) against
 * RS512 through the same JOSE code (sign: nl_jws_sign; verify: a key set of one key). */
static void test_cost_of_signing_and_verifying(void **state)
{
	static const uint8_t e[] = {1, 0, 1};
	long n = bench_n(2000), nrsa = bench_n(2000) / 10 + 1, i;
	char **vals = calloc((size_t)n, sizeof(char *)), *rs = NULL, *pub, *doc = NULL;
	cjose_jwk_t *rsa = cjose_jwk_create_RSA_random(2048, e, sizeof(e), NULL);
	struct nl_jwks *set = NULL;
	struct nl_jws *jws = NULL;
	double t, sign_us, verify_us, es_verify_us, rs_sign_us, rs_verify_us;
	static const char *const rs512[] = {"RS512"}, *const es256[] = {"ES256"};
	unsigned long replays = 0;
	json_t *claims;
	(void)state;

	assert_non_null(vals);
	assert_non_null(rsa);
	t = now_us();
	for (i = 0; i < n; i++)
		vals[i] = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	sign_us = (now_us() - t) / (double)n;
	t = now_us();
	for (i = 0; i < n; i++) {
		enum nl_hostauth_reason why;
		char name[NL_HOSTAUTH_NAME_MAX + 1];
		struct nl_hostauth_error err;
		assert_int_equal(nl_hostauth_verify(fx.h, vals[i], "POST", PATH, BODY, strlen(BODY), AUD, T0,
		                                    replay_new, &replays, name, &err),
		                 0);
		why = err.reason;
		assert_int_equal(why, NL_HOSTAUTH_E_OK);
	}
	verify_us = (now_us() - t) / (double)n;
	assert_int_equal(replays, (unsigned long)n);
	/* The signature alone, as the baseline below is measured. */
	{
		char *pubes = nl_jwk_public_json(fx.a, "ES256"), *esdoc = NULL;
		struct nl_jwks *esset = NULL;
		assert_true(asprintf(&esdoc, "{\"keys\":[%s]}", pubes) > 0);
		assert_int_equal(nl_jwks_parse(esdoc, strlen(esdoc), &esset), 0);
		t = now_us();
		for (i = 0; i < n; i++) {
			assert_int_equal(nl_jws_parse(vals[i] + 8, strlen(vals[i] + 8), es256, 1, &jws), 0);
			assert_int_equal(nl_jws_verify_jwks(jws, esset), 0);
			nl_jws_free(jws);
		}
		es_verify_us = (now_us() - t) / (double)n;
		nl_jwks_free(esset);
		free(esdoc);
		free(pubes);
	}
	for (i = 0; i < n; i++)
		free(vals[i]);
	free(vals);

	claims = claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 30, NULL);
	t = now_us();
	for (i = 0; i < nrsa; i++) {
		nl_free_secret(rs);
		rs = NULL;
		assert_int_equal(nl_jws_sign(rsa, "RS512", NULL, claims, &rs), 0);
	}
	rs_sign_us = (now_us() - t) / (double)nrsa;
	json_decref(claims);
	pub = nl_jwk_public_json(rsa, "RS512");
	assert_true(asprintf(&doc, "{\"keys\":[%s]}", pub) > 0);
	assert_int_equal(nl_jwks_parse(doc, strlen(doc), &set), 0);
	t = now_us();
	for (i = 0; i < n; i++) {
		assert_int_equal(nl_jws_parse(rs, strlen(rs), rs512, 1, &jws), 0);
		assert_int_equal(nl_jws_verify_jwks(jws, set), 0);
		nl_jws_free(jws);
	}
	rs_verify_us = (now_us() - t) / (double)n;
	print_message("# cost per request (%ld ES256, %ld RS512 signatures; %ld checks each):\n", n, nrsa, n);
	print_message("#   ES256 nl_hostauth_sign    %8.1f us\n", sign_us);
	print_message(
	    "#   ES256 nl_hostauth_verify  %8.1f us (files, cache, signature, claims, replay call)\n",
	    verify_us);
	print_message("#   ES256 parse + verify      %8.1f us (signature and parse only)\n", es_verify_us);
	print_message("#   RS512 nl_jws_sign         %8.1f us (baseline, 2048-bit key)\n", rs_sign_us);
	print_message("#   RS512 parse + verify      %8.1f us (baseline, signature and parse only)\n",
	              rs_verify_us);
	nl_free_secret(rs);
	nl_jwks_free(set);
	free(doc);
	free(pub);
	cjose_jwk_release(rsa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_request_is_accepted_with_its_enrolled_name),
	    cmocka_unit_test(test_empty_body_request_is_accepted),
	    cmocka_unit_test(test_replayed_request_is_refused),
	    cmocka_unit_test(test_replay_cache_failure_refuses),
	    cmocka_unit_test(test_expired_request_is_refused),
	    cmocka_unit_test(test_request_within_skew_is_accepted),
	    cmocka_unit_test(test_request_issued_in_the_future_is_refused),
	    cmocka_unit_test(test_lifetime_over_60_seconds_is_refused),
	    cmocka_unit_test(test_extreme_times_are_refused_without_overflow),
	    cmocka_unit_test(test_request_for_another_bridge_is_refused),
	    cmocka_unit_test(test_changed_method_is_refused),
	    cmocka_unit_test(test_changed_path_or_query_is_refused),
	    cmocka_unit_test(test_body_changed_by_one_byte_is_refused),
	    cmocka_unit_test(test_short_jti_is_refused),
	    cmocka_unit_test(test_alg_none_is_refused),
	    cmocka_unit_test(test_hs256_with_the_public_key_as_secret_is_refused),
	    cmocka_unit_test(test_rs256_and_es512_are_refused),
	    cmocka_unit_test(test_header_carrying_its_own_key_is_refused),
	    cmocka_unit_test(test_request_typed_jwt_is_refused),
	    cmocka_unit_test(test_request_without_typ_is_refused),
	    cmocka_unit_test(test_id_token_signed_by_an_enrolled_key_is_refused),
	    cmocka_unit_test(test_typ_is_compared_as_a_media_type),
	    cmocka_unit_test(test_oversize_header_is_refused),
	    cmocka_unit_test(test_malformed_values_are_refused),
	    cmocka_unit_test(test_cost_of_signing_and_verifying),
	};

	return cmocka_run_group_tests_name("hostauth_requests", tests, group_setup, group_teardown);
}
