/* Test helper: a scripted HTTP(S) server on libmicrohttpd, bound to 127.0.0.1 port 0, running in
 * its own threads inside the test program; it records the last request and counts hits per path. */
#ifndef TESTSRV_H
#define TESTSRV_H

#include <stdbool.h>
#include <stddef.h>

enum testsrv_kind {
	TESTSRV_FIXED,   /* status, headers and body, with Content-Length */
	TESTSRV_CHUNKED, /* the same body, streamed without Content-Length (chunked) */
	TESTSRV_DELAY,   /* like FIXED, but answers only after delay_ms */
	TESTSRV_TRICKLE, /* status and headers, then one byte every delay_ms until the server stops */
};

/* One scripted answer. The strings must stay valid until testsrv_stop. */
struct testsrv_route {
	const char *method; /* "GET", "POST", or NULL for any */
	const char *path;   /* exact match on the path (no query) */
	enum testsrv_kind kind;
	unsigned status;          /* 0: 200 */
	const char *content_type; /* NULL: no Content-Type */
	const char *headers;      /* extra header lines "Name: value\n...", or NULL */
	const char *body;         /* NULL: empty */
	size_t body_len;          /* 0: strlen(body) */
	long delay_ms;            /* DELAY: before answering; TRICKLE: between bytes */
};

struct testsrv;

/* Start a server answering with routes[0..n) (copied; a path that matches none gets a 404).
 * cert_pem/key_pem non-NULL: HTTPS with that certificate. NULL on failure. */
struct testsrv *testsrv_start(const struct testsrv_route *routes, size_t n, const char *cert_pem,
                              const char *key_pem);
/* Stop the server, ending every connection (delays and trickles end at once), and free it. */
void testsrv_stop(struct testsrv *s);
unsigned short testsrv_port(const struct testsrv *s);
/* "http(s)://127.0.0.1:PORT" + path, in a new string (free it). */
char *testsrv_url(const struct testsrv *s, const char *path);
/* How many requests reached path (matched or not). */
unsigned testsrv_hits(struct testsrv *s, const char *path);

/* The last complete request: method, path, a header (case-insensitive name), the body (at most
 * 64 KiB kept). Each copies into buf (NUL-terminated) and returns false if there is none. */
bool testsrv_last_method(struct testsrv *s, char *buf, size_t len);
bool testsrv_last_path(struct testsrv *s, char *buf, size_t len);
bool testsrv_last_header(struct testsrv *s, const char *name, char *buf, size_t len);
bool testsrv_last_body(struct testsrv *s, char *buf, size_t len);

/* true if libmicrohttpd was built with TLS. */
bool testsrv_tls_supported(void);
/* A new self-signed P-256 certificate for IP address ip (CN and subjectAltName), valid one hour,
 * and its key, both PEM, in new strings. 0 on success, -1 on failure. */
int testsrv_selfsigned(const char *ip, char **cert_pem, char **key_pem);

#endif
