/* Test helper: a throwaway OpenLDAP slapd in a temporary directory (mdb database loaded with
 * slapadd, 127.0.0.1 on free ports, optionally StartTLS and ldaps with a CA made by openssl), for
 * the directory tests. Works as root and as a normal user; never leaves a slapd running. */
#ifndef NL_TEST_SLAPDPROC_H
#define NL_TEST_SLAPDPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SLAPDPROC_SLAPD   "/usr/sbin/slapd"
#define SLAPDPROC_SLAPADD "/usr/sbin/slapadd"
#define SLAPDPROC_SUFFIX  "dc=example,dc=org"
/* The directory's administrator (rootdn), for binds. */
#define SLAPDPROC_BIND_DN          "cn=admin,dc=example,dc=org"
#define SLAPDPROC_BIND_PASSWORD    "admin-secret"
#define SLAPDPROC_START_TIMEOUT_MS 30000 /* until it accepts connections (times the scale) */
#define SLAPDPROC_STOP_TIMEOUT_MS  5000  /* after SIGTERM, before SIGKILL */

struct slapdproc;

struct slapdproc_opts {
	/* LDIF of the entries below the suffix (the suffix entry dc=example,dc=org is added). */
	const char *ldif;
	/* Also make a CA and a certificate for 127.0.0.1 and serve StartTLS on the ldap:// port and
	 * TLS on an ldaps:// port. */
	bool tls;
};

/* Is slapd usable here? false with the reason in why (for skip_because): no slapd, slapadd, the
 * mdb module, the schemas, or (for tls) openssl. */
bool slapdproc_available(bool tls, char *why, size_t whylen);

/* Make the directory, load the entries and start slapd; wait until it accepts connections. 0, or
 * an error with the reason (and the end of slapd's log) in why; nothing is left running. */
int slapdproc_start(const struct slapdproc_opts *o, struct slapdproc **out, char *why, size_t whylen);
/* "ldap://127.0.0.1:PORT" */
const char *slapdproc_uri(const struct slapdproc *sp);
/* "ldaps://127.0.0.1:PORT", or NULL without tls. */
const char *slapdproc_ldaps_uri(const struct slapdproc *sp);
/* The CA that signed the server's certificate, and another CA that did not (NULL without tls). */
const char *slapdproc_ca_file(const struct slapdproc *sp);
const char *slapdproc_other_ca_file(const struct slapdproc *sp);
/* The temporary directory (the test may put files there; it goes with slapdproc_free). */
const char *slapdproc_dir(const struct slapdproc *sp);
pid_t slapdproc_pid(const struct slapdproc *sp);
/* SIGTERM, wait, then SIGKILL; reaped. The directory stays (the URIs then refuse connections). */
void slapdproc_stop(struct slapdproc *sp);
/* Stop if running, remove the directory, free. NULL does nothing. */
void slapdproc_free(struct slapdproc *sp);

#endif
