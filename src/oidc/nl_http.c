/* HTTP client on libcurl: https only (http only to loopback), no redirects, bounded time and size,
 * an optional CA file, one-line error strings without secrets; form encoding helpers. */
#include "config.h"
#include "nl_http.h"
#include "nl_text.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nl_err.h"
#include "nl_wipe.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 5000L
#define DEFAULT_TOTAL_TIMEOUT_MS   10000L
/* Captured response headers (Content-Type, Cache-Control) are refused past this length. */
#define MAX_HEADER_VALUE 1024
#define BODY_INITIAL_CAP 4096

/* ---- global init ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init_once(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int nl_http_global_init(void)
{
	if (pthread_once(&global_once, global_init_once) != 0)
		return NL_ERR_INTERNAL;
	return global_rc == CURLE_OK ? 0 : NL_ERR_INTERNAL;
}

/* ---- URL policy ---- */

/* Loopback hosts as libcurl's URL parser returns them: IPv6 in brackets. */
static bool host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(host);

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n > 2 && n < sizeof(buf) && host[0] == '[' && host[n - 1] == ']') {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return false;
}

/* Parse url into a new CURLU handle; NULL if it does not parse or carries userinfo. */
static CURLU *url_parse(const char *url)
{
	CURLU *u = NULL;
	char *part = NULL;

	if (url == NULL || (u = curl_url()) == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto fail;
	/* Credentials in a URL end up in logs and error messages: never accept them. */
	if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_OPTIONS, &part, 0) == CURLUE_OK)
		goto fail;
	return u;
fail:
	curl_free(part);
	curl_url_cleanup(u);
	return NULL;
}

static bool curlu_is_loopback(CURLU *u)
{
	char *host = NULL;
	bool ok;

	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		return false;
	ok = host_is_loopback(host);
	curl_free(host);
	return ok;
}

static bool curlu_allowed(CURLU *u)
{
	char *scheme = NULL;
	char *host = NULL;
	bool ok = false;

	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
		goto out;
	if (strcasecmp(scheme, "https") == 0)
		ok = true;
	else if (strcasecmp(scheme, "http") == 0)
		ok = host_is_loopback(host);
out:
	curl_free(scheme);
	curl_free(host);
	return ok;
}

bool nl_url_allowed(const char *url)
{
	CURLU *u = url_parse(url);
	bool ok = u != NULL && curlu_allowed(u);

	curl_url_cleanup(u);
	return ok;
}

bool nl_url_is_loopback(const char *url)
{
	CURLU *u = url_parse(url);
	bool ok = u != NULL && curlu_is_loopback(u);

	curl_url_cleanup(u);
	return ok;
}

/* ---- one transfer ---- */

struct body {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
	bool too_big;
};

struct xfer {
	CURL *curl;
	const char *method;
	char where[256]; /* "GET scheme://host/path", no query: for error strings */
	struct body body;
	bool redirect;
	long status;
};

/* Grow without realloc, so no stale copy of a token is left behind in freed memory. */
static int body_reserve(struct body *b, size_t need)
{
	size_t cap = b->cap ? b->cap : BODY_INITIAL_CAP;
	char *nbuf;

	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	if ((nbuf = malloc(cap)) == NULL)
		return NL_ERR_NOMEM;
	if (b->buf != NULL) {
		memcpy(nbuf, b->buf, b->len);
		nl_free_secret_buf(b->buf, b->cap);
	}
	b->buf = nbuf;
	b->cap = cap;
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct xfer *x = userp;
	struct body *b = &x->body;
	size_t n = size * nmemb;

	if (n > b->max - b->len) {
		b->too_big = true;
		return 0; /* short write: libcurl aborts with CURLE_WRITE_ERROR */
	}
	if (b->len + n + 1 > b->cap && body_reserve(b, b->len + n + 1) != 0)
		return 0;
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	return n;
}

/* At the blank line that ends a final response's headers, refuse a 3xx before its body is read.
 * Interim 1xx responses end the same way and are passed over. */
static size_t header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct xfer *x = userp;
	size_t n = size * nmemb;
	long status = 0;

	if (n <= 2 && n > 0 && (data[0] == '\r' || data[0] == '\n') &&
	    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status >= 300 &&
	    status < 400) {
		x->status = status;
		x->redirect = true;
		return 0; /* libcurl aborts the transfer */
	}
	return n;
}

/* Set *out to a copy of the named header of the final response (several joined by ", "), or NULL
 * when absent. NL_ERR_TOO_BIG if longer than MAX_HEADER_VALUE. */
static int copy_header(CURL *curl, const char *name, char **out)
{
	struct curl_header *h = NULL;
	char buf[MAX_HEADER_VALUE + 1];
	size_t len = 0, i, amount;

	*out = NULL;
	if (curl_easy_header(curl, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return 0;
	amount = h->amount;
	buf[0] = '\0';
	for (i = 0; i < amount; i++) {
		size_t vlen;
		if (i > 0 && curl_easy_header(curl, name, i, CURLH_HEADER, -1, &h) != CURLHE_OK)
			return NL_ERR_INTERNAL;
		vlen = strlen(h->value);
		if (len + (i > 0 ? 2 : 0) + vlen > MAX_HEADER_VALUE)
			return NL_ERR_TOO_BIG;
		if (i > 0) {
			memcpy(buf + len, ", ", 2);
			len += 2;
		}
		memcpy(buf + len, h->value, vlen);
		len += vlen;
		buf[len] = '\0';
	}
	if ((*out = strdup(buf)) == NULL)
		return NL_ERR_NOMEM;
	return 0;
}

/* "METHOD scheme://host[:port]/path" for messages: the query and fragment may carry secrets. */
static void describe(struct xfer *x, CURLU *u)
{
	CURLU *d = curl_url_dup(u);
	char *s = NULL;

	snprintf(x->where, sizeof(x->where), "%s", x->method);
	if (d != NULL && curl_url_set(d, CURLUPART_QUERY, NULL, 0) == CURLUE_OK &&
	    curl_url_set(d, CURLUPART_FRAGMENT, NULL, 0) == CURLUE_OK &&
	    curl_url_get(d, CURLUPART_URL, &s, 0) == CURLUE_OK)
		snprintf(x->where, sizeof(x->where), "%s %s", x->method, s);
	curl_free(s);
	curl_url_cleanup(d);
}

/* nl_verrf behind the transfer's "METHOD URL: " prefix, made one line (libcurl's messages may end
 * in a newline). */
static void xfer_err(char *err, size_t errlen, const struct xfer *x, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void xfer_err(char *err, size_t errlen, const struct xfer *x, const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t i;

	if (err == NULL || errlen == 0)
		return;
	n = snprintf(err, errlen, "%s: ", x->where);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	nl_verrf(err + n, errlen - (size_t)n, 0, fmt, ap);
	va_end(ap);
	for (i = 0; err[i] != '\0'; i++)
		if (nl_text_is_control((unsigned char)err[i]))
			err[i] = ' ';
	while (i > 0 && err[i - 1] == ' ')
		err[--i] = '\0';
}

static void wipe_slist(struct curl_slist *l)
{
	struct curl_slist *p;

	for (p = l; p != NULL; p = p->next)
		nl_wipe(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

/* Request headers; the Authorization line holds a secret, so the list is wiped when freed. */
static int build_headers(const struct nl_http_opts *o, const char *ctype, struct curl_slist **out)
{
	struct curl_slist *l = NULL, *t;
	char *auth = NULL, *ct = NULL;
	int r = NL_ERR_NOMEM;

	if ((t = curl_slist_append(l, "Accept: application/json")) == NULL)
		goto out;
	l = t;
	/* "Expect:" stops libcurl from waiting for a 100 Continue before a large POST body. */
	if (ctype != NULL) {
		if (strpbrk(ctype, "\r\n") != NULL) {
			r = NL_ERR_INVALID;
			goto out;
		}
		if (asprintf(&ct, "Content-Type: %s", ctype) < 0) {
			ct = NULL;
			goto out;
		}
		if ((t = curl_slist_append(l, ct)) == NULL ||
		    (l = t, t = curl_slist_append(l, "Expect:")) == NULL)
			goto out;
		l = t;
	}
	if (o->bearer != NULL || o->authorization != NULL) {
		const char *v = o->bearer != NULL ? o->bearer : o->authorization;
		if (strpbrk(v, "\r\n") != NULL || v[0] == '\0' ||
		    (o->bearer != NULL && o->authorization != NULL)) {
			r = NL_ERR_INVALID;
			goto out;
		}
		if (asprintf(&auth, "Authorization: %s%s", o->bearer != NULL ? "Bearer " : "", v) < 0) {
			auth = NULL;
			goto out;
		}
		if ((t = curl_slist_append(l, auth)) == NULL)
			goto out;
		l = t;
	}
	*out = l;
	l = NULL;
	r = 0;
out:
	free(ct);
	nl_free_secret(auth);
	wipe_slist(l);
	return r;
}

/* libcurl's progress callback: a non-zero return aborts the transfer. */
static int xferinfo_cb(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	const struct nl_http_opts *o = userp;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return o->abort_cb != NULL && o->abort_cb(o->abort_ctx) ? 1 : 0;
}

static int setup(CURL *curl, CURLU *u, bool loopback, const struct nl_http_opts *o, struct xfer *x,
                 struct curl_slist *hdrs, char *errbuf)
{
	long cto = o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
	long tto = o->total_timeout_ms ? o->total_timeout_ms : DEFAULT_TOTAL_TIMEOUT_MS;
	long lowspeed_s = tto / 1000 > 0 ? tto / 1000 : 1;
	CURLcode c = CURLE_OK;

#define SET(opt, val)                                                                                        \
	do {                                                                                                 \
		if (c == CURLE_OK)                                                                           \
			c = curl_easy_setopt(curl, opt, val);                                                \
	} while (0)
	/* Hand libcurl the very URL handle that was checked, so nothing is parsed twice. */
	SET(CURLOPT_CURLU, u);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_MAXREDIRS, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_VERBOSE, 0L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, cto);
	SET(CURLOPT_TIMEOUT_MS, tto);
	/* Under 1 byte/s for the whole budget is a stall, even if the total timer were to slip. */
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, lowspeed_s);
	/* A declared Content-Length over the cap is refused before any byte of the body is read. */
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->body.max);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (o->ca_file != NULL) {
		/* A configured CA replaces the system store: it pins who may speak for the issuer. */
		SET(CURLOPT_CAINFO, o->ca_file);
		SET(CURLOPT_CAPATH, (char *)NULL);
	}
	/* Loopback never goes through an http_proxy from the environment. */
	if (loopback)
		SET(CURLOPT_PROXY, "");
	SET(CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	if (o->abort_cb != NULL) {
		SET(CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
		SET(CURLOPT_XFERINFODATA, (void *)o);
		SET(CURLOPT_NOPROGRESS, 0L);
	}
#undef SET
	if (c == CURLE_OUT_OF_MEMORY)
		return NL_ERR_NOMEM;
	return c == CURLE_OK ? 0 : NL_ERR_INTERNAL;
}

/* Map a failed transfer to an nl_err and a one-line reason. */
static int transfer_error(CURL *curl, CURLcode c, const struct xfer *x, const struct nl_http_opts *o,
                          const char *errbuf, char *err, size_t errlen)
{
	const char *why = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(c);
	long cto = o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
	long tto = o->total_timeout_ms ? o->total_timeout_ms : DEFAULT_TOTAL_TIMEOUT_MS;
	curl_off_t connected = 0;

	if (x->redirect) {
		xfer_err(err, errlen, x, "redirect refused (status %ld)", x->status);
		return NL_ERR_HTTP;
	}
	if (x->body.too_big || c == CURLE_FILESIZE_EXCEEDED) {
		xfer_err(err, errlen, x, "response body over %zu bytes", x->body.max);
		return NL_ERR_TOO_BIG;
	}
	switch (c) {
	case CURLE_ABORTED_BY_CALLBACK:
		xfer_err(err, errlen, x, "aborted");
		return NL_ERR_CLOSED;
	case CURLE_OPERATION_TIMEDOUT:
		if (curl_easy_getinfo(curl, CURLINFO_CONNECT_TIME_T, &connected) == CURLE_OK &&
		    connected == 0)
			xfer_err(err, errlen, x, "connect timed out after %ld ms", cto < tto ? cto : tto);
		else
			xfer_err(err, errlen, x, "timed out after %ld ms", tto);
		return NL_ERR_TIMEOUT;
	case CURLE_OUT_OF_MEMORY:
		xfer_err(err, errlen, x, "out of memory");
		return NL_ERR_NOMEM;
	case CURLE_WRITE_ERROR:
		/* Only our write callback fails writes, and only for the cap or a failed allocation. */
		xfer_err(err, errlen, x, "out of memory");
		return NL_ERR_NOMEM;
	case CURLE_SSL_CACERT_BADFILE:
		xfer_err(err, errlen, x, "cannot use CA file: %s", why);
		return NL_ERR_CONFIG;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		xfer_err(err, errlen, x, "%s", why);
		return NL_ERR_INVALID;
	default:
		xfer_err(err, errlen, x, "%s", why);
		return NL_ERR_NETWORK;
	}
}

/* Copy what the caller gets out of a finished transfer: status, body, two headers. */
static int collect(CURL *curl, struct xfer *x, struct nl_http_resp *resp, char *err, size_t errlen)
{
	struct nl_http_resp out = {0};
	int r;

	if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status) != CURLE_OK)
		return NL_ERR_INTERNAL;
	if (out.status >= 300 && out.status < 400) {
		xfer_err(err, errlen, x, "redirect refused (status %ld)", out.status);
		return NL_ERR_HTTP;
	}
	if ((r = copy_header(curl, "Content-Type", &out.content_type)) != 0 ||
	    (r = copy_header(curl, "Cache-Control", &out.cache_control)) != 0) {
		if (r == NL_ERR_TOO_BIG)
			xfer_err(err, errlen, x, "response header over %d bytes", MAX_HEADER_VALUE);
		goto fail;
	}
	if (x->body.buf == NULL && (r = body_reserve(&x->body, 1)) != 0)
		goto fail;
	x->body.buf[x->body.len] = '\0';
	out.body = x->body.buf;
	out.body_len = x->body.len;
	x->body.buf = NULL;
	*resp = out;
	return 0;
fail:
	nl_http_resp_free(&out);
	return r;
}

static int perform(const char *method, const char *url, const char *ctype, const char *body, size_t bodylen,
                   const struct nl_http_opts *opts, struct nl_http_resp *resp, char *err, size_t errlen)
{
	static const struct nl_http_opts defaults = {0};
	const struct nl_http_opts *o = opts != NULL ? opts : &defaults;
	struct xfer x = {.method = method};
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	CURLU *u = NULL;
	CURL *curl = NULL;
	CURLcode c;
	int r = NL_ERR_INTERNAL;

	snprintf(x.where, sizeof(x.where), "%s", method);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (resp == NULL)
		return NL_ERR_INTERNAL;
	memset(resp, 0, sizeof(*resp));
	if (o->connect_timeout_ms < 0 || o->total_timeout_ms < 0 || o->max_body > SIZE_MAX / 2) {
		xfer_err(err, errlen, &x, "bad options");
		return NL_ERR_INVALID;
	}
	x.body.max = o->max_body ? o->max_body : NL_HTTP_DEFAULT_MAX_BODY;
	/* The URL is not echoed: a refused one may hold credentials. */
	if ((u = url_parse(url)) == NULL || !curlu_allowed(u)) {
		xfer_err(err, errlen, &x, "URL refused (https only; http only to loopback; no userinfo)");
		r = NL_ERR_INVALID;
		goto out;
	}
	describe(&x, u);
	if ((r = nl_http_global_init()) != 0) {
		xfer_err(err, errlen, &x, "libcurl initialisation failed");
		goto out;
	}
	if ((r = build_headers(o, body != NULL ? ctype : NULL, &hdrs)) != 0) {
		xfer_err(err, errlen, &x, r == NL_ERR_INVALID ? "bad bearer token" : "out of memory");
		goto out;
	}
	r = NL_ERR_NOMEM;
	if ((curl = curl_easy_init()) == NULL)
		goto out;
	x.curl = curl;
	if ((r = setup(curl, u, curlu_is_loopback(u), o, &x, hdrs, errbuf)) != 0)
		goto out;
	c = CURLE_OK;
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		c = curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		if (c == CURLE_OK)
			c = curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bodylen);
		if (c == CURLE_OK)
			c = curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	}
	if (c != CURLE_OK) {
		r = NL_ERR_INTERNAL;
		goto out;
	}
	if ((c = curl_easy_perform(curl)) != CURLE_OK) {
		r = transfer_error(curl, c, &x, o, errbuf, err, errlen);
		goto out;
	}
	r = collect(curl, &x, resp, err, errlen);
out:
	if (r == NL_ERR_NOMEM && err != NULL && errlen > 0 && err[0] == '\0')
		xfer_err(err, errlen, &x, "out of memory");
	if (curl != NULL)
		curl_easy_cleanup(curl);
	wipe_slist(hdrs);
	curl_url_cleanup(u);
	nl_free_secret_buf(x.body.buf, x.body.cap);
	return r;
}

int nl_http_get(const char *url, const struct nl_http_opts *opts, struct nl_http_resp *resp, char *err,
                size_t errlen)
{
	return perform("GET", url, NULL, NULL, 0, opts, resp, err, errlen);
}

int nl_http_post_form(const char *url, const char *form, const struct nl_http_opts *opts,
                      struct nl_http_resp *resp, char *err, size_t errlen)
{
	form = form != NULL ? form : "";
	return perform("POST", url, "application/x-www-form-urlencoded", form, strlen(form), opts, resp, err,
	               errlen);
}

int nl_http_request(const char *method, const char *url, const char *ctype, const char *body, size_t bodylen,
                    const struct nl_http_opts *opts, struct nl_http_resp *resp, char *err, size_t errlen)
{
	if (method == NULL || strpbrk(method, " \r\n") != NULL || (body != NULL && ctype == NULL))
		return NL_ERR_INVALID;
	return perform(method, url, ctype, body, bodylen, opts, resp, err, errlen);
}

void nl_http_resp_free(struct nl_http_resp *resp)
{
	if (resp == NULL)
		return;
	if (resp->body != NULL)
		nl_free_secret_buf(resp->body, resp->body_len + 1);
	free(resp->content_type);
	free(resp->cache_control);
	memset(resp, 0, sizeof(*resp));
}

/* ---- encoding ---- */

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_' || c == '~';
}

char *nl_url_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0, len, i;
	char *out, *p;

	if (s == NULL)
		return NULL;
	len = strlen(s);
	if (len > SIZE_MAX / 3 - 1)
		return NULL;
	for (i = 0; i < len; i++)
		n += unreserved((unsigned char)s[i]) ? 1 : 3;
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (p = out, i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c)) {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 0xf];
		}
	}
	*p = '\0';
	return out;
}

int nl_form_add(char **form, const char *name, const char *value)
{
	char *ename = NULL, *evalue = NULL, *nform = NULL;
	size_t oldlen, nlen, vlen;
	int r = NL_ERR_NOMEM;

	if (form == NULL || name == NULL || value == NULL)
		return NL_ERR_INTERNAL;
	if ((ename = nl_url_encode(name)) == NULL || (evalue = nl_url_encode(value)) == NULL)
		goto out;
	oldlen = *form != NULL ? strlen(*form) : 0;
	nlen = strlen(ename);
	vlen = strlen(evalue);
	if (oldlen > SIZE_MAX - 3 - nlen || vlen > SIZE_MAX - 3 - nlen - oldlen)
		goto out;
	if ((nform = malloc(oldlen + 1 + nlen + 1 + vlen + 1)) == NULL)
		goto out;
	snprintf(nform, oldlen + nlen + vlen + 3, "%s%s%s=%s", oldlen ? *form : "", oldlen ? "&" : "", ename,
	         evalue);
	nl_free_secret(*form);
	*form = nform;
	r = 0;
out:
	nl_free_secret(ename);
	nl_free_secret(evalue);
	return r;
}
