/* JOSE layer: RFC known-answer vectors, sign/verify round trips, every refusal of the strict
 * compact parser, JWKS selection, PEM import/export, client assertions and JWT claim checks. */
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

/* Keys made once for the whole group: RSA generation is slow. */
struct keys {
	cjose_jwk_t *rsa;         /* cjose_jwk_create_RSA_random(2048) */
	cjose_jwk_t *rsa2;        /* a second, unrelated RSA key */
	cjose_jwk_t *ec;          /* cjose_jwk_create_EC_random(P-256) */
	EVP_PKEY *evp_rsa;        /* OpenSSL key to craft tokens by hand */
	cjose_jwk_t *evp_rsa_pub; /* its public half, through nl_jwk_from_pem */
};

static struct keys K;

static const char *const RS256_ONLY[] = {"RS256"};

/* ---- helpers -------------------------------------------------------------------------------- */

static char *read_fixture(const char *name)
{
	const char *top = getenv("NL_TOP_SRCDIR");
	char path[4096];
	FILE *f;
	long n;
	char *buf;

	snprintf(path, sizeof(path), "%s/tests/unit/data/jose/%s", top != NULL ? top : ".", name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static cjose_jwk_t *jwk_fixture(const char *name)
{
	char *json = read_fixture(name);
	cjose_jwk_t *jwk = NULL;

	assert_int_equal(nl_jwk_from_json(json, strlen(json), &jwk), 0);
	free(json);
	return jwk;
}

static int parse(const char *compact, const char *const *allowed, size_t n, struct nl_jws **out)
{
	*out = NULL;
	return nl_jws_parse(compact, strlen(compact), allowed, n, out);
}

static char *b64(const void *p, size_t n)
{
	char *s = NULL;
	assert_int_equal(nl_b64url_encode(p, n, &s), 0);
	return s;
}

static char *b64s(const char *s)
{
	return b64(s, strlen(s));
}

static char *join3(const char *a, const char *b, const char *c)
{
	char *s = NULL;
	assert_true(asprintf(&s, "%s.%s.%s", a, b, c) > 0);
	return s;
}

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

/* A JWS crafted with OpenSSL directly: any header text (duplicates, crit, ...) signed RS256. */
static char *craft_rs256(EVP_PKEY *pk, const char *header, const char *payload)
{
	char *h = b64s(header), *p = b64s(payload), *input = NULL, *s, *out;
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_true(asprintf(&input, "%s.%s", h, p) > 0);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pk), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input, strlen(input)), 1);
	s = b64(sig, siglen);
	out = join3(h, p, s);
	EVP_MD_CTX_free(ctx);
	free(h);
	free(p);
	free(s);
	free(input);
	return out;
}

static char *craft(const char *header, const char *payload)
{
	return craft_rs256(K.evp_rsa, header, payload);
}

static char *pem_of(EVP_PKEY *pk, int kind)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *s;
	long n;

	assert_non_null(bio);
	if (kind == 0)
		assert_int_equal(PEM_write_bio_PUBKEY(bio, pk), 1);
	else if (kind == 1)
		assert_int_equal(PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL), 1);
	else
		assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, pk, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &data);
	s = strndup(data, (size_t)n);
	BIO_free(bio);
	return s;
}

static EVP_PKEY *evp_from_pem(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(pk);
	return pk;
}

static cjose_jwk_t *public_copy(const cjose_jwk_t *jwk)
{
	char *json = nl_jwk_public_json(jwk, NULL);
	cjose_jwk_t *pub = NULL;

	assert_non_null(json);
	assert_null(strstr(json, "\"d\""));
	assert_int_equal(nl_jwk_from_json(json, strlen(json), &pub), 0);
	free(json);
	return pub;
}

static char *sign_claims(const cjose_jwk_t *key, const char *alg, const char *kid, const char *claims_json)
{
	json_t *claims = json_loads(claims_json, 0, NULL);
	char *out = NULL;

	assert_non_null(claims);
	assert_int_equal(nl_jws_sign(key, alg, kid, claims, &out), 0);
	json_decref(claims);
	return out;
}

static int group_setup(void **state)
{
	static const uint8_t e[] = {1, 0, 1};
	char *pem;
	(void)state;

	K.rsa = cjose_jwk_create_RSA_random(2048, e, sizeof(e), NULL);
	K.rsa2 = cjose_jwk_create_RSA_random(2048, e, sizeof(e), NULL);
	K.ec = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, NULL);
	K.evp_rsa = EVP_RSA_gen(2048);
	if (K.rsa == NULL || K.rsa2 == NULL || K.ec == NULL || K.evp_rsa == NULL)
		return -1;
	pem = pem_of(K.evp_rsa, 0);
	if (nl_jwk_from_pem(pem, strlen(pem), &K.evp_rsa_pub) != 0)
		return -1;
	free(pem);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	cjose_jwk_release(K.rsa);
	cjose_jwk_release(K.rsa2);
	cjose_jwk_release(K.ec);
	cjose_jwk_release(K.evp_rsa_pub);
	EVP_PKEY_free(K.evp_rsa);
	return 0;
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

static void round_trip(const cjose_jwk_t *key, const char *alg)
{
	const char *const allowed[] = {alg};
	cjose_jwk_t *pub = public_copy(key);
	char *compact = sign_claims(key, alg, "kid-1", "{\"sub\":\"alice\",\"n\":1}");
	struct nl_jws *jws = NULL;

	assert_int_equal(parse(compact, allowed, 1, &jws), 0);
	assert_string_equal(jws->alg, alg);
	assert_string_equal(jws->typ, "JWT");
	assert_string_equal(jws->kid, "kid-1");
	assert_string_equal(nl_jwt_str(jws->claims, "sub"), "alice");
	assert_int_equal(nl_jws_verify(jws, pub), 0);
	assert_true(jws->verified);
	nl_jws_free(jws);
	nl_free_secret(compact);
	cjose_jwk_release(pub);
}

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

/* ---- JWK import/export ----------------------------------------------------------------------- */

static void test_jwk_from_json_refuses_oct(void **state)
{
	static const char json[] = "{\"kty\":\"oct\",\"k\":\"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg\"}";
	cjose_jwk_t *jwk = NULL;
	(void)state;

	assert_int_equal(nl_jwk_from_json(json, strlen(json), &jwk), NL_ERR_KEY);
	assert_null(jwk);
}

static void test_jwk_from_json_refuses_malformed(void **state)
{
	static const char *const bad[] = {"{\"kty\":\"RSA\"", "{\"n\":\"AQAB\"}", "[]",
	                                  "{\"kty\":\"RSA\",\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}"};
	cjose_jwk_t *jwk = NULL;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(nl_jwk_from_json(bad[i], strlen(bad[i]), &jwk), NL_ERR_INVALID);
		assert_null(jwk);
	}
}

static void test_jwk_rejects_padding_in_number(void **state)
{
	/* cjose's own decoder aborts the process on '=' after 4k+1 characters: it must never see it. */
	static const char json[] = "{\"kty\":\"RSA\",\"n\":\"AAAAA=AA\",\"e\":\"AQAB\"}";
	cjose_jwk_t *jwk = NULL;
	(void)state;

	assert_int_equal(nl_jwk_from_json(json, strlen(json), &jwk), NL_ERR_KEY);
	assert_null(jwk);
}

static void test_jwk_rejects_partial_crt_params(void **state)
{
	/* RFC 7518 §6.3.2: p q dp dq qi all or none (a partial set leaked in cjose). */
	static const char json[] = "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"d\":\"AQAB\","
	                           "\"dp\":\"AQAB\",\"dq\":\"AQAB\"}";
	cjose_jwk_t *jwk = NULL;
	(void)state;

	assert_int_equal(nl_jwk_from_json(json, strlen(json), &jwk), NL_ERR_KEY);
	assert_null(jwk);
}

static void test_jwk_private_json_signs(void **state)
{
	/* The RFC 7515 A.2 private key, from its JWK, signs something its public half verifies. */
	cjose_jwk_t *key = jwk_fixture("rfc7515_a2_jwk.json");
	(void)state;
	round_trip(key, "RS256");
	cjose_jwk_release(key);
}

static void test_public_json_has_kid_use_alg(void **state)
{
	cjose_jwk_t *pub = public_copy(K.rsa);
	char *json;
	json_t *obj;
	(void)state;

	assert_true(cjose_jwk_set_kid(pub, "k-1", 3, NULL));
	json = nl_jwk_public_json(pub, "RS512");
	obj = json_loads(json, 0, NULL);
	assert_string_equal(nl_jwt_str(obj, "kty"), "RSA");
	assert_string_equal(nl_jwt_str(obj, "kid"), "k-1");
	assert_string_equal(nl_jwt_str(obj, "use"), "sig");
	assert_string_equal(nl_jwt_str(obj, "alg"), "RS512");
	assert_null(json_object_get(obj, "d"));
	assert_null(nl_jwk_public_json(pub, "ES256")); /* alg of the wrong family */
	assert_null(nl_jwk_public_json(pub, "HS256"));
	json_decref(obj);
	free(json);
	cjose_jwk_release(pub);
}

/* ---- PEM -------------------------------------------------------------------------------------- */

/* Import pem and check it is the same key as pk (same thumbprint as its public PEM import). */
static void assert_pem_imports(EVP_PKEY *pk, int kind, const char *label, const char *kty, bool priv)
{
	char *pem = pem_of(pk, kind), *pub_pem = pem_of(pk, 0), *tp1, *tp2;
	cjose_jwk_t *jwk = NULL, *pub = NULL;
	json_t *claims = json_pack("{s:s}", "a", "b");
	char *out = NULL;

	assert_non_null(strstr(pem, label));
	assert_int_equal(nl_jwk_from_pem(pem, strlen(pem), &jwk), 0);
	assert_int_equal(nl_jwk_from_pem(pub_pem, strlen(pub_pem), &pub), 0);
	assert_int_equal(cjose_jwk_get_kty(jwk, NULL),
	                 strcmp(kty, "RSA") == 0 ? CJOSE_JWK_KTY_RSA : CJOSE_JWK_KTY_EC);
	tp1 = nl_jwk_thumbprint(jwk);
	tp2 = nl_jwk_thumbprint(pub);
	assert_non_null(tp1);
	assert_string_equal(tp1, tp2);
	/* A private import signs; a public one cannot. */
	assert_int_equal(nl_jws_sign(jwk, strcmp(kty, "RSA") == 0 ? "RS256" : "ES256", NULL, claims, &out),
	                 priv ? 0 : NL_ERR_KEY);
	nl_free_secret(out);
	json_decref(claims);
	free(tp1);
	free(tp2);
	cjose_jwk_release(jwk);
	cjose_jwk_release(pub);
	nl_free_secret(pem);
	free(pub_pem);
}

static void test_pem_imports_public_key(void **state)
{
	(void)state;
	assert_pem_imports(K.evp_rsa, 0, "-----BEGIN PUBLIC KEY-----", "RSA", false);
}

static void test_pem_imports_pkcs8_private_key(void **state)
{
	(void)state;
	assert_pem_imports(K.evp_rsa, 1, "-----BEGIN PRIVATE KEY-----", "RSA", true);
}

static void test_pem_imports_rsa_private_key(void **state)
{
	(void)state;
	assert_pem_imports(K.evp_rsa, 2, "-----BEGIN RSA PRIVATE KEY-----", "RSA", true);
}

static void test_pem_imports_ec_private_key(void **state)
{
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	(void)state;
	assert_non_null(ec);
	assert_pem_imports(ec, 2, "-----BEGIN EC PRIVATE KEY-----", "EC", true);
	EVP_PKEY_free(ec);
}

static void test_pem_imports_ec_public_key(void **state)
{
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	(void)state;
	assert_non_null(ec);
	assert_pem_imports(ec, 0, "-----BEGIN PUBLIC KEY-----", "EC", false);
	EVP_PKEY_free(ec);
}

static void test_pem_private_import_matches_openssl_key(void **state)
{
	/* Sign with the key imported from PEM; OpenSSL verifies with its own original key. */
	char *pem = pem_of(K.evp_rsa, 1), *compact, *dot;
	cjose_jwk_t *jwk = NULL;
	uint8_t *sig = NULL;
	size_t siglen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	(void)state;

	assert_int_equal(nl_jwk_from_pem(pem, strlen(pem), &jwk), 0);
	compact = sign_claims(jwk, "RS256", NULL, "{\"a\":1}");
	dot = strrchr(compact, '.');
	assert_int_equal(nl_b64url_decode(dot + 1, strlen(dot + 1), &sig, &siglen), 0);
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, K.evp_rsa), 1);
	assert_int_equal(
	    EVP_DigestVerify(ctx, sig, siglen, (unsigned char *)compact, (size_t)(dot - compact)), 1);
	EVP_MD_CTX_free(ctx);
	free(sig);
	nl_free_secret(compact);
	cjose_jwk_release(jwk);
	nl_free_secret(pem);
}

static void test_pem_refuses_encrypted_key_without_prompting(void **state)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *pem;
	long n;
	cjose_jwk_t *jwk = NULL;
	(void)state;

	assert_int_equal(
	    PEM_write_bio_PKCS8PrivateKey(bio, K.evp_rsa, EVP_aes_256_cbc(), "pw", 2, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &data);
	pem = strndup(data, (size_t)n);
	assert_non_null(strstr(pem, "ENCRYPTED PRIVATE KEY"));
	assert_int_equal(nl_jwk_from_pem(pem, strlen(pem), &jwk), NL_ERR_INVALID);
	assert_null(jwk);
	free(pem);
	BIO_free(bio);
}

static void test_pem_refuses_p384_key(void **state)
{
	EVP_PKEY *ec = EVP_EC_gen("P-384");
	char *pem = pem_of(ec, 1);
	cjose_jwk_t *jwk = NULL;
	(void)state;

	assert_int_equal(nl_jwk_from_pem(pem, strlen(pem), &jwk), NL_ERR_KEY);
	assert_null(jwk);
	nl_free_secret(pem);
	EVP_PKEY_free(ec);
}

static void test_pem_refuses_garbage(void **state)
{
	static const char junk[] = "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n";
	cjose_jwk_t *jwk = NULL;
	(void)state;

	assert_int_equal(nl_jwk_from_pem(junk, strlen(junk), &jwk), NL_ERR_INVALID);
	assert_int_equal(nl_jwk_from_pem("", 0, &jwk), NL_ERR_INVALID);
	assert_null(jwk);
}

static void test_public_pem_export_round_trips(void **state)
{
	char *pem = nl_jwk_public_pem(K.ec), *tp1 = nl_jwk_thumbprint(K.ec), *tp2;
	cjose_jwk_t *back = NULL;
	(void)state;

	assert_non_null(pem);
	assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----"));
	assert_int_equal(nl_jwk_from_pem(pem, strlen(pem), &back), 0);
	tp2 = nl_jwk_thumbprint(back);
	assert_string_equal(tp1, tp2);
	free(tp1);
	free(tp2);
	free(pem);
	cjose_jwk_release(back);
}

/* A private key file, mode 0600, in a fresh directory. */
static char *write_key_file(char *dir, const char *pem)
{
	char *path = NULL;
	int fd;

	assert_non_null(mkdtemp(dir));
	assert_true(asprintf(&path, "%s/key.pem", dir) > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
	close(fd);
	return path;
}

static void test_load_private_pem_reads_key_file(void **state)
{
	char dir[] = "/tmp/nl_jose_XXXXXX", err[256] = "", *pem = pem_of(K.evp_rsa, 1), *path, *tp1, *tp2;
	cjose_jwk_t *jwk = NULL;
	(void)state;

	path = write_key_file(dir, pem);
	assert_int_equal(nl_jwk_load_private_pem(path, &jwk, err, sizeof(err)), 0);
	tp1 = nl_jwk_thumbprint(jwk);
	tp2 = nl_jwk_thumbprint(K.evp_rsa_pub);
	assert_string_equal(tp1, tp2);
	free(tp1);
	free(tp2);
	cjose_jwk_release(jwk);
	unlink(path);
	rmdir(dir);
	free(path);
	nl_free_secret(pem);
}

static void test_load_private_pem_refuses_public_key_file(void **state)
{
	char dir[] = "/tmp/nl_jose_XXXXXX", err[256] = "", *pem = pem_of(K.evp_rsa, 0), *path;
	cjose_jwk_t *jwk = NULL;
	(void)state;

	path = write_key_file(dir, pem);
	assert_int_equal(nl_jwk_load_private_pem(path, &jwk, err, sizeof(err)), NL_ERR_KEY);
	assert_null(jwk);
	assert_non_null(strstr(err, path));
	unlink(path);
	rmdir(dir);
	free(path);
	free(pem);
}

static void test_load_private_pem_refuses_readable_by_others(void **state)
{
	char dir[] = "/tmp/nl_jose_XXXXXX", err[256] = "", *pem = pem_of(K.evp_rsa, 1), *path;
	cjose_jwk_t *jwk = NULL;
	(void)state;

	path = write_key_file(dir, pem);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_not_equal(nl_jwk_load_private_pem(path, &jwk, err, sizeof(err)), 0);
	assert_null(jwk);
	unlink(path);
	rmdir(dir);
	free(path);
	nl_free_secret(pem);
}

/* ---- client assertion ------------------------------------------------------------------------- */

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
	    cmocka_unit_test(test_jwk_rejects_padding_in_number),
	    cmocka_unit_test(test_jwk_rejects_partial_crt_params),
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
	    cmocka_unit_test(test_jwk_from_json_refuses_oct),
	    cmocka_unit_test(test_jwk_from_json_refuses_malformed),
	    cmocka_unit_test(test_jwk_private_json_signs),
	    cmocka_unit_test(test_public_json_has_kid_use_alg),
	    cmocka_unit_test(test_pem_imports_public_key),
	    cmocka_unit_test(test_pem_imports_pkcs8_private_key),
	    cmocka_unit_test(test_pem_imports_rsa_private_key),
	    cmocka_unit_test(test_pem_imports_ec_private_key),
	    cmocka_unit_test(test_pem_imports_ec_public_key),
	    cmocka_unit_test(test_pem_private_import_matches_openssl_key),
	    cmocka_unit_test(test_pem_refuses_encrypted_key_without_prompting),
	    cmocka_unit_test(test_pem_refuses_p384_key),
	    cmocka_unit_test(test_pem_refuses_garbage),
	    cmocka_unit_test(test_public_pem_export_round_trips),
	    cmocka_unit_test(test_load_private_pem_reads_key_file),
	    cmocka_unit_test(test_load_private_pem_refuses_public_key_file),
	    cmocka_unit_test(test_load_private_pem_refuses_readable_by_others),
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

	return cmocka_run_group_tests_name("jose", tests, group_setup, group_teardown);
}
