/* Enrolled workstations (issue 13): each agent signs every request to the bridge with its own
 * ES256 key (an "Authorization: NL-Host <compact JWS>" binding method, path, body, audience and a
 * one-time jti); the bridge verifies it against the public key enrolled as hosts_dir/NAME.pem.
 * Why signed requests and not mutual TLS: doc/hostauth.md. */
#ifndef NL_HOSTAUTH_H
#define NL_HOSTAUTH_H

#include <cjose/cjose.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define NL_HOSTAUTH_SCHEME       "NL-Host"
#define NL_HOSTAUTH_JWS_ALG      "ES256"
#define NL_HOSTAUTH_JWS_TYP      "nl-host+jwt" /* explicit typing (RFC 8725 3.11) */
#define NL_HOSTAUTH_NAME_MAX     63            /* [a-z0-9][a-z0-9.-]{0,62} */
#define NL_HOSTAUTH_HEADER_MAX   2048          /* longest Authorization value accepted */
#define NL_HOSTAUTH_LIFETIME     30            /* exp - iat of the requests we sign */
#define NL_HOSTAUTH_MAX_LIFETIME 60            /* the most exp - iat we accept */
#define NL_HOSTAUTH_SKEW         30            /* clock difference allowed either way */
#define NL_HOSTAUTH_JTI_BYTES    16            /* 128 random bits */
#define NL_HOSTAUTH_PUB_MAX      8192          /* longest enrolled public key file */
#define NL_HOSTAUTH_CACHE_MAX    4096          /* enrolled keys kept in memory by default */

/* ---- names and keys (hostauth_key.c) ---- */

/* Is name a workstation name: [a-z0-9][a-z0-9.-]{0,62}, no "..", so that NAME.pem is a plain file
 * name? Checked before a name touches any path. */
bool nl_hostauth_name_ok(const char *name);
/* The default name: the host name, lower-cased (name has NL_HOSTAUTH_NAME_MAX + 1 bytes). 0, or
 * NL_ERR_INVALID if it is not a valid name (then name holds it, for the message). */
int nl_hostauth_default_name(char name[NL_HOSTAUTH_NAME_MAX + 1]);

/* Make a new ES256 (P-256) private key at path unless one is there: the parent directory must be
 * owned by root or us and not group/world-writable; the file is created 0600 with O_EXCL|O_NOFOLLOW.
 * If something is at path already: without replace, nothing is written and *created is false (the
 * caller loads the key it has); with replace, the new key is written beside it and renamed over it
 * (the old file is neither followed nor truncated). */
int nl_hostauth_key_create(const char *path, bool replace, bool *created, char *err, size_t errlen);
/* Load the workstation's private key (a secret file: owner and mode checked) and check it is an EC
 * P-256 key; its kid is set to its RFC 7638 thumbprint. New reference in *out. */
int nl_hostauth_key_load(const char *path, cjose_jwk_t **out, char *err, size_t errlen);

/* ---- the agent's side (hostauth.c) ---- */

/* The Authorization value for one request: "NL-Host " and a compact JWS (ES256, kid = key's kid,
 * typ NL_HOSTAUTH_JWS_TYP)
 * with iss = name, aud = audience (the bridge's base URL), htm = method, htu = path (with query),
 * bh = base64url(SHA-256(body)), iat = now, exp = now + NL_HOSTAUTH_LIFETIME, jti = 128 random bits.
 * New string in *out (free with nl_free_secret). */
int nl_hostauth_sign(const cjose_jwk_t *key, const char *name, const char *method, const char *path,
                     const void *body, size_t bodylen, const char *audience, time_t now, char **out);

/* ---- the bridge's side ---- */

/* The enrolled workstations: dir/NAME.pem, one public key each. Keys are read on demand and kept
 * (at most max_cached; 0 = NL_HOSTAUTH_CACHE_MAX), but each request looks at the file again
 * (one fstatat): a file removed is refused at once, a file replaced is read again. Thread-safe. */
struct nl_hostauth_hosts;
int nl_hostauth_hosts_new(const char *dir, size_t max_cached, struct nl_hostauth_hosts **out);
void nl_hostauth_hosts_free(struct nl_hostauth_hosts *hosts);
struct nl_hostauth_error;
/* How many keys are kept in memory now (for tests and status). */
size_t nl_hostauth_hosts_cached(struct nl_hostauth_hosts *hosts);

/* The operator's view of the directory (nhsloginctl hosts), judged by the same code as a request.
 * The entries of the directory (itself checked as for a request), sorted, at most max of them: a new
 * array of new strings in *files and *n (free with nl_hostauth_files_free); *cut is true if there
 * were more. On failure err says why (the directory is missing or unsafe). */
int nl_hostauth_hosts_list(struct nl_hostauth_hosts *hosts, size_t max, char ***files, size_t *n, bool *cut,
                           struct nl_hostauth_error *err);
void nl_hostauth_files_free(char **files, size_t n);
/* One entry of the directory as the bridge would take it: its workstation name (file without
 * ".pem") in name, and if the bridge would use it, its key's RFC 7638 thumbprint (what nhsloginctl
 * enroll prints on the workstation) as a new string in *thumbprint. Refused: bad-name (not NAME.pem
 * of a workstation name; name is then ""), unknown-host (gone), hosts-unsafe, host-key-bad, with
 * err saying why (never echoing a bad file name). */
int nl_hostauth_hosts_check_file(struct nl_hostauth_hosts *hosts, const char *file,
                                 char name[NL_HOSTAUTH_NAME_MAX + 1], char **thumbprint,
                                 struct nl_hostauth_error *err);

/* The replay cache the caller provides (the bridge: Redis SET NX with expiry). jti has been seen
 * for name before: SEEN; remembered now until expires_at: NEW; could not tell: ERROR. */
enum nl_hostauth_replay { NL_HOSTAUTH_REPLAY_NEW, NL_HOSTAUTH_REPLAY_SEEN, NL_HOSTAUTH_REPLAY_ERROR };
typedef enum nl_hostauth_replay (*nl_hostauth_replay_fn)(void *ctx, const char *name, const char *jti,
                                                         time_t expires_at);

/* Why a request was refused: one word each for the log (nl_hostauth_reason_word). */
enum nl_hostauth_reason {
	NL_HOSTAUTH_E_OK = 0,
	NL_HOSTAUTH_E_MALFORMED,     /* not "NL-Host <compact JWS>", or claims missing / of the wrong type */
	NL_HOSTAUTH_E_TOO_BIG,       /* longer than NL_HOSTAUTH_HEADER_MAX */
	NL_HOSTAUTH_E_ALG,           /* alg other than ES256 (none, HS*, RS*, ...) */
	NL_HOSTAUTH_E_TYP,           /* typ missing or not nl-host+jwt (an ID token, a client assertion) */
	NL_HOSTAUTH_E_BAD_NAME,      /* iss is not a workstation name */
	NL_HOSTAUTH_E_UNKNOWN_HOST,  /* no hosts_dir/NAME.pem: never enrolled, or revoked */
	NL_HOSTAUTH_E_HOSTS_UNSAFE,  /* hosts_dir or the file: wrong owner, writable by others, not a file */
	NL_HOSTAUTH_E_HOST_KEY_BAD,  /* the enrolled file holds no usable EC P-256 public key */
	NL_HOSTAUTH_E_OTHER_KEY,     /* kid names a key other than the enrolled one (re-enrolled?) */
	NL_HOSTAUTH_E_SIGNATURE,     /* the signature does not verify with the enrolled key */
	NL_HOSTAUTH_E_AUDIENCE,      /* aud is not this bridge */
	NL_HOSTAUTH_E_METHOD,        /* htm is not the request's method */
	NL_HOSTAUTH_E_PATH,          /* htu is not the request's path and query */
	NL_HOSTAUTH_E_BODY,          /* bh is not the hash of the request's body */
	NL_HOSTAUTH_E_EXPIRED,       /* now >= exp + skew */
	NL_HOSTAUTH_E_NOT_YET_VALID, /* iat > now + skew */
	NL_HOSTAUTH_E_LIFETIME,      /* exp <= iat or exp - iat > NL_HOSTAUTH_MAX_LIFETIME */
	NL_HOSTAUTH_E_JTI,           /* jti missing or not 128+ bits of base64url */
	NL_HOSTAUTH_E_REPLAYED,      /* this jti was seen before */
	NL_HOSTAUTH_E_REPLAY_STORE,  /* the replay cache could not answer */
	NL_HOSTAUTH_E_INTERNAL,      /* out of memory, a library failure */
};
/* A static word for the log ("replayed", "unknown-host", ...). Never NULL. */
const char *nl_hostauth_reason_word(enum nl_hostauth_reason reason);

struct nl_hostauth_error {
	enum nl_hostauth_reason reason;
	char detail[256]; /* one line for the log: never the JWS, a key or a jti */
};

/* Verify one request's Authorization value, in this order: size and syntax, alg exactly ES256 and no
 * key in the header, typ nl-host+jwt, iss a valid name, hosts_dir/iss.pem (checked as above), the signature
 * with THAT key, aud, htm, htu, bh, iat/exp (skew NL_HOSTAUTH_SKEW, lifetime at most
 * NL_HOSTAUTH_MAX_LIFETIME), and last the jti through replay_fn (remembered until exp + skew). On success (0)
 * name_out holds the enrolled name (the file's name): the only name to show or log for this workstation. On
 * failure a negative nl_err and err (may be NULL) says why. */
int nl_hostauth_verify(struct nl_hostauth_hosts *hosts, const char *header_value, const char *method,
                       const char *path, const void *body, size_t bodylen, const char *audience, time_t now,
                       nl_hostauth_replay_fn replay_fn, void *replay_ctx,
                       char name_out[NL_HOSTAUTH_NAME_MAX + 1], struct nl_hostauth_error *err);

#endif
