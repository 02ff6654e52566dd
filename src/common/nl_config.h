/* Configuration: the main file (INI) and the environment file it selects, parsed into one
 * struct through one setter. Strict: unknown key, duplicate key, bad value -> error naming
 * file and line. See man/nhslogin.conf.5 for every key. */
#ifndef NL_CONFIG_H
#define NL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#define NL_CONFIG_MAX_FILE     (64 * 1024)
#define NL_CONFIG_DEFAULT_PATH NL_SYSCONFDIR "/nhslogin/nhslogin.conf"
#define NL_DEFAULT_SOCKET      NL_RUNSTATEDIR "/nhslogin/nhslogind.sock"

enum nl_claim { NL_CLAIM_NHS_NUMBER = 0, NL_CLAIM_EMAIL, NL_CLAIM_SUB };
enum nl_map_rule { NL_MAP_FILE = 0, NL_MAP_EMAIL_LOCAL };
/* [identity] source: where the claim is looked up (the map file or rule, or the directory). */
enum nl_id_source { NL_SOURCE_MAP_FILE = 0, NL_SOURCE_LDAP };
/* [ldap] tls: how the directory connection is protected. DEFAULT (unset): by the URIs' scheme,
 * starttls for ldap://, ldaps for ldaps:// (nl_ldap_tls_of); none only when written. */
enum nl_ldap_tls { NL_LDAP_TLS_STARTTLS = 0, NL_LDAP_TLS_LDAPS, NL_LDAP_TLS_NONE, NL_LDAP_TLS_DEFAULT };
enum nl_flow_mode { NL_FLOW_BRIDGE = 0, NL_FLOW_DEVICE };
/* [daemon] role (DESIGN.md, "Trust-wide deployment"; doc/bridge.md). */
enum nl_role { NL_ROLE_LOCAL = 0, NL_ROLE_AGENT, NL_ROLE_BRIDGE };
/* What the module does when the conversation cannot show text (cron, non-interactive sudo). */
enum nl_noninteractive { NL_NONINTERACTIVE_IGNORE = 0, NL_NONINTERACTIVE_DENY };
/* [policy] number_matching: which sign-ins ask the terminal for the number the phone shows. */
enum nl_number_matching { NL_NUMBER_REMOTE = 0, NL_NUMBER_NEVER, NL_NUMBER_ALWAYS };

#define NL_MAX_ALGS  8
#define NL_MAX_CIDRS 32

/* An address block: family AF_INET (4 bytes of addr used) or AF_INET6 (16), network byte order,
 * host bits zero. */
struct nl_cidr {
	int family;
	unsigned char addr[16];
	unsigned prefix;
};

/* A list of address blocks ([policy] remote_networks_allow, remote_networks_deny). */
struct nl_cidr_list {
	struct nl_cidr v[NL_MAX_CIDRS];
	size_t n;
};

/* The environment file (environments/NAME.conf): no sections. */
struct nl_env {
	char *name;          /* NAME, from the main file's environment = NAME */
	char *path;          /* the file read */
	char *issuer;        /* required; https, or http on loopback only */
	char *client_id;     /* required */
	char *client_key;    /* required; PEM private key path, absolute after load */
	char *client_key_id; /* optional kid of the client assertions; "none": no kid; default: the
	                      * key's RFC 7638 thumbprint */
	char *scope;         /* default "openid profile" */
	char *vtr;           /* JSON array of vectors; default ["P9.Cp.Cd","P9.Cp.Ck","P9.Cm"] */
	char *redirect_uri;  /* required; the daemon serves its callback at this URI's path */
	char *allowed_algs[NL_MAX_ALGS]; /* default {"RS512"}; never none/HS* */
	size_t n_allowed_algs;
	char *ca_file;          /* optional CA bundle for the provider */
	enum nl_flow_mode flow; /* bridge (default) | device */
	bool prompt_login;      /* send prompt=login on every /authorize; default true */
};

struct nl_config {
	char *path; /* main file read, or NULL */
	/* top level */
	char *environment;         /* required when the environment is loaded */
	unsigned environment_line; /* its line in the main file (0: not read from a file) */
	char *environments_dir;    /* default: <dir of main file>/environments */
	/* [daemon] */
	char *socket_path;           /* default NL_DEFAULT_SOCKET */
	char *socket_group;          /* optional group allowed to use the socket; NULL = root only */
	char *state_dir;             /* token cache; default NL_LOCALSTATEDIR "/lib/nhslogin" */
	char *cache_dir;             /* discovery/JWKS cache; default NL_LOCALSTATEDIR "/cache/nhslogin" */
	unsigned flow_ttl;           /* seconds a flow lives; default 300, 30..3600 */
	unsigned max_flows;          /* total flows in progress; default 1024, 1..100000 */
	unsigned max_flows_per_user; /* default 3, 1..100 */
	unsigned wait_max;           /* longest single wait in seconds; default 25, 1..60 */
	unsigned http_timeout;       /* provider request timeout, seconds; default 10, 1..60 */
	bool debug;                  /* default false */
	enum nl_role role;           /* default local: everything on this machine */
	unsigned role_line;          /* its line in the main file (0: not read from a file) */
	/* [store] (role = bridge): the bridges' shared state in Redis (doc/store.md) */
	char *store_url;            /* redis://HOST:PORT[/DB] or unix:PATH; or sentinels + master */
	char *store_sentinels;      /* HOST:PORT,... */
	char *store_master;         /* the name the sentinels monitor */
	char *store_password_file;  /* optional AUTH password (a secret file) */
	char *store_index_key_file; /* 32..64 random bytes, the same on every bridge (a secret file) */
	unsigned store_timeout_ms;  /* a whole Redis call; default 1000, 100..10000 */
	/* [agent] (role = agent): the bridge this workstation signs in through */
	char *agent_bridge_url; /* the bridge's base URL (https; http only on loopback) */
	char *agent_name;       /* the enrolled workstation name; default the host name */
	char *agent_host_key;   /* the workstation's private key; NULL: /etc/nhslogin/host.key */
	char *agent_ca_file;    /* optional CA bundle for the bridge's certificate */
	char *agent_jwks_file;  /* optional pinned JWKS of NHS login: verify with it only, fetch nothing */
	unsigned agent_jwks_file_line; /* its line in the main file (0: not read from a file) */
	/* [bridge] */
	char *listen;     /* HOST:PORT; default 127.0.0.1:8765 */
	char *public_url; /* base URL the phone uses; default http://<listen> */
	char *tls_cert;   /* optional PEM cert for the listener */
	char *tls_key;    /* optional PEM key for the listener (checked as a secret) */
	unsigned
	    code_attempts; /* wrong user codes allowed per client address per 10 min; default 10, 1..1000 */
	struct nl_cidr trusted_proxies[NL_MAX_CIDRS]; /* peers whose X-Forwarded-For/Forwarded is believed */
	size_t n_trusted_proxies;                     /* default 0: none */
	bool behind_tls_proxy; /* plain http off loopback: a TLS proxy is in front; default false */
	char *hosts_dir;       /* role = bridge: enrolled workstations, NAME.pem each */
	/* [identity] */
	enum nl_claim claim;   /* default nhs_number */
	enum nl_map_rule rule; /* map (default) | email_local */
	char *map_file;        /* "local_user claim_value" a line; required for rule = map */
	char *email_domain;    /* required for rule = email_local: only this domain maps */
	int min_level;         /* 0, 5 or 9 from P0/P5/P9; default 9 */
	unsigned reuse_window; /* seconds; default 0 = never reuse; up to 43200 */
	char
	    *reuse_unlock_services; /* screen unlock / display manager services that may reuse; NULL = none */
	unsigned min_uid;         /* rule = email_local: lowest uid an address may name; default 1000, >= 1 */
	bool userinfo;            /* call /userinfo and check sub; default false */
	enum nl_id_source source; /* map_file (default: rule and map_file) | ldap ([ldap] below) */
	unsigned source_line;     /* its line in the main file (0: not read from a file) */
	/* [ldap] (source = ldap): the claim's value looked up in the directory */
	char *ldap_uri;           /* ldap:// or ldaps:// URIs, one or more, spaces or commas between */
	char *ldap_base;          /* search base DN */
	char *ldap_filter;        /* exactly one %s (the escaped claim value), balanced parentheses */
	char *ldap_attribute;     /* the attribute naming the local account (uid, sAMAccountName) */
	char *ldap_bind_dn;       /* optional; NULL = anonymous; goes with ldap_password_file */
	char *ldap_password_file; /* the bind password, a secret file (root-owned, 0600 or stricter) */
	enum nl_ldap_tls ldap_tls;
	char *ldap_ca_file;      /* optional CA bundle for the directory's certificate */
	unsigned ldap_timeout;   /* seconds each directory operation may take; default 5, 1..60 */
	unsigned ldap_cache_ttl; /* seconds a found account is remembered; default 60, 0..3600 (0: never) */
	/* [pam] (also the module's arguments) */
	unsigned pam_timeout; /* seconds the module waits in all; default 0 = the flow's expiry; up to 3600 */
	bool pam_debug;
	bool pam_noqr;
	bool pam_strict;       /* unknown PAM user -> PAM_USER_UNKNOWN instead of PAM_IGNORE-free deny */
	bool pam_enter_prompt; /* offer "press Enter when signed in" (OpenSSH keyboard-interactive) */
	enum nl_noninteractive pam_noninteractive;
	/* [policy]: which sign-ins may start (nl_policy_check); deny wins; unset = no rule */
	char *services_allow; /* PAM service names, commas or spaces between; NULL = every service */
	char *services_deny;  /* NULL = none */
	struct nl_cidr_list remote_networks_allow; /* n == 0: every remote host */
	struct nl_cidr_list remote_networks_deny;  /* n == 0: none */
	enum nl_number_matching number_matching;   /* default remote: sign-ins with an rhost */
	/* the environment */
	struct nl_env env;
};

enum nl_config_flags {
	NL_CONFIG_MAIN_ONLY = 1 << 0,      /* do not read the environment file (the PAM module) */
	NL_CONFIG_NO_OWNER_CHECK = 1 << 1, /* skip owner/mode checks (only for nhsloginctl check to report) */
};

/* Fill defaults. Always call before load/set. */
void nl_config_init(struct nl_config *cfg);
/* Read the main file at path, then (unless NL_CONFIG_MAIN_ONLY) environments_dir/NAME.conf,
 * then validate. Errors: "FILE:LINE: reason" in err. Files must be root- (or euid-) owned and
 * not group/world-writable. Relative paths inside a file are resolved against its directory.
 * Unless NL_CONFIG_MAIN_ONLY, the secret files named (client_key, tls_key) are opened to check
 * their owner and mode. Fills public_url from listen when unset. On error cfg may hold part of
 * the files' values: the caller still calls nl_config_free. */
int nl_config_load(const char *path, struct nl_config *cfg, unsigned flags, char *err, size_t errlen);
/* The one setter: section is "" for top level, "daemon", "bridge", "identity", "pam", "policy",
 * or "env" for environment-file keys. Rejects unknown keys and bad values with a reason in err.
 * Through this function (no file) a path value must be absolute. A later set replaces. */
int nl_config_set(struct nl_config *cfg, const char *section, const char *key, const char *value, char *err,
                  size_t errlen);
/* Cross-field checks after all sets (required keys present, loopback-only http, client_id
 * not a REPLACE-... placeholder, vtr reaching min_level, ...). With NL_CONFIG_MAIN_ONLY only
 * what the PAM module needs is checked. */
int nl_config_validate(const struct nl_config *cfg, unsigned flags, char *err, size_t errlen);
void nl_config_free(struct nl_config *cfg);

/* The TLS mode in force: ldap_tls if set, else by the scheme of the first URI (all URIs share
 * one scheme: nl_config_validate). */
enum nl_ldap_tls nl_ldap_tls_of(const struct nl_config *cfg);

/* "ADDRESS[/PREFIX]" (IPv4 or IPv6, no brackets; no prefix: the one address) into *out: 0, or
 * NL_ERR_CONFIG with the reason in why (host bits set are refused). */
int nl_cidr_parse(const char *s, struct nl_cidr *out, char *why, size_t whylen);
/* Is addr (family AF_INET: a struct in_addr; AF_INET6: a struct in6_addr, an IPv4-mapped one
 * counting as IPv4) in one of list[0..n)? */
bool nl_cidr_match(const struct nl_cidr *list, size_t n, int family, const void *addr);

/* Owned by root or the effective uid, and writable by no one else: what every file and directory
 * we trust must be (a file, its directory, a hosts directory). 0, or NL_ERR_PERM with path and the
 * fix in err (err may be NULL). */
int nl_check_owner_mode(const char *path, const struct stat *st, char *err, size_t errlen);

/* What identifies one version of a file, to know when to read it again: replaced by rename
 * (device, inode), rewritten in place (size, times to the nanosecond), or its owner or mode
 * changed (ctime moves on chmod/chown, and a file made group-writable must stop being used). */
struct nl_file_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	mode_t mode;
	uid_t uid;
	struct timespec mtim, ctim;
};
void nl_file_stamp_of(const struct stat *st, struct nl_file_stamp *out);
bool nl_file_stamp_same(const struct nl_file_stamp *a, const struct nl_file_stamp *b);

/* Open a file for reading safely: O_NOFOLLOW|O_CLOEXEC, regular file, size <= max_size,
 * owned by root or the effective uid, not group/world-writable; if secret, no group/other
 * access at all. Returns the fd in *fd. err names the file and the problem. */
int nl_open_checked(const char *path, bool secret, size_t max_size, int *fd, char *err, size_t errlen);
/* Read a whole file through nl_open_checked into a new NUL-terminated buffer (*out, *len).
 * If secret, the caller frees with nl_free_secret_buf(*out, *len + 1). */
int nl_read_file_checked(const char *path, bool secret, size_t max_size, char **out, size_t *len, char *err,
                         size_t errlen);

#endif
