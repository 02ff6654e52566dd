/* What the files of the OpenID client (oidc*.c) share and nothing else sees: the client object, the
 * endpoints of discovery, the bounds, and the helpers the caches, the grants and device mode use. */
#ifndef NL_OIDC_INT_H
#define NL_OIDC_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "nl_http.h"
#include "nl_jose.h"
#include "oidc.h"

#define MAX_URL         2048
#define MAX_TOKEN       16384 /* an access or refresh token */
#define MAX_DEVICE_CODE 1024

/* The endpoints of a validated discovery document. */
struct disc {
	char *authorization_endpoint;
	char *token_endpoint;
	char *jwks_uri;
	char *userinfo_endpoint; /* NULL if absent */
	char *device_endpoint;   /* NULL if absent */
	bool pkce_s256;
	bool iss_param; /* RFC 9207: authorization responses carry iss */
};

struct nl_oidc {
	const struct nl_config *cfg;
	cjose_jwk_t *key;
	char *kid;
	pthread_mutex_t mu;
	/* Guarded by mu. */
	struct disc *disc;
	time_t disc_expires;
	struct nl_jwks *jwks;
	time_t jwks_expires;
	bool kid_refetched;
	int64_t kid_refetch_ms;
	bool keep_raw; /* nl_oidc_keep_raw: successful grants keep their raw tokens */
	bool pinned;   /* [agent] jwks_file: jwks is the file's; nothing is fetched, nothing expires */
	struct nl_oidc_stats st;
};

/* oidc.c */
/* nl_verrf into err and into the stats' last_error. Never called with mu held. */
void nl_oidc_err(struct nl_oidc *o, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The HTTP options of every call to the provider: http_timeout, ca_file, a body cap, a bearer. */
void nl_oidc_http_opts(const struct nl_oidc *o, size_t max_body, const char *bearer,
                       struct nl_http_opts *opts);
/* Is a Content-Type application/json (any case, parameters such as charset allowed)? */
bool nl_oidc_is_json_type(const char *ct);
/* The nl_err a failed outcome returns (callers switch on the outcome, not on this). */
int nl_oidc_outcome_err(enum nl_outcome o);

/* oidc_cache.c */
void nl_oidc_disc_clear(struct disc *d);
void nl_oidc_disc_free(struct disc *d);
/* Copy the endpoints out from under the lock after making sure discovery is loaded. */
int nl_oidc_copy_disc(struct nl_oidc *o, struct disc *out, char *err, size_t errlen);
/* An unknown kid: refetch the JWKS, at most once a minute. NL_ERR_LIMIT when rate-limited. */
int nl_oidc_refetch_jwks_for_kid(struct nl_oidc *o, char *err, size_t errlen);

/* oidc_pinned.c */
/* nl_oidc_new for an agent with [agent] jwks_file: read it into jwks, or fail naming the file. */
int nl_oidc_pinned_load(struct nl_oidc *o, char *err, size_t errlen);
/* Read the file again (a flush); a bad file keeps the keys in use, and says why in the log. */
void nl_oidc_pinned_reload(struct nl_oidc *o);
/* The kid of a compact JWS's header for a log line: "\"KID\"" (printable ASCII, cut to 64) or
 * "(none)". Never anything of the payload. */
void nl_oidc_pinned_kid(const char *compact, char *out, size_t outlen);

/* oidc_grant.c */
/* Append client_id and the private_key_jwt assertion (aud = the token endpoint) to *form. */
int nl_oidc_client_auth(struct nl_oidc *o, const char *token_endpoint, char **form);
/* POST form to url; the transport error (never a secret) goes to err. */
int nl_oidc_post(struct nl_oidc *o, const char *url, const char *form, size_t max, struct nl_http_resp *resp,
                 const char *what, char *err, size_t errlen);
/* Parse a response body as a bounded JSON object. */
int nl_oidc_parse_body(const struct nl_http_resp *resp, size_t max, json_t **out);
/* Wipe the secret members of a parsed token response, then drop it. */
void nl_oidc_wipe_token_json(json_t *tok);

/* One grant at the token endpoint: the endpoints, the form (client authentication included) and
 * the nonce the ID token must carry (NULL in the device grant, which has none). */
struct nl_oidc_token_req {
	const struct disc *disc;
	const char *form;
	const char *nonce;
};

/* What the token endpoint said when token_request did not decide the grant itself: the HTTP
 * status and the OAuth error word of a 400/401 JSON body (owned by body), or NULL. */
struct nl_oidc_token_reply {
	bool final; /* decided: a transport failure, or a 200 whose tokens were judged */
	struct nl_http_resp resp;
	json_t *body;
	const char *word;
};
void nl_oidc_token_reply_clear(struct nl_oidc_token_reply *reply);
/* Start res from failure (NL_OUT_UNAVAILABLE, no identity); end it with r, the grant's nl_err:
 * never NL_OUT_OK after an error. Returns 0 or the nl_err of the outcome. */
void nl_oidc_grant_begin(struct nl_grant_result *res);
int nl_oidc_grant_end(struct nl_grant_result *res, int r);
int nl_oidc_token_request(struct nl_oidc *o, const struct nl_oidc_token_req *req, struct nl_grant_result *res,
                          struct nl_oidc_token_reply *reply);

#endif
