/* nhslogin-mock: fault injection for tests, switched through POST /_mock/control. A fault is a
 * row in the table below, a bit in enum mock_fault, and a case in the hook where it acts; "none"
 * clears them all. They make the provider hostile: forged ID tokens, odd keys, broken replies. */
#include "config.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_json.h"
#include "nl_time.h"
#include "nl_wipe.h"

#define MOCK_MAX_DELAY_MS 60000
#define OTHER_CLIENT      "another-client"
#define OTHER_ISSUER      "https://impostor.example"
#define OTHER_SUB         "00000000-0000-4000-8000-000000000000"

enum fault_action { FA_RESET, FA_ROTATE_KEY, FA_SET };

static const struct fault_def {
	const char *name;
	enum fault_action action;
	unsigned bit;
} fault_defs[] = {
    {"none", FA_RESET, 0},
    {"rotate_key", FA_ROTATE_KEY, 0},
    {"status_500", FA_SET, MOCK_FAULT_STATUS_500},
    {"delay_ms", FA_SET, MOCK_FAULT_DELAY},
    {"token_no_id_token", FA_SET, MOCK_FAULT_TOKEN_NO_ID_TOKEN},
    {"token_not_json", FA_SET, MOCK_FAULT_TOKEN_NOT_JSON},
    {"id_token_bad_signature", FA_SET, MOCK_FAULT_IDT_BAD_SIGNATURE},
    {"id_token_alg_none", FA_SET, MOCK_FAULT_IDT_ALG_NONE},
    {"id_token_hs256_public_pem", FA_SET, MOCK_FAULT_IDT_HS256_PEM},
    {"id_token_hs256_public_n", FA_SET, MOCK_FAULT_IDT_HS256_N},
    {"id_token_no_kid", FA_SET, MOCK_FAULT_IDT_NO_KID},
    {"id_token_unknown_kid", FA_SET, MOCK_FAULT_IDT_UNKNOWN_KID},
    {"id_token_wrong_iss", FA_SET, MOCK_FAULT_IDT_WRONG_ISS},
    {"id_token_no_aud", FA_SET, MOCK_FAULT_IDT_NO_AUD},
    {"id_token_wrong_aud", FA_SET, MOCK_FAULT_IDT_WRONG_AUD},
    {"id_token_auds_no_azp", FA_SET, MOCK_FAULT_IDT_AUDS_NO_AZP},
    {"id_token_auds_wrong_azp", FA_SET, MOCK_FAULT_IDT_AUDS_WRONG_AZP},
    {"id_token_expired", FA_SET, MOCK_FAULT_IDT_EXPIRED},
    {"id_token_iat_future", FA_SET, MOCK_FAULT_IDT_IAT_FUTURE},
    {"id_token_no_nonce", FA_SET, MOCK_FAULT_IDT_NO_NONCE},
    {"id_token_wrong_nonce", FA_SET, MOCK_FAULT_IDT_WRONG_NONCE},
    {"id_token_wrong_vot", FA_SET, MOCK_FAULT_IDT_WRONG_VOT},
    {"jwks_second_key", FA_SET, MOCK_FAULT_JWKS_SECOND_KEY},
    {"userinfo_wrong_sub", FA_SET, MOCK_FAULT_USERINFO_WRONG_SUB},
    {"token_status_500", FA_SET, MOCK_FAULT_TOKEN_500},
    {"token_huge", FA_SET, MOCK_FAULT_TOKEN_HUGE},
    {"jwks_huge", FA_SET, MOCK_FAULT_JWKS_HUGE},
    {"discovery_huge", FA_SET, MOCK_FAULT_DISCOVERY_HUGE},
    {"token_never_ends", FA_SET, MOCK_FAULT_TOKEN_NEVER_ENDS},
    {"token_redirect", FA_SET, MOCK_FAULT_TOKEN_REDIRECT},
};

#define N_FAULTS (sizeof(fault_defs) / sizeof(fault_defs[0]))

static const struct fault_def *find_fault(const char *name)
{
	for (size_t i = 0; name != NULL && i < N_FAULTS; i++)
		if (strcmp(fault_defs[i].name, name) == 0)
			return &fault_defs[i];
	return NULL;
}

static bool on(const struct mock *m, unsigned bit)
{
	return (m->faults.active & bit) != 0;
}

/* The parameter or resource a fault needs, if any: {"fault":"delay_ms","ms":N}; the second key. */
static int fault_param(struct mock *m, const struct fault_def *f, const json_t *req, char *err, size_t errlen)
{
	long long ms;
	int r;

	switch (f->bit) {
	case MOCK_FAULT_DELAY:
		if (nl_json_int(req, "ms", &ms) != 0 || ms < 0 || ms > MOCK_MAX_DELAY_MS) {
			snprintf(err, errlen, "delay_ms needs \"ms\": an integer 0..%d", MOCK_MAX_DELAY_MS);
			return NL_ERR_INVALID;
		}
		m->faults.delay_ms = (long)ms;
		return 0;
	case MOCK_FAULT_JWKS_SECOND_KEY:
		if (m->faults.extra.jwk == NULL && (r = mock_key_generate(&m->faults.extra)) != 0) {
			snprintf(err, errlen, "cannot make a second key: %s", nl_strerror(r));
			return r;
		}
		return 0;
	default:
		return 0;
	}
}

static void extra_key_free(struct mock *m)
{
	if (m->faults.extra.jwk != NULL)
		cjose_jwk_release(m->faults.extra.jwk);
	free(m->faults.extra.kid);
	m->faults.extra.jwk = NULL;
	m->faults.extra.kid = NULL;
}

void mock_faults_free(struct mock *m)
{
	extra_key_free(m);
	memset(&m->faults, 0, sizeof(m->faults));
}

int mock_fault_control(struct mock *m, const json_t *req, char *err, size_t errlen)
{
	const struct fault_def *f = find_fault(nl_json_str(req, "fault"));
	int r;

	if (f == NULL) {
		snprintf(err, errlen, "unknown or missing \"fault\"");
		return NL_ERR_INVALID;
	}
	switch (f->action) {
	case FA_RESET:
		mock_faults_free(m);
		return 0;
	case FA_ROTATE_KEY:
		if ((r = mock_keys_rotate(m)) != 0)
			snprintf(err, errlen, "cannot make a new key: %s", nl_strerror(r));
		return r;
	case FA_SET:
		if ((r = fault_param(m, f, req, err, errlen)) != 0)
			return r;
		m->faults.active |= f->bit;
		return 0;
	}
	return NL_ERR_INTERNAL;
}

json_t *mock_faults_json(const struct mock *m)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < N_FAULTS; i++)
		if (fault_defs[i].bit != 0 && on(m, fault_defs[i].bit))
			json_array_append_new(arr, json_string(fault_defs[i].name));
	return arr;
}

enum mock_fault_reply mock_fault_before(struct mock *m, enum mock_ep ep, long *delay_ms)
{
	*delay_ms = on(m, MOCK_FAULT_DELAY) ? m->faults.delay_ms : 0;
	if (on(m, MOCK_FAULT_STATUS_500))
		return MOCK_FR_500;
	switch (ep) {
	case MOCK_EP_TOKEN:
		if (on(m, MOCK_FAULT_TOKEN_500))
			return MOCK_FR_500;
		if (on(m, MOCK_FAULT_TOKEN_REDIRECT))
			return MOCK_FR_REDIRECT;
		if (on(m, MOCK_FAULT_TOKEN_HUGE))
			return MOCK_FR_HUGE;
		if (on(m, MOCK_FAULT_TOKEN_NEVER_ENDS))
			return MOCK_FR_NEVER_ENDS;
		return MOCK_FR_NONE;
	case MOCK_EP_JWKS:
		return on(m, MOCK_FAULT_JWKS_HUGE) ? MOCK_FR_HUGE : MOCK_FR_NONE;
	case MOCK_EP_DISCOVERY:
		return on(m, MOCK_FAULT_DISCOVERY_HUGE) ? MOCK_FR_HUGE : MOCK_FR_NONE;
	default:
		return MOCK_FR_NONE;
	}
}

/* aud as [client_id, another-client]: several audiences. */
static void set_two_audiences(json_t *claims)
{
	const char *aud = nl_json_str(claims, "aud");

	if (aud != NULL)
		json_object_set_new(claims, "aud", json_pack("[s,s]", aud, OTHER_CLIENT));
}

void mock_fault_id_token_claims(const struct mock *m, json_t *claims)
{
	json_int_t now = (json_int_t)nl_now();

	if (on(m, MOCK_FAULT_IDT_WRONG_ISS))
		json_object_set_new(claims, "iss", json_string(OTHER_ISSUER));
	if (on(m, MOCK_FAULT_IDT_NO_AUD))
		json_object_del(claims, "aud");
	if (on(m, MOCK_FAULT_IDT_WRONG_AUD))
		json_object_set_new(claims, "aud", json_string(OTHER_CLIENT));
	if (on(m, MOCK_FAULT_IDT_AUDS_NO_AZP)) {
		set_two_audiences(claims);
		json_object_del(claims, "azp");
	}
	if (on(m, MOCK_FAULT_IDT_AUDS_WRONG_AZP)) {
		set_two_audiences(claims);
		json_object_set_new(claims, "azp", json_string(OTHER_CLIENT));
	}
	if (on(m, MOCK_FAULT_IDT_EXPIRED)) {
		/* an hour past its end: far beyond any clock skew */
		json_object_set_new(claims, "iat", json_integer(now - 2 * MOCK_ID_TOKEN_TTL));
		json_object_set_new(claims, "auth_time", json_integer(now - 2 * MOCK_ID_TOKEN_TTL));
		json_object_set_new(claims, "exp", json_integer(now - MOCK_ID_TOKEN_TTL));
	}
	if (on(m, MOCK_FAULT_IDT_IAT_FUTURE)) {
		json_object_set_new(claims, "iat", json_integer(now + MOCK_ID_TOKEN_TTL));
		json_object_set_new(claims, "exp", json_integer(now + 2 * MOCK_ID_TOKEN_TTL));
	}
	if (on(m, MOCK_FAULT_IDT_NO_NONCE))
		json_object_del(claims, "nonce");
	if (on(m, MOCK_FAULT_IDT_WRONG_NONCE))
		json_object_set_new(claims, "nonce", json_string("not-the-nonce-of-this-sign-in"));
	if (on(m, MOCK_FAULT_IDT_WRONG_VOT))
		/* a good identity level, but a vector nobody asked for */
		json_object_set_new(claims, "vot", json_string("P9.Cp"));
}

/* base64url(header) "." base64url(claims) "." base64url(signature), the signature HMAC-SHA256
 * over the first two with secret (or empty when secret is NULL: alg none). */
static int compose(const json_t *header, const json_t *claims, const uint8_t *secret, size_t secret_len,
                   char **out)
{
	char *h = nl_json_dump(header), *c = nl_json_dump(claims), *hb = NULL, *cb = NULL, *sb = NULL;
	char *input = NULL, *s = NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	int r = NL_ERR_NOMEM;

	if (h == NULL || c == NULL || nl_b64url_encode((const uint8_t *)h, strlen(h), &hb) != 0 ||
	    nl_b64url_encode((const uint8_t *)c, strlen(c), &cb) != 0 ||
	    asprintf(&input, "%s.%s", hb, cb) < 0) {
		input = NULL;
		goto out;
	}
	if (secret != NULL) {
		r = NL_ERR_INTERNAL;
		if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)input, strlen(input),
		         mac, &mac_len) == NULL)
			goto out;
		r = NL_ERR_NOMEM;
		if (nl_b64url_encode(mac, mac_len, &sb) != 0)
			goto out;
	}
	if (asprintf(&s, "%s.%s", input, sb != NULL ? sb : "") < 0)
		goto out;
	*out = s;
	r = 0;
out:
	nl_wipe(mac, sizeof(mac));
	free(h);
	nl_free_secret(c);
	free(hb);
	nl_free_secret(cb);
	free(sb);
	nl_free_secret(input);
	return r;
}

/* The signing key's modulus n as raw bytes (from its public JWK). */
static int modulus(const struct mock_key *k, uint8_t **n, size_t *n_len)
{
	char *pub = nl_jwk_public_json(k->jwk, NULL);
	json_t *o = NULL;
	const char *b64;
	int r = NL_ERR_INTERNAL;

	if (pub == NULL || nl_json_parse(pub, strlen(pub), NL_JSON_MAX_SIZE, 4, true, &o, NULL, 0) != 0)
		goto out;
	if ((b64 = nl_json_str(o, "n")) == NULL)
		goto out;
	r = nl_b64url_decode(b64, strlen(b64), n, n_len);
out:
	json_decref(o);
	free(pub);
	return r;
}

/* HS256 with the provider's public key as the HMAC secret: the PEM text, or the modulus bytes. */
static int sign_hs256_public(const struct mock_key *k, const json_t *claims, bool pem, char **out)
{
	json_t *hdr = json_pack("{s:s,s:s,s:s}", "alg", "HS256", "typ", "JWT", "kid", k->kid);
	uint8_t *secret = NULL;
	size_t len = 0;
	int r = NL_ERR_NOMEM;

	if (hdr == NULL)
		goto out;
	if (pem) {
		if ((secret = (uint8_t *)nl_jwk_public_pem(k->jwk)) == NULL)
			goto out;
		len = strlen((char *)secret);
	} else if ((r = modulus(k, &secret, &len)) != 0) {
		goto out;
	}
	r = compose(hdr, claims, secret, len, out);
out:
	free(secret);
	json_decref(hdr);
	return r;
}

/* Sign normally, then change one character in the middle of the signature: a well-formed token
 * whose signature does not verify. */
static int sign_bad_signature(const struct mock *m, const json_t *claims, char **out)
{
	char *s = NULL, *sig;
	size_t len;
	int r;

	if ((r = mock_sign(m, claims, &s)) != 0)
		return r;
	sig = strrchr(s, '.');
	if (sig == NULL || (len = strlen(sig + 1)) < 8) {
		nl_free_secret(s);
		return NL_ERR_INTERNAL;
	}
	sig[1 + len / 2] = sig[1 + len / 2] == 'A' ? 'B' : 'A';
	*out = s;
	return 0;
}

int mock_fault_id_token_sign(const struct mock *m, const json_t *claims, char **out)
{
	const struct mock_key *k = &m->keys[0];
	char kid[48], uuid[37];
	json_t *hdr;
	int r;

	if (m->n_keys == 0)
		return NL_ERR_KEY;
	if (on(m, MOCK_FAULT_IDT_BAD_SIGNATURE))
		return sign_bad_signature(m, claims, out);
	if (on(m, MOCK_FAULT_IDT_ALG_NONE)) {
		if ((hdr = json_pack("{s:s,s:s}", "alg", "none", "typ", "JWT")) == NULL)
			return NL_ERR_NOMEM;
		r = compose(hdr, claims, NULL, 0, out);
		json_decref(hdr);
		return r;
	}
	if (on(m, MOCK_FAULT_IDT_HS256_PEM))
		return sign_hs256_public(k, claims, true, out);
	if (on(m, MOCK_FAULT_IDT_HS256_N))
		return sign_hs256_public(k, claims, false, out);
	if (on(m, MOCK_FAULT_IDT_NO_KID))
		return nl_jws_sign(k->jwk, MOCK_JWT_ALG, NULL, claims, out);
	if (on(m, MOCK_FAULT_IDT_UNKNOWN_KID)) {
		if ((r = mock_uuid(uuid)) != 0)
			return r;
		snprintf(kid, sizeof(kid), "unknown-%s", uuid);
		return nl_jws_sign(k->jwk, MOCK_JWT_ALG, kid, claims, out);
	}
	return NL_ERR_NOT_FOUND;
}

bool mock_fault_token_body(const struct mock *m, const char **body, const char **ctype)
{
	if (on(m, MOCK_FAULT_TOKEN_NOT_JSON)) {
		*body = "<html><body>Service temporarily unavailable</body></html>\n";
		*ctype = "text/html";
		return true;
	}
	return false;
}

void mock_fault_token_json(const struct mock *m, json_t *resp)
{
	if (on(m, MOCK_FAULT_TOKEN_NO_ID_TOKEN))
		json_object_del(resp, "id_token");
}

void mock_fault_jwks(const struct mock *m, json_t *keys)
{
	char *pub;
	json_t *k = NULL;

	if (!on(m, MOCK_FAULT_JWKS_SECOND_KEY) || m->faults.extra.jwk == NULL)
		return;
	if ((pub = nl_jwk_public_json(m->faults.extra.jwk, MOCK_JWT_ALG)) == NULL)
		return;
	if (nl_json_parse(pub, strlen(pub), NL_JSON_MAX_SIZE, 4, true, &k, NULL, 0) == 0)
		json_array_append_new(keys, k);
	free(pub);
}

void mock_fault_userinfo(const struct mock *m, json_t *claims)
{
	if (on(m, MOCK_FAULT_USERINFO_WRONG_SUB))
		json_object_set_new(claims, "sub", json_string(OTHER_SUB));
}
