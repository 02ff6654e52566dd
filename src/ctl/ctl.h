/* nhsloginctl's internal interfaces: the options every command sees, the exit codes, the daemon
 * client and the commands (status, flows, flush, check, login). */
#ifndef NL_CTL_H
#define NL_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "nl_proto.h"

/* Exit codes (documented in nhsloginctl(8) and --help). */
enum ctl_exit {
	CTL_EXIT_OK = 0,          /* done; check found no errors; login approved */
	CTL_EXIT_PROBLEM = 1,     /* check found errors; the daemon refused; login not approved */
	CTL_EXIT_USAGE = 2,       /* bad command line, or an internal failure */
	CTL_EXIT_UNREACHABLE = 3, /* nhslogind could not be reached on its socket */
};

#define CTL_CONNECT_TIMEOUT_MS 3000
#define CTL_CALL_TIMEOUT_MS    15000

struct ctl_opts {
	const char *config; /* --config, or NULL for the default path */
	const char *socket; /* --socket, or NULL: the config's [daemon] socket */
	bool json;          /* --json: machine-readable output */
	bool offline;       /* check --offline: no network */
	bool verbose;       /* --verbose: library log lines on stderr */
	const char *qr;     /* login --qr utf8|ascii|none, or NULL: by the locale */
	/* check: the host's files, for its host-timing part; NULL: the defaults below */
	const char *pamd;        /* --pamd DIR */
	const char *login_defs;  /* --login-defs FILE */
	const char *sshd_config; /* --sshd-config FILE (given: read it, never run sshd -T) */
	/* enroll: the workstation's name and key file; NULL: the host name, CTL_HOST_KEY_DEFAULT */
	const char *name; /* --name NAME */
	const char *key;  /* --key PATH */
	bool force;       /* --force: replace an existing key */
};

/* The host's files check reads by default (the host's own paths, whatever our prefix). */
#define CTL_PAMD_DEFAULT        "/etc/pam.d"
#define CTL_LOGIN_DEFS_DEFAULT  "/etc/login.defs"
#define CTL_SSHD_CONFIG_DEFAULT "/etc/ssh/sshd_config"
/* The workstation key enroll makes (the agent's [agent] host_key default). */
#define CTL_HOST_KEY_DEFAULT NL_SYSCONFDIR "/nhslogin/host.key"

/* Connect to the socket named by the options (or the config, or the default) with the one daemon
 * client (nl_proto.h; requests with nl_proto_call, closed with nl_proto_close). On failure prints
 * why (as JSON with --json) and returns CTL_EXIT_UNREACHABLE. */
int ctl_connect(const struct ctl_opts *o, struct nl_proto_client *c);
/* Print a reply as one JSON line (device_code left out) on out. */
void ctl_print_json(FILE *out, const json_t *reply);
/* The socket path the commands use (--socket, else the config's, else the default). New string. */
char *ctl_socket_path(const struct ctl_opts *o);

/* The commands; each returns an enum ctl_exit. */
int ctl_status(const struct ctl_opts *o);
int ctl_flows(const struct ctl_opts *o);
int ctl_flow_cancel(const struct ctl_opts *o, const char *flow);
int ctl_flush(const struct ctl_opts *o);
int ctl_check(const struct ctl_opts *o);
int ctl_login(const struct ctl_opts *o, const char *user);
/* The client key's public half as PEM, JWK and JWKS, with the kid nhslogind sends (key.c). */
int ctl_key(const struct ctl_opts *o);
/* The workstation's key pair for the trust-wide bridge, made once, and what the bridge's operator
 * registers: NAME.pem, the public key, its thumbprint (enroll.c). */
int ctl_enroll(const struct ctl_opts *o);

/* Findings of check: one line each ("error: ..." / "warning: ..."). */
struct ctl_findings {
	json_t *list; /* [{"level":"error"|"warning","message":"..."}] */
	unsigned errors, warnings;
};
void ctl_finding(struct ctl_findings *f, bool error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct nl_config;
/* The network half of check: discovery (fetched plainly, to say exactly what is wrong with it), then,
 * if key_ok, the daemon's own OpenID client (client key, JWKS) with a throw-away cache directory. */
void ctl_check_provider(const struct nl_config *cfg, const struct ctl_opts *o, bool key_ok,
                        struct ctl_findings *f);
/* The directory's half of check (source = ldap): connect with the configured TLS, bind, read the
 * base entry, as a lookup would; a failure is an error finding. */
void ctl_check_directory(const struct nl_config *cfg, struct ctl_findings *f);
/* The host-timing half of check (check_timing.c): for each pam.d service that uses pam_nhslogin.so,
 * a warning when the code's life (timeout= on the line or [pam] timeout, at most flow_ttl) is longer
 * than what the host waits (login's LOGIN_TIMEOUT, sshd's LoginGraceTime) or shorter than a person
 * needs (90 s). */
void ctl_check_host_timing(const struct nl_config *cfg, const struct ctl_opts *o, struct ctl_findings *f);

#endif
