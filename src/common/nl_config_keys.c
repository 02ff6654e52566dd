/* Configuration: the key table (every key of nhslogin.conf and the environment file, with its
 * setter and check), the one setter behind files and module arguments, and the strict INI parser. */
#include "config.h"
#include "nl_config.h"
#include "nl_config_int.h"
#include "nl_text.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_policy.h"
#include "nl_wipe.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_VALUE 4096 /* longest value of any key */
#define MAX_VTR   16   /* vectors in vtr */

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

int nl_cfg_replace_str(char **slot, const char *value, char *why, size_t whylen)
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
	return nl_cfg_replace_str(FIELD(cfg, k, char *), value, why, whylen);
}

static int set_path(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                    char *why, size_t whylen)
{
	char *joined = NULL;
	int r;

	if (value[0] == '/')
		return nl_cfg_replace_str(FIELD(cfg, k, char *), value, why, whylen);
	if (base == NULL)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "%s must be an absolute path", k->name);
	if (asprintf(&joined, "%s/%s", base, value) < 0)
		return nl_errf(why, whylen, NL_ERR_NOMEM, "out of memory");
	if (strlen(joined) >= PATH_MAX) {
		r = nl_errf(why, whylen, NL_ERR_CONFIG, "%s: path too long", k->name);
	} else {
		r = nl_cfg_replace_str(FIELD(cfg, k, char *), joined, why, whylen);
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

_Static_assert(sizeof(enum nl_claim) == sizeof(int) && sizeof(enum nl_map_rule) == sizeof(int) &&
                   sizeof(enum nl_flow_mode) == sizeof(int) &&
                   sizeof(enum nl_noninteractive) == sizeof(int) &&
                   sizeof(enum nl_number_matching) == sizeof(int) &&
                   sizeof(enum nl_id_source) == sizeof(int) && sizeof(enum nl_ldap_tls) == sizeof(int) &&
                   sizeof(enum nl_role) == sizeof(int),
               "set_choice writes an enum field as an int");
_Static_assert(NL_CLAIM_SUB == 2 && NL_MAP_EMAIL_LOCAL == 1 && NL_FLOW_DEVICE == 1 &&
                   NL_NONINTERACTIVE_DENY == 1 && NL_NUMBER_ALWAYS == 2 && NL_SOURCE_LDAP == 1 &&
                   NL_LDAP_TLS_NONE == 2 && NL_ROLE_BRIDGE == 2,
               "the choices' enum values are the indexes of their names");

/* The words of each choice key, in the order of its enum (nl_config.h). */
static const struct {
	const char *key;
	const char *names[4];
} choices[] = {
    {"claim", {"nhs_number", "email", "sub", NULL}},
    {"rule", {"map", "email_local", NULL}},
    {"flow", {"bridge", "device", NULL}},
    {"noninteractive", {"ignore", "deny", NULL}},
    {"number_matching", {"remote", "never", "always", NULL}},
    {"source", {"map_file", "ldap", NULL}},
    {"tls", {"starttls", "ldaps", "none", NULL}},
    {"role", {"local", "agent", "bridge", NULL}},
};

/* A choice: the field is an enum whose values are the indexes of the key's words (written through
 * its int-sized representation, which C lets an int lvalue reach). */
static int set_choice(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                      char *why, size_t whylen)
{
	int i, r;

	(void)base;
	for (size_t c = 0; c < sizeof(choices) / sizeof(choices[0]); c++) {
		if (strcmp(choices[c].key, k->name) != 0)
			continue;
		if ((r = pick(k, value, choices[c].names, &i, why, whylen)) == 0)
			*FIELD(cfg, k, int) = i;
		return r;
	}
	return nl_errf(why, whylen, NL_ERR_INTERNAL, "%s: no choices", k->name);
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

void nl_cfg_free_algs(char **algs, size_t n)
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
	nl_cfg_free_algs(cfg->env.allowed_algs, cfg->env.n_allowed_algs);
	memcpy(cfg->env.allowed_algs, algs, sizeof(algs));
	cfg->env.n_allowed_algs = n;
	n = 0;
	r = 0;
out:
	nl_cfg_free_algs(algs, n);
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
int nl_cfg_parse_vtr(const char *value, int *max_level, char **compact, char *why, size_t whylen)
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
	if ((r = nl_cfg_parse_vtr(value, &lvl, &compact, why, whylen)) != 0)
		return r;
	free(cfg->env.vtr);
	cfg->env.vtr = compact;
	return 0;
}

/* A list of address blocks, commas and/or spaces between them, into list. /0 only if all_ok. */
static int parse_blocks(const struct key_def *k, const char *value, bool all_ok, struct nl_cidr_list *list,
                        char *why, size_t whylen)
{
	char tok[80], e[160];
	const char *p = value;
	size_t len;

	memset(list, 0, sizeof(*list));
	for (p += strspn(p, ", \t"); *p != '\0'; p += strspn(p, ", \t")) {
		len = strcspn(p, ", \t");
		if (len >= sizeof(tok))
			return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: '%.32s...' is not an address block",
			               k->name, p);
		memcpy(tok, p, len);
		tok[len] = '\0';
		p += len;
		if (list->n == NL_MAX_CIDRS)
			return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: more than %d address blocks", k->name,
			               NL_MAX_CIDRS);
		if (nl_cidr_parse(tok, &list->v[list->n], e, sizeof(e)) != 0)
			return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: %s", k->name, e);
		if (!all_ok && list->v[list->n].prefix == 0)
			return nl_errf(why, whylen, NL_ERR_CONFIG,
			               "%s: '%s' would trust every address; name the proxies", k->name, tok);
		list->n++;
	}
	if (list->n == 0)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: empty list", k->name);
	return 0;
}

/* trusted_proxies: never /0, which would believe the forwarding headers of anyone on the
 * internet. */
static int set_proxies(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                       char *why, size_t whylen)
{
	struct nl_cidr_list list;
	int r;

	(void)base;
	if ((r = parse_blocks(k, value, false, &list, why, whylen)) != 0)
		return r;
	memcpy(cfg->trusted_proxies, list.v, list.n * sizeof(list.v[0]));
	cfg->n_trusted_proxies = list.n;
	return 0;
}

/* [policy] remote_networks_*: /0 is allowed (a deny list of 0.0.0.0/0 and ::/0 refuses every
 * remote sign-in). */
static int set_networks(struct nl_config *cfg, const struct key_def *k, const char *value, const char *base,
                        char *why, size_t whylen)
{
	struct nl_cidr_list list;
	int r;

	(void)base;
	if ((r = parse_blocks(k, value, true, &list, why, whylen)) != 0)
		return r;
	*FIELD(cfg, k, struct nl_cidr_list) = list;
	return 0;
}

#define S(field) offsetof(struct nl_config, field)
static const struct key_def keys[] = {
    {"", "environment", set_str, S(environment), 0, 0, false, nl_cfg_check_env_name},
    {"", "environments_dir", set_path, S(environments_dir), 0, 0, false, NULL},
    {"daemon", "socket", set_path, S(socket_path), 0, 0, false, NULL},
    {"daemon", "socket_group", set_str, S(socket_group), 0, 0, false, nl_cfg_check_group},
    {"daemon", "state_dir", set_path, S(state_dir), 0, 0, false, NULL},
    {"daemon", "cache_dir", set_path, S(cache_dir), 0, 0, false, NULL},
    {"daemon", "flow_ttl", set_uint, S(flow_ttl), 30, 3600, false, NULL},
    {"daemon", "max_flows", set_uint, S(max_flows), 1, 100000, false, NULL},
    {"daemon", "max_flows_per_user", set_uint, S(max_flows_per_user), 1, 100, false, NULL},
    {"daemon", "wait_max", set_uint, S(wait_max), 1, 60, false, NULL},
    {"daemon", "http_timeout", set_uint, S(http_timeout), 1, 60, false, NULL},
    {"daemon", "debug", set_bool, S(debug), 0, 0, false, NULL},
    {"daemon", "role", set_choice, S(role), 0, 0, false, NULL},
    {"store", "url", set_str, S(store_url), 0, 0, false, nl_cfg_check_store_url},
    {"store", "sentinels", set_str, S(store_sentinels), 0, 0, false, nl_cfg_check_sentinels},
    {"store", "master", set_str, S(store_master), 0, 0, false, nl_cfg_check_master},
    {"store", "password_file", set_path, S(store_password_file), 0, 0, true, NULL},
    {"store", "index_key_file", set_path, S(store_index_key_file), 0, 0, true, NULL},
    {"store", "timeout_ms", set_uint, S(store_timeout_ms), 100, 10000, false, NULL},
    {"agent", "bridge_url", set_str, S(agent_bridge_url), 0, 0, false, nl_cfg_check_issuer},
    {"agent", "name", set_str, S(agent_name), 0, 0, false, nl_cfg_check_host_name},
    {"agent", "host_key", set_path, S(agent_host_key), 0, 0, false, NULL},
    {"agent", "ca_file", set_path, S(agent_ca_file), 0, 0, false, NULL},
    {"agent", "jwks_file", set_path, S(agent_jwks_file), 0, 0, false, NULL},
    {"bridge", "listen", set_str, S(listen), 0, 0, false, nl_cfg_check_listen},
    {"bridge", "public_url", set_str, S(public_url), 0, 0, false, nl_cfg_check_issuer},
    {"bridge", "tls_cert", set_path, S(tls_cert), 0, 0, false, NULL},
    {"bridge", "tls_key", set_path, S(tls_key), 0, 0, true, NULL},
    {"bridge", "code_attempts", set_uint, S(code_attempts), 1, 1000, false, NULL},
    {"bridge", "trusted_proxies", set_proxies, 0, 0, 0, false, NULL},
    {"bridge", "behind_tls_proxy", set_bool, S(behind_tls_proxy), 0, 0, false, NULL},
    {"bridge", "hosts_dir", set_path, S(hosts_dir), 0, 0, false, NULL},
    {"identity", "claim", set_choice, S(claim), 0, 0, false, NULL},
    {"identity", "rule", set_choice, S(rule), 0, 0, false, NULL},
    {"identity", "map_file", set_path, S(map_file), 0, 0, false, NULL},
    {"identity", "email_domain", set_str, S(email_domain), 0, 0, false, nl_cfg_check_domain},
    {"identity", "min_level", set_min_level, 0, 0, 0, false, NULL},
    {"identity", "reuse_window", set_uint, S(reuse_window), 0, 43200, false, NULL},
    {"identity", "reuse_unlock_services", set_str, S(reuse_unlock_services), 0, 0, false,
     nl_policy_services_check},
    {"identity", "userinfo", set_bool, S(userinfo), 0, 0, false, NULL},
    {"identity", "min_uid", set_uint, S(min_uid), 1, 2147483647L, false, NULL},
    {"identity", "source", set_choice, S(source), 0, 0, false, NULL},
    {"ldap", "uri", set_str, S(ldap_uri), 0, 0, false, nl_cfg_check_ldap_uri},
    {"ldap", "base", set_str, S(ldap_base), 0, 0, false, nl_cfg_check_dn},
    {"ldap", "filter", set_str, S(ldap_filter), 0, 0, false, nl_cfg_check_ldap_filter},
    {"ldap", "attribute", set_str, S(ldap_attribute), 0, 0, false, nl_cfg_check_ldap_attribute},
    {"ldap", "bind_dn", set_str, S(ldap_bind_dn), 0, 0, false, nl_cfg_check_dn},
    {"ldap", "bind_password_file", set_path, S(ldap_password_file), 0, 0, true, NULL},
    {"ldap", "tls", set_choice, S(ldap_tls), 0, 0, false, NULL},
    {"ldap", "ca_file", set_path, S(ldap_ca_file), 0, 0, false, NULL},
    {"ldap", "timeout", set_uint, S(ldap_timeout), 1, 60, false, NULL},
    {"ldap", "cache_ttl", set_uint, S(ldap_cache_ttl), 0, 3600, false, NULL},
    {"pam", "timeout", set_uint, S(pam_timeout), 0, 3600, false, NULL},
    {"pam", "debug", set_bool, S(pam_debug), 0, 0, false, NULL},
    {"pam", "noqr", set_bool, S(pam_noqr), 0, 0, false, NULL},
    {"pam", "strict", set_bool, S(pam_strict), 0, 0, false, NULL},
    {"pam", "enter_prompt", set_bool, S(pam_enter_prompt), 0, 0, false, NULL},
    {"pam", "noninteractive", set_choice, S(pam_noninteractive), 0, 0, false, NULL},
    {"policy", "services_allow", set_str, S(services_allow), 0, 0, false, nl_policy_services_check},
    {"policy", "services_deny", set_str, S(services_deny), 0, 0, false, nl_policy_services_check},
    {"policy", "remote_networks_allow", set_networks, S(remote_networks_allow), 0, 0, false, NULL},
    {"policy", "remote_networks_deny", set_networks, S(remote_networks_deny), 0, 0, false, NULL},
    {"policy", "number_matching", set_choice, S(number_matching), 0, 0, false, NULL},
    {"env", "issuer", set_str, S(env.issuer), 0, 0, false, nl_cfg_check_issuer},
    {"env", "client_id", set_str, S(env.client_id), 0, 0, false, nl_cfg_check_client_id},
    {"env", "client_key", set_path, S(env.client_key), 0, 0, true, NULL},
    {"env", "client_key_id", set_str, S(env.client_key_id), 0, 0, false, nl_cfg_check_key_id},
    {"env", "scope", set_str, S(env.scope), 0, 0, false, nl_cfg_check_scope},
    {"env", "vtr", set_vtr, 0, 0, 0, false, NULL},
    {"env", "redirect_uri", set_str, S(env.redirect_uri), 0, 0, false, nl_cfg_check_issuer},
    {"env", "allowed_algs", set_algs, 0, 0, 0, false, NULL},
    {"env", "ca_file", set_path, S(env.ca_file), 0, 0, false, NULL},
    {"env", "flow", set_choice, S(env.flow), 0, 0, false, NULL},
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

/* Edits (insert, delete, replace, swap of neighbours) from a to b, or more than 3: "more". */
static unsigned edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned d[40][40];

	if (la >= 40 || lb >= 40 || (la > lb ? la - lb : lb - la) > 3)
		return 4;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			unsigned best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

/* For an unknown key: the same key in the section it belongs to, or the nearest key name of this
 * section (at most two edits away), as " - did you mean ...?"; else "". */
static void did_you_mean(const char *section, const char *key, char *out, size_t len)
{
	const struct key_def *best = NULL;
	unsigned best_d = 3;

	out[0] = '\0';
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strcmp(keys[i].name, key) == 0 && strcmp(keys[i].section, "env") != 0 &&
		    strcmp(section, "env") != 0) {
			if (keys[i].section[0] == '\0')
				snprintf(out, len,
				         " - did you mean '%s' at top level (before any [section])?", key);
			else
				snprintf(out, len, " - did you mean '%s' in [%s]?", key, keys[i].section);
			return;
		}
		if (strcmp(keys[i].section, section) == 0) {
			unsigned d = edit_distance(key, keys[i].name);

			if (d < best_d) {
				best_d = d;
				best = &keys[i];
			}
		}
	}
	if (best != NULL)
		snprintf(out, len, " - did you mean '%s'?", best->name);
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
		char hint[96];

		where(section, w, sizeof(w));
		did_you_mean(section, key, hint, sizeof(hint));
		return nl_errf(why, whylen, NL_ERR_CONFIG, "unknown key '%s' %s%s", key, w, hint);
	}
	*idx = i;
	n = strlen(value);
	if (n == 0)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "%s: missing value", key);
	if (n > MAX_VALUE)
		return nl_errf(why, whylen, NL_ERR_TOO_BIG, "%s: value longer than %d bytes", key, MAX_VALUE);
	for (const char *p = value; *p != '\0'; p++) {
		if (nl_text_is_control((unsigned char)*p))
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

static int parse_section(const struct nl_cfg_parse_ctx *pc, char *line, char *section, size_t seclen,
                         char *why, size_t whylen)
{
	char *name;
	size_t n = strlen(line);

	if (pc->env_file)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "an environment file has no [sections]");
	if (n < 3 || line[n - 1] != ']')
		return nl_errf(why, whylen, NL_ERR_CONFIG, "expected [section]");
	line[n - 1] = '\0';
	name = trim(line + 1);
	if (!is_key_name(name) || strcmp(name, "env") == 0 || !section_known(name) || strlen(name) >= seclen)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "unknown section [%s]", name);
	snprintf(section, seclen, "%s", name);
	return 0;
}

static int check_secret_file(const struct nl_cfg_parse_ctx *pc, const struct key_def *k, char *why,
                             size_t whylen)
{
	const char *path = *FIELD(pc->cfg, k, char *);
	char e[PATH_MAX + 128];
	int fd = -1, r;

	if ((r = nl_cfg_open_checked(path, true, NL_CONFIG_MAX_FILE, pc->check_owner, &fd, NULL, e,
	                             sizeof(e))) != 0)
		return nl_errf(why, whylen, r, "%s: %s", k->name, e);
	close(fd);
	return 0;
}

static int parse_line(const struct nl_cfg_parse_ctx *pc, char *line, char *section, size_t seclen, bool *seen,
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

int nl_cfg_parse_file(const struct nl_cfg_parse_ctx *pc, char *err, size_t errlen)
{
	bool seen[N_KEYS] = {false};
	char section[32] = "";
	char *text = NULL, *line, *nl;
	char why[PATH_MAX + 256];
	size_t len = 0;
	unsigned lineno = 0;
	size_t env_key = 0, source_key = 0, role_key = 0, jwks_key = 0;
	int r = NL_ERR_INTERNAL;

	while (env_key < N_KEYS &&
	       !(keys[env_key].section[0] == '\0' && strcmp(keys[env_key].name, "environment") == 0))
		env_key++;
	while (source_key < N_KEYS && strcmp(keys[source_key].name, "source") != 0)
		source_key++;
	while (role_key < N_KEYS && strcmp(keys[role_key].name, "role") != 0)
		role_key++;
	while (jwks_key < N_KEYS && strcmp(keys[jwks_key].name, "jwks_file") != 0)
		jwks_key++;
	if ((r = nl_cfg_read_checked(pc->path, false, NL_CONFIG_MAX_FILE, pc->check_owner, &text, &len, err,
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
		/* Where environment = was set, for the message when that environment does not exist. */
		if (!pc->env_file && env_key < N_KEYS && seen[env_key] && pc->cfg->environment_line == 0)
			pc->cfg->environment_line = lineno;
		/* Where source = was set, for the [ldap] settings it needs. */
		if (!pc->env_file && source_key < N_KEYS && seen[source_key] && pc->cfg->source_line == 0)
			pc->cfg->source_line = lineno;
		if (!pc->env_file && role_key < N_KEYS && seen[role_key] && pc->cfg->role_line == 0)
			pc->cfg->role_line = lineno;
		if (!pc->env_file && jwks_key < N_KEYS && seen[jwks_key] &&
		    pc->cfg->agent_jwks_file_line == 0)
			pc->cfg->agent_jwks_file_line = lineno;
	}
	r = 0;
out:
	free(text);
	return r;
}
