/* Configuration: nhslogin.conf and the environment file it selects, parsed into one struct
 * through one table-driven setter. Strict INI, safely opened files, cross-field validation. */
#include "config.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_policy.h"
#include "nl_wipe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_LISTEN    "127.0.0.1:8765"
#define DEFAULT_SCOPE     "openid profile"
#define DEFAULT_VTR       "[\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]"
#define DEFAULT_STATE_DIR NL_LOCALSTATEDIR "/lib/nhslogin"
#define DEFAULT_CACHE_DIR NL_LOCALSTATEDIR "/cache/nhslogin"
#define DEFAULT_ALG       "RS512"
#define MAX_VALUE         4096 /* longest value of any key */
#define MAX_NAME          64   /* longest environment name */
#define MAX_VTR           16   /* vectors in vtr */
#define PLACEHOLDER       "REPLACE-"

/* ---- safe file opening ---- */

static int open_checked(const char *path, bool secret, size_t max_size, bool check_owner, int *fd_out,
                        size_t *size_out, char *err, size_t errlen)
{
	struct stat st;
	int fd = -1, r = NL_ERR_INTERNAL;
	mode_t mode;

	/* O_NONBLOCK so that a FIFO planted at the path cannot hang us before fstat refuses it. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = errno == ENOENT ? NL_ERR_NOT_FOUND : errno == EACCES ? NL_ERR_PERM : NL_ERR_IO;
		if (errno == ELOOP)
			nl_errf(err, errlen, r, "%s: is a symbolic link (refused)", path);
		else
			nl_errf(err, errlen, r, "%s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		r = nl_errf(err, errlen, NL_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = nl_errf(err, errlen, NL_ERR_PERM, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size < 0 || (unsigned long long)st.st_size > max_size) {
		r = nl_errf(err, errlen, NL_ERR_TOO_BIG, "%s: larger than %zu bytes", path, max_size);
		goto out;
	}
	mode = st.st_mode & 07777;
	if (check_owner) {
		if (st.st_uid != 0 && st.st_uid != geteuid()) {
			r = nl_errf(err, errlen, NL_ERR_PERM, "%s: owned by uid %u; must be owned by root",
			            path, (unsigned)st.st_uid);
			goto out;
		}
		if ((mode & (S_IWGRP | S_IWOTH)) != 0) {
			r = nl_errf(err, errlen, NL_ERR_PERM,
			            "%s: is group- or world-writable (mode %04o); run chmod go-w", path,
			            (unsigned)mode);
			goto out;
		}
		if (secret && (mode & (S_IRWXG | S_IRWXO)) != 0) {
			r = nl_errf(err, errlen, NL_ERR_PERM,
			            "%s: holds a secret but group/other may access it (mode %04o); "
			            "run chmod 600", path, (unsigned)mode);
			goto out;
		}
	}
	if (fcntl(fd, F_SETFL, 0) != 0) {
		r = nl_errf(err, errlen, NL_ERR_IO, "%s: fcntl: %s", path, strerror(errno));
		goto out;
	}
	*fd_out = fd;
	if (size_out != NULL)
		*size_out = (size_t)st.st_size;
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

int nl_open_checked(const char *path, bool secret, size_t max_size, int *fd, char *err, size_t errlen)
{
	return open_checked(path, secret, max_size, true, fd, NULL, err, errlen);
}

static int read_checked(const char *path, bool secret, size_t max_size, bool check_owner, char **out,
                        size_t *len_out, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t size = 0, len = 0, cap;
	ssize_t n;
	int fd = -1, r = NL_ERR_INTERNAL;

	if ((r = open_checked(path, secret, max_size, check_owner, &fd, &size, err, errlen)) != 0)
		goto out;
	/* One byte more than fstat said, to notice a file that grew past the cap meanwhile. */
	cap = size + 1;
	if ((buf = malloc(cap + 1)) == NULL) {
		r = nl_errf(err, errlen, NL_ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	while (len < cap) {
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = nl_errf(err, errlen, NL_ERR_IO, "%s: read: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > size) {
		r = nl_errf(err, errlen, NL_ERR_IO, "%s: changed while being read", path);
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*len_out = len;
	buf = NULL;
	r = 0;
out:
	if (buf != NULL)
		nl_free_secret_buf(buf, cap + 1);
	if (fd >= 0)
		close(fd);
	return r;
}

int nl_read_file_checked(const char *path, bool secret, size_t max_size, char **out, size_t *len, char *err,
                         size_t errlen)
{
	return read_checked(path, secret, max_size, true, out, len, err, errlen);
}

/* ---- value checks ---- */

static bool is_loopback_host(const char *host, bool bracketed)
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
static bool split_host_port(const char *auth, char *hbuf, size_t hlen, const char **port, bool *bracketed)
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
static int check_url(const char *url, bool allow_query, char *why, size_t whylen)
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
	if (!split_host_port(auth, host, sizeof(host), &port, &bracketed) ||
	    (port != NULL && !parse_port(port, 1)))
		return nl_errf(why, whylen, NL_ERR_CONFIG, "'%s': bad host or port", url);
	if (!https && !is_loopback_host(host, bracketed))
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "'%s': plain http is allowed only on loopback (127.0.0.0/8, ::1, localhost); "
		               "use https", url);
	return 0;
}

static int check_issuer(const char *v, char *why, size_t whylen)
{
	return check_url(v, false, why, whylen);
}

static int check_env_name(const char *v, char *why, size_t whylen)
{
	size_t n = strlen(v);

	if (n == 0 || n > MAX_NAME || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "environment name '%s' must be 1..%d characters of a-z 0-9 _ -", v, MAX_NAME);
	return 0;
}

static int check_client_id(const char *v, char *why, size_t whylen)
{
	size_t i, n = strlen(v);

	for (i = 0; i < n; i++) {
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return nl_errf(why, whylen, NL_ERR_CONFIG,
			               "client_id must be printable ASCII without spaces");
	}
	if (n == 0 || n > 256)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "client_id must be 1..256 characters");
	return 0;
}

/* RFC 6749 scope: space-separated tokens of NQCHAR; must include openid. */
static int check_scope(const char *v, char *why, size_t whylen)
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

static int check_listen(const char *v, char *why, size_t whylen)
{
	char host[256];
	const char *port;
	bool bracketed;

	if (!split_host_port(v, host, sizeof(host), &port, &bracketed) || port == NULL ||
	    !parse_port(port, 0))
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "listen '%s' must be HOST:PORT (port 0..65535; IPv6 as [::1]:PORT)", v);
	return 0;
}

static int check_group(const char *v, char *why, size_t whylen)
{
	size_t n = strlen(v);

	if (n == 0 || n > 32 || v[0] == '-' ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "'%s' is not a valid group name", v);
	return 0;
}

static int check_domain(const char *v, char *why, size_t whylen)
{
	if (!is_hostname(v) || strchr(v, '.') == NULL)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "'%s' is not a domain name", v);
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
			               "address", s, c.prefix);
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

/* ---- the key table and setters ---- */

struct key_def;
typedef int (*setter_fn)(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                         char *why, size_t whylen);

struct key_def {
	const char *section; /* "" top level, "env" environment file */
	const char *name;
	setter_fn set;
	size_t off;    /* offset of the field in struct nl_config */
	long min, max; /* numbers */
	bool secret;   /* a path to a secret file, checked when a file sets it */
	int (*check)(const char *value, char *why, size_t whylen); /* strings */
};

#define FIELD(cfg, k, type) ((type *)(void *)((char *)(cfg) + (k)->off))

static int replace_str(char **slot, const char *value, char *why, size_t whylen)
{
	char *dup = strdup(value);

	if (dup == NULL)
		return nl_errf(why, whylen, NL_ERR_NOMEM, "out of memory");
	free(*slot);
	*slot = dup;
	return 0;
}

static int set_str(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                   char *why, size_t whylen)
{
	int r;

	(void)base;
	if (k->check != NULL && (r = k->check(value, why, whylen)) != 0)
		return r;
	return replace_str(FIELD(cfg, k, char *), value, why, whylen);
}

static int set_path(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                    char *why, size_t whylen)
{
	char *joined = NULL;
	int r;

	if (value[0] == '/')
		return replace_str(FIELD(cfg, k, char *), value, why, whylen);
	if (base == NULL)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "%s must be an absolute path", k->name);
	if (asprintf(&joined, "%s/%s", base, value) < 0)
		return nl_errf(why, whylen, NL_ERR_NOMEM, "out of memory");
	if (strlen(joined) >= PATH_MAX) {
		r = nl_errf(why, whylen, NL_ERR_CONFIG, "%s: path too long", k->name);
	} else {
		r = replace_str(FIELD(cfg, k, char *), joined, why, whylen);
	}
	free(joined);
	return r;
}

static int set_uint(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                    char *why, size_t whylen)
{
	char *end = NULL;
	long v;

	(void)base;
	errno = 0;
	v = strtol(value, &end, 10);
	if (value[0] == '\0' || value[0] == '+' || value[0] == ' ' || end == NULL || *end != '\0' ||
	    errno != 0)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: '%s' is not a number", k->name, value);
	if (v < k->min || v > k->max)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: %ld is out of range %ld..%ld", k->name, v,
		               k->min, k->max);
	*FIELD(cfg, k, unsigned) = (unsigned)v;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return NL_ERR_CONFIG;
}

static int set_bool(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                    char *why, size_t whylen)
{
	(void)base;
	if (parse_bool(value, FIELD(cfg, k, bool)) != 0)
		return nl_errf(why, whylen, NL_ERR_CONFIG,
		               "%s: '%s' is not a boolean (yes/no, true/false, on/off, 1/0)", k->name, value);
	return 0;
}

/* Index of value in names (NULL-terminated), or a reason listing the choices. */
static int pick(const struct key_def *k, const char *value, const char *const *names, int *idx, char *why,
                size_t whylen)
{
	char list[128] = "";
	size_t used = 0;

	for (int i = 0; names[i] != NULL; i++) {
		if (strcmp(value, names[i]) == 0) {
			*idx = i;
			return 0;
		}
		if (used < sizeof(list))
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i > 0 ? " | " : "",
			                         names[i]);
	}
	return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: '%s' is not one of %s", k->name, value, list);
}

static int set_claim(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                     char *why, size_t whylen)
{
	static const char *const names[] = {"nhs_number", "email", "sub", NULL};
	static const enum nl_claim vals[] = {NL_CLAIM_NHS_NUMBER, NL_CLAIM_EMAIL, NL_CLAIM_SUB};
	int i, r;

	(void)base;
	if ((r = pick(k, value, names, &i, why, whylen)) == 0)
		cfg->claim = vals[i];
	return r;
}

static int set_rule(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                    char *why, size_t whylen)
{
	static const char *const names[] = {"map", "email_local", NULL};
	static const enum nl_map_rule vals[] = {NL_MAP_FILE, NL_MAP_EMAIL_LOCAL};
	int i, r;

	(void)base;
	if ((r = pick(k, value, names, &i, why, whylen)) == 0)
		cfg->rule = vals[i];
	return r;
}

static int set_flow(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                    char *why, size_t whylen)
{
	static const char *const names[] = {"bridge", "device", NULL};
	static const enum nl_flow_mode vals[] = {NL_FLOW_BRIDGE, NL_FLOW_DEVICE};
	int i, r;

	(void)base;
	if ((r = pick(k, value, names, &i, why, whylen)) == 0)
		cfg->env.flow = vals[i];
	return r;
}

static int set_noninteractive(struct nl_config *cfg, const struct key_def *k, const char *value,
                              const char *base, char *why, size_t whylen)
{
	static const char *const names[] = {"ignore", "deny", NULL};
	static const enum nl_noninteractive vals[] = {NL_NONINTERACTIVE_IGNORE, NL_NONINTERACTIVE_DENY};
	int i, r;

	(void)base;
	if ((r = pick(k, value, names, &i, why, whylen)) == 0)
		cfg->pam_noninteractive = vals[i];
	return r;
}

static int set_number_matching(struct nl_config *cfg, const struct key_def *k, const char *value,
                               const char *base, char *why, size_t whylen)
{
	static const char *const names[] = {"remote", "never", "always", NULL};
	static const enum nl_number_matching vals[] = {NL_NUMBER_REMOTE, NL_NUMBER_NEVER, NL_NUMBER_ALWAYS};
	int i, r;

	(void)base;
	if ((r = pick(k, value, names, &i, why, whylen)) == 0)
		cfg->number_matching = vals[i];
	return r;
}

static int set_min_level(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                         char *why, size_t whylen)
{
	static const char *const names[] = {"P0", "P5", "P9", NULL};
	static const int vals[] = {0, 5, 9};
	int i, r;

	(void)base;
	if ((r = pick(k, value, names, &i, why, whylen)) == 0)
		cfg->min_level = vals[i];
	return r;
}

static bool alg_known(const char *a)
{
	static const char *const known[] = {"RS256", "RS384", "RS512", "PS256", "PS384",
	                                    "PS512", "ES256", "ES384", "ES512"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(a, known[i]) == 0)
			return true;
	return false;
}

static void free_algs(char **algs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(algs[i]);
		algs[i] = NULL;
	}
}

static int set_algs(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                    char *why, size_t whylen)
{
	char *algs[NL_MAX_ALGS] = {NULL};
	char tok[16];
	const char *p = value;
	size_t n = 0, len, i;
	int r = NL_ERR_CONFIG;

	(void)base;
	while (*p != '\0') {
		if (*p == ',' || *p == ' ' || *p == '\t') {
			p++;
			continue;
		}
		len = strcspn(p, ", \t");
		if (len >= sizeof(tok)) {
			nl_errf(why, whylen, r, "%s: unknown alg '%.*s'", k->name, (int)(len > 32 ? 32 : len),
			        p);
			goto out;
		}
		memcpy(tok, p, len);
		tok[len] = '\0';
		p += len;
		if (strcasecmp(tok, "none") == 0) {
			nl_errf(why, whylen, r, "%s: alg none is never allowed", k->name);
			goto out;
		}
		if (strncasecmp(tok, "HS", 2) == 0) {
			nl_errf(why, whylen, r,
			        "%s: %s is never allowed (HMAC would turn a public key into a shared secret)",
			        k->name, tok);
			goto out;
		}
		if (!alg_known(tok)) {
			nl_errf(why, whylen, r,
			        "%s: unknown alg '%s' (RS256/384/512, PS256/384/512, ES256/384/512)", k->name,
			        tok);
			goto out;
		}
		for (i = 0; i < n; i++) {
			if (strcmp(algs[i], tok) == 0) {
				nl_errf(why, whylen, r, "%s: %s listed twice", k->name, tok);
				goto out;
			}
		}
		if (n == NL_MAX_ALGS) {
			nl_errf(why, whylen, r, "%s: more than %d algs", k->name, NL_MAX_ALGS);
			goto out;
		}
		if ((algs[n] = strdup(tok)) == NULL) {
			r = nl_errf(why, whylen, NL_ERR_NOMEM, "out of memory");
			goto out;
		}
		n++;
	}
	if (n == 0) {
		nl_errf(why, whylen, r, "%s: empty list", k->name);
		goto out;
	}
	free_algs(cfg->env.allowed_algs, cfg->env.n_allowed_algs);
	memcpy(cfg->env.allowed_algs, algs, sizeof(algs));
	cfg->env.n_allowed_algs = n;
	n = 0;
	r = 0;
out:
	free_algs(algs, n);
	return r;
}

/* "P<level>" then one or more ".C<letter>" components, level 0, 5 or 9: "P9.Cp.Cd". */
static bool vector_ok(const char *s)
{
	if (s[0] != 'P' || (s[1] != '0' && s[1] != '5' && s[1] != '9'))
		return false;
	s += 2;
	if (*s == '\0')
		return false;
	while (*s != '\0') {
		if (s[0] != '.' || s[1] != 'C' || s[2] < 'a' || s[2] > 'z')
			return false;
		s += 3;
	}
	return true;
}

/* Parse a vtr value; on success *max_level is the highest level among its vectors and, if
 * compact is non-NULL, a new compact JSON string. */
static int parse_vtr(const char *value, int *max_level, char **compact, char *why, size_t whylen)
{
	json_t *arr = NULL, *v;
	char jerr[128];
	size_t i;
	int r = NL_ERR_CONFIG, lvl, best = -1;

	if (nl_json_parse(value, strlen(value), MAX_VALUE, 2, false, &arr, jerr, sizeof(jerr)) != 0) {
		nl_errf(why, whylen, r, "vtr: not JSON (%s); write it as [\"P9.Cp.Cd\",\"P9.Cm\"]", jerr);
		goto out;
	}
	if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > MAX_VTR) {
		nl_errf(why, whylen, r, "vtr: must be a JSON array of 1..%d vectors such as [\"P9.Cp.Cd\"]",
		        MAX_VTR);
		goto out;
	}
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) || !vector_ok(json_string_value(v))) {
			nl_errf(why, whylen, r, "vtr: item %zu is not a vector such as \"P9.Cp.Cd\"", i + 1);
			goto out;
		}
		lvl = json_string_value(v)[1] - '0';
		if (lvl > best)
			best = lvl;
	}
	if (compact != NULL && (*compact = json_dumps(arr, JSON_COMPACT)) == NULL) {
		r = nl_errf(why, whylen, NL_ERR_NOMEM, "out of memory");
		goto out;
	}
	*max_level = best;
	r = 0;
out:
	json_decref(arr);
	return r;
}

static int set_vtr(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                   char *why, size_t whylen)
{
	char *compact = NULL;
	int lvl, r;

	(void)k;
	(void)base;
	if ((r = parse_vtr(value, &lvl, &compact, why, whylen)) != 0)
		return r;
	free(cfg->env.vtr);
	cfg->env.vtr = compact;
	return 0;
}

/* A list of address blocks, commas and/or spaces between them. Never /0: that would believe
 * the forwarding headers of anyone on the internet. */
static int set_proxies(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                       char *why, size_t whylen)
{
	struct nl_cidr list[NL_MAX_CIDRS];
	char tok[80], e[160];
	const char *p = value;
	size_t n = 0, len;

	(void)base;
	while (*p != '\0') {
		if (*p == ',' || *p == ' ' || *p == '\t') {
			p++;
			continue;
		}
		len = strcspn(p, ", \t");
		if (len >= sizeof(tok))
			return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: '%.32s...' is not an address block",
			               k->name, p);
		memcpy(tok, p, len);
		tok[len] = '\0';
		p += len;
		if (n == NL_MAX_CIDRS)
			return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: more than %d address blocks", k->name,
			               NL_MAX_CIDRS);
		if (nl_cidr_parse(tok, &list[n], e, sizeof(e)) != 0)
			return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: %s", k->name, e);
		if (list[n].prefix == 0)
			return nl_errf(why, whylen, NL_ERR_CONFIG,
			               "%s: '%s' would trust every address; name the proxies", k->name, tok);
		n++;
	}
	if (n == 0)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: empty list", k->name);
	memcpy(cfg->trusted_proxies, list, n * sizeof(list[0]));
	cfg->n_trusted_proxies = n;
	return 0;
}

/* [policy] remote_networks_*: address blocks, commas and/or spaces between; /0 is allowed (a deny
 * list of 0.0.0.0/0 and ::/0 refuses every remote sign-in). */
static int set_networks(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                        char *why, size_t whylen)
{
	struct nl_cidr_list list;
	char tok[80], e[160];
	const char *p = value;
	size_t len;

	(void)base;
	memset(&list, 0, sizeof(list));
	for (p += strspn(p, ", \t"); *p != '\0'; p += strspn(p, ", \t")) {
		len = strcspn(p, ", \t");
		if (len >= sizeof(tok))
			return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: '%.32s...' is not an address block",
			               k->name, p);
		memcpy(tok, p, len);
		tok[len] = '\0';
		p += len;
		if (list.n == NL_MAX_CIDRS)
			return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: more than %d address blocks", k->name,
			               NL_MAX_CIDRS);
		if (nl_cidr_parse(tok, &list.v[list.n], e, sizeof(e)) != 0)
			return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: %s", k->name, e);
		list.n++;
	}
	if (list.n == 0)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: empty list", k->name);
	*FIELD(cfg, k, struct nl_cidr_list) = list;
	return 0;
}

#define S(field) offsetof(struct nl_config, field)
static const struct key_def keys[] = {
    {"", "environment", set_str, S(environment), 0, 0, false, check_env_name},
    {"", "environments_dir", set_path, S(environments_dir), 0, 0, false, NULL},
    {"daemon", "socket", set_path, S(socket_path), 0, 0, false, NULL},
    {"daemon", "socket_group", set_str, S(socket_group), 0, 0, false, check_group},
    {"daemon", "state_dir", set_path, S(state_dir), 0, 0, false, NULL},
    {"daemon", "cache_dir", set_path, S(cache_dir), 0, 0, false, NULL},
    {"daemon", "flow_ttl", set_uint, S(flow_ttl), 30, 3600, false, NULL},
    {"daemon", "max_flows", set_uint, S(max_flows), 1, 100000, false, NULL},
    {"daemon", "max_flows_per_user", set_uint, S(max_flows_per_user), 1, 100, false, NULL},
    {"daemon", "wait_max", set_uint, S(wait_max), 1, 60, false, NULL},
    {"daemon", "http_timeout", set_uint, S(http_timeout), 1, 60, false, NULL},
    {"daemon", "debug", set_bool, S(debug), 0, 0, false, NULL},
    {"bridge", "listen", set_str, S(listen), 0, 0, false, check_listen},
    {"bridge", "public_url", set_str, S(public_url), 0, 0, false, check_issuer},
    {"bridge", "tls_cert", set_path, S(tls_cert), 0, 0, false, NULL},
    {"bridge", "tls_key", set_path, S(tls_key), 0, 0, true, NULL},
    {"bridge", "code_attempts", set_uint, S(code_attempts), 1, 1000, false, NULL},
    {"bridge", "trusted_proxies", set_proxies, 0, 0, 0, false, NULL},
    {"bridge", "behind_tls_proxy", set_bool, S(behind_tls_proxy), 0, 0, false, NULL},
    {"identity", "claim", set_claim, 0, 0, 0, false, NULL},
    {"identity", "rule", set_rule, 0, 0, 0, false, NULL},
    {"identity", "map_file", set_path, S(map_file), 0, 0, false, NULL},
    {"identity", "email_domain", set_str, S(email_domain), 0, 0, false, check_domain},
    {"identity", "min_level", set_min_level, 0, 0, 0, false, NULL},
    {"identity", "reuse_window", set_uint, S(reuse_window), 0, 43200, false, NULL},
    {"identity", "reuse_unlock_services", set_str, S(reuse_unlock_services), 0, 0, false,
     nl_policy_services_check},
    {"identity", "userinfo", set_bool, S(userinfo), 0, 0, false, NULL},
    {"identity", "min_uid", set_uint, S(min_uid), 1, 2147483647L, false, NULL},
    {"pam", "timeout", set_uint, S(pam_timeout), 0, 3600, false, NULL},
    {"pam", "debug", set_bool, S(pam_debug), 0, 0, false, NULL},
    {"pam", "noqr", set_bool, S(pam_noqr), 0, 0, false, NULL},
    {"pam", "strict", set_bool, S(pam_strict), 0, 0, false, NULL},
    {"pam", "enter_prompt", set_bool, S(pam_enter_prompt), 0, 0, false, NULL},
    {"pam", "noninteractive", set_noninteractive, 0, 0, 0, false, NULL},
    {"policy", "services_allow", set_str, S(services_allow), 0, 0, false, nl_policy_services_check},
    {"policy", "services_deny", set_str, S(services_deny), 0, 0, false, nl_policy_services_check},
    {"policy", "remote_networks_allow", set_networks, S(remote_networks_allow), 0, 0, false, NULL},
    {"policy", "remote_networks_deny", set_networks, S(remote_networks_deny), 0, 0, false, NULL},
    {"policy", "number_matching", set_number_matching, 0, 0, 0, false, NULL},
    {"env", "issuer", set_str, S(env.issuer), 0, 0, false, check_issuer},
    {"env", "client_id", set_str, S(env.client_id), 0, 0, false, check_client_id},
    {"env", "client_key", set_path, S(env.client_key), 0, 0, true, NULL},
    {"env", "scope", set_str, S(env.scope), 0, 0, false, check_scope},
    {"env", "vtr", set_vtr, 0, 0, 0, false, NULL},
    {"env", "redirect_uri", set_str, S(env.redirect_uri), 0, 0, false, check_issuer},
    {"env", "allowed_algs", set_algs, 0, 0, 0, false, NULL},
    {"env", "ca_file", set_path, S(env.ca_file), 0, 0, false, NULL},
    {"env", "flow", set_flow, 0, 0, 0, false, NULL},
    {"env", "prompt_login", set_bool, S(env.prompt_login), 0, 0, false, NULL},
};
#undef S
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static bool section_known(const char *section)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].section, section) == 0)
			return true;
	return false;
}

static void where(const char *section, char *buf, size_t len)
{
	if (section[0] == '\0')
		snprintf(buf, len, "at top level");
	else if (strcmp(section, "env") == 0)
		snprintf(buf, len, "in an environment file");
	else
		snprintf(buf, len, "in [%s]", section);
}

/* The setter behind nl_config_set and the file parser. base resolves relative paths (NULL: they
 * are refused). *idx is the key's index in keys[] once it is known. */
static int set_key(struct nl_config *cfg, const char *section, const char *key, const char *value,
                   const char *base, size_t *idx, char *why, size_t whylen)
{
	char w[64];
	size_t i, n;

	if (section == NULL || key == NULL || value == NULL)
		return nl_errf(why, whylen, NL_ERR_INVALID, "missing section, key or value");
	if (!section_known(section))
		return nl_errf(why, whylen, NL_ERR_CONFIG, "unknown section [%s]", section);
	for (i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, key) == 0)
			break;
	if (i == N_KEYS) {
		where(section, w, sizeof(w));
		return nl_errf(why, whylen, NL_ERR_CONFIG, "unknown key '%s' %s", key, w);
	}
	*idx = i;
	n = strlen(value);
	if (n == 0)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: missing value", key);
	if (n > MAX_VALUE)
		return nl_errf(why, whylen, NL_ERR_TOO_BIG, "%s: value longer than %d bytes", key, MAX_VALUE);
	for (const char *p = value; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: value contains a control character",
			               key);
		if (*p == '#' && p > value && p[-1] == ' ')
			return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: comments must be on their own line",
			               key);
	}
	return keys[i].set(cfg, &keys[i], value, base, why, whylen);
}

int nl_config_set(struct nl_config *cfg, const char *section, const char *key, const char *value, char *err,
                  size_t errlen)
{
	size_t idx;

	return set_key(cfg, section, key, value, NULL, &idx, err, errlen);
}

/* ---- the INI parser ---- */

struct parse_ctx {
	struct nl_config *cfg;
	const char *path;   /* for messages */
	const char *base;   /* directory of the file, absolute */
	bool env_file;      /* no sections; keys go to "env" */
	bool check_secrets; /* open secret files named by the file to check their modes */
	bool check_owner;
};

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static bool is_key_name(const char *k)
{
	size_t n = strlen(k);

	return n > 0 && strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

static int parse_section(const struct parse_ctx *pc, char *line, char *section, size_t seclen, char *why,
                         size_t whylen)
{
	char *name;
	size_t n = strlen(line);

	if (pc->env_file)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "an environment file has no [sections]");
	if (n < 3 || line[n - 1] != ']')
		return nl_errf(why, whylen, NL_ERR_CONFIG, "expected [section]");
	line[n - 1] = '\0';
	name = trim(line + 1);
	if (!is_key_name(name) || strcmp(name, "env") == 0 || !section_known(name) ||
	    strlen(name) >= seclen)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "unknown section [%s]", name);
	snprintf(section, seclen, "%s", name);
	return 0;
}

static int check_secret_file(const struct parse_ctx *pc, const struct key_def *k, char *why, size_t whylen)
{
	const char *path = *FIELD(pc->cfg, k, char *);
	char e[PATH_MAX + 128];
	int fd = -1, r;

	if ((r = open_checked(path, true, NL_CONFIG_MAX_FILE, pc->check_owner, &fd, NULL, e, sizeof(e))) !=
	    0)
		return nl_errf(why, whylen, r, "%s: %s", k->name, e);
	close(fd);
	return 0;
}

static int parse_line(const struct parse_ctx *pc, char *line, char *section, size_t seclen, bool *seen,
                      char *why, size_t whylen)
{
	char *eq, *key, *value;
	size_t idx = N_KEYS;
	int r;

	line = trim(line);
	if (line[0] == '\0' || line[0] == '#' || line[0] == ';')
		return 0;
	if (line[0] == '[')
		return parse_section(pc, line, section, seclen, why, whylen);
	if ((eq = strchr(line, '=')) == NULL)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "expected 'key = value'");
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	if (!is_key_name(key))
		return nl_errf(why, whylen, NL_ERR_CONFIG, "expected 'key = value'");
	if ((r = set_key(pc->cfg, pc->env_file ? "env" : section, key, value, pc->base, &idx, why, whylen)) !=
	    0) {
		return r;
	}
	if (seen[idx])
		return nl_errf(why, whylen, NL_ERR_CONFIG, "duplicate key '%s'", key);
	seen[idx] = true;
	if (keys[idx].secret && pc->check_secrets)
		return check_secret_file(pc, &keys[idx], why, whylen);
	return 0;
}

static int parse_file(const struct parse_ctx *pc, char *err, size_t errlen)
{
	bool seen[N_KEYS] = {false};
	char section[32] = "";
	char *text = NULL, *line, *nl;
	char why[PATH_MAX + 256];
	size_t len = 0;
	unsigned lineno = 0;
	int r = NL_ERR_INTERNAL;

	if ((r = read_checked(pc->path, false, NL_CONFIG_MAX_FILE, pc->check_owner, &text, &len, err,
	                      errlen)) != 0)
		goto out;
	if (memchr(text, '\0', len) != NULL) {
		r = nl_errf(err, errlen, NL_ERR_CONFIG, "%s: contains a NUL byte", pc->path);
		goto out;
	}
	for (line = text; line < text + len; line = nl + 1) {
		lineno++;
		if ((nl = strchr(line, '\n')) == NULL)
			nl = text + len;
		*nl = '\0';
		if ((r = parse_line(pc, line, section, sizeof(section), seen, why, sizeof(why))) != 0) {
			nl_errf(err, errlen, r, "%s:%u: %s", pc->path, lineno, why);
			goto out;
		}
	}
	r = 0;
out:
	free(text);
	return r;
}

/* ---- init, load, validate, free ---- */

void nl_config_init(struct nl_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	/* A failed strdup leaves NULL; nl_config_validate reports it as out of memory. */
	cfg->socket_path = strdup(NL_DEFAULT_SOCKET);
	cfg->state_dir = strdup(DEFAULT_STATE_DIR);
	cfg->cache_dir = strdup(DEFAULT_CACHE_DIR);
	cfg->flow_ttl = 300;
	cfg->max_flows = 1024;
	cfg->max_flows_per_user = 3;
	cfg->wait_max = 25;
	cfg->http_timeout = 10;
	cfg->listen = strdup(DEFAULT_LISTEN);
	cfg->code_attempts = 10;
	cfg->claim = NL_CLAIM_NHS_NUMBER;
	cfg->rule = NL_MAP_FILE;
	cfg->min_level = 9;
	cfg->min_uid = 1000;
	cfg->pam_noninteractive = NL_NONINTERACTIVE_IGNORE;
	cfg->env.scope = strdup(DEFAULT_SCOPE);
	cfg->env.vtr = strdup(DEFAULT_VTR);
	cfg->env.flow = NL_FLOW_BRIDGE;
	cfg->env.prompt_login = true;
	if ((cfg->env.allowed_algs[0] = strdup(DEFAULT_ALG)) != NULL)
		cfg->env.n_allowed_algs = 1;
}

void nl_config_free(struct nl_config *cfg)
{
	if (cfg == NULL)
		return;
	char **strs[] = {&cfg->path,         &cfg->environment,   &cfg->environments_dir,
	                 &cfg->socket_path,  &cfg->socket_group,  &cfg->state_dir,
	                 &cfg->cache_dir,    &cfg->listen,        &cfg->public_url,
	                 &cfg->tls_cert,     &cfg->tls_key,       &cfg->map_file,
	                 &cfg->email_domain, &cfg->env.name,      &cfg->env.path,
	                 &cfg->env.issuer,   &cfg->env.client_id, &cfg->env.client_key,
	                 &cfg->env.scope,    &cfg->env.vtr,       &cfg->env.redirect_uri,
	                 &cfg->env.ca_file};

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	free(cfg->reuse_unlock_services);
	free_algs(cfg->env.allowed_algs, cfg->env.n_allowed_algs);
	free(cfg->services_allow);
	free(cfg->services_deny);
	memset(cfg, 0, sizeof(*cfg));
}

/* Absolute directory of path (a new string). */
static int dir_of(const char *path, char **out, char *err, size_t errlen)
{
	char *copy = NULL, *slash, *real = NULL;
	int r = NL_ERR_INTERNAL;

	if ((copy = strdup(path)) == NULL) {
		r = nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((slash = strrchr(copy, '/')) == NULL) {
		free(copy);
		copy = strdup(".");
	} else if (slash == copy) {
		slash[1] = '\0';
	} else {
		*slash = '\0';
	}
	if (copy == NULL || (real = realpath(copy, NULL)) == NULL) {
		r = nl_errf(err, errlen, copy == NULL ? NL_ERR_NOMEM : NL_ERR_IO,
		            "%s: cannot resolve its directory: %s", path,
		            copy == NULL ? "out of memory" : strerror(errno));
		goto out;
	}
	if (strcmp(real, "/") == 0)
		real[0] = '\0'; /* so that base + "/" + name is "/name" */
	*out = real;
	real = NULL;
	r = 0;
out:
	free(copy);
	free(real);
	return r;
}

static int load_env(struct nl_config *cfg, unsigned flags, char *err, size_t errlen)
{
	struct parse_ctx pc;
	char *path = NULL, *base = NULL;
	int r = NL_ERR_INTERNAL;

	if (cfg->environment == NULL) {
		r = nl_errf(err, errlen, NL_ERR_CONFIG,
		            "%s: environment is not set (mock, sandpit, integration, live or local)",
		            cfg->path);
		goto out;
	}
	if (asprintf(&path, "%s/%s.conf", cfg->environments_dir, cfg->environment) < 0) {
		path = NULL;
		r = nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = dir_of(path, &base, err, errlen)) != 0)
		goto out;
	free(cfg->env.path);
	cfg->env.path = path;
	path = NULL;
	if ((r = replace_str(&cfg->env.name, cfg->environment, err, errlen)) != 0)
		goto out;
	pc = (struct parse_ctx){cfg, cfg->env.path, base, true, true, !(flags & NL_CONFIG_NO_OWNER_CHECK)};
	r = parse_file(&pc, err, errlen);
out:
	free(path);
	free(base);
	return r;
}

int nl_config_load(const char *path, struct nl_config *cfg, unsigned flags, char *err, size_t errlen)
{
	struct parse_ctx pc;
	char *base = NULL;
	int r = NL_ERR_INTERNAL;

	if (path == NULL || cfg == NULL)
		return nl_errf(err, errlen, NL_ERR_INVALID, "no configuration file given");
	if ((r = dir_of(path, &base, err, errlen)) != 0)
		goto out;
	if ((r = replace_str(&cfg->path, path, err, errlen)) != 0)
		goto out;
	/* Secret files named by the main file (tls_key) matter to the daemon only; the module may
	 * run unprivileged and must not fail on a key it never reads. */
	pc = (struct parse_ctx){
	    cfg, path, base, false, !(flags & NL_CONFIG_MAIN_ONLY), !(flags & NL_CONFIG_NO_OWNER_CHECK)};
	if ((r = parse_file(&pc, err, errlen)) != 0)
		goto out;
	if (cfg->environments_dir == NULL && asprintf(&cfg->environments_dir, "%s/environments", base) < 0) {
		cfg->environments_dir = NULL;
		r = nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (cfg->public_url == NULL && cfg->listen != NULL &&
	    asprintf(&cfg->public_url, "%s://%s", cfg->tls_cert != NULL ? "https" : "http", cfg->listen) <
	        0) {
		cfg->public_url = NULL;
		r = nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (!(flags & NL_CONFIG_MAIN_ONLY) && (r = load_env(cfg, flags, err, errlen)) != 0)
		goto out;
	r = nl_config_validate(cfg, flags, err, errlen);
out:
	free(base);
	return r;
}

static int validate_env(const struct nl_config *cfg, char *err, size_t errlen)
{
	const char *file = cfg->env.path != NULL ? cfg->env.path : "environment";
	const char *req[] = {"issuer", "client_id", "client_key", "redirect_uri"};
	const char *val[] = {cfg->env.issuer, cfg->env.client_id, cfg->env.client_key, cfg->env.redirect_uri};
	char why[512];
	int lvl;

	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
		if (val[i] == NULL)
			return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: %s is required", file, req[i]);
	}
	if (strncmp(cfg->env.client_id, PLACEHOLDER, strlen(PLACEHOLDER)) == 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: client_id is still the placeholder '%s': "
		               "set the client_id NHS login gave you", file, cfg->env.client_id);
	if (strstr(cfg->env.redirect_uri, PLACEHOLDER) != NULL)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: redirect_uri is still the placeholder '%s': "
		               "set your registered redirect URI", file, cfg->env.redirect_uri);
	if (check_url(cfg->env.issuer, false, why, sizeof(why)) != 0 ||
	    check_url(cfg->env.redirect_uri, false, why, sizeof(why)) != 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: %s", file, why);
	if (cfg->env.n_allowed_algs == 0 || cfg->env.scope == NULL || cfg->env.vtr == NULL)
		return nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
	if (parse_vtr(cfg->env.vtr, &lvl, NULL, why, sizeof(why)) != 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: %s", file, why);
	if (lvl < cfg->min_level)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: no vector in vtr reaches [identity] min_level P%d, "
		               "so no sign-in could succeed", file, cfg->min_level);
	return 0;
}

static bool listen_is_loopback(const char *listen)
{
	char host[256];
	const char *port;
	bool bracketed;

	return listen != NULL && split_host_port(listen, host, sizeof(host), &port, &bracketed) &&
	       is_loopback_host(host, bracketed);
}

/* Plain http off loopback only when the configuration says a TLS proxy alone reaches the listener
 * (an https public_url says nothing about who else can connect), and a proxy in front must be
 * named: otherwise every phone has the proxy's address and one person's wrong codes refuse all. */
static int validate_transport(const struct nl_config *cfg, const char *file, char *err, size_t errlen)
{
	if (cfg->tls_cert == NULL && !listen_is_loopback(cfg->listen) && !cfg->behind_tls_proxy)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: [bridge] listen %s is not a loopback address and there is no tls_cert: "
		               "plain http there can be read on the network; "
		               "set tls_cert and tls_key, listen on loopback, "
		               "or set behind_tls_proxy = yes if only a TLS reverse proxy can reach it", file,
		               cfg->listen);
	if (cfg->behind_tls_proxy && cfg->n_trusted_proxies == 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: [bridge] behind_tls_proxy needs trusted_proxies (the proxy's address), "
		               "or every phone has the proxy's address and one person's wrong codes refuse "
		               "all", file);
	return 0;
}

static int validate_main(const struct nl_config *cfg, char *err, size_t errlen)
{
	const char *file = cfg->path != NULL ? cfg->path : "configuration";
	char why[512];

	if (cfg->rule == NL_MAP_FILE && cfg->map_file == NULL)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: [identity] rule = map needs map_file", file);
	if (cfg->rule == NL_MAP_EMAIL_LOCAL && cfg->email_domain == NULL)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: [identity] rule = email_local needs email_domain", file);
	if (cfg->rule == NL_MAP_EMAIL_LOCAL && cfg->claim != NL_CLAIM_EMAIL)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: [identity] rule = email_local needs claim = email", file);
	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: [bridge] tls_cert and tls_key go together",
		               file);
	if (cfg->public_url != NULL && check_url(cfg->public_url, false, why, sizeof(why)) != 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: [bridge] public_url: %s (set public_url to the address phones use)", file,
		               why);
	return validate_transport(cfg, file, err, errlen);
}

int nl_config_validate(const struct nl_config *cfg, unsigned flags, char *err, size_t errlen)
{
	int r;

	if (cfg->socket_path == NULL || cfg->state_dir == NULL || cfg->cache_dir == NULL ||
	    cfg->listen == NULL)
		return nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
	if (flags & NL_CONFIG_MAIN_ONLY)
		return 0;
	if (cfg->environment == NULL)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: environment is not set (mock, sandpit, integration, live or local)",
		               cfg->path != NULL ? cfg->path : "configuration");
	if ((r = validate_main(cfg, err, errlen)) != 0)
		return r;
	return validate_env(cfg, err, errlen);
}
