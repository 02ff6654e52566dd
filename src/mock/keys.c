/* nhslogin-mock: its RSA signing keys (generated at start, or signing_key.pem from the state dir),
 * the JWKS it publishes, and signing through nl_jose. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mock.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_wipe.h"

static void key_clear(struct mock_key *k)
{
	if (k->jwk != NULL)
		cjose_jwk_release(k->jwk);
	free(k->kid);
	k->jwk = NULL;
	k->kid = NULL;
}

static int key_set_kid(struct mock_key *k, const char *kid)
{
	cjose_err cerr;

	if ((k->kid = strdup(kid)) == NULL)
		return NL_ERR_NOMEM;
	if (!cjose_jwk_set_kid(k->jwk, kid, strlen(kid), &cerr))
		return NL_ERR_INTERNAL;
	return 0;
}

/* A new RSA 2048 key with a UUID kid, as NHS login's keys have. */
int mock_key_generate(struct mock_key *key)
{
	static const uint8_t e[] = {0x01, 0x00, 0x01};
	struct mock_key k = {0};
	char kid[37];
	cjose_err cerr;
	int r = NL_ERR_INTERNAL;

	if ((k.jwk = cjose_jwk_create_RSA_random(2048, e, sizeof(e), &cerr)) == NULL)
		goto out;
	if ((r = mock_uuid(kid)) != 0 || (r = key_set_kid(&k, kid)) != 0)
		goto out;
	*key = k;
	memset(&k, 0, sizeof(k));
	r = 0;
out:
	key_clear(&k);
	return r;
}

/* signing_key.pem in the state dir, if there is one; its kid is its RFC 7638 thumbprint. */
static int key_load(const char *path, struct mock_key *key, char *err, size_t errlen)
{
	struct mock_key k = {0};
	char *kid = NULL;
	int r = NL_ERR_INTERNAL;

	if ((r = nl_jwk_load_private_pem(path, &k.jwk, err, errlen)) != 0)
		goto out;
	if (cjose_jwk_get_kty(k.jwk, NULL) != CJOSE_JWK_KTY_RSA) {
		snprintf(err, errlen, "%s: the signing key must be RSA", path);
		r = NL_ERR_CONFIG;
		goto out;
	}
	if ((kid = nl_jwk_thumbprint(k.jwk)) == NULL) {
		r = NL_ERR_INTERNAL;
		goto out;
	}
	if ((r = key_set_kid(&k, kid)) != 0)
		goto out;
	*key = k;
	memset(&k, 0, sizeof(k));
	r = 0;
out:
	free(kid);
	key_clear(&k);
	return r;
}

int mock_keys_init(struct mock *m, char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	int r;

	if (m->set.state_dir != NULL) {
		snprintf(path, sizeof(path), "%s/signing_key.pem", m->set.state_dir);
		if (stat(path, &st) == 0) {
			if ((r = key_load(path, &m->keys[0], err, errlen)) != 0)
				return r;
			m->n_keys = 1;
			return 0;
		}
		if (errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return NL_ERR_IO;
		}
	}
	if ((r = mock_key_generate(&m->keys[0])) != 0) {
		snprintf(err, errlen, "cannot generate a signing key: %s", nl_strerror(r));
		return r;
	}
	m->n_keys = 1;
	return 0;
}

int mock_keys_rotate(struct mock *m)
{
	struct mock_key k;
	int r;

	if ((r = mock_key_generate(&k)) != 0)
		return r;
	for (size_t i = 0; i < m->n_keys; i++)
		key_clear(&m->keys[i]);
	m->keys[0] = k;
	m->n_keys = 1;
	return 0;
}

void mock_keys_free(struct mock *m)
{
	for (size_t i = 0; i < m->n_keys; i++)
		key_clear(&m->keys[i]);
	m->n_keys = 0;
}

json_t *mock_jwks_json(const struct mock *m)
{
	json_t *jwks = json_object(), *arr = json_array();

	if (jwks == NULL || arr == NULL || json_object_set(jwks, "keys", arr) != 0)
		goto fail;
	for (size_t i = 0; i < m->n_keys; i++) {
		char *pub = nl_jwk_public_json(m->keys[i].jwk, MOCK_JWT_ALG);
		json_t *k = NULL;
		if (pub == NULL ||
		    nl_json_parse(pub, strlen(pub), NL_JSON_MAX_SIZE, 4, true, &k, NULL, 0) != 0 ||
		    json_array_append_new(arr, k) != 0) {
			free(pub);
			goto fail;
		}
		free(pub);
	}
	mock_fault_jwks(m, arr);
	json_decref(arr);
	return jwks;
fail:
	json_decref(arr);
	json_decref(jwks);
	return NULL;
}

int mock_sign(const struct mock *m, const json_t *claims, char **out)
{
	const struct mock_key *k = mock_fault_signing_key(m);

	if (k == NULL && m->n_keys == 0)
		return NL_ERR_KEY;
	if (k == NULL)
		k = &m->keys[0];
	return nl_jws_sign(k->jwk, MOCK_JWT_ALG, k->kid, claims, out);
}
