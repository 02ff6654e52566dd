/* The token cache: per local user, the last successful sign-in (claims the mapping needs, times,
 * where it was earned), on disk in a root-only directory, one file a user, written atomically
 * (temp, fsync, rename), read back after a restart. A damaged file is set aside (renamed *.bad)
 * with a log line. The reuse rule (nhslogin.conf(5), SIGN-IN REUSE) is decided here, in one place. */
#ifndef NL_TOKCACHE_H
#define NL_TOKCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "nl_config.h"
#include "oidc.h"

#define NL_TOKCACHE_MAX_FILE  (64 * 1024)
#define NL_SESSION_IDLE_MAX   (30 * 60)      /* NHS login session rule: 30 min idle */
#define NL_SESSION_TOTAL_MAX  (12 * 60 * 60) /* 12 h since the full sign-in */
#define NL_AUDIT_SESSION_NONE UINT32_MAX     /* the kernel's "no audit session" (4294967295) */

/* Kinds of PAM service: a sign-in is reused only by a start of the same kind. */
enum nl_svc_class {
	NL_SVC_NONE = 0,  /* no service named: never reused */
	NL_SVC_REMOTE,    /* sshd: a remote shell */
	NL_SVC_CONSOLE,   /* login: the text console */
	NL_SVC_GRAPHICAL, /* display managers (gdm-password, lightdm, sddm, ...): they unlock too */
	NL_SVC_ELEVATION, /* sudo, su, su-l, polkit-1, pkexec, doas, runuser */
	NL_SVC_UNLOCK,    /* screen lockers (xscreensaver, swaylock, kde, ...) */
	NL_SVC_OTHER,     /* anything else: a kind of its own, compared by name */
};
enum nl_svc_class nl_service_class(const char *service);
/* "remote shell", "console", ...: for logs. */
const char *nl_service_class_word(enum nl_svc_class c);

/* Where a start (or the sign-in it led to) comes from, as far as reuse is concerned. */
struct nl_reuse_place {
	const char *service, *rhost, *tty; /* the PAM items as sent; NULL or "" when unset */
	bool by_root;                      /* asked by root (the PAM module), not by a socket-group peer */
	pid_t pid;              /* the asking process (SO_PEERCRED): if > 0, its audit session is read
	                         * from /proc/PID/sessionid and audit_session is ignored */
	uint32_t audit_session; /* NL_AUDIT_SESSION_NONE if none */
	uint64_t conn;          /* the socket connection, which owns the flow the start makes */
	bool needs_number;      /* [policy] number_matching asks this start for a number: no reuse */
};

struct nl_tokcache;

/* Open (create 0700 if missing) dir and load every entry of this boot (entries of an earlier
 * boot are removed). A directory that cannot be written still opens (sign-in keeps working
 * without reuse; one warning). */
int nl_tokcache_open(const char *dir, struct nl_tokcache **out, char *err, size_t errlen);
void nl_tokcache_close(struct nl_tokcache *tc);
/* Remember a successful sign-in of user at now, earned at where (in memory, then on disk; a disk
 * failure is logged and returns NL_ERR_IO, the memory entry stays). Stores nothing and returns 0
 * when reuse is off (cfg->reuse_window 0) or the place can never reuse it (no service, a screen
 * unlock service not in reuse_unlock_services, no rhost, tty or audit session), or when no start
 * on where->conn was seen by nl_tokcache_reuse (the audit session comes from that start). */
int nl_tokcache_store(struct nl_tokcache *tc, const struct nl_config *cfg, const char *user,
                      const struct nl_identity *id, const struct nl_reuse_place *where, time_t now);
/* May user's cached sign-in be reused for a start at `where`, now? Only if cfg->reuse_window > 0,
 * the start is not asked for a number (where->needs_number), and: the same kind of service (a
 * screen unlock or display manager only if listed in reuse_unlock_services), the same place
 * (remote host; else tty; and the same audit session, the same kind of caller, the same boot),
 * now within reuse_window and NL_SESSION_IDLE_MAX of the full sign-in and within
 * NL_SESSION_TOTAL_MAX of NHS login's auth_time, its level still meets min_level and the map
 * still gives user. A reuse changes nothing (no sliding). The start's audit session is noted for
 * where->conn (for the store of the sign-in it may lead to). *why (may be NULL) gets a reason for
 * a log line, never a secret. */
bool nl_tokcache_reuse(struct nl_tokcache *tc, const struct nl_config *cfg, const char *user,
                       const struct nl_reuse_place *where, time_t now, const char **why);
/* Drop every entry, memory and disk. */
void nl_tokcache_flush(struct nl_tokcache *tc);
size_t nl_tokcache_count(struct nl_tokcache *tc);

#endif
