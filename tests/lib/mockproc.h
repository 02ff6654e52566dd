/* Test helper: run nhslogin-mock as a child process on 127.0.0.1:0, talk to it over HTTP without
 * following redirects, and make RSA client keys. Shared by the mock, daemon and PAM tests. */
#ifndef NL_TEST_MOCKPROC_H
#define NL_TEST_MOCKPROC_H

#include <cjose/cjose.h>
#include <stddef.h>
#include <sys/types.h>

#define MOCKPROC_START_TIMEOUT_MS 30000 /* the issuer line must arrive within this (a hang bound) */
#define MOCKPROC_STOP_TIMEOUT_MS  5000  /* after SIGTERM, before SIGKILL */

struct mockproc;

/* NL_TEST_TIMEOUT_SCALE (1..50, default 1): start-up deadlines are multiplied by it, for runs
 * under valgrind (make check-valgrind sets it). */
int mockproc_timeout_scale(void);

/* Start $NL_TOP_BUILDDIR/nhslogin-mock (./nhslogin-mock if unset) with --listen 127.0.0.1:0 and the
 * NULL-terminated args (may be NULL), and wait for its issuer line. The child dies with the test
 * process (PR_SET_PDEATHSIG). Errors: NL_ERR_TIMEOUT (no line in time; the child is killed),
 * NL_ERR_CLOSED (it exited first; reaped). */
int mockproc_start(const char *const *args, struct mockproc **out);
/* The issuer URL it printed, e.g. "http://127.0.0.1:40123". */
const char *mockproc_issuer(const struct mockproc *mp);
pid_t mockproc_pid(const struct mockproc *mp);
/* SIGTERM, wait up to MOCKPROC_STOP_TIMEOUT_MS, then SIGKILL; always reaps and frees. Returns the
 * exit status (0..255), or -1 if it was killed or died on a signal. NULL does nothing (returns -1). */
int mockproc_stop(struct mockproc *mp);
/* Run the mock with args until it exits by itself (e.g. a bad state file), at most timeout_ms. */
int mockproc_run(const char *const *args, int timeout_ms, int *exit_status);

/* An HTTP exchange that does not follow redirects and keeps the headers tests look at. */
struct mockproc_resp {
	long status;
	char *location;         /* Location header or NULL */
	char *www_authenticate; /* WWW-Authenticate header or NULL */
	char *content_type;
	char *body; /* NUL-terminated */
	size_t body_len;
};
/* method "GET" or "POST"; ctype and body for POST (may be NULL); bearer adds Authorization.
 * mockproc_fetch is one browser for the whole test process (the phone): it keeps the cookies it is
 * sent and sends them back, by libcurl's cookie rules (a Secure or __Host- cookie is kept over
 * plain http on loopback, as Chromium keeps it). */
int mockproc_fetch(const char *method, const char *url, const char *ctype, const char *body,
                   const char *bearer, struct mockproc_resp *resp);
/* Another browser: a cookie jar of its own, safe to share between threads. */
struct mockproc_jar;
struct mockproc_jar *mockproc_jar_new(void);
void mockproc_jar_free(struct mockproc_jar *jar);
/* mockproc_fetch in browser jar; NULL: a client that keeps no cookies at all. */
int mockproc_fetch_in(struct mockproc_jar *jar, const char *method, const char *url, const char *ctype,
                      const char *body, const char *bearer, struct mockproc_resp *resp);
void mockproc_resp_free(struct mockproc_resp *resp);
/* How every browser of this process reaches the servers, for tests behind a TLS proxy: cainfo (a
 * PEM file) allows https and trusts that CA; local_ip binds the client's side (127.0.0.2: a phone
 * whose address is not the proxy's); header is one extra request line ("X-Forwarded-For: ...").
 * NULL for any: as before (http only, the default address, no extra line). The strings are
 * copied. Call between requests, not during them. */
void mockproc_phone_configure(const char *cainfo, const char *local_ip, const char *header);

/* POST /_mock/control with a JSON body such as {"fault":"status_500"}; *status gets the HTTP status. */
int mockproc_control(const struct mockproc *mp, const char *json, long *status);
/* GET /_mock/stats and return the count for one endpoint ("discovery", "token", ...). */
int mockproc_stat(const struct mockproc *mp, const char *endpoint, long *count);

/* Wait for child pid up to timeout_ms (not scaled); true if reaped (status in *st). */
bool mockproc_wait_pid(pid_t pid, int timeout_ms, int *st);
/* A new RSA 2048 key written to dir/NAME.pub.pem (0644) and dir/NAME.key.pem (0600). *key is a
 * cjose JWK (cjose_jwk_release); the paths are new strings (free). */
int mockproc_client_key(const char *dir, const char *name, cjose_jwk_t **key, char **pub_path,
                        char **key_path);

/* The decoded value (%XX and '+') of query parameter name of url: a new string, or NULL. */
char *mockproc_query_param(const char *url, const char *name);

#endif
