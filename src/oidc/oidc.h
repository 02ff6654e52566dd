/* The OpenID client of nhslogind: discovery and JWKS caches (memory and disk), the authorize
 * URL, code exchange with the private_key_jwt assertion, ID token validation, userinfo, and the
 * RFC 8628 device grant for native mode. Thread-safe: one internal mutex guards the caches;
 * network calls are made without holding it. */
#ifndef NL_OIDC_H
#define NL_OIDC_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>
#include "idtoken.h"
#include "nl_config.h"

struct nl_oidc;

/* Why a sign-in did not succeed, as the socket protocol's reason words. */
enum nl_outcome {
	NL_OUT_OK = 0,
	NL_OUT_DENIED, /* provider or person refused (access_denied, invalid_grant) */
	NL_OUT_EXPIRED,
	NL_OUT_INVALID_TOKEN, /* an ID token rule failed */
	NL_OUT_LEVEL,         /* identity level below min_level */
	NL_OUT_UNAVAILABLE,   /* provider unreachable, slow, or answered nonsense */
	NL_OUT_PENDING,       /* device mode: authorization_pending */
	NL_OUT_SLOW_DOWN,     /* device mode: slow_down */
};
const char *nl_outcome_word(enum nl_outcome o);

/* A verified sign-in. Free with nl_identity_clear (wipes the refresh token). */
struct nl_identity {
	json_t *claims; /* the verified ID token claims (plus userinfo claims if fetched) */
	char *sub;
	char *vot;
	int level;        /* 0, 5, 9 */
	time_t auth_time; /* auth_time claim, or iat */
	time_t id_exp;
	char *refresh_token; /* secret, may be NULL */
};
void nl_identity_clear(struct nl_identity *id);

struct nl_oidc_stats {
	unsigned long discovery_fetches, jwks_fetches, token_requests, userinfo_requests;
	time_t discovery_fetched_at, jwks_fetched_at; /* 0 if never */
	size_t jwks_pinned_keys;                      /* [agent] jwks_file: the keys read from it (else 0) */
	char last_error[256];
};

/* Load the client key (checked as a secret) and remember cfg (not copied: cfg must outlive). */
int nl_oidc_new(const struct nl_config *cfg, struct nl_oidc **out, char *err, size_t errlen);
/* The kid the client assertions carry: the environment's client_key_id, none for "none" (*kid
 * NULL), else the key's RFC 7638 thumbprint. *kid is a new string. */
int nl_oidc_client_kid(const struct nl_env *env, const cjose_jwk_t *key, char **kid);
/* What to do about an OAuth error word from the token endpoint, as text to append to its log line
 * ("" for most words; invalid_client points at the key's registration). */
const char *nl_oidc_error_hint(const char *word);
void nl_oidc_free(struct nl_oidc *o);
/* Read and judge an agent's pinned JWKS file, cfg->agent_jwks_file: owned by root (or us), not
 * group/world-writable, at most NL_JWKS_MAX bytes, a JWKS without private members holding a key for
 * one of allowed_algs (RS512 for NHS login). *out is a new set (nl_jwks_free); note gets "" or why
 * some keys were left out; err names the file and the problem (never key material). */
int nl_oidc_pinned_read(const struct nl_config *cfg, struct nl_jwks **out, char *note, size_t notelen,
                        char *err, size_t errlen);
/* Make sure discovery and JWKS are loaded: memory, then cache_dir files if fresh, then network.
 * Honours Cache-Control max-age within [300 s, 24 h]; default 1 h. With a pinned JWKS ([agent]
 * jwks_file) nothing is loaded: 0 when the file's keys are there. */
int nl_oidc_ready(struct nl_oidc *o, char *err, size_t errlen);
/* The URL of issuer's discovery document (trailing slashes of issuer dropped). New string, or NULL. */
char *nl_oidc_discovery_url(const char *issuer);
/* Drop memory and disk caches; a pinned JWKS file is read again (kept if it no longer reads). */
void nl_oidc_flush(struct nl_oidc *o);
void nl_oidc_get_stats(struct nl_oidc *o, struct nl_oidc_stats *st);
/* Does discovery advertise S256 PKCE? */
bool nl_oidc_pkce_s256(struct nl_oidc *o);
/* RFC 9207: does discovery say authorization responses carry iss
 * (authorization_response_iss_parameter_supported true)? Then a callback without iss is refused. */
bool nl_oidc_iss_param_required(struct nl_oidc *o);
/* Does discovery have a device_authorization_endpoint? */
bool nl_oidc_has_device_endpoint(struct nl_oidc *o);

/* The /authorize URL for a flow: response_type=code, scope, client_id, redirect_uri, state,
 * nonce, vtr, prompt=login unless the environment's prompt_login is off, and
 * code_challenge(+method S256) when code_challenge != NULL. New string. */
int nl_oidc_authorize_url(struct nl_oidc *o, const char *state, const char *nonce, const char *code_challenge,
                          char **url);
/* PKCE helper: a new random verifier and its S256 challenge. Free both with nl_free_secret. */
int nl_pkce_pair(char **verifier, char **challenge);

/* What one grant at the token endpoint (the code exchange, a device poll) came to. The identity
 * is filled only with NL_OUT_OK. Free with nl_grant_result_clear (wipes the refresh token). */
struct nl_grant_result {
	enum nl_outcome outcome;
	enum nl_idtoken_rule rule; /* the ID token rule that failed, else NL_RULE_NONE */
	struct nl_identity id;
	char error[256]; /* one line saying why it did not succeed (no secrets), else "" */
	/* With nl_oidc_keep_raw (a bridge, which hands them to the agent that verifies them itself):
	 * the ID token and access token as the token endpoint sent them, only with NL_OUT_OK. */
	char *raw_id_token, *raw_access_token;
};
/* Wipes and frees everything, the raw tokens included. */
void nl_grant_result_clear(struct nl_grant_result *res);
/* Keep the raw tokens of successful grants in nl_grant_result (default: not kept). */
void nl_oidc_keep_raw(struct nl_oidc *o, bool keep);

/* Exchange code at /token (private_key_jwt, RS512), validate the ID token with nonce, fetch
 * userinfo if configured (sub must match). res is overwritten, not freed. Returns 0 (outcome
 * NL_OUT_OK, id filled) or a negative nl_err (outcome says why, error names the rule that failed). */
int nl_oidc_exchange_code(struct nl_oidc *o, const char *code, const char *code_verifier, const char *nonce,
                          struct nl_grant_result *res);

/* An agent's own check of what a bridge says a sign-in came to (doc/bridge.md): the ID token
 * against the keys this client fetched from the issuer itself (refetched once on an unknown kid), or
 * against its pinned JWKS file only (an unknown kid fails closed, logged with the file and the kid),
 * every ID token rule with this agent's nonce, then, if [identity] userinfo is set, this client's
 * own userinfo request with access_token (its sub must equal the ID token's). A bridge that
 * approves with no token, another flow's token, a token signed by any other key or with altered
 * claims gets NL_OUT_INVALID_TOKEN; below min_level NL_OUT_LEVEL; the issuer unreachable
 * NL_OUT_UNAVAILABLE. Returns 0 (NL_OUT_OK, res->id filled; no refresh token) or a negative nl_err
 * as nl_oidc_exchange_code does. res is overwritten, not freed. */
int nl_oidc_verify_tokens(struct nl_oidc *o, const char *id_token, const char *access_token,
                          const char *nonce, struct nl_grant_result *res);

/* RFC 8628 native mode. */
struct nl_device_auth {
	char *device_code; /* secret */
	char *user_code;
	char *verification_uri;
	char *verification_uri_complete; /* may be NULL */
	int expires_in;
	int interval;
};
void nl_device_auth_clear(struct nl_device_auth *d);
int nl_oidc_device_start(struct nl_oidc *o, struct nl_device_auth *out, char *err, size_t errlen);
/* Poll /token once; res is overwritten, not freed. outcome NL_OUT_PENDING / NL_OUT_SLOW_DOWN
 * (caller adds 5 s to its interval) / NL_OUT_DENIED / NL_OUT_EXPIRED / NL_OUT_OK (id filled, ID
 * token validated; no nonce in the device grant, so nonce is not required) / others. Returns 0 only
 * with NL_OUT_OK; otherwise a negative nl_err (NL_ERR_LIMIT for pending and slow_down) - callers
 * switch on the outcome. */
int nl_oidc_device_poll(struct nl_oidc *o, const char *device_code, struct nl_grant_result *res);

#endif
