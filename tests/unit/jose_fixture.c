/* The keys and token-making helpers that the tests/unit/test_jose_*.c programs share: keys made once
 * per program in the group setup, fixtures read from tests/unit/data/jose, tokens crafted by hand. */
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

struct keys K;

const char *const RS256_ONLY[] = {"RS256"};

/* ---- helpers -------------------------------------------------------------------------------- */

char *read_fixture(const char *name)
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

cjose_jwk_t *jwk_fixture(const char *name)
{
	char *json = read_fixture(name);
	cjose_jwk_t *jwk = NULL;

	assert_int_equal(nl_jwk_from_json(json, strlen(json), &jwk), 0);
	free(json);
	return jwk;
}

int parse(const char *compact, const char *const *allowed, size_t n, struct nl_jws **out)
{
	*out = NULL;
	return nl_jws_parse(compact, strlen(compact), allowed, n, out);
}

char *b64(const void *p, size_t n)
{
	char *s = NULL;
	assert_int_equal(nl_b64url_encode(p, n, &s), 0);
	return s;
}

char *b64s(const char *s)
{
	return b64(s, strlen(s));
}

char *join3(const char *a, const char *b, const char *c)
{
	char *s = NULL;
	assert_true(asprintf(&s, "%s.%s.%s", a, b, c) > 0);
	return s;
}

/* A JWS crafted with OpenSSL directly: any header text (duplicates, crit, ...) signed RS256. */
char *craft_rs256(EVP_PKEY *pk, const char *header, const char *payload)
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

char *craft(const char *header, const char *payload)
{
	return craft_rs256(K.evp_rsa, header, payload);
}

char *pem_of(EVP_PKEY *pk, int kind)
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

cjose_jwk_t *public_copy(const cjose_jwk_t *jwk)
{
	char *json = nl_jwk_public_json(jwk, NULL);
	cjose_jwk_t *pub = NULL;

	assert_non_null(json);
	assert_null(strstr(json, "\"d\""));
	assert_int_equal(nl_jwk_from_json(json, strlen(json), &pub), 0);
	free(json);
	return pub;
}

char *sign_claims(const cjose_jwk_t *key, const char *alg, const char *kid, const char *claims_json)
{
	json_t *claims = json_loads(claims_json, 0, NULL);
	char *out = NULL;

	assert_non_null(claims);
	assert_int_equal(nl_jws_sign(key, alg, kid, claims, &out), 0);
	json_decref(claims);
	return out;
}

int group_setup(void **state)
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

int group_teardown(void **state)
{
	(void)state;
	cjose_jwk_release(K.rsa);
	cjose_jwk_release(K.rsa2);
	cjose_jwk_release(K.ec);
	cjose_jwk_release(K.evp_rsa_pub);
	EVP_PKEY_free(K.evp_rsa);
	return 0;
}

void round_trip(const cjose_jwk_t *key, const char *alg)
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
