/* nhslogin-mock: a local NHS login OpenID provider for tests and demos. Internal interfaces
 * shared by its files: settings, the in-memory store, signing keys, faults and the HTTP layer. */
#ifndef NL_MOCK_H
#define NL_MOCK_H

#include <cjose/cjose.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MOCK_MAX_BODY          (64 * 1024) /* longest request body accepted */
#define MOCK_MAX_PARAMS        64          /* most query/form parameters in one request */
#define MOCK_MAX_REDIRECT_URIS 10          /* NHS login's per-client limit */
#define MOCK_MAX_USERS         100
#define MOCK_MAX_CLIENTS       100
#define MOCK_MAX_VTR           16    /* most vectors in one vtr */
#define MOCK_MAX_ENTRIES       65536 /* each table (codes, tokens, jtis, ...): 10,000 sign-ins at once */
#define MOCK_MAX_STATE_FILE    (1024 * 1024)

#define MOCK_CODE_TTL               600  /* authorization code, 10 min */
#define MOCK_ID_TOKEN_TTL           3600 /* ID token, 60 min */
#define MOCK_ACCESS_TOKEN_TTL       300  /* access token, 5 min */
#define MOCK_REFRESH_TOKEN_TTL      (30 * 24 * 3600)
#define MOCK_DEVICE_TTL             600
#define MOCK_AUTHREQ_TTL            600 /* an authorize page waiting for a decision */
#define MOCK_ASSERTION_MAX_LIFETIME 3600
#define MOCK_SKEW                   30 /* clock skew allowed on client assertions (iat) */

#define MOCK_JWT_ALG     "RS512"
#define MOCK_DEFAULT_VTR "[\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]"

struct mock_user {
	char *username;
	char *sub;
	char *nhs_number;
	char *email;
	char *family_name;
	char *given_name;
	char *birthdate;
	char *phone_number;
	char *gp_ods_code;
	int level; /* identity proofing level: 0, 5 or 9 */
};

struct mock_client {
	char *client_id;
	char *redirect_uris[MOCK_MAX_REDIRECT_URIS];
	size_t n_redirect_uris;
	cjose_jwk_t *key;    /* the client's public key for private_key_jwt */
	bool refresh_tokens; /* issue refresh tokens to this client */
	char *scopes;        /* space-separated scopes the client may ask for; NULL = all supported */
};

/* Command line settings. */
struct mock_settings {
	char *listen;       /* HOST:PORT as given */
	char *issuer;       /* --issuer override, or NULL */
	char *auto_approve; /* username, or NULL */
	bool device_endpoint;
	unsigned device_interval; /* seconds, default 5 */
	char *state_dir;
	bool allow_remote; /* listen on a non-loopback address */
	bool debug;
	char *cli_clients[MOCK_MAX_CLIENTS]; /* --client CLIENT_ID:PUBKEY_PEM_PATH:REDIRECT_URI */
	size_t n_cli_clients;
};

/* Endpoints counted by /_mock/stats. */
enum mock_ep {
	MOCK_EP_DISCOVERY = 0,
	MOCK_EP_JWKS,
	MOCK_EP_AUTHORIZE,
	MOCK_EP_TOKEN,
	MOCK_EP_USERINFO,
	MOCK_EP_DEVICE_AUTHORIZATION,
	MOCK_EP_DEVICE_PAGE,
	MOCK_EP_COUNT,
	MOCK_EP_NONE = -1, /* not an OP endpoint (control, stats): never faulted, not counted */
};

/* Faults: see faults.c. Each is a bit of mock_faults.active (numbered here); some carry a parameter. */
enum mock_fault {
	MOCK_FAULT_STATUS_500,
	MOCK_FAULT_DELAY,
	MOCK_FAULT_TOKEN_NO_ID_TOKEN,
	MOCK_FAULT_TOKEN_NOT_JSON,
	/* the ID token's signature and header */
	MOCK_FAULT_IDT_BAD_SIGNATURE,
	MOCK_FAULT_IDT_ALG_NONE,
	MOCK_FAULT_IDT_HS256_PEM,
	MOCK_FAULT_IDT_HS256_N,
	MOCK_FAULT_IDT_NO_KID,
	MOCK_FAULT_IDT_UNKNOWN_KID,
	/* the ID token's claims */
	MOCK_FAULT_IDT_WRONG_ISS,
	MOCK_FAULT_IDT_NO_AUD,
	MOCK_FAULT_IDT_WRONG_AUD,
	MOCK_FAULT_IDT_AUDS_NO_AZP,
	MOCK_FAULT_IDT_AUDS_WRONG_AZP,
	MOCK_FAULT_IDT_EXPIRED,
	MOCK_FAULT_IDT_IAT_FUTURE,
	MOCK_FAULT_IDT_NO_NONCE,
	MOCK_FAULT_IDT_WRONG_NONCE,
	MOCK_FAULT_IDT_WRONG_VOT,
	/* other documents */
	MOCK_FAULT_JWKS_SECOND_KEY,
	MOCK_FAULT_USERINFO_WRONG_SUB,
	/* whole replies */
	MOCK_FAULT_TOKEN_500,
	MOCK_FAULT_TOKEN_HUGE,
	MOCK_FAULT_JWKS_HUGE,
	MOCK_FAULT_DISCOVERY_HUGE,
	MOCK_FAULT_TOKEN_NEVER_ENDS,
	MOCK_FAULT_TOKEN_REDIRECT,
	/* spec clauses (issue 10): the ID token */
	MOCK_FAULT_IDT_NBF_FUTURE,
	MOCK_FAULT_IDT_AUDS_EXTRA_AZP,
	/* spec clauses: the signing key as the JWKS publishes it (RFC 7517, 7518, 8017) */
	MOCK_FAULT_JWKS_NO_KTY,
	MOCK_FAULT_JWKS_USE_ENC,
	MOCK_FAULT_JWKS_KEY_OPS_SIGN_ONLY,
	MOCK_FAULT_JWKS_KEY_OPS_REPEATED,
	MOCK_FAULT_JWKS_ALG_MISMATCH,
	MOCK_FAULT_JWKS_N_LEADING_ZERO,
	MOCK_FAULT_JWKS_E_LEADING_ZERO,
	MOCK_FAULT_JWKS_N_PADDED,
	MOCK_FAULT_JWKS_N_EVEN,
	MOCK_FAULT_JWKS_E_EVEN,
	MOCK_FAULT_JWKS_E_ONE,
	MOCK_FAULT_JWKS_RSA_2047,
	MOCK_FAULT_JWKS_PRIVATE_MEMBERS,
	MOCK_FAULT_JWKS_DUPLICATE_KID,
	MOCK_FAULT_JWKS_EC_X_SHORT,
	MOCK_FAULT_JWKS_EC_NO_Y,
	MOCK_FAULT_JWKS_EC_OFF_CURVE,
	/* spec clauses: the token response (RFC 6749 5.1, 5.2, 7.1) */
	MOCK_FAULT_TOKEN_NO_ACCESS_TOKEN,
	MOCK_FAULT_TOKEN_NO_TOKEN_TYPE,
	MOCK_FAULT_TOKEN_TYPE_MAC,
	MOCK_FAULT_TOKEN_TYPE_LOWERCASE,
	MOCK_FAULT_TOKEN_EXPIRES_IN_NEGATIVE,
	MOCK_FAULT_TOKEN_EXPIRES_IN_STRING,
	MOCK_FAULT_TOKEN_CONTENT_TYPE_TEXT,
	MOCK_FAULT_TOKEN_JSON_ARRAY,
	MOCK_FAULT_TOKEN_ERROR_UNSAFE,
	/* spec clauses: userinfo, discovery, device authorization */
	MOCK_FAULT_USERINFO_CONTENT_TYPE_JWT,
	MOCK_FAULT_DISCOVERY_FRAGMENT,
	MOCK_FAULT_DISCOVERY_ISS_PARAM,
	MOCK_FAULT_DISCOVERY_ALGS_HS256,
	MOCK_FAULT_DEVICE_INTERVAL_LONG,
	MOCK_FAULT_DEVICE_INTERVAL_NEGATIVE,
	MOCK_FAULT_DEVICE_USER_CODE_ESCAPE,
	MOCK_FAULT_DEVICE_URI_C1,
	MOCK_FAULT_DEVICE_CONTENT_TYPE_TEXT,
	/* spec clauses: the authorization response on the redirect (RFC 6749 3.1, 4.1.2; RFC 9207) */
	MOCK_FAULT_AUTHZ_ISS_WRONG,
	MOCK_FAULT_AUTHZ_ISS_RIGHT,
	MOCK_FAULT_AUTHZ_CODE_TWICE,
	MOCK_FAULT_AUTHZ_STATE_TWICE,
	MOCK_FAULT_AUTHZ_NO_CODE,
	MOCK_FAULT_AUTHZ_ERROR_UNSAFE,
	MOCK_FAULT_COUNT
};

/* What a fault makes an OP endpoint answer instead of its own reply (mock_fault_before). */
enum mock_fault_reply {
	MOCK_FR_NONE = 0,   /* the endpoint answers */
	MOCK_FR_500,        /* 500 server_error */
	MOCK_FR_HUGE,       /* 200 with a 10 MiB body, chunked (no Content-Length) */
	MOCK_FR_NEVER_ENDS, /* 200 whose body trickles one byte every 200 ms, never ending */
	MOCK_FR_REDIRECT,   /* 302 to the endpoint itself */
};

#define MOCK_HUGE_BODY        (10u * 1024 * 1024)
#define MOCK_TRICKLE_MS       200
#define MOCK_TRICKLE_LIMIT_MS (300 * 1000) /* a safety stop: "never" ends after 5 minutes */

/* One signing key. */
struct mock_key {
	cjose_jwk_t *jwk;
	char *kid;
};

struct mock_faults {
	uint64_t active[(MOCK_FAULT_COUNT + 63) / 64]; /* bit n: enum mock_fault n is on */
	long delay_ms;
	struct mock_key extra; /* jwks_second_key, jwks_duplicate_kid: published, never signs */
	struct mock_key weak;  /* jwks_rsa_2047: published instead of the signing key, and signs */
};

/* Tables of the store (store.c). Every secret string is wiped when dropped. */
struct mock_code {
	char *code;
	char *client_id;
	char *redirect_uri;
	char *nonce;
	char *vot;
	char *scope;
	char *challenge; /* PKCE S256 challenge or NULL */
	const struct mock_user *user;
	time_t auth_time;
	time_t expires;
	bool used;
	uint64_t grant; /* tokens from this code carry the same grant id */
};

enum mock_token_kind { MOCK_TOKEN_ACCESS, MOCK_TOKEN_REFRESH };

struct mock_token {
	char *token;
	enum mock_token_kind kind;
	char *client_id;
	char *scope;
	char *vot;
	char *nonce;
	const struct mock_user *user;
	time_t auth_time;
	time_t expires;
	bool revoked;
	uint64_t grant;
};

struct mock_authreq {
	char *id; /* random, in the page's form */
	char *client_id;
	char *redirect_uri;
	char *state;
	char *nonce;
	char *scope;
	char *challenge;
	char *vtr[MOCK_MAX_VTR];
	size_t n_vtr;
	time_t expires;
};

enum mock_device_status { MOCK_DEVICE_PENDING, MOCK_DEVICE_APPROVED, MOCK_DEVICE_DENIED, MOCK_DEVICE_DONE };

struct mock_device {
	char *device_code;
	char user_code[10]; /* XXXX-XXXX */
	char *client_id;
	char *scope;
	char *nonce; /* optional */
	char *vtr[MOCK_MAX_VTR];
	size_t n_vtr;
	char *vot; /* set on approval */
	enum mock_device_status status;
	const struct mock_user *user;
	time_t auth_time;
	time_t expires;
	int64_t last_poll_ms; /* 0: never polled */
	uint64_t grant;
};

struct mock_jti {
	char *client_id;
	char *jti;
	time_t exp;
};

/* A growable array of pointers, bounded by MOCK_MAX_ENTRIES. */
struct mock_list {
	void **items;
	size_t n;
	size_t cap;
};

/* The whole provider. One instance, shared by the connection threads under lock. */
struct mock {
	struct mock_settings set;
	char *issuer;          /* no trailing slash */
	char *token_endpoint;  /* <issuer>/token: the audience of client assertions */
	char *device_endpoint; /* <issuer>/device_authorization */
	char *vtm;             /* <issuer>/trustmark/<host> */
	struct mock_user *users;
	size_t n_users;
	struct mock_client *clients;
	size_t n_clients;
	const struct mock_user *auto_user;

	pthread_mutex_t lock;    /* guards everything below */
	struct mock_key keys[2]; /* keys[0] signs; JWKS lists all present */
	size_t n_keys;
	struct mock_list codes, tokens, authreqs, devices, jtis;
	uint64_t next_grant;
	unsigned long stats[MOCK_EP_COUNT];
	unsigned long prompt_login; /* valid /authorize requests that asked for prompt=login */
	struct mock_faults faults;
};

extern struct mock *mock_g;

/* ---- state.c: users, clients, signing key from the state dir or defaults ---- */
int mock_load_state(struct mock *m, char *err, size_t errlen);
void mock_free_state(struct mock *m);
const struct mock_user *mock_find_user(const struct mock *m, const char *username);
const struct mock_client *mock_find_client(const struct mock *m, const char *client_id);
bool mock_client_has_redirect(const struct mock_client *c, const char *redirect_uri);

/* ---- keys.c: signing keys, JWKS, signing (callers hold the lock) ---- */
int mock_key_generate(struct mock_key *key);
int mock_keys_init(struct mock *m, char *err, size_t errlen);
int mock_keys_rotate(struct mock *m);
void mock_keys_free(struct mock *m);
json_t *mock_jwks_json(const struct mock *m);
int mock_sign(const struct mock *m, const json_t *claims, char **out);

/* ---- store.c (callers hold the lock) ---- */
int mock_list_add(struct mock_list *l, void *item);
void mock_store_purge(struct mock *m, time_t now);
void mock_store_free(struct mock *m);
void mock_code_free(struct mock_code *c);
void mock_token_free(struct mock_token *t);
void mock_authreq_free(struct mock_authreq *a);
void mock_device_free(struct mock_device *d);
struct mock_code *mock_find_code(const struct mock *m, const char *code);
struct mock_token *mock_find_token(const struct mock *m, const char *token, enum mock_token_kind kind);
struct mock_authreq *mock_take_authreq(struct mock *m, const char *id);
struct mock_device *mock_find_device(const struct mock *m, const char *device_code);
struct mock_device *mock_find_user_code(const struct mock *m, const char *user_code);
void mock_revoke_grant(struct mock *m, uint64_t grant);
/* Record a client assertion's jti; NL_ERR_DENIED if seen before, NL_ERR_LIMIT if the set is full. */
int mock_jti_remember(struct mock *m, const char *client_id, const char *jti, time_t exp);
/* A random UUID (version 4) string. */
int mock_uuid(char out[37]);

/* ---- scopes and vectors (authorize.c) ---- */
extern const char *const mock_scopes_supported[]; /* NULL-terminated */
size_t mock_n_scopes(void);
bool mock_scope_has(const char *scope, const char *name);
/* The scope granted for a request: the known scopes asked for, in order (unknown ones are
 * ignored, as NHS login does). NL_ERR_DENIED (with *why) if openid is missing, a scope is not
 * allowed for the client, or the combination is refused. New string in *out. */
int mock_scope_grant(const struct mock_client *c, const char *req, char **out, const char **why);
/* Parse a vtr JSON array into vectors (new strings). NL_ERR_INVALID with a reason. */
int mock_vtr_parse(const char *json, char **vtr, size_t *n, char *err, size_t errlen);
/* The first vector the user's level satisfies, or NULL. */
const char *mock_vot_choose(char *const *vtr, size_t n, const struct mock_user *user);
void mock_vtr_free(char **vtr, size_t n);

/* ---- endpoints.c ---- */
/* Add the claims scope releases about u to o (userinfo and the ID token). */
void mock_user_claims(const struct mock *m, const struct mock_user *u, const char *scope, json_t *o);

/* ---- faults.c ---- */
struct mock_req;
/* Apply a control request {"fault": NAME, ...}. Returns 0 or NL_ERR_INVALID with a reason. */
int mock_fault_control(struct mock *m, const json_t *req, char *err, size_t errlen);
json_t *mock_faults_json(const struct mock *m);
/* Before an OP endpoint answers: milliseconds to sleep, and what to answer instead (MOCK_FR_NONE: the
 * endpoint's own reply). */
enum mock_fault_reply mock_fault_before(struct mock *m, enum mock_ep ep, long *delay_ms);
/* Hooks where faults change what the token endpoint says. The hostile faults of later issues
 * add one case to these. */
void mock_fault_id_token_claims(const struct mock *m, json_t *claims);
/* Sign the ID token the way a fault says: NL_ERR_NOT_FOUND if no signing fault is active (sign
 * normally), else 0 with a new string in *out (or an error). */
int mock_fault_id_token_sign(const struct mock *m, const json_t *claims, char **out);
/* Returns true if the fault replaces the whole token response with (*body, *ctype) (static). */
bool mock_fault_token_body(const struct mock *m, const char **body, const char **ctype);
void mock_fault_token_json(const struct mock *m, json_t *resp);
/* Keys a fault adds to the JWKS (appended to keys, an array of JWK objects), or changes in the
 * signing key's entry (keys[0]). */
void mock_fault_jwks(const struct mock *m, json_t *keys);
/* The key to sign with while a fault replaces the signing key (jwks_rsa_2047), else NULL. */
const struct mock_key *mock_fault_signing_key(const struct mock *m);
/* What a fault changes in a userinfo answer. */
void mock_fault_userinfo(const struct mock *m, json_t *claims);
/* What a fault changes in discovery, and in a device authorization answer. */
void mock_fault_discovery(const struct mock *m, json_t *doc);
void mock_fault_device_json(const struct mock *m, json_t *resp);
/* Reply 200 with obj as the JSON answer of endpoint ep, as faults say: another Content-Type, or
 * the object inside an array. Without such a fault, mock_reply_json(r, 200, obj, NULL). */
int mock_fault_reply_json(const struct mock *m, enum mock_ep ep, struct mock_req *r, json_t *obj);
/* Replace the whole token reply (an error response), or return false. */
bool mock_fault_token_error(const struct mock *m, const char **error);
/* The parameters of an authorization response (kv: name, value pairs; *n_kv of them, room for
 * max_kv) as faults change them: iss added, a parameter repeated or dropped, or an error response
 * instead. Values are static or point into kv. */
void mock_fault_authz_params(const struct mock *m, const char **kv, size_t *n_kv, size_t max_kv);
/* Free what faults hold (at exit). */
void mock_faults_free(struct mock *m);

/* ---- http.c: requests and replies ---- */
struct MHD_Connection;
struct mock_param {
	char *name;
	char *value;
};
struct mock_req {
	struct MHD_Connection *conn;
	const char *method;
	const char *path;
	char *body;
	size_t body_len;
	bool too_big;
	struct mock_param params[MOCK_MAX_PARAMS];
	size_t n_params;
	bool dup_param;  /* a parameter was repeated */
	bool bad_params; /* too many, or bad encoding */
	int status;      /* status sent, for the log line */
};
const char *mock_param(const struct mock_req *r, const char *name);
const char *mock_header(const struct mock_req *r, const char *name);
bool mock_req_from_loopback(const struct mock_req *r);
/* Parse the form body into params (content type must be form-urlencoded). */
int mock_req_parse_form(struct mock_req *r);
int mock_reply(struct mock_req *r, unsigned status, const char *ctype, const char *body, size_t len,
               const char *const *headers);
int mock_reply_json(struct mock_req *r, unsigned status, json_t *obj, const char *cache_control);
int mock_reply_html(struct mock_req *r, unsigned status, const char *title, const char *body_html);
int mock_reply_redirect(struct mock_req *r, const char *location);
/* A 200 whose body is made as it goes: total bytes (a JSON string member), or, with total 0, one
 * space every MOCK_TRICKLE_MS until the client leaves (MOCK_TRICKLE_LIMIT_MS at most). No
 * Content-Length: the client cannot refuse it from the headers. */
int mock_reply_stream(struct mock_req *r, size_t total);
/* An OAuth error: HTTP status with {"error","error_description"}; never cached. */
int mock_reply_oauth_error(struct mock_req *r, unsigned status, const char *error, const char *desc);
/* HTML-escape s into a new string. */
char *mock_html_escape(const char *s);
/* Build uri?name=value&... (values encoded, NULL values skipped) into a new string. */
char *mock_url_with_params(const char *uri, const char *const *kv, size_t n_kv);
int mock_http_start(struct mock *m, int listen_fd, void **daemon_out);
void mock_http_stop(void *daemon);

/* ---- endpoint handlers (one per path) ---- */
int mock_handle_discovery(struct mock_req *r);
int mock_handle_jwks(struct mock_req *r);
int mock_handle_authorize(struct mock_req *r);
int mock_handle_decision(struct mock_req *r);
int mock_handle_token(struct mock_req *r);
int mock_handle_userinfo(struct mock_req *r);
int mock_handle_device_authorization(struct mock_req *r);
int mock_handle_device_page(struct mock_req *r);
int mock_handle_control(struct mock_req *r);
int mock_handle_stats(struct mock_req *r);

/* ---- token.c helpers shared with device.c ---- */
/* Authenticate the client of a token/device request (private_key_jwt). On failure replies
 * invalid_client and returns NULL; *replied tells the caller to return rv. */
const struct mock_client *mock_client_auth(struct mock_req *r, const char *const *audiences, size_t n_aud,
                                           int *rv);
/* Mint tokens and reply with the token response (caller holds the lock). with_id_token is false on
 * refresh. */
int mock_issue_tokens(struct mock_req *r, const struct mock_client *c, const struct mock_user *u,
                      const char *scope, const char *vot, const char *nonce, time_t auth_time, uint64_t grant,
                      bool with_id_token);
/* ---- device.c ---- */
/* The device_code grant at /token, for an authenticated client. */
int mock_grant_device(struct mock_req *r, const struct mock_client *c);

#endif
