/* The token cache: per local user, the last successful sign-in (claims, times, refresh token),
 * on disk in a root-only directory, one file a user, written atomically (temp, fsync, rename),
 * read back after a restart. A damaged file is set aside (renamed *.bad) with a log line. */
#ifndef NL_TOKCACHE_H
#define NL_TOKCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "oidc.h"

#define NL_TOKCACHE_MAX_FILE (64 * 1024)
#define NL_SESSION_IDLE_MAX (30 * 60)       /* NHS login session rule: 30 min idle */
#define NL_SESSION_TOTAL_MAX (12 * 60 * 60) /* 12 h since the full sign-in */

struct nl_tokcache;

/* Open (create 0700 if missing) dir and load every entry. A directory that cannot be written
 * still opens (sign-in keeps working without reuse; one warning). */
int nl_tokcache_open(const char *dir, struct nl_tokcache **out, char *err, size_t errlen);
void nl_tokcache_close(struct nl_tokcache *tc);
/* Remember a successful sign-in of user at now (in memory, then on disk; a disk failure is
 * logged and returns NL_ERR_IO, the memory entry stays). */
int nl_tokcache_store(struct nl_tokcache *tc, const char *user, const struct nl_identity *id, time_t now);
/* May user's cached sign-in be reused now? Only if reuse_window > 0, the last use was within
 * reuse_window and within NL_SESSION_IDLE_MAX, and the full sign-in within NL_SESSION_TOTAL_MAX.
 * On true, the last-use time is updated. */
bool nl_tokcache_reuse(struct nl_tokcache *tc, const char *user, unsigned reuse_window, time_t now);
/* Drop every entry, memory and disk. */
void nl_tokcache_flush(struct nl_tokcache *tc);
size_t nl_tokcache_count(struct nl_tokcache *tc);

#endif
