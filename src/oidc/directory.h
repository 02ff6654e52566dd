/* Identity from the directory ([identity] source = ldap): the claim's value, escaped (RFC 4515), in
 * the [ldap] filter, searched for over TLS; exactly one entry with exactly one value of [ldap]
 * attribute names the account. Found names are cached briefly, keyed by a hash of the value. */
#ifndef NL_DIRECTORY_H
#define NL_DIRECTORY_H

#include <stddef.h>
#include "nl_config.h"

#define NL_DIR_MAX_VALUE 255 /* longest value looked up (a claim's value) */
#define NL_DIR_MAX_NAME  64  /* longest attribute value accepted (the caller checks it is a name) */
#define NL_DIR_CACHE_MAX 1024

/* RFC 4515 escaping of n bytes at in, into a new string in *out (the caller frees): '*', '(',
 * ')', '\', NUL and every byte outside printable ASCII (0x20..0x7e) become \XX (two lower-case hex
 * digits); other bytes are copied. 0, NL_ERR_INVALID (n > NL_DIR_MAX_VALUE), NL_ERR_NOMEM. */
int nl_dir_escape(const char *in, size_t n, char **out);

/* The filter template tmpl (one %s, checked at load) with its %s replaced by the escaped n bytes
 * at value: a new string in *out. NL_ERR_CONFIG if tmpl has not exactly one %s. */
int nl_dir_filter(const char *tmpl, const char *value, size_t n, char **out);

/* Look the claim value up in cfg's directory. 0 and a new string in *name: the one value of
 * [ldap] attribute of the one matching entry, as the directory holds it (the caller checks that
 * it names an account that may sign in). NL_ERR_NOT_FOUND: no entry matches, more than one does
 * (ambiguous: logged), or the entry has not exactly one usable value of the attribute.
 * NL_ERR_UNAVAILABLE: no server reachable, TLS failed, bind refused, an operation took longer than
 * [ldap] timeout, or any other directory error: never a fallback to plaintext or to another
 * answer. NL_ERR_CONFIG / NL_ERR_PERM / NL_ERR_IO: the password file (missing, unsafe mode,
 * empty) or a base that does not exist. err never holds the value, the filter or the password.
 * A found name is remembered for [ldap] cache_ttl seconds (0: never), keyed by a SHA-256 of the
 * settings and the value, at most NL_DIR_CACHE_MAX names. Thread-safe. */
int nl_dir_lookup(const struct nl_config *cfg, const char *value, char **name, char *err, size_t errlen);

/* Connect (with the configured TLS), bind, and read the base entry: nhsloginctl check. 0 or an
 * error as nl_dir_lookup's, with the reason in err. Not cached. */
int nl_dir_check(const struct nl_config *cfg, char *err, size_t errlen);

/* Forget every cached name (nhsloginctl flush; tests). */
void nl_dir_cache_flush(void);

#endif
