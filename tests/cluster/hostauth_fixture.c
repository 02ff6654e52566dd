/* The hostauth tests' fixture, shared by the tests/cluster/test_hostauth_*.c programs: a hosts
 * directory with workstations A and B enrolled (C never is), an in-memory replay cache, and the helpers
 * that sign requests, check them as the bridge does, and make tokens by hand. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hostauth.h"
#include "hostauth_fixture.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_wipe.h"

/* ---- an in-memory replay cache (the bridge's is Redis SET NX) ---- */

static enum nl_hostauth_replay replay_check(void *ctx, const char *name, const char *jti, time_t expires_at)
{
	struct replay *rp = ctx;
	char key[160];
	size_t i;

	rp->calls++;
	if (rp->fail)
		return NL_HOSTAUTH_REPLAY_ERROR;
	snprintf(key, sizeof(key), "%s/%s", name, jti);
	for (i = 0; i < rp->n; i++)
		if (strcmp(rp->seen[i].key, key) == 0)
			return NL_HOSTAUTH_REPLAY_SEEN;
	if (rp->n == REPLAY_MAX)
		rp->n = 0; /* the benchmark's jtis: forgetting old ones is enough here */
	snprintf(rp->seen[rp->n].key, sizeof(rp->seen[rp->n].key), "%s", key);
	rp->seen[rp->n++].until = expires_at;
	return NL_HOSTAUTH_REPLAY_NEW;
}

/* ---- fixtures: keys A, B (enrolled as ws-a, ws-b), C (never enrolled), and the directories ---- */

struct hostauth_fx fx;

/* A new workstation key at keys/FILE (through the code enroll uses), loaded. */
cjose_jwk_t *new_key(const char *file, char *path, size_t pathlen)
{
	cjose_jwk_t *jwk = NULL;
	char err[512];
	bool created = false;

	snprintf(path, pathlen, "%s/%s", fx.keys, file);
	if (nl_hostauth_key_create(path, true, &created, err, sizeof(err)) != 0 || !created ||
	    nl_hostauth_key_load(path, &jwk, err, sizeof(err)) != 0) {
		print_error("%s\n", err);
		return NULL;
	}
	return jwk;
}

/* Enrol key as hosts/NAME.pem (mode 0644), the way the bridge's operator does. */
int enrol(const char *name, const cjose_jwk_t *key)
{
	char path[256], *pem = nl_jwk_public_pem(key);
	int r;

	snprintf(path, sizeof(path), "%s/%s.pem", fx.hosts, name);
	r = pem != NULL ? test_write_file(path, 0644, pem) : -1;
	free(pem);
	return r;
}

int group_setup(void **state)
{
	char path[256];
	FILE *f;
	(void)state;

	snprintf(fx.dir, sizeof(fx.dir), "/tmp/nl-hostauth-XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	snprintf(fx.hosts, sizeof(fx.hosts), "%s/hosts", fx.dir);
	snprintf(fx.keys, sizeof(fx.keys), "%s/keys", fx.dir);
	if (mkdir(fx.hosts, 0755) != 0 || mkdir(fx.keys, 0700) != 0 || chmod(fx.hosts, 0755) != 0)
		return -1;
	if ((fx.a = new_key("a.key", path, sizeof(path))) == NULL)
		return -1;
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	fx.evp_a = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (fx.evp_a == NULL || (fx.b = new_key("b.key", path, sizeof(path))) == NULL ||
	    (fx.c = new_key("c.key", path, sizeof(path))) == NULL)
		return -1;
	if (enrol("ws-a", fx.a) != 0 || enrol("ws-b", fx.b) != 0)
		return -1;
	return nl_hostauth_hosts_new(fx.hosts, 0, &fx.h) == 0 ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int group_teardown(void **state)
{
	(void)state;
	nl_hostauth_hosts_free(fx.h);
	cjose_jwk_release(fx.a);
	cjose_jwk_release(fx.b);
	cjose_jwk_release(fx.c);
	EVP_PKEY_free(fx.evp_a);
	if (fx.dir[0] != '\0') {
		chmod(fx.hosts, 0755);
		nftw(fx.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	return 0;
}

/* ---- helpers ---- */

char *sign(const cjose_jwk_t *key, const char *name, const char *method, const char *path, const char *body,
           const char *aud, time_t now)
{
	char *value = NULL;

	assert_int_equal(nl_hostauth_sign(key, name, method, path, body, strlen(body), aud, now, &value), 0);
	assert_non_null(value);
	return value;
}

/* The bridge's check of one request; the reason in *why; name_out filled on success. */
int verify_at(const char *value, const char *method, const char *path, const char *body, time_t now,
              enum nl_hostauth_reason *why, char name[NL_HOSTAUTH_NAME_MAX + 1])
{
	struct nl_hostauth_error err;
	int r;

	memset(&err, 0xa5, sizeof(err));
	name[0] = '\0';
	r = nl_hostauth_verify(fx.h, value, method, path, body, strlen(body), AUD, now, replay_check, &fx.rp,
	                       name, &err);
	*why = err.reason;
	/* The reason line never carries the token. */
	if (value != NULL && strlen(value) > 40)
		assert_null(strstr(err.detail, value + strlen(value) - 40));
	if (r != 0)
		print_message("# refused: %s: %s\n", nl_hostauth_reason_word(err.reason), err.detail);
	return r;
}

void assert_accepted(const char *value, const char *method, const char *path, const char *body, time_t now,
                     const char *want_name)
{
	enum nl_hostauth_reason why;
	char name[NL_HOSTAUTH_NAME_MAX + 1];

	assert_int_equal(verify_at(value, method, path, body, now, &why, name), 0);
	assert_int_equal(why, NL_HOSTAUTH_E_OK);
	assert_string_equal(name, want_name);
}

static char *b64(const void *p, size_t n)
{
	char *s = NULL;

	assert_int_equal(nl_b64url_encode(p, n, &s), 0);
	return s;
}

char *bh_of(const char *body)
{
	uint8_t md[32];

	assert_int_equal(EVP_Digest(body, strlen(body), md, NULL, EVP_sha256(), NULL), 1);
	return b64(md, sizeof(md));
}

/* The claims of a request as the agent would make them, with the times and jti given. */
json_t *claims_of(const char *iss, const char *method, const char *path, const char *body, long long iat,
                  long long exp, const char *jti)
{
	char *bh = bh_of(body), *fresh = NULL;
	json_t *c;

	if (jti == NULL) {
		assert_int_equal(nl_random_token(16, &fresh), 0);
		jti = fresh;
	}
	c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "iss", iss, "aud", AUD, "htm", method,
	              "htu", path, "bh", bh, "jti", jti, "iat", (json_int_t)iat, "exp", (json_int_t)exp);
	assert_non_null(c);
	free(bh);
	free(fresh);
	return c;
}

/* "NL-Host " and a JWS of claims signed by key through the project's signer (kid and typ as given;
 * typ NULL: none). */
char *signed_typed(const cjose_jwk_t *key, const char *kid, const char *typ, json_t *claims)
{
	char *jws = NULL, *value = NULL;

	assert_int_equal(nl_jws_sign_typed(key, "ES256", kid, typ, claims, &jws), 0);
	json_decref(claims);
	assert_true(asprintf(&value, "NL-Host %s", jws) > 0);
	nl_free_secret(jws);
	return value;
}

/* The same, typed as a request. */
char *signed_value(const cjose_jwk_t *key, const char *kid, json_t *claims)
{
	return signed_typed(key, kid, NL_HOSTAUTH_JWS_TYP, claims);
}

/* A compact JWS made by hand: header and payload JSON as given, signature bytes as given. */
char *by_hand(const char *header, const char *payload, const uint8_t *sig, size_t siglen, char **input_out)
{
	char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload)), *s = b64(sig, siglen);
	char *value = NULL;

	if (input_out != NULL)
		assert_true(asprintf(input_out, "%s.%s", h, p) > 0);
	assert_true(asprintf(&value, "NL-Host %s.%s.%s", h, p, s) > 0);
	free(h);
	free(p);
	free(s);
	return value;
}

/* ES256 over header.payload with A's private key, as r || s: a valid signature on a hand-made header. */
char *es256_by_hand(const char *header, const char *payload)
{
	char *input = NULL, *value = by_hand(header, payload, (const uint8_t *)"x", 1, &input);
	uint8_t der[80], rs[64];
	const uint8_t *p = der;
	size_t derlen = sizeof(der);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	ECDSA_SIG *sig;
	const BIGNUM *r, *s;

	free(value);
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, fx.evp_a), 1);
	assert_int_equal(EVP_DigestSign(ctx, der, &derlen, (const uint8_t *)input, strlen(input)), 1);
	EVP_MD_CTX_free(ctx);
	assert_non_null(sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen));
	ECDSA_SIG_get0(sig, &r, &s);
	assert_int_equal(BN_bn2binpad(r, rs, 32), 32);
	assert_int_equal(BN_bn2binpad(s, rs + 32, 32), 32);
	ECDSA_SIG_free(sig);
	free(input);
	return by_hand(header, payload, rs, sizeof(rs), NULL);
}
