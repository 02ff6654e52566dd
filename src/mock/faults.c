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
	int id; /* enum mock_fault, or -1 */
} fault_defs[] = {
    {"none", FA_RESET, -1},
    {"rotate_key", FA_ROTATE_KEY, -1},
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
    {"id_token_nbf_future", FA_SET, MOCK_FAULT_IDT_NBF_FUTURE},
    {"id_token_auds_extra_azp", FA_SET, MOCK_FAULT_IDT_AUDS_EXTRA_AZP},
    {"jwks_no_kty", FA_SET, MOCK_FAULT_JWKS_NO_KTY},
    {"jwks_use_enc", FA_SET, MOCK_FAULT_JWKS_USE_ENC},
    {"jwks_key_ops_sign_only", FA_SET, MOCK_FAULT_JWKS_KEY_OPS_SIGN_ONLY},
    {"jwks_key_ops_repeated", FA_SET, MOCK_FAULT_JWKS_KEY_OPS_REPEATED},
    {"jwks_alg_mismatch", FA_SET, MOCK_FAULT_JWKS_ALG_MISMATCH},
    {"jwks_n_leading_zero", FA_SET, MOCK_FAULT_JWKS_N_LEADING_ZERO},
    {"jwks_e_leading_zero", FA_SET, MOCK_FAULT_JWKS_E_LEADING_ZERO},
    {"jwks_n_padded", FA_SET, MOCK_FAULT_JWKS_N_PADDED},
    {"jwks_n_even", FA_SET, MOCK_FAULT_JWKS_N_EVEN},
    {"jwks_e_even", FA_SET, MOCK_FAULT_JWKS_E_EVEN},
    {"jwks_e_one", FA_SET, MOCK_FAULT_JWKS_E_ONE},
    {"jwks_rsa_2047", FA_SET, MOCK_FAULT_JWKS_RSA_2047},
    {"jwks_private_members", FA_SET, MOCK_FAULT_JWKS_PRIVATE_MEMBERS},
    {"jwks_duplicate_kid", FA_SET, MOCK_FAULT_JWKS_DUPLICATE_KID},
    {"jwks_ec_x_short", FA_SET, MOCK_FAULT_JWKS_EC_X_SHORT},
    {"jwks_ec_no_y", FA_SET, MOCK_FAULT_JWKS_EC_NO_Y},
    {"jwks_ec_off_curve", FA_SET, MOCK_FAULT_JWKS_EC_OFF_CURVE},
    {"token_no_access_token", FA_SET, MOCK_FAULT_TOKEN_NO_ACCESS_TOKEN},
    {"token_no_token_type", FA_SET, MOCK_FAULT_TOKEN_NO_TOKEN_TYPE},
    {"token_type_mac", FA_SET, MOCK_FAULT_TOKEN_TYPE_MAC},
    {"token_type_lowercase", FA_SET, MOCK_FAULT_TOKEN_TYPE_LOWERCASE},
    {"token_expires_in_negative", FA_SET, MOCK_FAULT_TOKEN_EXPIRES_IN_NEGATIVE},
    {"token_expires_in_string", FA_SET, MOCK_FAULT_TOKEN_EXPIRES_IN_STRING},
    {"token_content_type_text", FA_SET, MOCK_FAULT_TOKEN_CONTENT_TYPE_TEXT},
    {"token_json_array", FA_SET, MOCK_FAULT_TOKEN_JSON_ARRAY},
    {"token_error_unsafe", FA_SET, MOCK_FAULT_TOKEN_ERROR_UNSAFE},
    {"userinfo_content_type_jwt", FA_SET, MOCK_FAULT_USERINFO_CONTENT_TYPE_JWT},
    {"discovery_fragment", FA_SET, MOCK_FAULT_DISCOVERY_FRAGMENT},
    {"discovery_iss_param", FA_SET, MOCK_FAULT_DISCOVERY_ISS_PARAM},
    {"discovery_algs_hs256", FA_SET, MOCK_FAULT_DISCOVERY_ALGS_HS256},
    {"device_interval_long", FA_SET, MOCK_FAULT_DEVICE_INTERVAL_LONG},
    {"device_interval_negative", FA_SET, MOCK_FAULT_DEVICE_INTERVAL_NEGATIVE},
    {"device_user_code_escape", FA_SET, MOCK_FAULT_DEVICE_USER_CODE_ESCAPE},
    {"device_uri_c1", FA_SET, MOCK_FAULT_DEVICE_URI_C1},
    {"device_content_type_text", FA_SET, MOCK_FAULT_DEVICE_CONTENT_TYPE_TEXT},
    {"authorize_iss_wrong", FA_SET, MOCK_FAULT_AUTHZ_ISS_WRONG},
    {"authorize_iss_right", FA_SET, MOCK_FAULT_AUTHZ_ISS_RIGHT},
    {"authorize_code_twice", FA_SET, MOCK_FAULT_AUTHZ_CODE_TWICE},
    {"authorize_state_twice", FA_SET, MOCK_FAULT_AUTHZ_STATE_TWICE},
    {"authorize_no_code", FA_SET, MOCK_FAULT_AUTHZ_NO_CODE},
    {"authorize_error_unsafe", FA_SET, MOCK_FAULT_AUTHZ_ERROR_UNSAFE},
};

#define N_FAULTS (sizeof(fault_defs) / sizeof(fault_defs[0]))

static const struct fault_def *find_fault(const char *name)
{
	for (size_t i = 0; name != NULL && i < N_FAULTS; i++)
		if (strcmp(fault_defs[i].name, name) == 0)
			return &fault_defs[i];
	return NULL;
}

static bool on(const struct mock *m, int id)
{
	return id >= 0 && id < MOCK_FAULT_COUNT &&
	       (m->faults.active[id / 64] & (UINT64_C(1) << (id % 64))) != 0;
}

static void key_free(struct mock_key *k)
{
	if (k->jwk != NULL)
		cjose_jwk_release(k->jwk);
	free(k->kid);
	k->jwk = NULL;
	k->kid = NULL;
}

/* A signing key of 2047 bits: 256 octets like a 2048-bit key, one bit short of RFC 7518 3.3. */
static int weak_key_generate(struct mock_key *k)
{
	static const uint8_t e[] = {0x01, 0x00, 0x01};
	char kid[37];
	cjose_err cerr;

	if ((k->jwk = cjose_jwk_create_RSA_random(2047, e, sizeof(e), &cerr)) == NULL)
		return NL_ERR_INTERNAL;
	if (mock_uuid(kid) != 0 || (k->kid = strdup(kid)) == NULL ||
	    !cjose_jwk_set_kid(k->jwk, kid, strlen(kid), &cerr)) {
		key_free(k);
		return NL_ERR_NOMEM;
	}
	return 0;
}

/* The parameter or resource a fault needs, if any: {"fault":"delay_ms","ms":N}; the second key. */
static int fault_param(struct mock *m, const struct fault_def *f, const json_t *req, char *err, size_t errlen)
{
	long long ms;
	int r;

	switch (f->id) {
	case MOCK_FAULT_DELAY:
		if (nl_json_int(req, "ms", &ms) != 0 || ms < 0 || ms > MOCK_MAX_DELAY_MS) {
			snprintf(err, errlen, "delay_ms needs \"ms\": an integer 0..%d", MOCK_MAX_DELAY_MS);
			return NL_ERR_INVALID;
		}
		m->faults.delay_ms = (long)ms;
		return 0;
	case MOCK_FAULT_JWKS_SECOND_KEY:
	case MOCK_FAULT_JWKS_DUPLICATE_KID:
		if (m->faults.extra.jwk == NULL && (r = mock_key_generate(&m->faults.extra)) != 0) {
			snprintf(err, errlen, "cannot make a second key: %s", nl_strerror(r));
			return r;
		}
		return 0;
	case MOCK_FAULT_JWKS_RSA_2047:
		if (m->faults.weak.jwk == NULL && (r = weak_key_generate(&m->faults.weak)) != 0) {
			snprintf(err, errlen, "cannot make a 2047-bit key: %s", nl_strerror(r));
			return r;
		}
		return 0;
	default:
		return 0;
	}
}

void mock_faults_free(struct mock *m)
{
	key_free(&m->faults.extra);
	key_free(&m->faults.weak);
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
		m->faults.active[f->id / 64] |= UINT64_C(1) << (f->id % 64);
		return 0;
	}
	return NL_ERR_INTERNAL;
}

json_t *mock_faults_json(const struct mock *m)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < N_FAULTS; i++)
		if (on(m, fault_defs[i].id))
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
	if (on(m, MOCK_FAULT_IDT_NBF_FUTURE))
		/* not valid for another hour: far beyond any clock skew */
		json_object_set_new(claims, "nbf", json_integer(now + MOCK_ID_TOKEN_TTL));
	if (on(m, MOCK_FAULT_IDT_AUDS_EXTRA_AZP) && nl_json_str(claims, "aud") != NULL) {
		/* azp names the client, but the token is also for someone else */
		json_object_set_new(claims, "azp", json_string(nl_json_str(claims, "aud")));
		set_two_audiences(claims);
	}
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
	if (on(m, MOCK_FAULT_TOKEN_NO_ACCESS_TOKEN))
		json_object_del(resp, "access_token");
	if (on(m, MOCK_FAULT_TOKEN_NO_TOKEN_TYPE))
		json_object_del(resp, "token_type");
	if (on(m, MOCK_FAULT_TOKEN_TYPE_MAC))
		json_object_set_new(resp, "token_type", json_string("mac"));
	if (on(m, MOCK_FAULT_TOKEN_TYPE_LOWERCASE))
		json_object_set_new(resp, "token_type", json_string("bearer"));
	if (on(m, MOCK_FAULT_TOKEN_EXPIRES_IN_NEGATIVE))
		json_object_set_new(resp, "expires_in", json_integer(-1));
	if (on(m, MOCK_FAULT_TOKEN_EXPIRES_IN_STRING))
		json_object_set_new(resp, "expires_in", json_string("300"));
}

bool mock_fault_token_error(const struct mock *m, const char **error)
{
	if (!on(m, MOCK_FAULT_TOKEN_ERROR_UNSAFE))
		return false;
	/* not an error code of RFC 6749 5.2: markup and a terminal escape, for the client's log */
	*error = "invalid_grant\x1b[2J<script>alert(1)</script>";
	return true;
}

int mock_fault_reply_json(const struct mock *m, enum mock_ep ep, struct mock_req *r, json_t *obj)
{
	static const char *const hdrs[] = {"Cache-Control", "no-store", "Pragma", "no-cache", NULL};
	const char *ctype = NULL;
	char *text, *arr = NULL;
	bool array = ep == MOCK_EP_TOKEN && on(m, MOCK_FAULT_TOKEN_JSON_ARRAY);
	int ret;

	if (ep == MOCK_EP_TOKEN && on(m, MOCK_FAULT_TOKEN_CONTENT_TYPE_TEXT))
		ctype = "text/plain";
	else if (ep == MOCK_EP_USERINFO && on(m, MOCK_FAULT_USERINFO_CONTENT_TYPE_JWT))
		ctype = "application/jwt";
	else if (ep == MOCK_EP_DEVICE_AUTHORIZATION && on(m, MOCK_FAULT_DEVICE_CONTENT_TYPE_TEXT))
		ctype = "text/plain";
	if (ctype == NULL && !array)
		return mock_reply_json(r, 200, obj, NULL);
	if ((text = nl_json_dump(obj)) == NULL)
		return mock_reply(r, 500, "text/plain", "internal error\n", 15, NULL);
	if (array && asprintf(&arr, "[%s]", text) < 0) {
		nl_free_secret(text);
		return mock_reply(r, 500, "text/plain", "internal error\n", 15, NULL);
	}
	ret = mock_reply(r, 200, ctype != NULL ? ctype : "application/json", arr != NULL ? arr : text,
	                 strlen(arr != NULL ? arr : text), hdrs);
	nl_free_secret(arr);
	nl_free_secret(text);
	return ret;
}

/* The public JWK of key as a JSON object (kid, use sig, alg RS512), or NULL. */
static json_t *public_jwk(const cjose_jwk_t *key)
{
	char *pub = nl_jwk_public_json(key, MOCK_JWT_ALG);
	json_t *k = NULL;

	if (pub != NULL && nl_json_parse(pub, strlen(pub), NL_JSON_MAX_SIZE, 4, true, &k, NULL, 0) != 0)
		k = NULL;
	free(pub);
	return k;
}

/* A base64url member of k, decoded, changed by how, encoded back. how: 'z' a zero octet in front,
 * 'o' the lowest bit flipped, 's' the first octet dropped. */
static void change_number(json_t *k, const char *name, char how)
{
	const char *v = nl_json_str(k, name);
	uint8_t *raw = NULL, *buf;
	size_t len = 0, off = 0;
	char *enc = NULL;

	if (v == NULL || nl_b64url_decode(v, strlen(v), &raw, &len) != 0 || len < 2)
		goto out;
	if ((buf = calloc(1, len + 1)) == NULL)
		goto out;
	memcpy(buf + 1, raw, len);
	if (how == 'z')
		len++;
	else
		off = 1;
	if (how == 'o')
		buf[len] ^= 1;
	if (how == 's') {
		off = 2;
		len--;
	}
	if (nl_b64url_encode(buf + off, len, &enc) == 0)
		json_object_set_new(k, name, json_string(enc));
	free(buf);
out:
	free(enc);
	free(raw);
}

/* The signing key's entry as the faults on it say (RFC 7517 4, RFC 7518 6.3). */
static void change_signing_key(const struct mock *m, json_t *keys)
{
	json_t *k = json_array_get(keys, 0);
	char *priv, *padded = NULL;
	cjose_err cerr;

	if (on(m, MOCK_FAULT_JWKS_RSA_2047) && m->faults.weak.jwk != NULL &&
	    (k = public_jwk(m->faults.weak.jwk)) != NULL)
		json_array_set_new(keys, 0, k);
	if (on(m, MOCK_FAULT_JWKS_PRIVATE_MEMBERS) && m->n_keys > 0 &&
	    (priv = cjose_jwk_to_json(m->keys[0].jwk, true, &cerr)) != NULL) {
		json_t *p = NULL;
		if (nl_json_parse(priv, strlen(priv), NL_JSON_MAX_SIZE, 4, true, &p, NULL, 0) == 0) {
			json_object_set_new(p, "use", json_string("sig"));
			json_object_set_new(p, "alg", json_string(MOCK_JWT_ALG));
			json_array_set_new(keys, 0, p);
		}
		nl_free_secret(priv);
	}
	if ((k = json_array_get(keys, 0)) == NULL)
		return;
	if (on(m, MOCK_FAULT_JWKS_NO_KTY))
		json_object_del(k, "kty");
	if (on(m, MOCK_FAULT_JWKS_USE_ENC))
		json_object_set_new(k, "use", json_string("enc"));
	if (on(m, MOCK_FAULT_JWKS_KEY_OPS_SIGN_ONLY))
		json_object_set_new(k, "key_ops", json_pack("[s]", "sign"));
	if (on(m, MOCK_FAULT_JWKS_KEY_OPS_REPEATED))
		json_object_set_new(k, "key_ops", json_pack("[s,s]", "verify", "verify"));
	if (on(m, MOCK_FAULT_JWKS_ALG_MISMATCH))
		json_object_set_new(k, "alg", json_string("RS256"));
	if (on(m, MOCK_FAULT_JWKS_N_LEADING_ZERO))
		change_number(k, "n", 'z');
	if (on(m, MOCK_FAULT_JWKS_E_LEADING_ZERO))
		change_number(k, "e", 'z');
	if (on(m, MOCK_FAULT_JWKS_N_EVEN))
		change_number(k, "n", 'o');
	if (on(m, MOCK_FAULT_JWKS_E_EVEN))
		json_object_set_new(k, "e", json_string("AQAA")); /* 65536 */
	if (on(m, MOCK_FAULT_JWKS_E_ONE))
		json_object_set_new(k, "e", json_string("AQ"));
	if (on(m, MOCK_FAULT_JWKS_N_PADDED) && nl_json_str(k, "n") != NULL &&
	    asprintf(&padded, "%s==", nl_json_str(k, "n")) > 0) {
		json_object_set_new(k, "n", json_string(padded));
		free(padded);
	}
}

/* RFC 7515 A.3's P-256 public key, an extra key (kid ec-extra) with a defect. */
static void add_broken_ec_key(const struct mock *m, json_t *keys)
{
	json_t *k;

	if (!on(m, MOCK_FAULT_JWKS_EC_X_SHORT) && !on(m, MOCK_FAULT_JWKS_EC_NO_Y) &&
	    !on(m, MOCK_FAULT_JWKS_EC_OFF_CURVE))
		return;
	k = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "kty", "EC", "kid", "ec-extra", "use", "sig", "crv",
	              "P-256", "x", "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y",
	              "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0");
	if (k == NULL)
		return;
	if (on(m, MOCK_FAULT_JWKS_EC_X_SHORT))
		change_number(k, "x", 's');
	if (on(m, MOCK_FAULT_JWKS_EC_NO_Y))
		json_object_del(k, "y");
	if (on(m, MOCK_FAULT_JWKS_EC_OFF_CURVE))
		change_number(k, "y", 'o');
	json_array_append_new(keys, k);
}

void mock_fault_jwks(const struct mock *m, json_t *keys)
{
	json_t *k;

	change_signing_key(m, keys);
	add_broken_ec_key(m, keys);
	if ((!on(m, MOCK_FAULT_JWKS_SECOND_KEY) && !on(m, MOCK_FAULT_JWKS_DUPLICATE_KID)) ||
	    m->faults.extra.jwk == NULL || (k = public_jwk(m->faults.extra.jwk)) == NULL)
		return;
	/* the second key under the signing key's own kid: which of the two is meant? */
	if (on(m, MOCK_FAULT_JWKS_DUPLICATE_KID) && m->n_keys > 0)
		json_object_set_new(k, "kid", json_string(m->keys[0].kid));
	json_array_append_new(keys, k);
}

const struct mock_key *mock_fault_signing_key(const struct mock *m)
{
	return on(m, MOCK_FAULT_JWKS_RSA_2047) && m->faults.weak.jwk != NULL ? &m->faults.weak : NULL;
}

void mock_fault_userinfo(const struct mock *m, json_t *claims)
{
	if (on(m, MOCK_FAULT_USERINFO_WRONG_SUB))
		json_object_set_new(claims, "sub", json_string(OTHER_SUB));
}

void mock_fault_discovery(const struct mock *m, json_t *doc)
{
	char *u = NULL;

	if (on(m, MOCK_FAULT_DISCOVERY_FRAGMENT) && nl_json_str(doc, "token_endpoint") != NULL &&
	    asprintf(&u, "%s#fragment", nl_json_str(doc, "token_endpoint")) > 0) {
		json_object_set_new(doc, "token_endpoint", json_string(u));
		free(u);
	}
	if (on(m, MOCK_FAULT_DISCOVERY_ISS_PARAM))
		json_object_set_new(doc, "authorization_response_iss_parameter_supported", json_true());
	if (on(m, MOCK_FAULT_DISCOVERY_ALGS_HS256))
		json_object_set_new(doc, "id_token_signing_alg_values_supported", json_pack("[s]", "HS256"));
}

void mock_fault_device_json(const struct mock *m, json_t *resp)
{
	char *code = NULL;

	if (on(m, MOCK_FAULT_DEVICE_INTERVAL_LONG))
		json_object_set_new(resp, "interval", json_integer(3600));
	if (on(m, MOCK_FAULT_DEVICE_INTERVAL_NEGATIVE))
		json_object_set_new(resp, "interval", json_integer(-5));
	/* a terminal escape (clear the screen) in what the workstation shows */
	if (on(m, MOCK_FAULT_DEVICE_USER_CODE_ESCAPE) && nl_json_str(resp, "user_code") != NULL &&
	    asprintf(&code, "\x1b[2J%s", nl_json_str(resp, "user_code")) > 0) {
		json_object_set_new(resp, "user_code", json_string(code));
		free(code);
	}
	/* a C1 control in UTF-8 (U+009B, CSI to a terminal) that a URL parser lets through */
	if (on(m, MOCK_FAULT_DEVICE_URI_C1) && nl_json_str(resp, "verification_uri") != NULL &&
	    asprintf(&code,
	             "%s?\xc2\x9b"
	             "2J",
	             nl_json_str(resp, "verification_uri")) > 0) {
		json_object_set_new(resp, "verification_uri", json_string(code));
		free(code);
	}
}

/* Remove the pair named name from kv. */
static void kv_drop(const char **kv, size_t *n_kv, const char *name)
{
	for (size_t i = 0; i + 1 < *n_kv; i += 2)
		if (strcmp(kv[i], name) == 0) {
			memmove(&kv[i], &kv[i + 2], (*n_kv - i - 2) * sizeof(*kv));
			*n_kv -= 2;
			return;
		}
}

static const char *kv_get(const char **kv, size_t n_kv, const char *name)
{
	for (size_t i = 0; i + 1 < n_kv; i += 2)
		if (strcmp(kv[i], name) == 0)
			return kv[i + 1];
	return NULL;
}

static void kv_add(const char **kv, size_t *n_kv, size_t max_kv, const char *name, const char *value)
{
	if (value == NULL || *n_kv + 2 > max_kv)
		return;
	kv[(*n_kv)++] = name;
	kv[(*n_kv)++] = value;
}

void mock_fault_authz_params(const struct mock *m, const char **kv, size_t *n_kv, size_t max_kv)
{
	const char *state = kv_get(kv, *n_kv, "state");

	if (on(m, MOCK_FAULT_AUTHZ_ERROR_UNSAFE)) {
		/* an error response whose error is not an RFC 6749 4.1.2.1 code: markup and an escape */
		*n_kv = 0;
		kv_add(kv, n_kv, max_kv, "error", "access_denied\x1b[2J<script>alert(1)</script>");
		kv_add(kv, n_kv, max_kv, "state", state);
		return;
	}
	if (on(m, MOCK_FAULT_AUTHZ_NO_CODE))
		kv_drop(kv, n_kv, "code");
	if (on(m, MOCK_FAULT_AUTHZ_CODE_TWICE))
		kv_add(kv, n_kv, max_kv, "code", "a-second-code-for-the-same-response");
	if (on(m, MOCK_FAULT_AUTHZ_STATE_TWICE))
		kv_add(kv, n_kv, max_kv, "state", state);
	if (on(m, MOCK_FAULT_AUTHZ_ISS_WRONG))
		kv_add(kv, n_kv, max_kv, "iss", OTHER_ISSUER);
	if (on(m, MOCK_FAULT_AUTHZ_ISS_RIGHT))
		kv_add(kv, n_kv, max_kv, "iss", m->issuer);
}
