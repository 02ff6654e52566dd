/* The bridge's code entry page and the phone's address: the form, the code typed or carried by the
 * QR code, and who the phone is behind trusted proxies (X-Forwarded-For, Forwarded). */
#include "config.h"
#include "bridge_int.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "nl_log.h"

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

void bridge_client_address(const struct nl_bridge *b, struct MHD_Connection *conn, char *out, size_t len)
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
void bridge_learn_authz_origin(struct nl_bridge *b, const char *url)
{
	char origin[BRIDGE_ORIGIN_MAX];

	bridge_url_origin(url, origin, sizeof(origin));
	if (origin[0] == '\0')
		return;
	pthread_mutex_lock(&b->mu);
	memcpy(b->authz_origin, origin, sizeof(origin));
	pthread_mutex_unlock(&b->mu);
}
