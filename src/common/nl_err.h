/* Project error codes: internal functions return 0 or one of these negative values.
 * PAM codes appear only in src/pam; HTTP statuses only at the web edges. */
#ifndef NL_ERR_H
#define NL_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum nl_err {
	NL_OK = 0,
	NL_ERR_INTERNAL = -1,     /* a bug or an impossible state */
	NL_ERR_NOMEM = -2,        /* allocation failed */
	NL_ERR_INVALID = -3,      /* malformed input (syntax) */
	NL_ERR_IO = -4,           /* read/write/open failed */
	NL_ERR_PERM = -5,         /* file owner/mode unsafe, or peer not allowed */
	NL_ERR_CONFIG = -6,       /* configuration is wrong */
	NL_ERR_TOO_BIG = -7,      /* a size bound was hit */
	NL_ERR_TIMEOUT = -8,      /* a time bound was hit */
	NL_ERR_NETWORK = -9,      /* could not reach the peer */
	NL_ERR_HTTP = -10,        /* peer answered with an unexpected status/body */
	NL_ERR_ALG = -11,         /* JOSE alg not allowed */
	NL_ERR_SIGNATURE = -12,   /* signature did not verify */
	NL_ERR_KEY = -13,         /* no usable key (unknown kid, wrong type) */
	NL_ERR_CLAIM = -14,       /* a claim check failed */
	NL_ERR_EXPIRED = -15,     /* a time-limited thing has expired */
	NL_ERR_NOT_FOUND = -16,   /* no such flow/user/file */
	NL_ERR_DENIED = -17,      /* policy said no */
	NL_ERR_LIMIT = -18,       /* a count limit was hit (flows, attempts) */
	NL_ERR_UNAVAILABLE = -19, /* a dependency is down (daemon, provider) */
	NL_ERR_CLOSED = -20,      /* peer closed the connection */
};

/* A static, human-readable description of an nl_err value. Never NULL. */
const char *nl_strerror(int r);

/* The one error-buffer writer: printf into err (errlen bytes, always terminated, truncated if
 * long). err may be NULL or errlen 0: then nothing is written. Returns what it was given in
 * ret, so that `return nl_errf(err, errlen, NL_ERR_CONFIG, "...")` reports and fails at once. */
int nl_errf(char *err, size_t errlen, int ret, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The same with a va_list, for writers that add a prefix or keep a copy of the line. */
int nl_verrf(char *err, size_t errlen, int ret, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
