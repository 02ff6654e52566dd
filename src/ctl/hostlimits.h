/* How long the host lets a sign-in take (login(1)'s LOGIN_TIMEOUT, sshd's LoginGraceTime), and
 * which pam.d services use pam_nhslogin.so with what timeout=: read for nhsloginctl check.
 * Every read is size- and line-bounded; odd input is skipped, never fatal. */
#ifndef NL_CTL_HOSTLIMITS_H
#define NL_CTL_HOSTLIMITS_H

#include <stdbool.h>
#include <stddef.h>

#define CTL_HOST_FILE_MAX         (256 * 1024) /* a login.defs, sshd_config or pam.d file */
#define CTL_HOST_LINE_MAX         1024         /* longer lines are skipped */
#define CTL_SSHD_MAX_DEPTH        16           /* Include nesting (sshd's own bound) */
#define CTL_SSHD_MAX_FILES        256          /* files read through Include, in all */
#define CTL_PAMD_MAX_DEPTH        8            /* @include / include / substack nesting */
#define CTL_PAMD_MAX_FILES        512          /* files looked at in a pam.d directory */
#define CTL_LOGIN_TIMEOUT_DEFAULT 60           /* login(1) without LOGIN_TIMEOUT */
#define CTL_LOGIN_GRACE_DEFAULT   120          /* sshd without LoginGraceTime */

/* A host limit and where it was read. */
struct ctl_limit {
	unsigned secs;  /* 0: no limit */
	bool found;     /* false: set nowhere, secs is the program's default */
	char file[512]; /* where it was set; the file that was read when not found */
	unsigned line;  /* 0 when it did not come from a file's line (sshd -T) */
};

/* sshd's time format: a number of seconds, or a sequence of NUMBER[smhdw] ("2m", "1h30s"; the
 * letters in either case). 0 and *secs set, or NL_ERR_INVALID. */
int ctl_sshd_time(const char *s, unsigned *secs);

/* The LOGIN_TIMEOUT of a login.defs text (the last valid one wins, as login reads it). Sets lim's
 * secs, found and line only when one is there. */
void ctl_login_defs_parse(const char *text, size_t len, struct ctl_limit *lim);
/* Read path as above; without the key, the default 60 s (found false). 0; NL_ERR_NOT_FOUND
 * without the file (lim then holds the default); another negative nl_err when it cannot be read
 * (too big, not a regular file). */
int ctl_login_defs_read(const char *path, struct ctl_limit *lim);

/* LoginGraceTime of an sshd_config, as sshd takes it: the first value wins, Include patterns
 * (globs, several to a line; relative ones taken from path's directory, as sshd takes them from
 * /etc/ssh) read in place, Match blocks skipped, KEYWORD=VALUE allowed. Without a value, the default
 * 120 s (found false). 0; NL_ERR_NOT_FOUND without path (lim then holds the default); another
 * negative nl_err when path cannot be read. */
int ctl_sshd_config_read(const char *path, struct ctl_limit *lim);
/* The logingracetime line of `sshd -T` output. 0, or NL_ERR_NOT_FOUND. */
int ctl_sshd_T_parse(const char *text, size_t len, unsigned *secs);
/* Run `sshd -T` (the first sshd found in the usual sbin directories), waiting at most
 * timeout_ms, and take its LoginGraceTime. 0, or a negative nl_err (no sshd, it failed, or it took
 * too long); the caller then reads sshd_config itself. */
int ctl_sshd_T_read(int timeout_ms, struct ctl_limit *lim);

/* One line of a pam.d file, as far as check cares. */
enum ctl_pam_kind {
	CTL_PAM_OTHER = 0, /* blank, a comment, another module, or not understood */
	CTL_PAM_MODULE,    /* an auth line for pam_nhslogin.so */
	CTL_PAM_INCLUDE,   /* @include NAME, or an auth line with include/substack NAME */
};
struct ctl_pam_line {
	enum ctl_pam_kind kind;
	char target[256]; /* CTL_PAM_INCLUDE: the file named */
	int timeout;      /* CTL_PAM_MODULE: timeout= (0..3600) on the line, or -1 without one */
};
/* Parse one (joined, comment-free or not) pam.d line. Never fails: what it does not understand is
 * CTL_PAM_OTHER. */
void ctl_pam_parse_line(const char *line, struct ctl_pam_line *out);

/* A pam_nhslogin.so auth line reached from a service. */
struct ctl_pam_use {
	char service[256]; /* the service: the pam.d file's name */
	char file[512];    /* the file holding the line (the service's own, or one it includes) */
	unsigned line;
	int timeout; /* timeout= on the line, or -1 */
};
/* Is name a shared stack that services include (common-*, system-*, password-auth, ...), rather
 * than a service of its own? */
bool ctl_pamd_is_fragment(const char *name);
/* The services of a pam.d directory (files whose name has no '.' or '~' and is not a fragment),
 * in name order, and each pam_nhslogin.so auth line each reaches through @include, include and
 * substack (depth CTL_PAMD_MAX_DEPTH). Fills at most max uses; *n is how many were filled. 0,
 * NL_ERR_NOT_FOUND when dir does not exist, or another negative nl_err. */
int ctl_pamd_scan(const char *dir, struct ctl_pam_use *uses, size_t max, size_t *n);

#endif
