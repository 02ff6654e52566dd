/* HTTP client on libcurl: https only (http only to loopback), no redirects, connect and total
 * timeouts, a response size cap, an optional CA file, clear error strings. */
#ifndef NL_HTTP_H
#define NL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define NL_HTTP_DEFAULT_MAX_BODY (1024 * 1024)

struct nl_http_opts {
	const char *ca_file;      /* NULL: system store */
	long connect_timeout_ms;  /* 0: 5000 */
	long total_timeout_ms;    /* 0: 10000 */
	size_t max_body;          /* 0: NL_HTTP_DEFAULT_MAX_BODY */
	const char *bearer;       /* Authorization: Bearer <bearer>, or NULL */
};

struct nl_http_resp {
	long status;
	char *body;          /* NUL-terminated, body_len bytes before the NUL */
	size_t body_len;
	char *content_type;  /* NULL if absent */
	char *cache_control; /* NULL if absent */
};

/* Initialise libcurl once per process (curl_global_init); idempotent, thread-safe. */
int nl_http_global_init(void);
/* true if url is https://..., or http:// to 127.0.0.0/8, ::1 or localhost. */
bool nl_url_allowed(const char *url);
/* true if the URL's host is a loopback address or localhost. */
bool nl_url_is_loopback(const char *url);
/* GET url. Any status is returned in resp (the caller judges it); errors are transport-level:
 * NL_ERR_NETWORK, NL_ERR_TIMEOUT, NL_ERR_TOO_BIG, NL_ERR_HTTP (a redirect), NL_ERR_INVALID (URL
 * not allowed). err gets a one-line reason without any secret. */
int nl_http_get(const char *url, const struct nl_http_opts *opts, struct nl_http_resp *resp, char *err,
                size_t errlen);
/* POST application/x-www-form-urlencoded body (already encoded). The body is wiped by the caller. */
int nl_http_post_form(const char *url, const char *form, const struct nl_http_opts *opts,
                      struct nl_http_resp *resp, char *err, size_t errlen);
/* Wipe and free the response's memory (bodies may hold tokens). */
void nl_http_resp_free(struct nl_http_resp *resp);

/* Form/query encoding helpers. */
/* Percent-encode s for a query or form value (RFC 3986 unreserved kept). New string. */
char *nl_url_encode(const char *s);
/* Append "name=value" (value encoded) to a growing form string *form (realloc), with '&'
 * before it if non-empty. Returns 0 or NL_ERR_NOMEM. Old buffers are wiped. */
int nl_form_add(char **form, const char *name, const char *value);

#endif
