/* The bridge web listener on libmicrohttpd: the code entry page (/d), the hop to the provider's
 * /authorize, and the redirect_uri callback that exchanges the code and finishes the flow. One
 * thread per connection, because a callback blocks for up to http_timeout on the exchange. */
#include "config.h"
#include "bridge.h"
#include "signin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nl_b64.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "pages.h"

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_result;
#else
typedef int mhd_result;
#endif

#define BRIDGE_BODY_MAX       4096 /* a POST body: one short form field */
#define BRIDGE_CODE_MAX       64   /* what we keep of a typed code */
#define BRIDGE_PARAM_MAX      4096 /* state / code / error query values */
#define BRIDGE_CB_PARAMS_MAX  32   /* query parameters of a callback */
#define BRIDGE_CONN_LIMIT     256  /* connections (threads) at once */
#define BRIDGE_CONN_PER_IP    32   /* a hospital Wi-Fi NAT puts many phones behind one address */
#define BRIDGE_CONN_TIMEOUT   30   /* seconds of silence before a connection is dropped */
#define BRIDGE_ORIGIN_MAX     256
#define BRIDGE_TLS_PRIORITIES "NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1"
/* The browser binding (doc/threat-model.md, nhslogind(8)): a random value in a __Host- cookie,
 * which only this origin can set and which a browser sends to it alone. Chromium and curl keep a
 * Secure cookie over plain http from a loopback address, so the name is the same on the test
 * listener. */
#define BRIDGE_COOKIE     "__Host-nhslogin"
#define BRIDGE_COOKIE_LEN 43   /* base64url of 32 random bytes */
#define BRIDGE_COOKIE_AGE 3600 /* seconds; no flow lives longer */
#define BRIDGE_TOKEN_LEN  43   /* base64url of an HMAC-SHA256 */
#define BRIDGE_ANSWER_MAX 16

struct nl_bridge {
	const struct nl_config *cfg;
	struct nl_flows *fl;
	struct nl_oidc *oidc;
	struct nl_tokcache *tc;
	struct MHD_Daemon *mhd;
	uint16_t port;
	bool tls;
	char *cb_path;  /* the path of redirect_uri */
	char *base_url; /* what the phone uses, without a trailing '/' */
	char *cert_pem;
	char *key_pem; /* secret */
	size_t key_len;
	pthread_mutex_t mu;                    /* guards authz_origin */
	char issuer_origin[BRIDGE_ORIGIN_MAX]; /* "" if unusable */
	char authz_origin[BRIDGE_ORIGIN_MAX];  /* learned from the first authorize URL */
	unsigned char csrf_key[32];            /* secret: keys the confirmation form's token */
};

/* One request's state between libmicrohttpd's calls. */
struct req {
	bool started;
	struct MHD_PostProcessor *pp;
	size_t body_len;
	char code[BRIDGE_CODE_MAX + 1]; /* the form's code field */
	size_t code_len;
	bool code_too_long;
	/* the confirmation form's fields; confirm_bad when one is too long */
	char flow[NL_FLOW_ID_LEN], token[BRIDGE_TOKEN_LEN + 1], answer[BRIDGE_ANSWER_MAX];
	size_t flow_len, token_len, answer_len;
	bool confirm_bad;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- URLs and origins ---- */

/* "scheme://host[:port]" of url into out, or "" if it has characters a CSP source cannot hold. */
static void url_origin(const char *url, char *out, size_t outlen)
{
	const char *p, *end;
	size_t n;

	out[0] = '\0';
	if (url == NULL || (p = strstr(url, "://")) == NULL)
		return;
	end = p + 3 + strcspn(p + 3, "/?#");
	n = (size_t)(end - url);
	if (n >= outlen || end == p + 3)
		return;
	for (const char *c = url; c < end; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      strchr(".-:/[]", *c) != NULL))
			return;
	memcpy(out, url, n);
	out[n] = '\0';
}

/* The path of redirect_uri ("/" if it has none). New string, or NULL. */
static char *url_path(const char *url)
{
	const char *p = url != NULL ? strstr(url, "://") : NULL;
	size_t n;

	if (p == NULL)
		return NULL;
	p += 3;
	p += strcspn(p, "/?#");
	if (*p != '/')
		return strdup("/");
	n = strcspn(p, "?#");
	return strndup(p, n);
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
	return false;
}

/* HOST:PORT or [V6]:PORT into a resolved address (numeric port). */
static int parse_listen(const char *listen, struct addrinfo **out, char *host, size_t hostlen, char *err,
                        size_t errlen)
{
	struct addrinfo hints = {0};
	const char *colon, *h = listen;
	size_t hlen;
	int rc;

	if (listen == NULL || (colon = strrchr(listen, ':')) == NULL || colon[1] == '\0') {
		set_err(err, errlen, "bridge: listen must be HOST:PORT");
		return NL_ERR_CONFIG;
	}
	hlen = (size_t)(colon - listen);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= hostlen) {
		set_err(err, errlen, "bridge: listen must be HOST:PORT");
		return NL_ERR_CONFIG;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if ((rc = getaddrinfo(host, colon + 1, &hints, out)) != 0) {
		set_err(err, errlen, "bridge: listen %s: %s", listen, gai_strerror(rc));
		return NL_ERR_CONFIG;
	}
	return 0;
}

/* ---- responses ---- */

static void csp_header(struct nl_bridge *b, char *out, size_t len)
{
	char authz[BRIDGE_ORIGIN_MAX];

	pthread_mutex_lock(&b->mu);
	memcpy(authz, b->authz_origin, sizeof(authz));
	pthread_mutex_unlock(&b->mu);
	/* form-action governs the redirect after POST /d too, so it names the provider */
	snprintf(out, len,
	         "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'%s%s%s%s; "
	         "frame-ancestors 'none'; base-uri 'none'",
	         b->issuer_origin[0] != '\0' ? " " : "", b->issuer_origin,
	         authz[0] != '\0' && strcmp(authz, b->issuer_origin) != 0 ? " " : "",
	         authz[0] != '\0' && strcmp(authz, b->issuer_origin) != 0 ? authz : "");
}

/* Queue html (taken; NULL means out of memory) with status and the security headers on every
 * page; location (may be NULL) makes it a redirect; set_cookie (may be NULL) is a Set-Cookie value
 * (a secret: never logged). */
static mhd_result send_page_c(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url, unsigned status, char *html, const char *location,
                              const char *set_cookie)
{
	static char oom[] = "<!DOCTYPE html><title>Error</title><p>Something went wrong. Try again.</p>";
	struct MHD_Response *resp;
	char csp[3 * BRIDGE_ORIGIN_MAX];
	mhd_result ret;

	if (html == NULL) {
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		location = NULL;
		resp = MHD_create_response_from_buffer(strlen(oom), oom, MHD_RESPMEM_PERSISTENT);
	} else {
		resp = MHD_create_response_from_buffer(strlen(html), html, MHD_RESPMEM_MUST_FREE);
	}
	if (resp == NULL) {
		free(html);
		return MHD_NO;
	}
	csp_header(b, csp, sizeof(csp));
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8") !=
	        MHD_YES ||
	    MHD_add_response_header(resp, "Content-Security-Policy", csp) != MHD_YES ||
	    MHD_add_response_header(resp, "X-Frame-Options", "DENY") != MHD_YES ||
	    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") != MHD_YES ||
	    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
	    (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST") != MHD_YES) ||
	    (b->tls &&
	     MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000") != MHD_YES) ||
	    (location != NULL &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location) != MHD_YES) ||
	    (set_cookie != NULL &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, set_cookie) != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	/* the path only: query strings carry codes and never reach a log */
	nl_debug("bridge: %s %.128s -> %u", method, url, status);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static mhd_result send_page(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                            const char *url, unsigned status, char *html, const char *location)
{
	return send_page_c(b, conn, method, url, status, html, location, NULL);
}

static mhd_result send_message(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                               const char *url, unsigned status, const char *title, const char *text, bool ok,
                               bool again)
{
	return send_page(b, conn, method, url, status, nl_page_message(title, text, ok, again), NULL);
}

/* ---- the code entry page ---- */

/* The phone's address, for the wrong-code limit and the log. Behind a proxy listed in
 * [bridge] trusted_proxies it is taken from X-Forwarded-For or Forwarded (RFC 7239): the
 * rightmost address of the chain that is not itself a trusted proxy - what the last trusted hop
 * saw, which no one to its left can choose. Everything else is the TCP peer: no trusted proxy, no
 * header, a hop that does not parse, a chain too long, or both headers naming different clients
 * (a proxy sets one; the other came from the client). */
#define FWD_LINES 16 /* header lines of each kind kept (the last ones) */
#define FWD_HOPS  32 /* addresses of a chain looked at, from the right */
#define FWD_ENTRY 96 /* longest hop */

struct fwd_lines {
	const char *xff[FWD_LINES], *fwd[FWD_LINES];
	size_t nxff, nfwd;
};

struct hop_addr {
	int family;
	unsigned char a[16];
};

static void keep_line(const char **lines, size_t *n, const char *v)
{
	if (*n == FWD_LINES) {
		memmove(lines, lines + 1, (FWD_LINES - 1) * sizeof(*lines));
		(*n)--;
	}
	lines[(*n)++] = v;
}

static mhd_result collect_fwd(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct fwd_lines *f = cls;

	(void)kind;
	if (key != NULL && value != NULL && strcasecmp(key, "X-Forwarded-For") == 0)
		keep_line(f->xff, &f->nxff, value);
	else if (key != NULL && value != NULL && strcasecmp(key, "Forwarded") == 0)
		keep_line(f->fwd, &f->nfwd, value);
	return MHD_YES;
}

/* One node: "1.2.3.4", "1.2.3.4:port", "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:port". */
static bool parse_node(const char *s, struct hop_addr *h)
{
	char buf[FWD_ENTRY];
	const char *end;
	size_t n;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL || (end[1] != '\0' && end[1] != ':'))
			return false;
		n = (size_t)(end - s - 1);
		if (n >= sizeof(buf))
			return false;
		memcpy(buf, s + 1, n);
		buf[n] = '\0';
		h->family = AF_INET6;
		return inet_pton(AF_INET6, buf, h->a) == 1;
	}
	h->family = AF_INET;
	if (inet_pton(AF_INET, s, h->a) == 1)
		return true;
	h->family = AF_INET6;
	if (inet_pton(AF_INET6, s, h->a) == 1)
		return true;
	if ((end = strchr(s, ':')) == NULL || strchr(end + 1, ':') != NULL ||
	    (size_t)(end - s) >= sizeof(buf))
		return false;
	memcpy(buf, s, (size_t)(end - s));
	buf[end - s] = '\0';
	h->family = AF_INET;
	return inet_pton(AF_INET, buf, h->a) == 1;
}

/* A Forwarded element's for= value (RFC 7239 4: token or quoted-string) into out. */
static bool forwarded_for(const char *e, char *out, size_t outlen)
{
	const char *p = e;

	while (*p != '\0') {
		size_t n = strcspn(p, ";");
		const char *v;

		while (*p == ' ' || *p == '\t')
			p++, n--;
		if (n > 4 && strncasecmp(p, "for=", 4) == 0) {
			v = p + 4;
			n -= 4;
			while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
				n--;
			if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
				v++;
				n -= 2;
			}
			if (n == 0 || n >= outlen || memchr(v, '"', n) != NULL || memchr(v, '\\', n) != NULL)
				return false;
			memcpy(out, v, n);
			out[n] = '\0';
			return true;
		}
		p += n;
		if (*p == ';')
			p++;
	}
	return false;
}

/* The hops of the header lines, left to right, split at commas (outside quotes for Forwarded);
 * the last FWD_HOPS of them in hops[] (n), *more when there were others before them. */
static bool split_hops(const char *const *lines, size_t nlines, bool forwarded, char hops[][FWD_ENTRY],
                       size_t *n, bool *more)
{
	*n = 0;
	*more = false;
	for (size_t i = 0; i < nlines; i++) {
		const char *p = lines[i];
		while (*p != '\0') {
			const char *start = p;
			bool quoted = false;
			size_t len;

			for (; *p != '\0' && (quoted || *p != ','); p++)
				if (forwarded && *p == '"')
					quoted = !quoted;
			if (quoted)
				return false;
			while (start < p && (*start == ' ' || *start == '\t'))
				start++;
			len = (size_t)(p - start);
			while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
				len--;
			if (*p == ',')
				p++;
			if (len == 0)
				continue; /* an empty list element (RFC 9110 5.6.1) */
			if (len >= FWD_ENTRY)
				return false;
			if (*n == FWD_HOPS) {
				memmove(hops[0], hops[1], (FWD_HOPS - 1) * FWD_ENTRY);
				(*n)--;
				*more = true;
			}
			memcpy(hops[*n], start, len);
			hops[(*n)++][len] = '\0';
		}
	}
	return true;
}

static bool format_addr(const struct hop_addr *h, char *out, size_t len)
{
	if (h->family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)h->a))
		return inet_ntop(AF_INET, h->a + 12, out, (socklen_t)len) != NULL;
	return inet_ntop(h->family, h->a, out, (socklen_t)len) != NULL;
}

/* The client one kind of header names: true with out set, false if it names none we can use. */
static bool chain_client(const struct nl_config *cfg, const char *const *lines, size_t nlines, bool forwarded,
                         char *out, size_t len)
{
	char hops[FWD_HOPS][FWD_ENTRY], node[FWD_ENTRY];
	struct hop_addr h = {0};
	size_t n;
	bool more;

	if (nlines == 0 || !split_hops(lines, nlines, forwarded, hops, &n, &more) || n == 0)
		return false;
	for (size_t i = n; i-- > 0;) {
		if (forwarded && !forwarded_for(hops[i], node, sizeof(node)))
			return false;
		if (!parse_node(forwarded ? node : hops[i], &h))
			return false;
		if (!nl_cidr_match(cfg->trusted_proxies, cfg->n_trusted_proxies, h.family, h.a))
			return format_addr(&h, out, len);
	}
	/* Every hop a trusted proxy: the first of them is the client, if the chain was whole. */
	return !more && format_addr(&h, out, len);
}

static void client_address(const struct nl_bridge *b, struct MHD_Connection *conn, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;
	struct fwd_lines f = {{NULL}, {NULL}, 0, 0};
	struct hop_addr peer = {0};
	char x[INET6_ADDRSTRLEN], w[INET6_ADDRSTRLEN];
	bool hx, hw;

	snprintf(out, len, "?");
	if (sa == NULL || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return;
	peer.family = sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(peer.a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	else
		memcpy(peer.a, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
	if (!format_addr(&peer, out, len)) {
		snprintf(out, len, "?");
		return;
	}
	if (!nl_cidr_match(b->cfg->trusted_proxies, b->cfg->n_trusted_proxies, peer.family, peer.a))
		return;
	MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_fwd, &f);
	hx = chain_client(b->cfg, f.xff, f.nxff, false, x, sizeof(x));
	hw = chain_client(b->cfg, f.fwd, f.nfwd, true, w, sizeof(w));
	if ((f.nxff > 0 && !hx) || (f.nfwd > 0 && !hw) || (hx && hw && strcmp(x, w) != 0)) {
		nl_debug(
		    "bridge: forwarding headers from proxy %s name no usable client; counted as the proxy",
		    out);
		return;
	}
	if (hx || hw)
		snprintf(out, len, "%s", hx ? x : w);
}

/* Remember the provider's /authorize origin for form-action (it may differ from the issuer's). */
static void learn_authz_origin(struct nl_bridge *b, const char *url)
{
	char origin[BRIDGE_ORIGIN_MAX];

	url_origin(url, origin, sizeof(origin));
	if (origin[0] == '\0')
		return;
	pthread_mutex_lock(&b->mu);
	memcpy(b->authz_origin, origin, sizeof(origin));
	pthread_mutex_unlock(&b->mu);
}

/* ---- the confirmation page ---- */

static bool b64url_exact(const char *s, size_t n)
{
	return s != NULL && strlen(s) == n &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

/* The request's binding cookie, or NULL when it has none that could be ours. */
static const char *request_cookie(struct MHD_Connection *conn)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, BRIDGE_COOKIE);

	return b64url_exact(v, BRIDGE_COOKIE_LEN) ? v : NULL;
}

/* A flow id as nl_flows hands them out: "f-" and 16 hex digits. */
static bool flow_id_ok(const char *id)
{
	return strlen(id) == NL_FLOW_ID_LEN - 2 && strncmp(id, "f-", 2) == 0 &&
	       strspn(id + 2, "0123456789abcdef") == NL_FLOW_ID_LEN - 4;
}

/* What the flow keeps of a browser: the SHA-256 of its cookie value. */
static int browser_hash(const char *cookie, unsigned char out[NL_FLOW_BROWSER_LEN])
{
	unsigned int n = 0;

	return EVP_Digest(cookie, strlen(cookie), out, &n, EVP_sha256(), NULL) == 1 &&
	               n == NL_FLOW_BROWSER_LEN
	           ? 0
	           : NL_ERR_INTERNAL;
}

/* The confirmation form's anti-CSRF token: HMAC-SHA256 under the bridge's key of the flow id and
 * the cookie value, so only a page shown to the browser holding that cookie has it for that flow,
 * and two tabs of one browser agree. out gets BRIDGE_TOKEN_LEN characters. */
static int form_token(const struct nl_bridge *b, const char *id, const char *cookie,
                      char out[BRIDGE_TOKEN_LEN + 1])
{
	unsigned char msg[64 + NL_FLOW_ID_LEN + BRIDGE_COOKIE_LEN], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *t = NULL;
	int n, r = NL_ERR_INTERNAL;

	n = snprintf((char *)msg, sizeof(msg), "nhslogin-confirm|%s|%s", id, cookie);
	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    HMAC(EVP_sha256(), b->csrf_key, (int)sizeof(b->csrf_key), msg, (size_t)n, md, &mdlen) == NULL ||
	    mdlen != 32 || nl_b64url_encode(md, mdlen, &t) != 0)
		goto out;
	if (strlen(t) == BRIDGE_TOKEN_LEN) {
		memcpy(out, t, BRIDGE_TOKEN_LEN + 1);
		r = 0;
	}
out:
	nl_free_secret(t);
	nl_wipe(msg, sizeof(msg));
	nl_wipe(md, sizeof(md));
	return r;
}

/* src for a page, printable ASCII only (a caller-supplied field may hold anything). */
static void printable(const char *src, char *dst, size_t len)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < len; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || (unsigned char)src[i] >= 0x7f ? '?' : src[i];
	dst[i] = '\0';
}

static bool one_of(const char *s, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

/* The kind of access in words, from the flow's PAM service and remote host. */
static void describe_access(const char *service, const char *rhost, char *out, size_t len)
{
	static const char *const gui[] = {"gdm-password",
	                                  "gdm-fingerprint",
	                                  "gdm-smartcard",
	                                  "gdm",
	                                  "lightdm",
	                                  "sddm",
	                                  "xdm",
	                                  "kdm",
	                                  "lxdm",
	                                  "slim",
	                                  NULL};
	static const char *const lock[] = {"gnome-screensaver",
	                                   "xscreensaver",
	                                   "kde",
	                                   "kscreensaver",
	                                   "kscreenlocker",
	                                   "i3lock",
	                                   "swaylock",
	                                   "xlock",
	                                   "xsecurelock",
	                                   "mate-screensaver",
	                                   "cinnamon-screensaver",
	                                   "xfce4-screensaver",
	                                   "light-locker",
	                                   "physlock",
	                                   "vlock",
	                                   NULL};
	static const char *const sudo[] = {"sudo", "sudo-i", NULL};
	static const char *const su[] = {"su", "su-l", "runuser", "runuser-l", NULL};

	if (strcmp(service, "sshd") == 0)
		snprintf(out, len, rhost[0] != '\0' ? "SSH from %s" : "SSH", rhost);
	else if (one_of(service, sudo))
		snprintf(out, len, "sudo");
	else if (one_of(service, su))
		snprintf(out, len, "su");
	else if (strcmp(service, "login") == 0)
		snprintf(out, len, rhost[0] != '\0' ? "a remote login from %s" : "the console", rhost);
	else if (one_of(service, gui))
		snprintf(out, len, "the graphical login");
	else if (one_of(service, lock))
		snprintf(out, len, "unlocking the screen");
	else if (strcmp(service, "polkit-1") == 0)
		snprintf(out, len, "an administrator's approval (polkit)");
	else
		snprintf(out, len, rhost[0] != '\0' ? "a sign-in from %s" : "a sign-in at this computer",
		         rhost);
}

/* "40 seconds ago", "3 minutes ago". */
static void started_ago(time_t secs, char *out, size_t len)
{
	long s = secs > 0 ? (long)secs : 0;

	if (s < 2)
		snprintf(out, len, "just now");
	else if (s < 120)
		snprintf(out, len, "%ld seconds ago", s);
	else
		snprintf(out, len, "%ld minutes ago", s / 60);
}

/* This computer's name for the page: its host name. */
static void computer_name(char *out, size_t len)
{
	char h[256] = "";

	if (gethostname(h, sizeof(h) - 1) != 0)
		h[0] = '\0';
	h[sizeof(h) - 1] = '\0';
	printable(h[0] != '\0' ? h : "this computer", out, len);
}

static mhd_result gone_page(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                            const char *url)
{
	return send_message(b, conn, method, url, MHD_HTTP_GONE,
	                    "This code has expired - start again at your workstation",
	                    "Codes only work for a few minutes. Start signing in again at your workstation "
	                    "to get a new code.",
	                    false, false);
}

static mhd_result broken_page(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url)
{
	return send_message(b, conn, method, url, MHD_HTTP_SERVICE_UNAVAILABLE, "Sign-in is not available",
	                    "Something went wrong on this server. Try again in a minute.", false, true);
}

/* The facts of flow id from its own record, a __Host- cookie (the browser's, if it has one) and a
 * form bound to both. */
static mhd_result confirm_page(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                               const char *url, const char *id, const char *client)
{
	struct nl_flow_view v;
	char cookie[BRIDGE_COOKIE_LEN + 1] = "", token[BRIDGE_TOKEN_LEN + 1] = "", *fresh = NULL;
	char setc[BRIDGE_COOKIE_LEN + 128], computer[256], rhost[NL_FIELD_MAX], svc[NL_FIELD_MAX];
	char tty[NL_FIELD_MAX], user[NL_USER_MAX + 1], access[NL_FIELD_MAX + 64],
	    service[2 * NL_FIELD_MAX + 16];
	char started[64];
	const char *have = request_cookie(conn);
	mhd_result ret;
	int r;

	if ((r = nl_flows_view(b->fl, id, &v)) != 0)
		return r == NL_ERR_EXPIRED || r == NL_ERR_NOT_FOUND ? gone_page(b, conn, method, url)
		                                                    : broken_page(b, conn, method, url);
	if (have == NULL && (nl_random_token(32, &fresh) != 0 || strlen(fresh) != BRIDGE_COOKIE_LEN)) {
		nl_free_secret(fresh);
		nl_wipe(&v, sizeof(v));
		return broken_page(b, conn, method, url);
	}
	snprintf(cookie, sizeof(cookie), "%s", have != NULL ? have : fresh);
	nl_free_secret(fresh);
	if (form_token(b, v.id, cookie, token) != 0) {
		nl_wipe(cookie, sizeof(cookie));
		nl_wipe(&v, sizeof(v));
		return broken_page(b, conn, method, url);
	}
	snprintf(setc, sizeof(setc), BRIDGE_COOKIE "=%s; Path=/; Max-Age=%d; Secure; HttpOnly; SameSite=Lax",
	         cookie, BRIDGE_COOKIE_AGE);
	printable(v.user, user, sizeof(user));
	printable(v.rhost, rhost, sizeof(rhost));
	printable(v.service, svc, sizeof(svc));
	printable(v.tty, tty, sizeof(tty));
	computer_name(computer, sizeof(computer));
	describe_access(svc, rhost, access, sizeof(access));
	snprintf(service, sizeof(service), "%s%s%s", svc[0] != '\0' ? svc : "(none given)",
	         tty[0] != '\0' ? ", terminal " : "", tty);
	started_ago(nl_now() - v.started_at, started, sizeof(started));
	struct nl_confirm pc = {.account = user,
	                        .computer = computer,
	                        .access = access,
	                        .service = service,
	                        .started = started,
	                        .code = v.user_code,
	                        .caller_supplied = v.caller_supplied,
	                        .flow_id = v.id,
	                        .token = token};
	nl_info("bridge: flow %s: code accepted from %s, confirmation page shown", v.id, client);
	ret = send_page_c(b, conn, method, url, MHD_HTTP_OK, nl_page_confirm(&pc), NULL, setc);
	nl_wipe(cookie, sizeof(cookie));
	nl_wipe(token, sizeof(token));
	nl_wipe(setc, sizeof(setc));
	nl_wipe(&v, sizeof(v));
	return ret;
}

/* "Continue to NHS login" from the bound browser: the 302 to /authorize. */
static mhd_result to_authorize(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                               const char *url, const struct nl_flow_authz *a, const char *client)
{
	char err[256] = "", *to = NULL;
	mhd_result ret;
	int r;

	if ((r = nl_oidc_ready(b->oidc, err, sizeof(err))) != 0 ||
	    (r = nl_oidc_authorize_url(b->oidc, a->state, a->nonce,
	                               nl_oidc_pkce_s256(b->oidc) ? a->code_challenge : NULL, &to)) != 0) {
		nl_err("bridge: flow %s: NHS login not reachable: %s", a->id,
		       err[0] != '\0' ? err : nl_strerror(r));
		return send_message(
		    b, conn, method, url, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "NHS login cannot be reached right now",
		    "Try again in a minute. If this keeps happening, use another way to sign in "
		    "and tell your IT service desk.",
		    false, true);
	}
	nl_info("bridge: flow %s: confirmed from %s, on to NHS login", a->id, client);
	learn_authz_origin(b, to);
	ret =
	    send_page(b, conn, method, url, MHD_HTTP_FOUND,
	              nl_page_message("Continue to NHS login", "Taking you to NHS login.", true, false), to);
	nl_free_secret(to);
	return ret;
}

static mhd_result refuse_answer(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                                const char *url, const char *id, const char *client)
{
	int r = nl_flows_refuse(b->fl, id, client);

	if (r == NL_ERR_EXPIRED || r == NL_ERR_NOT_FOUND)
		return gone_page(b, conn, method, url);
	if (r != 0)
		return broken_page(b, conn, method, url);
	return send_message(b, conn, method, url, MHD_HTTP_OK, "Sign-in stopped",
	                    "Nothing was signed in, and the computer stays locked. If someone sent you this "
	                    "link or asked you for a code, tell your IT service desk.",
	                    false, false);
}

/* POST /d/confirm: the confirmation form, from the browser its token was made for. */
static mhd_result handle_confirm(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                                 const char *url, struct req *rq)
{
	const char *cookie = request_cookie(conn);
	char client[NI_MAXHOST], want[BRIDGE_TOKEN_LEN + 1] = "";
	unsigned char browser[NL_FLOW_BROWSER_LEN];
	struct nl_flow_authz a = {0};
	bool refuse = strcmp(rq->answer, "refuse") == 0, token_ok;
	mhd_result ret;
	int r;

	client_address(b, conn, client, sizeof(client));
	if (rq->confirm_bad || !flow_id_ok(rq->flow) || (!refuse && strcmp(rq->answer, "continue") != 0))
		return send_message(b, conn, method, url, MHD_HTTP_BAD_REQUEST, "This page could not be used",
		                    "Enter the code shown on your workstation screen again.", false, true);
	if (cookie == NULL) {
		nl_notice("bridge: flow %s: confirmation from %s without the sign-in cookie: refused",
		          rq->flow, client);
		return send_message(
		    b, conn, method, url, MHD_HTTP_FORBIDDEN, "Your browser did not keep the sign-in cookie",
		    "This page needs a cookie so that only this browser can finish your sign-in. Allow "
		    "cookies for this site, then enter the code shown on your workstation screen again.",
		    false, true);
	}
	token_ok = form_token(b, rq->flow, cookie, want) == 0 && nl_ct_streq(want, rq->token);
	nl_wipe(want, sizeof(want));
	if (!token_ok) {
		nl_notice(
		    "bridge: flow %s: confirmation from %s with a token not made for its cookie: refused",
		    rq->flow, client);
		return send_message(b, conn, method, url, MHD_HTTP_FORBIDDEN, "This page has expired",
		                    "Enter the code shown on your workstation screen again.", false, true);
	}
	if (refuse)
		return refuse_answer(b, conn, method, url, rq->flow, client);
	if (browser_hash(cookie, browser) != 0)
		return broken_page(b, conn, method, url);
	r = nl_flows_bind_browser(b->fl, rq->flow, browser, &a);
	nl_wipe(browser, sizeof(browser));
	switch (r) {
	case 0:
		ret = to_authorize(b, conn, method, url, &a, client);
		nl_flow_authz_clear(&a);
		return ret;
	case NL_ERR_PERM:
		nl_notice("bridge: flow %s: continue from %s in a second browser: refused (another browser "
		          "continued first)",
		          rq->flow, client);
		return send_message(
		    b, conn, method, url, MHD_HTTP_CONFLICT,
		    "This sign-in is being finished in another browser",
		    "Someone has already continued this sign-in in another browser. If that was not you, "
		    "do not sign in: start again at your workstation and tell your IT service desk.",
		    false, false);
	case NL_ERR_EXPIRED:
	case NL_ERR_NOT_FOUND:
		return gone_page(b, conn, method, url);
	default:
		return broken_page(b, conn, method, url);
	}
}

/* The phone sent a code (form or QR link): the confirmation page, or a page saying what is wrong. */
static mhd_result handle_code(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url, const char *typed)
{
	struct nl_flow_authz a = {0};
	char client[NI_MAXHOST];
	mhd_result ret;
	int r;

	if (typed == NULL || typed[0] == '\0')
		return send_page(b, conn, method, url, MHD_HTTP_BAD_REQUEST,
		                 nl_page_form(NULL, "Enter the code shown on your workstation screen."),
		                 NULL);
	client_address(b, conn, client, sizeof(client));
	r = nl_flows_begin_authz(b->fl, typed, client, &a);
	switch (r) {
	case 0:
		break;
	case NL_ERR_NOT_FOUND:
	case NL_ERR_INVALID:
		return send_page(
		    b, conn, method, url, MHD_HTTP_BAD_REQUEST,
		    nl_page_form(strlen(typed) <= 20 ? typed : NULL,
		                 "That code was not recognised - check the code on your screen."),
		    NULL);
	case NL_ERR_LIMIT:
		return send_message(b, conn, method, url, MHD_HTTP_TOO_MANY_REQUESTS,
		                    "Too many attempts - wait 10 minutes",
		                    "Too many wrong codes were entered. Wait 10 minutes, then enter the code "
		                    "shown on your workstation screen.",
		                    false, false);
	case NL_ERR_EXPIRED:
		return gone_page(b, conn, method, url);
	default:
		nl_err("bridge: cannot start sign-in from a code: %s", nl_strerror(r));
		return broken_page(b, conn, method, url);
	}
	/* The flow's own record first, never straight on to NHS login (RFC 8628 5.4). */
	ret = confirm_page(b, conn, method, url, a.id, client);
	nl_flow_authz_clear(&a);
	return ret;
}

static mhd_result handle_form(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url, struct req *rq)
{
	const char *code;

	if (strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
		if (rq->code_too_long)
			return send_page(b, conn, method, url, MHD_HTTP_BAD_REQUEST,
			                 nl_page_form(NULL,
			                              "That code was not recognised - check the code on your "
			                              "screen."),
			                 NULL);
		return handle_code(b, conn, method, url, rq->code);
	}
	/* GET /d?code=XXXXXXXX (the QR code) goes straight on; HEAD never changes anything */
	code = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "code");
	if (code != NULL && code[0] != '\0' && strcmp(method, MHD_HTTP_METHOD_GET) == 0)
		return handle_code(b, conn, method, url, strlen(code) <= BRIDGE_CODE_MAX ? code : "-");
	return send_page(b, conn, method, url, MHD_HTTP_OK, nl_page_form(NULL, NULL), NULL);
}

/* ---- the callback ---- */

/* An OAuth error word for the log: [a-z_] only, else "other". */
static const char *error_word(const char *e)
{
	size_t i;

	for (i = 0; e[i] != '\0'; i++)
		if (i >= 64 || !((e[i] >= 'a' && e[i] <= 'z') || e[i] == '_'))
			return "other";
	return i > 0 ? e : "other";
}

/* Number matching: signed in at NHS login; the terminal must now type this number. The person at
 * the terminal reads it here; a phishing victim, who is not at the terminal, cannot finish. */
static mhd_result number_page(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url, unsigned number)
{
	char text[512];

	snprintf(text, sizeof(text),
	         "You have signed in with NHS login. To finish, type this number at the computer: %u. "
	         "If you are not at the computer where this sign-in started, do not type it anywhere: "
	         "someone may be trying to use your account, so tell your IT service desk.",
	         number);
	return send_message(b, conn, method, url, MHD_HTTP_OK, "Type the number at the computer", text, true,
	                    false);
}

/* How the sign-in ended, as the phone's result page says it (the texts are nl_reason.c's). */
static mhd_result result_page(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url, enum nl_reason reason)
{
	const struct nl_reason_row *row = nl_reason_row(reason);

	return send_message(b, conn, method, url, (unsigned)row->phone_status, row->phone_title, row->phone_text,
	                    row->phone_ok, false);
}

/* The authorization response in the callback's query (RFC 6749 4.1.2, 4.1.2.1; RFC 9207), as
 * libmicrohttpd split and unescaped it. Values point into libmicrohttpd's copy of the request. */
struct cb_params {
	const char *state, *code, *error, *iss;
	bool has_iss;
	const char *names[BRIDGE_CB_PARAMS_MAX];
	size_t lens[BRIDGE_CB_PARAMS_MAX], n;
	const char *repeated; /* RFC 6749 3.1: the first name seen twice (a word we know), or NULL */
	bool state_repeated, too_many, nul;
};

/* A parameter name fit for the log: one of the response's own, else a neutral word. */
static const char *param_word(const char *key, size_t len)
{
	static const char *const known[] = {
	    "code", "state", "iss", "error", "error_description", "error_uri", "session_state", "scope"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == len && memcmp(known[i], key, len) == 0)
			return known[i];
	return "a parameter";
}

static mhd_result on_cb_param(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                              const char *value, size_t value_size)
{
	struct cb_params *p = cls;
	const char *v = value != NULL ? value : "";

	(void)kind;
	if (p->n >= BRIDGE_CB_PARAMS_MAX) {
		p->too_many = true;
		return MHD_NO;
	}
	for (size_t i = 0; i < p->n; i++)
		if (p->lens[i] == key_size && memcmp(p->names[i], key, key_size) == 0 && p->repeated == NULL)
			p->repeated = param_word(key, key_size);
	p->names[p->n] = key;
	p->lens[p->n++] = key_size;
	/* "%00" would make a value end early for strcmp: "iss=https://x%00.evil" is not the issuer */
	if (value != NULL && strlen(value) != value_size)
		p->nul = true;
	if (key_size == 5 && memcmp(key, "state", 5) == 0) {
		p->state_repeated = p->state_repeated || p->state != NULL;
		p->state = v;
	} else if (key_size == 4 && memcmp(key, "code", 4) == 0 && p->code == NULL) {
		p->code = v;
	} else if (key_size == 5 && memcmp(key, "error", 5) == 0 && p->error == NULL) {
		p->error = v;
	} else if (key_size == 3 && memcmp(key, "iss", 3) == 0 && !p->has_iss) {
		p->iss = v;
		p->has_iss = true;
	}
	return MHD_YES;
}

/* Why a callback for a known flow is not an authorization response we may act on, or NULL.
 * RFC 6749 3.1: no parameter twice. RFC 9207 2.4: iss, when present, is exactly the issuer, and
 * it must be present when discovery says the provider sends it. */
static const char *cb_params_refused(struct nl_bridge *b, const struct cb_params *p, char *why, size_t whylen)
{
	if (p->repeated != NULL) {
		snprintf(why, whylen, "callback repeats %s (RFC 6749 3.1)", p->repeated);
		return why;
	}
	if (p->nul) {
		snprintf(why, whylen, "callback has a NUL byte in a value");
		return why;
	}
	if (p->has_iss && (b->cfg->env.issuer == NULL || strcmp(p->iss, b->cfg->env.issuer) != 0)) {
		snprintf(why, whylen, "callback iss is not the issuer (RFC 9207)");
		return why;
	}
	if (!p->has_iss && nl_oidc_iss_param_required(b->oidc)) {
		snprintf(why, whylen, "callback without the iss that discovery promises (RFC 9207)");
		return why;
	}
	return NULL;
}

/* The flow state names, if this browser is the one that continued it (NL_ERR_PERM otherwise: the
 * flow goes on untouched, its code unexchanged). */
static int take_state(struct nl_bridge *b, struct MHD_Connection *conn, const char *state,
                      struct nl_flow_exchange *x)
{
	const char *cookie = request_cookie(conn);
	unsigned char browser[NL_FLOW_BROWSER_LEN];
	char client[NI_MAXHOST];
	bool have = cookie != NULL && browser_hash(cookie, browser) == 0;
	int r;

	client_address(b, conn, client, sizeof(client));
	r = nl_flows_take_state_bound(b->fl, state, have ? browser : NULL, client, x);
	nl_wipe(browser, sizeof(browser));
	return r;
}

static mhd_result handle_callback(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                                  const char *url)
{
	struct cb_params p;
	const char *state, *code, *error;
	struct nl_flow_exchange x = {0};
	struct nl_grant_result res = {0};
	enum nl_outcome outcome = NL_OUT_UNAVAILABLE;
	enum nl_reason reason;
	char err[256] = "";
	unsigned number;
	int r;

	memset(&p, 0, sizeof(p));
	(void)MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, on_cb_param, &p);
	state = p.state, code = p.code, error = p.error;
	if (p.state_repeated || p.too_many)
		nl_notice("bridge: callback %s; refused without looking up a flow",
		          p.too_many ? "with too many parameters" : "repeats state (RFC 6749 3.1)");
	if (p.state_repeated || p.too_many || state == NULL || state[0] == '\0' ||
	    strlen(state) > BRIDGE_PARAM_MAX)
		return send_message(b, conn, method, url, MHD_HTTP_BAD_REQUEST,
		                    "This sign-in link is not valid", "Start again at your workstation.",
		                    false, false);
	r = take_state(b, conn, state, &x);
	if (r == NL_ERR_PERM) {
		nl_flow_exchange_clear(&x);
		return send_message(
		    b, conn, method, url, MHD_HTTP_FORBIDDEN, "This sign-in was started in another browser",
		    "A sign-in can only be finished in the browser where its code was entered and "
		    "confirmed, so nothing has been signed in. If someone sent you a link to NHS login, do "
		    "not "
		    "use it: tell your IT service desk.",
		    false, false);
	}
	if (r == NL_ERR_NOT_FOUND || r == NL_ERR_INVALID) {
		nl_notice("bridge: callback with an unknown or used state");
		return send_message(b, conn, method, url, MHD_HTTP_BAD_REQUEST,
		                    "This sign-in link has already been used or has expired",
		                    "Start again at your workstation.", false, false);
	}
	if (r == NL_ERR_EXPIRED)
		return result_page(b, conn, method, url, NL_REASON_EXPIRED);
	if (r != 0) {
		nl_err("bridge: callback: %s", nl_strerror(r));
		return result_page(b, conn, method, url, NL_REASON_UNAVAILABLE);
	}
	if (cb_params_refused(b, &p, err, sizeof(err)) != NULL) {
		/* the response cannot be trusted, nor its code exchanged: the flow ends here */
		outcome = NL_OUT_INVALID_TOKEN;
	} else if (error != NULL) {
		const char *w = error_word(error);
		outcome = strcmp(w, "server_error") == 0 || strcmp(w, "temporarily_unavailable") == 0
		              ? NL_OUT_UNAVAILABLE
		              : NL_OUT_DENIED;
		snprintf(err, sizeof(err), "NHS login answered error=%s", w);
	} else if (code == NULL || code[0] == '\0' || strlen(code) > BRIDGE_PARAM_MAX) {
		snprintf(err, sizeof(err), "callback without a usable code");
	} else {
		r = nl_oidc_exchange_code(b->oidc, code, x.code_verifier, x.nonce, &res);
		/* never approve on an error */
		outcome = r != 0 && res.outcome == NL_OUT_OK ? NL_OUT_UNAVAILABLE : res.outcome;
		snprintf(err, sizeof(err), "%s", res.error);
	}
	reason = nl_signin_complete(b->cfg, b->fl, b->tc, x.id, x.user, outcome,
	                            outcome == NL_OUT_OK ? &res.id : NULL, err);
	nl_grant_result_clear(&res);
	if (reason == NL_REASON_NONE && nl_flows_number_of(b->fl, x.id, &number) == 0) {
		nl_flow_exchange_clear(&x);
		return number_page(b, conn, method, url, number);
	}
	nl_flow_exchange_clear(&x);
	return result_page(b, conn, method, url, reason);
}

/* ---- libmicrohttpd glue ---- */

/* Append a chunk of a form field to buf (cap bytes with the NUL); past it, *bad is set. */
static mhd_result append_field(char *buf, size_t cap, size_t *len, const char *data, size_t size, bool *bad)
{
	if (*len + size >= cap) {
		*bad = true;
		return MHD_YES;
	}
	memcpy(buf + *len, data, size);
	*len += size;
	buf[*len] = '\0';
	return MHD_YES;
}

static mhd_result on_post_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                const char *content_type, const char *transfer_encoding, const char *data,
                                uint64_t off, size_t size)
{
	struct req *rq = cls;

	(void)kind, (void)filename, (void)content_type, (void)transfer_encoding, (void)off;
	if (key != NULL && strcmp(key, "flow") == 0)
		return append_field(rq->flow, sizeof(rq->flow), &rq->flow_len, data, size, &rq->confirm_bad);
	if (key != NULL && strcmp(key, "token") == 0)
		return append_field(rq->token, sizeof(rq->token), &rq->token_len, data, size,
		                    &rq->confirm_bad);
	if (key != NULL && strcmp(key, "answer") == 0)
		return append_field(rq->answer, sizeof(rq->answer), &rq->answer_len, data, size,
		                    &rq->confirm_bad);
	if (key == NULL || strcmp(key, "code") != 0)
		return MHD_YES;
	if (rq->code_len + size > BRIDGE_CODE_MAX) {
		rq->code_too_long = true;
		return MHD_YES;
	}
	memcpy(rq->code + rq->code_len, data, size);
	rq->code_len += size;
	rq->code[rq->code_len] = '\0';
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls, (void)conn, (void)toe;
	if (rq == NULL)
		return;
	if (rq->pp != NULL)
		MHD_destroy_post_processor(rq->pp);
	nl_wipe(rq, sizeof(*rq));
	free(rq);
	*con_cls = NULL;
}

/* First call of a POST to /d: refuse a declared oversize body before reading it. */
static mhd_result post_begin(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                             const char *url, struct req *rq)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (cl != NULL && strtoull(cl, NULL, 10) > BRIDGE_BODY_MAX)
		return send_message(
		    b, conn, method, url, MHD_HTTP_CONTENT_TOO_LARGE, "Too much data",
		    "That was more than a code. Enter the code shown on your workstation screen.", false,
		    true);
	rq->pp = MHD_create_post_processor(conn, 1024, on_post_field, rq);
	/* NULL: not a form encoding; the code stays empty and the page says so */
	return MHD_YES;
}

static mhd_result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                             const char *version, const char *upload_data, size_t *upload_data_size,
                             void **con_cls)
{
	struct nl_bridge *b = cls;
	struct req *rq = *con_cls;
	bool is_form = strcmp(url, "/d") == 0, is_cb = strcmp(url, b->cb_path) == 0;
	bool is_confirm = strcmp(url, "/d/confirm") == 0;
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

	(void)version;
	if (rq == NULL) {
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		*con_cls = rq;
		if ((is_form || is_confirm) && post)
			return post_begin(b, conn, method, url, rq);
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		rq->body_len += *upload_data_size;
		if (rq->body_len > BRIDGE_BODY_MAX)
			return MHD_NO; /* a chunked body past the bound: drop the connection */
		if (rq->pp != NULL && MHD_post_process(rq->pp, upload_data, *upload_data_size) != MHD_YES)
			rq->code_too_long = rq->confirm_bad = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (is_form && (get || post))
		return handle_form(b, conn, method, url, rq);
	if (is_confirm && post)
		return handle_confirm(b, conn, method, url, rq);
	if (is_cb && strcmp(method, MHD_HTTP_METHOD_GET) == 0)
		return handle_callback(b, conn, method, url);
	if (strcmp(url, "/") == 0 && get)
		return send_page(b, conn, method, url, MHD_HTTP_FOUND,
		                 nl_page_message("Enter your code", "Go to the code entry page.", true, true),
		                 "/d");
	if (is_form || is_confirm || is_cb || strcmp(url, "/") == 0)
		return send_message(b, conn, method, url, MHD_HTTP_METHOD_NOT_ALLOWED, "Not allowed",
		                    "This page cannot be used that way.", false, true);
	return send_message(b, conn, method, url, MHD_HTTP_NOT_FOUND, "Page not found",
	                    "To sign in, enter the code shown on your workstation screen.", false, true);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	nl_debug("bridge: libmicrohttpd: %s", line);
}

/* ---- start and stop ---- */

/* Plain http only where no one else can listen in: a loopback address, or behind a reverse proxy that
 * terminates TLS, which the configuration says with an https public_url (the proxy must forward /d
 * and the redirect_uri path unchanged). Behind a proxy every phone has the proxy's address, so the
 * wrong-code limit and the per-address connection limit count all phones together. */
static int check_transport(const struct nl_config *cfg, const struct addrinfo *ai, bool tls, char *err,
                           size_t errlen)
{
	bool https_public = cfg->public_url != NULL && strncmp(cfg->public_url, "https://", 8) == 0;

	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
		set_err(err, errlen, "bridge: tls_cert and tls_key must be set together");
		return NL_ERR_CONFIG;
	}
	if (!tls && !https_public && !is_loopback(ai->ai_addr)) {
		set_err(err, errlen,
		        "bridge: plain http on %s is refused: set tls_cert/tls_key, or a https public_url "
		        "with a TLS reverse proxy in front",
		        cfg->listen);
		return NL_ERR_CONFIG;
	}
	return 0;
}

static int load_tls(struct nl_bridge *b, char *err, size_t errlen)
{
	size_t len = 0;
	int r;

	if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		set_err(err, errlen, "bridge: this libmicrohttpd has no TLS support");
		return NL_ERR_CONFIG;
	}
	if ((r = nl_read_file_checked(b->cfg->tls_cert, false, 1024 * 1024, &b->cert_pem, &len, err,
	                              errlen)) != 0)
		return r;
	return nl_read_file_checked(b->cfg->tls_key, true, 1024 * 1024, &b->key_pem, &b->key_len, err,
	                            errlen);
}

static int make_base_url(struct nl_bridge *b, const char *host, int family)
{
	const char *pub = b->cfg->public_url;
	size_t n;

	if (pub != NULL && pub[0] != '\0') {
		n = strlen(pub);
		while (n > 0 && pub[n - 1] == '/')
			n--;
		b->base_url = strndup(pub, n);
	} else if (asprintf(&b->base_url, "%s://%s%s%s:%u", b->tls ? "https" : "http",
	                    family == AF_INET6 ? "[" : "", host, family == AF_INET6 ? "]" : "",
	                    (unsigned)b->port) < 0) {
		b->base_url = NULL;
	}
	return b->base_url != NULL ? 0 : NL_ERR_NOMEM;
}

static int start_mhd(struct nl_bridge *b, const struct addrinfo *ai, char *err, size_t errlen)
{
	struct MHD_OptionItem opts[16];
	size_t n = 0;
	unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                 MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

#define OPT(o, v, p) opts[n++] = (struct MHD_OptionItem){(o), (intptr_t)(v), (p)}
	OPT(MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr);
	OPT(MHD_OPTION_CONNECTION_LIMIT, BRIDGE_CONN_LIMIT, NULL);
	OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, BRIDGE_CONN_PER_IP, NULL);
	OPT(MHD_OPTION_CONNECTION_TIMEOUT, BRIDGE_CONN_TIMEOUT, NULL);
	OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, b);
	OPT(MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, b);
	if (b->tls) {
		flags |= MHD_USE_TLS;
		OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, b->cert_pem);
		OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, b->key_pem);
		OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)BRIDGE_TLS_PRIORITIES);
	}
	OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	b->mhd =
	    MHD_start_daemon(flags, 0, NULL, NULL, on_request, b, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (b->mhd == NULL) {
		set_err(err, errlen, "bridge: cannot listen on %s", b->cfg->listen);
		return NL_ERR_IO;
	}
	if ((info = MHD_get_daemon_info(b->mhd, MHD_DAEMON_INFO_LISTEN_FD)) == NULL ||
	    getsockname(info->listen_fd, (struct sockaddr *)&ss, &sl) != 0) {
		set_err(err, errlen, "bridge: cannot read the bound port");
		return NL_ERR_IO;
	}
	b->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                         : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

int nl_bridge_start(const struct nl_config *cfg, struct nl_flows *fl, struct nl_oidc *oidc,
                    struct nl_tokcache *tc, struct nl_bridge **out, char *err, size_t errlen)
{
	struct nl_bridge *b = NULL;
	struct addrinfo *ai = NULL;
	char host[NI_MAXHOST];
	int r = NL_ERR_INTERNAL;

	if (cfg == NULL || fl == NULL || oidc == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	if ((b = calloc(1, sizeof(*b))) == NULL || pthread_mutex_init(&b->mu, NULL) != 0) {
		free(b);
		set_err(err, errlen, "bridge: out of memory");
		return NL_ERR_NOMEM;
	}
	b->cfg = cfg;
	b->fl = fl;
	b->oidc = oidc;
	b->tc = tc;
	b->tls = cfg->tls_cert != NULL && cfg->tls_key != NULL;
	if ((r = nl_random_bytes(b->csrf_key, sizeof(b->csrf_key))) != 0) {
		set_err(err, errlen, "bridge: no random bytes for the form key");
		goto out;
	}
	url_origin(cfg->env.issuer, b->issuer_origin, sizeof(b->issuer_origin));
	if ((r = parse_listen(cfg->listen, &ai, host, sizeof(host), err, errlen)) != 0 ||
	    (r = check_transport(cfg, ai, b->tls, err, errlen)) != 0)
		goto out;
	if ((b->cb_path = url_path(cfg->env.redirect_uri)) == NULL || strcmp(b->cb_path, "/d") == 0 ||
	    strcmp(b->cb_path, "/") == 0) {
		set_err(err, errlen,
		        "bridge: redirect_uri must be an absolute URL with its own path (not / or /d)");
		r = NL_ERR_CONFIG;
		goto out;
	}
	if ((b->tls && (r = load_tls(b, err, errlen)) != 0) || (r = start_mhd(b, ai, err, errlen)) != 0 ||
	    (r = make_base_url(b, host, ai->ai_family)) != 0)
		goto out;
	nl_info("bridge: listening on %s port %u (%s); phones open %s/d, callback %s", host,
	        (unsigned)b->port, b->tls ? "https" : "http", b->base_url, b->cb_path);
	*out = b;
	b = NULL;
	r = 0;
out:
	if (ai != NULL)
		freeaddrinfo(ai);
	nl_bridge_stop(b);
	return r;
}

void nl_bridge_stop(struct nl_bridge *b)
{
	if (b == NULL)
		return;
	if (b->mhd != NULL)
		MHD_stop_daemon(b->mhd);
	pthread_mutex_destroy(&b->mu);
	free(b->cb_path);
	free(b->base_url);
	free(b->cert_pem);
	if (b->key_pem != NULL)
		nl_free_secret_buf(b->key_pem, b->key_len + 1);
	nl_wipe(b->csrf_key, sizeof(b->csrf_key));
	free(b);
}

uint16_t nl_bridge_port(const struct nl_bridge *b)
{
	return b != NULL ? b->port : 0;
}

int nl_bridge_verification_uri(const struct nl_bridge *b, const char *user_code, char **uri,
                               char **uri_complete)
{
	char code[NL_USER_CODE_LEN + 1];
	char *u = NULL, *c = NULL;

	if (b == NULL || user_code == NULL || uri == NULL || uri_complete == NULL)
		return NL_ERR_INTERNAL;
	if (nl_user_code_normalize(user_code, code) != 0)
		return NL_ERR_INVALID;
	if (asprintf(&u, "%s/d", b->base_url) < 0)
		return NL_ERR_NOMEM;
	if (asprintf(&c, "%s/d?code=%s", b->base_url, code) < 0) {
		free(u);
		return NL_ERR_NOMEM;
	}
	*uri = u;
	*uri_complete = c;
	return 0;
}
