/* Configuration: the checks of single values (URLs, names, scopes, listen addresses, domains) and
 * the address blocks of [policy] and trusted_proxies. */
#include "config.h"
#include "nl_config.h"
#include "nl_config_int.h"
#include "nl_err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NAME 64 /* longest environment name */

/* ---- value checks ---- */

bool nl_cfg_is_loopback_host(const char *host, bool bracketed)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (bracketed)
		return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0;
}

static bool is_hostname(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > 253 || h[0] == '-' || h[0] == '.')
		return false;
	return strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

/* Decimal port: 1-5 digits, min..65535. */
static bool parse_port(const char *s, long min)
{
	size_t n = strlen(s);
	long v;

	if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
		return false;
	v = strtol(s, NULL, 10);
	return v >= min && v <= 65535;
}

/* Split "host[:port]" or "[v6][:port]" (authority without user info) into host and port.
 * Writes host into hbuf; *port points into auth or is NULL. */
bool nl_cfg_split_host_port(const char *auth, char *hbuf, size_t hlen, const char **port, bool *bracketed)
{
	const char *end, *colon;
	struct in6_addr a6;
	size_t n;

	*port = NULL;
	*bracketed = false;
	if (auth[0] == '[') {
		if ((end = strchr(auth, ']')) == NULL)
			return false;
		n = (size_t)(end - auth - 1);
		if (n == 0 || n >= hlen)
			return false;
		memcpy(hbuf, auth + 1, n);
		hbuf[n] = '\0';
		if (inet_pton(AF_INET6, hbuf, &a6) != 1)
			return false;
		*bracketed = true;
		if (end[1] == '\0')
			return true;
		if (end[1] != ':')
			return false;
		*port = end + 2;
		return true;
	}
	colon = strchr(auth, ':');
	if (colon != NULL && strchr(colon + 1, ':') != NULL)
		return false; /* a bare IPv6 address: brackets required */
	n = colon != NULL ? (size_t)(colon - auth) : strlen(auth);
	if (n == 0 || n >= hlen)
		return false;
	memcpy(hbuf, auth, n);
	hbuf[n] = '\0';
	if (!is_hostname(hbuf))
		return false;
	if (colon != NULL)
		*port = colon + 1;
	return true;
}

/* https://HOST[:PORT][/path], or http:// when HOST is loopback. No user info, no fragment,
 * no query unless allow_query. Deliberately small and independent of the HTTP module. */
int nl_cfg_check_url(const char *url, bool allow_query, char *why, size_t whylen)
{
	char auth[300], host[256];
	const char *p, *port;
	bool https, bracketed;
	size_t i, n;

	for (i = 0; url[i] != '\0'; i++) {
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			return nl_errf(why, whylen, NL_ERR_CONFIG,
			               "URL contains a space, control or non-ASCII character");
	}
	if (strncasecmp(url, "https://", 8) == 0) {
		https = true;
		p = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		https = false;
		p = url + 7;
	} else {
		return nl_errf(why, whylen, NL_ERR_CONFIG, "'%s' is not an https:// URL", url);
	}
	if (strchr(url, '#') != NULL)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "'%s': a fragment (#) is not allowed", url);
	if (!allow_query && strchr(url, '?') != NULL)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "'%s': a query (?) is not allowed", url);
	n = strcspn(p, "/?#");
	if (n == 0 || n >= sizeof(auth))
		return nl_errf(why, whylen, NL_ERR_CONFIG, "'%s': missing or overlong host", url);
	memcpy(auth, p, n);
	auth[n] = '\0';
	if (strchr(auth, '@') != NULL)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "'%s': user info (@) is not allowed", url);
	if (!nl_cfg_split_host_port(auth, host, sizeof(host), &port, &bracketed) ||
	    (port != NULL && !parse_port(port, 1)))
		return nl_errf(why, whylen, NL_ERR_CONFIG, "'%s': bad host or port", url);
	if (!https && !nl_cfg_is_loopback_host(host, bracketed))
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "'%s': plain http is allowed only on loopback (127.0.0.0/8, ::1, localhost); "
		               "use https",
		               url);
	return 0;
}

int nl_cfg_check_issuer(const char *v, char *why, size_t whylen)
{
	return nl_cfg_check_url(v, false, why, whylen);
}

int nl_cfg_check_env_name(const char *v, char *why, size_t whylen)
{
	size_t n = strlen(v);

	if (n == 0 || n > MAX_NAME || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "environment name '%s' must be 1..%d characters of a-z 0-9 _ -", v, MAX_NAME);
	return 0;
}

/* An identifier given by the provider (key is its name in messages): 1..256 characters of
 * printable ASCII without spaces. also: what else the value may be, for the message, or "". */
static int check_identifier(const char *key, const char *also, const char *v, char *why, size_t whylen)
{
	size_t n = strlen(v);

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return nl_errf(why, whylen, NL_ERR_CONFIG,
			               "%s must be printable ASCII without spaces%s", key, also);
	if (n == 0 || n > 256)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "%s must be 1..256 characters", key);
	return 0;
}

/* client_key_id: a kid as a provider registered it, or "none". */
int nl_cfg_check_key_id(const char *v, char *why, size_t whylen)
{
	return check_identifier("client_key_id", " (or none)", v, why, whylen);
}

int nl_cfg_check_client_id(const char *v, char *why, size_t whylen)
{
	return check_identifier("client_id", "", v, why, whylen);
}

/* RFC 6749 scope: space-separated tokens of NQCHAR; must include openid. */
int nl_cfg_check_scope(const char *v, char *why, size_t whylen)
{
	const char *p = v;
	bool openid = false;
	size_t n;

	while (*p != '\0') {
		if (*p == ' ') {
			p++;
			continue;
		}
		n = strcspn(p, " ");
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
				return nl_errf(why, whylen, NL_ERR_CONFIG,
				               "scope contains a character not allowed in a scope token");
			}
		}
		if (n == 6 && strncmp(p, "openid", 6) == 0)
			openid = true;
		p += n;
	}
	if (!openid)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "scope must include openid");
	return 0;
}

int nl_cfg_check_listen(const char *v, char *why, size_t whylen)
{
	char host[256];
	const char *port;
	bool bracketed;

	if (!nl_cfg_split_host_port(v, host, sizeof(host), &port, &bracketed) || port == NULL ||
	    !parse_port(port, 0))
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "listen '%s' must be HOST:PORT (port 0..65535; IPv6 as [::1]:PORT)", v);
	return 0;
}

int nl_cfg_check_group(const char *v, char *why, size_t whylen)
{
	size_t n = strlen(v);

	if (n == 0 || n > 32 || v[0] == '-' ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "'%s' is not a valid group name", v);
	return 0;
}

int nl_cfg_check_domain(const char *v, char *why, size_t whylen)
{
	if (!is_hostname(v) || strchr(v, '.') == NULL)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "'%s' is not a domain name", v);
	return 0;
}

/* ---- [ldap] values ---- */

#define MAX_LDAP_URIS  8
#define MAX_LDAP_VALUE 1024 /* longest filter or DN */

/* One ldap:// or ldaps:// URI of n bytes at u: scheme, host[:port], at most a trailing "/" (no DN,
 * attributes or extensions: base and filter have their own keys). *tls is set for ldaps. */
static bool ldap_uri_ok(const char *u, size_t n, bool *tls)
{
	char auth[300], host[256];
	const char *p, *port;
	bool bracketed;
	size_t a;

	if (n > 7 && strncasecmp(u, "ldap://", 7) == 0) {
		*tls = false;
		p = u + 7;
	} else if (n > 8 && strncasecmp(u, "ldaps://", 8) == 0) {
		*tls = true;
		p = u + 8;
	} else {
		return false;
	}
	n -= (size_t)(p - u);
	if (n > 0 && p[n - 1] == '/')
		n--;
	for (a = 0; a < n && p[a] != '/'; a++)
		;
	if (a != n || n == 0 || n >= sizeof(auth))
		return false;
	memcpy(auth, p, n);
	auth[n] = '\0';
	if (strpbrk(auth, "@?#%") != NULL)
		return false;
	return nl_cfg_split_host_port(auth, host, sizeof(host), &port, &bracketed) &&
	       (port == NULL || parse_port(port, 1));
}

int nl_cfg_ldap_uri_scheme(const char *v)
{
	const char *p = v;
	int scheme = -1;
	bool tls;

	for (p += strspn(p, ", "); *p != '\0'; p += strspn(p, ", ")) {
		size_t n = strcspn(p, ", ");

		if (!ldap_uri_ok(p, n, &tls) || (scheme != -1 && scheme != (int)tls))
			return -1;
		scheme = (int)tls;
		p += n;
	}
	return scheme;
}

int nl_cfg_check_ldap_uri(const char *v, char *why, size_t whylen)
{
	const char *p = v;
	int scheme = -1;
	size_t count = 0;
	bool tls;

	for (p += strspn(p, ", "); *p != '\0'; p += strspn(p, ", ")) {
		size_t n = strcspn(p, ", ");

		if (!ldap_uri_ok(p, n, &tls))
			return nl_errf(why, whylen, NL_ERR_CONFIG,
			               "uri: '%.*s' is not ldap://HOST[:PORT] or ldaps://HOST[:PORT]",
			               (int)(n > 200 ? 200 : n), p);
		if (scheme != -1 && scheme != (int)tls)
			return nl_errf(why, whylen, NL_ERR_CONFIG,
			               "uri: mixes ldap:// and ldaps://; list servers of one kind");
		if (++count > MAX_LDAP_URIS)
			return nl_errf(why, whylen, NL_ERR_CONFIG, "uri: more than %d servers",
			               MAX_LDAP_URIS);
		scheme = (int)tls;
		p += n;
	}
	if (count == 0)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "uri: no server");
	return 0;
}

/* A search filter template: one filter in parentheses (balanced, never closing more than it
 * opened, nothing after the outer one), printable ASCII, and exactly one %s where a value goes
 * ("=%s)"), no other %. The claim's value, escaped (RFC 4515), replaces the %s. */
int nl_cfg_check_ldap_filter(const char *v, char *why, size_t whylen)
{
	const char *pct = strchr(v, '%');
	size_t n = strlen(v), i;
	int depth = 0;

	if (n > MAX_LDAP_VALUE)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "filter: longer than %d bytes", MAX_LDAP_VALUE);
	for (i = 0; i < n; i++) {
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f)
			return nl_errf(why, whylen, NL_ERR_CONFIG, "filter: only printable ASCII is allowed");
		if (v[i] == '(') {
			depth++;
		} else if (v[i] == ')') {
			if (--depth < 0)
				return nl_errf(why, whylen, NL_ERR_CONFIG, "filter: a ')' closes nothing");
		} else if (depth == 0) {
			return nl_errf(why, whylen, NL_ERR_CONFIG,
			               "filter: must be one filter in parentheses, such as "
			               "(&(objectClass=person)(employeeNumber=%%s))");
		}
		if (depth == 0 && i + 1 < n)
			return nl_errf(why, whylen, NL_ERR_CONFIG,
			               "filter: text after the closing ')'; write one filter, such as "
			               "(&(a=b)(c=%%s))");
	}
	if (depth != 0)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "filter: unbalanced parentheses (%d not closed)",
		               depth);
	if (pct == NULL || pct[1] != 's')
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "filter: needs one %%s where the claim's value goes, such as (uid=%%s)");
	if (strchr(pct + 1, '%') != NULL)
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "filter: exactly one %%s and no other %% (the claim's value goes there once)");
	if (pct == v || pct[-1] != '=' || pct[2] != ')')
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "filter: %%s must be a whole value, as in (employeeNumber=%%s)");
	return 0;
}

/* An attribute name (RFC 4512 descr): a letter, then letters, digits and hyphens. */
int nl_cfg_check_ldap_attribute(const char *v, char *why, size_t whylen)
{
	size_t n = strlen(v);

	if (n == 0 || n > 64 || !((v[0] >= 'a' && v[0] <= 'z') || (v[0] >= 'A' && v[0] <= 'Z')) ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != n)
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "attribute: '%.64s' is not an attribute name such as uid or sAMAccountName",
		               v);
	return 0;
}

/* A distinguished name: at least one attr=value, bounded. */
int nl_cfg_check_dn(const char *v, char *why, size_t whylen)
{
	const char *eq = strchr(v, '=');

	if (strlen(v) > MAX_LDAP_VALUE || eq == NULL || eq == v || eq[1] == '\0')
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "'%.64s' is not a distinguished name such as dc=trust,dc=nhs,dc=uk", v);
	return 0;
}

/* ---- roles ([store], [agent]) ---- */

/* [store] url: redis://HOST:PORT[/DB] or unix:/ABSOLUTE/PATH (libnlstore parses it again). */
int nl_cfg_check_store_url(const char *v, char *why, size_t whylen)
{
	size_t n = strlen(v);

	if (n > 0 && n < 512 && strncmp(v, "unix:/", 6) == 0)
		return 0;
	if (n > 8 && n < 512 && strncmp(v, "redis://", 8) == 0 && strchr(v + 8, ':') != NULL &&
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/.-[]") == n)
		return 0;
	return nl_errf(why, whylen, NL_ERR_CONFIG,
	               "'%.64s' is not a Redis address: redis://HOST:PORT[/DB] or unix:/PATH", v);
}

/* [store] sentinels: HOST:PORT,... (at most 8). */
int nl_cfg_check_sentinels(const char *v, char *why, size_t whylen)
{
	size_t n = strlen(v), commas = 0;

	for (const char *p = v; *p != '\0'; p++)
		commas += *p == ',';
	if (n == 0 || n > 1024 || commas >= 8 || strchr(v, ':') == NULL ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:.,-[] ") != n)
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "'%.64s' is not a list of sentinels: HOST:PORT, commas between, at most 8", v);
	return 0;
}

/* [store] master: the name Sentinel monitors. */
int nl_cfg_check_master(const char *v, char *why, size_t whylen)
{
	size_t n = strlen(v);

	if (n == 0 || n > 64 ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "master '%.64s' must be 1..64 characters of A-Z a-z 0-9 . _ -", v);
	return 0;
}

/* [agent] name: a workstation name as enrolment knows it, [a-z0-9][a-z0-9.-]{0,62}, no "..". */
int nl_cfg_check_host_name(const char *v, char *why, size_t whylen)
{
	size_t n = strlen(v);

	if (n == 0 || n > 63 || strchr("abcdefghijklmnopqrstuvwxyz0123456789", v[0]) == NULL ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n || strstr(v, "..") != NULL)
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "workstation name '%.64s' must be 1..63 characters of a-z 0-9 . - "
		               "starting with a letter or digit",
		               v);
	return 0;
}

/* ---- address blocks ---- */

int nl_cidr_parse(const char *s, struct nl_cidr *out, char *why, size_t whylen)
{
	char host[INET6_ADDRSTRLEN + 1], *end = NULL;
	const char *slash = strchr(s, '/');
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	struct nl_cidr c;
	unsigned max;
	long v;

	memset(&c, 0, sizeof(c));
	if (n == 0 || n >= sizeof(host))
		goto bad;
	memcpy(host, s, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else {
		goto bad;
	}
	c.prefix = max;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9' || strlen(slash + 1) > 3)
			goto bad;
		v = strtol(slash + 1, &end, 10);
		if (end == NULL || *end != '\0' || v < 0 || v > (long)max)
			goto bad;
		c.prefix = (unsigned)v;
	}
	for (unsigned bit = c.prefix; bit < max; bit++) {
		if (c.addr[bit / 8] & (0x80u >> (bit % 8)))
			return nl_errf(why, whylen, NL_ERR_CONFIG,
			               "'%s' has address bits set past /%u: write the network's first "
			               "address",
			               s, c.prefix);
	}
	if (c.family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)c.addr) &&
	    c.prefix >= 96) { /* ::ffff:a.b.c.d/N is the IPv4 block a.b.c.d/(N-96) */
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
		c.family = AF_INET;
		c.prefix -= 96;
	}
	*out = c;
	return 0;
bad:
	return nl_errf(why, whylen, NL_ERR_CONFIG, "'%s' is not an ADDRESS or ADDRESS/PREFIX (IPv4 or IPv6)",
	               s);
}

bool nl_cidr_match(const struct nl_cidr *list, size_t n, int family, const void *addr)
{
	unsigned char a[16];

	if (list == NULL || addr == NULL)
		return false;
	if (family == AF_INET6) {
		memcpy(a, addr, 16);
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
			memmove(a, a + 12, 4);
			family = AF_INET;
		}
	} else if (family == AF_INET) {
		memcpy(a, addr, 4);
	} else {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const struct nl_cidr *c = &list[i];
		size_t whole = c->prefix / 8;
		unsigned rest = c->prefix % 8;

		if (c->family != family || memcmp(a, c->addr, whole) != 0)
			continue;
		if (rest == 0 || ((a[whole] ^ c->addr[whole]) & (0xffu << (8 - rest)) & 0xffu) == 0)
			return true;
	}
	return false;
}
