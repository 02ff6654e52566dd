/* What the files of the workstation signatures share and nothing else sees: one enrolled key as the
 * hosts cache hands it out. */
#ifndef NL_HOSTAUTH_INT_H
#define NL_HOSTAUTH_INT_H

#include "hostauth.h"
#include "nl_jose.h"

/* One enrolled workstation's key: a key set of one ES256 key (its kid the key's thumbprint), so that
 * verification uses the context the set prepared once. Held by the cache and by each request using
 * it; the last to let go frees it. */
struct host_key {
	struct nl_jwks *set;
	unsigned refs; /* under the cache's lock */
};

/* The key enrolled for name (already checked with nl_hostauth_name_ok): the directory and the file
 * checked on every call, the key read again when the file changed. A reference in *out, given back
 * with hostauth_hosts_put. On failure err says why. */
int hostauth_hosts_get(struct nl_hostauth_hosts *hosts, const char *name, struct host_key **out,
                       struct nl_hostauth_error *err);
void hostauth_hosts_put(struct nl_hostauth_hosts *hosts, struct host_key *key);

/* Set err (may be NULL) and return ret. */
int hostauth_fail(struct nl_hostauth_error *err, int ret, enum nl_hostauth_reason reason, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

#endif
