/* JOSE on cjose and OpenSSL: JWK/PEM import, JWKS, JWS compact sign (cjose) and verify (EVP, on
 * the bytes the strict parser read, with a context each key set prepares once per key and alg),
 * JWT claim helpers. Our layer adds what cjose leaves to the caller: the caller's allowed-alg
 * list, checked before any key is touched (none, HS* and anything unlisted refused), strict
 * compact serialization, bounded sizes. */
#ifndef NL_JOSE_H
#define NL_JOSE_H

#include <cjose/cjose.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define NL_JWS_MAX       (16 * 1024)  /* longest compact JWS accepted */
#define NL_JWKS_MAX      (256 * 1024) /* longest JWKS document */
#define NL_JWKS_MAX_KEYS 32

/* Algorithms this layer knows. HS* and none are never verifiable through it. */
bool nl_jose_alg_known(const char *alg);

/* A JWK from its JSON text (public or private; RSA or EC P-256). New reference in *out
 * (cjose_jwk_release). oct (symmetric) keys are refused. */
int nl_jwk_from_json(const char *json, size_t len, cjose_jwk_t **out);
/* A JWK from PEM text: "PUBLIC KEY", "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY". */
int nl_jwk_from_pem(const char *pem, size_t len, cjose_jwk_t **out);
/* Load a PEM private key file, checked as a secret (nl_read_file_checked). err names the file. */
int nl_jwk_load_private_pem(const char *path, cjose_jwk_t **out, char *err, size_t errlen);
/* The public JWK JSON of a key (with kid if set, plus "use":"sig" and "alg" if alg != NULL). New string. */
char *nl_jwk_public_json(const cjose_jwk_t *jwk, const char *alg);
/* The PEM "PUBLIC KEY" text of a key. New string. */
char *nl_jwk_public_pem(const cjose_jwk_t *jwk);
/* RFC 7638 thumbprint (SHA-256, base64url) - a stable kid. New string. */
char *nl_jwk_thumbprint(const cjose_jwk_t *jwk);

/* A parsed key set. */
struct nl_jwks;
/* Parse a JWKS document {"keys":[...]} (RFC 7517 5), for verifying signatures. A key is left out
 * (RFC 7517 5: ignored) when it is not for that (use other than sig, key_ops without verify, an alg
 * we do not verify, kty other than RSA or EC P-256) or breaks a rule: kty missing, use/alg/kid not
 * strings, key_ops not distinct strings or disagreeing with use, alg not fitting the key type, RSA
 * n/e not minimal canonical base64url (no leading zero octet), n even or under 2048 bits (exactly
 * counted), e even, below 3 or not below n, EC x/y not 32 octets or not a point of P-256. The set
 * fails (NL_ERR_KEY) if any key carries private members (d, p, q, dp, dq, qi, oth) or none is left;
 * NL_ERR_INVALID if it is not a JSON object with a keys array of objects; NL_ERR_TOO_BIG past
 * NL_JWKS_MAX_KEYS. Keys of one type sharing a kid are kept but never chosen by it. */
int nl_jwks_parse(const char *json, size_t len, struct nl_jwks **out);
/* The same, with one line in why (no key material): on failure the reason; on success "" or how
 * many keys were ignored for breaking a rule, and the first one's reason ("key 2: ..."). */
int nl_jwks_parse_report(const char *json, size_t len, struct nl_jwks **out, char *why, size_t whylen);
void nl_jwks_free(struct nl_jwks *set);
size_t nl_jwks_count(const struct nl_jwks *set);
/* How many keys of the set could verify a signature of alg (its key type, and its own alg if it
 * has one), by their kid or alone; 0 for an alg we do not verify. */
size_t nl_jwks_count_for_alg(const struct nl_jwks *set, const char *alg);
/* Choose the key for a JWS header: by kid if kid != NULL (NL_ERR_KEY if absent, or if two keys of
 * alg's type share it); with no kid, only if exactly one key in the set fits alg's key type (and
 * its own alg, if any). The key stays owned by the set. */
int nl_jwks_select(const struct nl_jwks *set, const char *kid, const char *alg, const cjose_jwk_t **out);

/* A parsed (not yet verified) compact JWS. */
struct nl_jws {
	char *alg;      /* from the protected header */
	char *kid;      /* NULL if absent */
	char *typ;      /* NULL if absent */
	json_t *header; /* the protected header object */
	json_t *claims; /* the payload parsed as a JSON object (NULL if not an object) */
	bool verified;  /* set by nl_jws_verify */
};
/* Parse a compact JWS strictly: three base64url parts, bounded size, header a JSON object
 * without duplicate keys, "alg" a string in allowed[0..n_allowed), no "crit", no "jku",
 * "jwk", "x5u", "x5c". NL_ERR_ALG if alg is not allowed - before any key is touched. */
int nl_jws_parse(const char *compact, size_t len, const char *const *allowed, size_t n_allowed,
                 struct nl_jws **out);
/* Verify with key; the key type must fit alg (RSA for RS/PS, EC P-256 for ES256).
 * NL_ERR_SIGNATURE or NL_ERR_KEY on failure. Sets jws->verified on success. */
int nl_jws_verify(struct nl_jws *jws, const cjose_jwk_t *key);
/* Select by the header's kid from set, then verify. */
int nl_jws_verify_jwks(struct nl_jws *jws, const struct nl_jwks *set);
void nl_jws_free(struct nl_jws *jws);

/* Sign claims (a JSON object) as a compact JWS with alg (RS256/384/512, PS256, ES256),
 * header {"alg","typ":"JWT","kid" if kid}. *out is a new string; free with nl_free_secret. */
int nl_jws_sign(const cjose_jwk_t *key, const char *alg, const char *kid, const json_t *claims, char **out);
/* The same with the header's typ chosen (explicit typing, RFC 8725 3.11: "nl-host+jwt" for a
 * workstation's requests); typ NULL leaves typ out. nl_jws_sign is this with "JWT". */
int nl_jws_sign_typed(const cjose_jwk_t *key, const char *alg, const char *kid, const char *typ,
                      const json_t *claims, char **out);

/* JWT claim helpers. All return 0 or NL_ERR_CLAIM / NL_ERR_EXPIRED. */
/* exp must be present, an integer, and now < exp + skew; iat if present (or if require_iat)
 * must be an integer <= now + skew; nbf if present <= now + skew. */
int nl_jwt_check_time(const json_t *claims, time_t now, long skew, bool require_iat);
/* aud (string or array of strings) must contain audience; if it is an array of more than one,
 * azp must be present and equal azp_expected (pass audience). If azp is present it must equal. */
int nl_jwt_check_aud(const json_t *claims, const char *audience);
/* A string claim, NULL if absent or not a string. */
const char *nl_jwt_str(const json_t *claims, const char *name);

/* A private_key_jwt client assertion (RFC 7523): iss = sub = client_id, aud = audience,
 * random jti, iat = now, exp = now + lifetime (lifetime 1..300 s). Signed with alg. New
 * string in *out; free with nl_free_secret. */
int nl_client_assertion(const cjose_jwk_t *key, const char *alg, const char *kid, const char *client_id,
                        const char *audience, time_t now, long lifetime, char **out);

#endif
