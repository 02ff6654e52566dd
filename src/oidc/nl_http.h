/* HTTP client on libcurl: https only (http only to loopback), no redirects, connect and total
 * timeouts, a response size cap, an optional CA file, clear error strings. */
#ifndef NL_HTTP_H
#define NL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define NL_HTTP_DEFAULT_MAX_BODY (1024 * 1024)

struct nl_http_opts {
	const char *ca_file;     /* NULL: system store; else only this file's CAs are trusted */
	long connect_timeout_ms; /* 0: 5000 */
	long total_timeout_ms;   /* 0: 10000 */
	size_t max_body;         /* 0: NL_HTTP_DEFAULT_MAX_BODY */
	const char *bearer;      /* Authorization: Bearer <bearer>, or NULL */
	/* Authorization: <authorization> (a whole value, e.g. "NL-Host <JWS>"; not with bearer), or
	 * NULL. Secret: the header list is wiped. */
	const char *authorization;
	/* Asked about once a second while a transfer runs (libcurl's progress callback): true ends
	 * it at once with NL_ERR_CLOSED ("aborted"). NULL: never. */
	bool (*abort_cb)(void *ctx);
	void *abort_ctx;
};

struct nl_http_resp {
	long status;
	char *body; /* NUL-terminated, body_len bytes before the NUL */
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
/* GET url. Any status but 3xx is returned in resp (the caller judges it); errors are transport-level:
 * NL_ERR_NETWORK (also TLS verification), NL_ERR_TIMEOUT, NL_ERR_TOO_BIG (body over max_body, or a
 * Content-Type/Cache-Control over 1 KiB), NL_ERR_HTTP (a 3xx: "redirect refused"), NL_ERR_INVALID
 * (URL not allowed, bearer with CR/LF), NL_ERR_CONFIG (ca_file unusable), NL_ERR_NOMEM.
 * resp is zeroed first and filled only on success, so nl_http_resp_free(resp) is always safe.
 * err gets "METHOD scheme://host:port/path: reason", one line, no query, form or bearer. */
int nl_http_get(const char *url, const struct nl_http_opts *opts, struct nl_http_resp *resp, char *err,
                size_t errlen);
/* POST application/x-www-form-urlencoded body (already encoded; NULL is empty). The caller wipes it. */
int nl_http_post_form(const char *url, const char *form, const struct nl_http_opts *opts,
                      struct nl_http_resp *resp, char *err, size_t errlen);
/* Any method (GET, POST, DELETE) with an optional body (NULL: none) of Content-Type ctype. Errors
 * as nl_http_get; the caller wipes the body. */
int nl_http_request(const char *method, const char *url, const char *ctype, const char *body, size_t bodylen,
                    const struct nl_http_opts *opts, struct nl_http_resp *resp, char *err, size_t errlen);
/* Wipe and free the response's memory (bodies may hold tokens). */
void nl_http_resp_free(struct nl_http_resp *resp);

/* Form/query encoding helpers. */
/* Percent-encode s for a query or form value (RFC 3986 unreserved kept). New string. */
char *nl_url_encode(const char *s);
/* Append "name=value" (both encoded) to a growing form string *form (NULL or a malloc'd string), with
 * '&' before it if non-empty. Returns 0 or NL_ERR_NOMEM (*form unchanged). Old buffers are wiped. */
int nl_form_add(char **form, const char *name, const char *value);

#endif
