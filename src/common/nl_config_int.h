/* What the files of the configuration (nl_config*.c) share and nothing else sees: safe file
 * opening, the value checks the key table and the validation use, and the INI parser's context. */
#ifndef NL_CONFIG_INT_H
#define NL_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "nl_config.h"

/* nl_config_file.c: open or read a file that is not a symbolic link, is a regular file of at most
 * max_size bytes, owned by root or us (check_owner) and not writable by others (nor readable if
 * secret). */
int nl_cfg_open_checked(const char *path, bool secret, size_t max_size, bool check_owner, int *fd_out,
                        size_t *size_out, char *err, size_t errlen);
int nl_cfg_read_checked(const char *path, bool secret, size_t max_size, bool check_owner, char **out,
                        size_t *len_out, char *err, size_t errlen);

/* nl_config_check.c: the value checks; why says what is wrong. */
bool nl_cfg_is_loopback_host(const char *host, bool bracketed);
bool nl_cfg_split_host_port(const char *auth, char *hbuf, size_t hlen, const char **port, bool *bracketed);
int nl_cfg_check_url(const char *url, bool allow_query, char *why, size_t whylen);
int nl_cfg_check_issuer(const char *v, char *why, size_t whylen);
int nl_cfg_check_env_name(const char *v, char *why, size_t whylen);
int nl_cfg_check_store_url(const char *v, char *why, size_t whylen);
int nl_cfg_check_sentinels(const char *v, char *why, size_t whylen);
int nl_cfg_check_master(const char *v, char *why, size_t whylen);
int nl_cfg_check_host_name(const char *v, char *why, size_t whylen);
int nl_cfg_check_client_id(const char *v, char *why, size_t whylen);
int nl_cfg_check_key_id(const char *v, char *why, size_t whylen);
int nl_cfg_check_scope(const char *v, char *why, size_t whylen);
int nl_cfg_check_listen(const char *v, char *why, size_t whylen);
int nl_cfg_check_group(const char *v, char *why, size_t whylen);
int nl_cfg_check_domain(const char *v, char *why, size_t whylen);
int nl_cfg_check_ldap_uri(const char *v, char *why, size_t whylen);
int nl_cfg_check_ldap_filter(const char *v, char *why, size_t whylen);
int nl_cfg_check_ldap_attribute(const char *v, char *why, size_t whylen);
int nl_cfg_check_dn(const char *v, char *why, size_t whylen);
/* The scheme all of an [ldap] uri list's URIs share: 1 ldaps://, 0 ldap://, -1 mixed or none. */
int nl_cfg_ldap_uri_scheme(const char *v);

/* nl_config_keys.c: the key table, its setters and the INI parser. */
struct nl_cfg_parse_ctx {
	struct nl_config *cfg;
	const char *path;   /* for messages */
	const char *base;   /* directory of the file, absolute */
	bool env_file;      /* no sections; keys go to "env" */
	bool check_secrets; /* open secret files named by the file to check their modes */
	bool check_owner;
};
int nl_cfg_replace_str(char **slot, const char *value, char *why, size_t whylen);
void nl_cfg_free_algs(char **algs, size_t n);
int nl_cfg_parse_vtr(const char *value, int *max_level, char **compact, char *why, size_t whylen);
int nl_cfg_parse_file(const struct nl_cfg_parse_ctx *pc, char *err, size_t errlen);

#endif
