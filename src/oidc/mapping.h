/* Identity mapping: which local account a verified identity names ([identity] in the config).
 * rule = map: a map file of "local_user claim_value" lines; rule = email_local: the local part
 * of a verified email in the configured domain; source = ldap: the directory (directory.h).
 * No match: deny. */
#ifndef NL_MAPPING_H
#define NL_MAPPING_H

#include <jansson.h>
#include <sys/types.h>
#include "nl_config.h"

#define NL_MAP_MAX_FILE (4 * 1024 * 1024)

/* Map claims to a local user name.
 * claim (cfg->claim) picks nhs_number, email or sub; it must be a string. An email claim is
 * refused (NL_ERR_CLAIM) when email_verified is present and not true; an nhs_number claim must be
 * a valid NHS number (10 digits, modulus 11 check digit).
 * rule map: the map file's "local_user claim_value" lines ('#' comment lines and blank lines
 * allowed; local_user [a-z_][a-z0-9_.-]{0,31}; one value a line, no whitespace inside; with
 * claim nhs_number every value a valid NHS number, with email every value an address). A value
 * naming two different users is an error naming both lines. Values compare exactly, emails
 * ASCII case-insensitively. The file is read through nl_read_file_checked (root/euid owned, not
 * group/world-writable, at most NL_MAP_MAX_FILE) and cached; it is re-read when its inode, size,
 * mtime, ctime, mode or owner change.
 * rule email_local: the email claim; its domain must equal cfg->email_domain (ASCII
 * case-insensitive) and its lower-cased local part must be a valid user name; then email_verified
 * must be present and true (else NL_ERR_CLAIM), and the local part must name an existing account
 * of uid cfg->min_uid or more, not root or nobody (65534) (else NL_ERR_NOT_FOUND; a lookup that fails
 * for another reason returns its error: NL_ERR_UNAVAILABLE from getpwnam_r).
 * source = ldap (rule ignored): the claim, checked as above, looked up with nl_dir_lookup; the
 * attribute value found, lower-cased, must be a valid user name naming an account allowed as for
 * email_local (else NL_ERR_NOT_FOUND); the directory unreachable, TLS or bind failing, a timeout:
 * NL_ERR_UNAVAILABLE.
 * Returns 0 and a new string in *local_user; NL_ERR_NOT_FOUND when the claim's value matches
 * nothing (the person is not linked); NL_ERR_CLAIM when the claims hold no usable value of the
 * claim (absent, malformed, an unverified email: the sign-in did not say who the person is);
 * NL_ERR_CONFIG / NL_ERR_PERM / NL_ERR_IO / NL_ERR_TOO_BIG for a map file or settings that cannot
 * work, missing file included (err names file and line; checked before the claim). err never
 * holds the claim's value. Thread-safe. */
int nl_map_identity(const struct nl_config *cfg, const json_t *claims, char **local_user, char *err,
                    size_t errlen);
/* Check a map file's syntax and mode (for nhsloginctl check) without knowing the claim: any value
 * of 10 digits must have a valid NHS number check digit; ambiguity is an error as above. */
int nl_map_check_file(const char *path, char *err, size_t errlen);
/* Check cfg's map file as nl_map_identity would read it (the values' kind from cfg->claim).
 * 0 if rule is not map or source is not map_file. A missing file is NL_ERR_CONFIG. */
int nl_map_check(const struct nl_config *cfg, char *err, size_t errlen);
/* Check that the environment's scope asks for the claim the mapping needs (NHS login sends
 * nhs_number only for "profile", email only for "email"): otherwise every sign-in would lack it.
 * NL_ERR_CONFIG with the environment file, the scope and the fix in err. */
int nl_map_check_scope(const struct nl_config *cfg, char *err, size_t errlen);
/* How rule email_local and source ldap learn an account's uid: getpwnam_r unless replaced (tests); NULL puts
 * it back. The function returns 0 with *uid, NL_ERR_NOT_FOUND for no such account, or another error. */
typedef int (*nl_map_uid_fn)(const char *user, uid_t *uid);
void nl_map_set_uid_lookup(nl_map_uid_fn fn);
/* Forget the cached map file and the directory's cached names (nhsloginctl flush; tests). */
void nl_map_cache_flush(void);

#endif
