/* JWK import and export: JSON keys, PEM public and private keys (and the ones refused), and
 * loading the client's private key file. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jwk_rejects_padding_in_number),
	    cmocka_unit_test(test_jwk_rejects_partial_crt_params),
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
	};

	return cmocka_run_group_tests_name("jose_jwk", tests, group_setup, group_teardown);
}
