/* Signed agent requests: the agent's Authorization value (nl_hostauth_sign) and the bridge's check of
 * it (nl_hostauth_verify). The JOSE work is the project's (nl_jose.h): the strict compact parser with
 * ES256 as the only allowed alg, and verification with a key set of one enrolled key. */
#include "config.h"
#include "hostauth_int.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_wipe.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const reason_words[] = {
    [NL_HOSTAUTH_E_OK] = "ok",
    [NL_HOSTAUTH_E_MALFORMED] = "malformed",
    [NL_HOSTAUTH_E_TOO_BIG] = "too-big",
    [NL_HOSTAUTH_E_ALG] = "alg",
    [NL_HOSTAUTH_E_TYP] = "typ",
    [NL_HOSTAUTH_E_BAD_NAME] = "bad-name",
    [NL_HOSTAUTH_E_UNKNOWN_HOST] = "unknown-host",
    [NL_HOSTAUTH_E_HOSTS_UNSAFE] = "hosts-unsafe",
    [NL_HOSTAUTH_E_HOST_KEY_BAD] = "host-key-bad",
    [NL_HOSTAUTH_E_OTHER_KEY] = "other-key",
    [NL_HOSTAUTH_E_SIGNATURE] = "signature",
    [NL_HOSTAUTH_E_AUDIENCE] = "audience",
    [NL_HOSTAUTH_E_METHOD] = "method",
    [NL_HOSTAUTH_E_PATH] = "path",
    [NL_HOSTAUTH_E_BODY] = "body",
    [NL_HOSTAUTH_E_EXPIRED] = "expired",
    [NL_HOSTAUTH_E_NOT_YET_VALID] = "not-yet-valid",
    [NL_HOSTAUTH_E_LIFETIME] = "lifetime",
    [NL_HOSTAUTH_E_JTI] = "jti",
    [NL_HOSTAUTH_E_REPLAYED] = "replayed",
    [NL_HOSTAUTH_E_REPLAY_STORE] = "replay-store",
    [NL_HOSTAUTH_E_INTERNAL] = "internal",
};

const char *nl_hostauth_reason_word(enum nl_hostauth_reason reason)
{
	if ((size_t)reason >= sizeof(reason_words) / sizeof(reason_words[0]) || reason_words[reason] == NULL)
		return "unknown";
	return reason_words[reason];
}

/* bh: base64url of the body's SHA-256. New string. */
static int body_hash(const void *body, size_t bodylen, char **out)
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	if (body == NULL && bodylen != 0)
		return NL_ERR_INVALID;
	if (EVP_Digest(bodylen != 0 ? body : "", bodylen, md, NULL, EVP_sha256(), NULL) != 1)
		return NL_ERR_INTERNAL;
	return nl_b64url_encode(md, sizeof(md), out);
}

/* ---- the agent ---- */

int nl_hostauth_sign(const cjose_jwk_t *key, const char *name, const char *method, const char *path,
                     const void *body, size_t bodylen, const char *audience, time_t now, char **out)
{
	char *bh = NULL, *jti = NULL, *jws = NULL, *value = NULL;
	json_t *claims = NULL;
	cjose_err cerr;
	int r;

	if (key == NULL || !nl_hostauth_name_ok(name) || method == NULL || *method == '\0' || path == NULL ||
	    *path != '/' || audience == NULL || *audience == '\0' || now < 0 || out == NULL)
		return NL_ERR_INVALID;
	if ((r = body_hash(body, bodylen, &bh)) != 0 ||
	    (r = nl_random_token(NL_HOSTAUTH_JTI_BYTES, &jti)) != 0)
		goto out;
	r = NL_ERR_NOMEM;
	claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "iss", name, "aud", audience, "htm",
	                   method, "htu", path, "bh", bh, "jti", jti, "iat", (json_int_t)now, "exp",
	                   (json_int_t)now + NL_HOSTAUTH_LIFETIME);
	if (claims == NULL)
		goto out;
	if ((r = nl_jws_sign_typed(key, NL_HOSTAUTH_JWS_ALG, cjose_jwk_get_kid(key, &cerr),
	                           NL_HOSTAUTH_JWS_TYP, claims, &jws)) != 0)
		goto out;
	r = NL_ERR_NOMEM;
	if (asprintf(&value, NL_HOSTAUTH_SCHEME " %s", jws) < 0)
		goto out;
	*out = value;
	r = 0;
out:
	json_decref(claims);
	nl_free_secret(jws);
	nl_free_secret(jti);
	free(bh);
	return r;
}

/* ---- the bridge ---- */

/* The token of "NL-Host <token>": the scheme (any case, RFC 9110 11.1), one space, then base64url
 * and dots only, bounded. */
static int split_header(const char *value, const char **token, size_t *len, struct nl_hostauth_error *err)
{
	const size_t scheme_len = sizeof(NL_HOSTAUTH_SCHEME) - 1;
	size_t n, i;

	if (value == NULL)
		return hostauth_fail(err, NL_ERR_INVALID, NL_HOSTAUTH_E_MALFORMED, "no Authorization value");
	if ((n = strnlen(value, NL_HOSTAUTH_HEADER_MAX + 1)) > NL_HOSTAUTH_HEADER_MAX)
		return hostauth_fail(err, NL_ERR_TOO_BIG, NL_HOSTAUTH_E_TOO_BIG,
		                     "Authorization value over %d bytes", NL_HOSTAUTH_HEADER_MAX);
	if (n <= scheme_len + 1 || strncasecmp(value, NL_HOSTAUTH_SCHEME, scheme_len) != 0 ||
	    value[scheme_len] != ' ')
		return hostauth_fail(err, NL_ERR_INVALID, NL_HOSTAUTH_E_MALFORMED,
		                     "not an " NL_HOSTAUTH_SCHEME " Authorization value");
	*token = value + scheme_len + 1;
	*len = n - scheme_len - 1;
	for (i = 0; i < *len; i++) {
		char c = (*token)[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return hostauth_fail(err, NL_ERR_INVALID, NL_HOSTAUTH_E_MALFORMED,
			                     "the token is not a compact JWS");
	}
	return 0;
}

/* typ must name a workstation's request (RFC 8725 3.11), so that no other JWS signed with a
 * workstation's key (an ID token, a client assertion: typ JWT or none) passes for one. Compared as
 * RFC 7515 4.1.9 says of a media type: case-insensitive, "application/" implied. */
static bool typ_ok(const char *typ)
{
	static const char prefix[] = "application/";

	if (typ == NULL)
		return false;
	if (strncasecmp(typ, prefix, sizeof(prefix) - 1) == 0)
		typ += sizeof(prefix) - 1;
	return strcasecmp(typ, NL_HOSTAUTH_JWS_TYP) == 0;
}

/* The claims a request must carry, read once with their types checked. */
struct req_claims {
	const char *iss, *aud, *htm, *htu, *bh, *jti;
	json_int_t iat, exp;
};

static int read_claims(const json_t *c, struct req_claims *rc, struct nl_hostauth_error *err)
{
	const json_t *iat = json_object_get(c, "iat"), *exp = json_object_get(c, "exp");

	memset(rc, 0, sizeof(*rc));
	if (!json_is_object(c))
		return hostauth_fail(err, NL_ERR_INVALID, NL_HOSTAUTH_E_MALFORMED,
		                     "the payload is not a JSON object");
	rc->iss = nl_json_str(c, "iss");
	rc->aud = nl_json_str(c, "aud");
	rc->htm = nl_json_str(c, "htm");
	rc->htu = nl_json_str(c, "htu");
	rc->bh = nl_json_str(c, "bh");
	rc->jti = nl_json_str(c, "jti");
	if (rc->iss == NULL || rc->aud == NULL || rc->htm == NULL || rc->htu == NULL || rc->bh == NULL ||
	    !json_is_integer(iat) || !json_is_integer(exp))
		return hostauth_fail(err, NL_ERR_INVALID, NL_HOSTAUTH_E_MALFORMED,
		                     "a claim is missing or of the wrong type (iss aud htm htu bh iat exp)");
	rc->iat = json_integer_value(iat);
	rc->exp = json_integer_value(exp);
	return 0;
}

/* The signature, with the key enrolled under the claimed name and no other. */
static int check_signature(struct nl_hostauth_hosts *hosts, struct nl_jws *jws, const char *name,
                           struct nl_hostauth_error *err)
{
	struct host_key *k = NULL;
	int r;

	if ((r = hostauth_hosts_get(hosts, name, &k, err)) != 0)
		return r;
	r = nl_jws_verify_jwks(jws, k->set);
	hostauth_hosts_put(hosts, k);
	if (r == NL_ERR_KEY)
		return hostauth_fail(err, NL_ERR_SIGNATURE, NL_HOSTAUTH_E_OTHER_KEY,
		                     "%s: signed with a key other than the enrolled one", name);
	if (r != 0 || !jws->verified)
		return hostauth_fail(err, NL_ERR_SIGNATURE, NL_HOSTAUTH_E_SIGNATURE,
		                     "%s: the signature does not verify with the enrolled key", name);
	return 0;
}

/* What the signature covers must be this request: audience, method, path and query, body. */
static int check_binding(const struct req_claims *rc, const char *method, const char *path, const void *body,
                         size_t bodylen, const char *audience, struct nl_hostauth_error *err)
{
	char *bh = NULL;
	bool same;
	int r;

	if (strcmp(rc->aud, audience) != 0)
		return hostauth_fail(err, NL_ERR_CLAIM, NL_HOSTAUTH_E_AUDIENCE,
		                     "%s: signed for another bridge", rc->iss);
	if (strcmp(rc->htm, method) != 0)
		return hostauth_fail(err, NL_ERR_CLAIM, NL_HOSTAUTH_E_METHOD, "%s: signed for another method",
		                     rc->iss);
	if (strcmp(rc->htu, path) != 0)
		return hostauth_fail(err, NL_ERR_CLAIM, NL_HOSTAUTH_E_PATH, "%s: signed for another path",
		                     rc->iss);
	if ((r = body_hash(body, bodylen, &bh)) != 0)
		return hostauth_fail(err, r, NL_HOSTAUTH_E_INTERNAL, "cannot hash the body");
	same = nl_ct_streq(bh, rc->bh);
	free(bh);
	if (!same)
		return hostauth_fail(err, NL_ERR_CLAIM, NL_HOSTAUTH_E_BODY, "%s: signed for another body",
		                     rc->iss);
	return 0;
}

/* iat and exp: a short life (exp - iat in 1..60 s), begun and not ended within the skew. */
static int check_time(const struct req_claims *rc, time_t now, struct nl_hostauth_error *err)
{
	long long t = (long long)now, iat = rc->iat, exp = rc->exp;

	/* exp - iat is computed only where it cannot overflow (the claims may hold any int64). */
	if (iat < 0 || exp <= iat)
		return hostauth_fail(err, NL_ERR_CLAIM, NL_HOSTAUTH_E_LIFETIME,
		                     "%s: iat before 1970 or exp not after it (lifetime must be 1 to %d s)",
		                     rc->iss, NL_HOSTAUTH_MAX_LIFETIME);
	if (exp - iat > NL_HOSTAUTH_MAX_LIFETIME)
		return hostauth_fail(err, NL_ERR_CLAIM, NL_HOSTAUTH_E_LIFETIME,
		                     "%s: lifetime %lld s (must be 1 to %d)", rc->iss, exp - iat,
		                     NL_HOSTAUTH_MAX_LIFETIME);
	/* Now iat and exp are within a minute of each other: no sum below can overflow for any sane now. */
	if (t < 0 || iat > t + NL_HOSTAUTH_SKEW)
		return hostauth_fail(err, NL_ERR_CLAIM, NL_HOSTAUTH_E_NOT_YET_VALID,
		                     "%s: issued %lld s in the future", rc->iss, iat - t);
	if (t >= exp + NL_HOSTAUTH_SKEW)
		return hostauth_fail(err, NL_ERR_EXPIRED, NL_HOSTAUTH_E_EXPIRED, "%s: expired %lld s ago",
		                     rc->iss, t - exp);
	return 0;
}

/* jti: base64url of at least 128 bits (at most 64 characters), then new to the replay cache. */
static int check_jti(const struct req_claims *rc, nl_hostauth_replay_fn replay_fn, void *replay_ctx,
                     const char *name, struct nl_hostauth_error *err)
{
	uint8_t *raw = NULL;
	size_t rawlen = 0, n = rc->jti != NULL ? strlen(rc->jti) : 0;

	if (rc->jti == NULL || n > 64 || nl_b64url_decode(rc->jti, n, &raw, &rawlen) != 0 ||
	    rawlen < NL_HOSTAUTH_JTI_BYTES) {
		free(raw);
		return hostauth_fail(err, NL_ERR_CLAIM, NL_HOSTAUTH_E_JTI,
		                     "%s: jti missing or under 128 bits", name);
	}
	free(raw);
	switch (replay_fn(replay_ctx, name, rc->jti, (time_t)(rc->exp + NL_HOSTAUTH_SKEW))) {
	case NL_HOSTAUTH_REPLAY_NEW:
		return 0;
	case NL_HOSTAUTH_REPLAY_SEEN:
		return hostauth_fail(err, NL_ERR_DENIED, NL_HOSTAUTH_E_REPLAYED, "%s: request replayed",
		                     name);
	default:
		return hostauth_fail(err, NL_ERR_UNAVAILABLE, NL_HOSTAUTH_E_REPLAY_STORE,
		                     "%s: the replay cache could not answer", name);
	}
}

int nl_hostauth_verify(struct nl_hostauth_hosts *hosts, const char *header_value, const char *method,
                       const char *path, const void *body, size_t bodylen, const char *audience, time_t now,
                       nl_hostauth_replay_fn replay_fn, void *replay_ctx,
                       char name_out[NL_HOSTAUTH_NAME_MAX + 1], struct nl_hostauth_error *err)
{
	static const char *const allowed[] = {NL_HOSTAUTH_JWS_ALG};
	struct nl_jws *jws = NULL;
	struct req_claims rc;
	const char *token = NULL;
	size_t len = 0;
	int r;

	if (err != NULL) {
		err->reason = NL_HOSTAUTH_E_OK;
		err->detail[0] = '\0';
	}
	if (hosts == NULL || method == NULL || path == NULL || audience == NULL || replay_fn == NULL ||
	    name_out == NULL)
		return hostauth_fail(err, NL_ERR_INVALID, NL_HOSTAUTH_E_INTERNAL, "bad call");
	if ((r = split_header(header_value, &token, &len, err)) != 0)
		return r;
	/* The alg decision and the refusal of a key carried in the header (jwk, jku, x5c, x5u) come
	 * before any key is looked up. */
	if ((r = nl_jws_parse(token, len, allowed, 1, &jws)) != 0) {
		if (r == NL_ERR_ALG)
			return hostauth_fail(err, r, NL_HOSTAUTH_E_ALG, "alg is not " NL_HOSTAUTH_JWS_ALG);
		return hostauth_fail(err, r, NL_HOSTAUTH_E_MALFORMED, "not a valid compact JWS (%s)",
		                     nl_strerror(r));
	}
	if (!typ_ok(jws->typ)) {
		r = hostauth_fail(err, NL_ERR_INVALID, NL_HOSTAUTH_E_TYP, "typ is not " NL_HOSTAUTH_JWS_TYP);
		goto out;
	}
	if ((r = read_claims(jws->claims, &rc, err)) != 0)
		goto out;
	/* The name becomes a file name: checked before it touches any path, never echoed if bad. */
	if (!nl_hostauth_name_ok(rc.iss)) {
		r = hostauth_fail(err, NL_ERR_INVALID, NL_HOSTAUTH_E_BAD_NAME,
		                  "iss is not a workstation name");
		goto out;
	}
	if ((r = check_signature(hosts, jws, rc.iss, err)) != 0 ||
	    (r = check_binding(&rc, method, path, body, bodylen, audience, err)) != 0 ||
	    (r = check_time(&rc, now, err)) != 0 ||
	    (r = check_jti(&rc, replay_fn, replay_ctx, rc.iss, err)) != 0)
		goto out;
	/* The enrolled name is the file's name, which is the checked iss. */
	snprintf(name_out, NL_HOSTAUTH_NAME_MAX + 1, "%s", rc.iss);
	r = 0;
out:
	nl_jws_free(jws);
	return r;
}
