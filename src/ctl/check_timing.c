/* nhsloginctl check, the host-timing part: for each PAM service that uses pam_nhslogin.so, is the
 * code's life within what the host waits (login's LOGIN_TIMEOUT, sshd's LoginGraceTime), and long
 * enough for a person? Warnings only: the sign-in may still work, but not as the screen promises. */
#include "config.h"
#include "ctl.h"
#include "hostlimits.h"
#include "nl_config.h"
#include "nl_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIGNIN_MIN     90  /* a real NHS login sign-in takes one to three minutes */
#define HOST_ADVISED   300 /* the host limit we recommend */
#define LIMIT_MARGIN   10  /* a timeout= this far below the host limit ends the sign-in first */
#define SSHD_T_WAIT_MS 3000
#define MAX_USES       64

enum host_kind { HOST_NONE = 0, HOST_LOGIN, HOST_SSHD, HOST_KINDS };

/* Who drops a sign-in that takes too long, and by which setting. */
static const struct host_desc {
	const char *service; /* the pam.d service it guards */
	const char *setting;
	const char *program;
} hosts[HOST_KINDS] = {
    [HOST_LOGIN] = {"login", "LOGIN_TIMEOUT", "login"},
    [HOST_SSHD] = {"sshd", "LoginGraceTime", "sshd"},
};

/* Where a service's effective timeout comes from: what to change to lengthen it. */
enum bound { BOUND_LINE, BOUND_PAM_CONF, BOUND_FLOW_TTL };

struct timing {
	const struct nl_config *cfg;
	const struct ctl_opts *o;
	struct ctl_findings *f;
	bool read[HOST_KINDS];
	const char *main[HOST_KINDS]; /* the file read first (login.defs, sshd_config) */
	struct ctl_limit lim[HOST_KINDS];
};

static enum host_kind host_of(const char *service)
{
	for (int k = HOST_NONE + 1; k < HOST_KINDS; k++)
		if (strcmp(service, hosts[k].service) == 0)
			return (enum host_kind)k;
	return HOST_NONE; /* gdm-password, sudo, ...: nothing the host enforces that we can read */
}

/* sshd -T when we may run it (root, no --sshd-config), else sshd_config itself. sshd -T does not
 * say where its value was set: when the files give the same one, their file and line are named. */
static int read_sshd(const struct timing *t, const char *path, struct ctl_limit *lim)
{
	struct ctl_limit files;

	if (t->o->sshd_config != NULL || geteuid() != 0 || ctl_sshd_T_read(SSHD_T_WAIT_MS, lim) != 0)
		return ctl_sshd_config_read(path, lim);
	if (ctl_sshd_config_read(path, &files) == 0 && files.found && files.secs == lim->secs)
		*lim = files;
	return 0;
}

/* The host limit for kind k, read once. A file that cannot be read is a warning, and the
 * program's default is taken; a missing default file is no news. */
static const struct ctl_limit *host_limit(struct timing *t, enum host_kind k)
{
	bool given = k == HOST_LOGIN ? t->o->login_defs != NULL : t->o->sshd_config != NULL;
	int r;

	if (k == HOST_NONE)
		return NULL;
	if (t->read[k])
		return &t->lim[k];
	t->read[k] = true;
	if (k == HOST_LOGIN) {
		t->main[k] = given ? t->o->login_defs : CTL_LOGIN_DEFS_DEFAULT;
		r = ctl_login_defs_read(t->main[k], &t->lim[k]);
	} else {
		t->main[k] = given ? t->o->sshd_config : CTL_SSHD_CONFIG_DEFAULT;
		r = read_sshd(t, t->main[k], &t->lim[k]);
	}
	if (r != 0 && (r != NL_ERR_NOT_FOUND || given))
		ctl_finding(t->f, false, "%s: %s; taking %s's default of %u s", t->main[k],
		            r == NL_ERR_NOT_FOUND ? "no such file" : nl_strerror(r), hosts[k].program,
		            t->lim[k].secs);
	return &t->lim[k];
}

/* Seconds the code lasts for this line: timeout= on it (else [pam] timeout), at most flow_ttl;
 * 0 means the flow's own expiry. */
static unsigned effective(const struct timing *t, const struct ctl_pam_use *u, enum bound *b)
{
	unsigned mod = u->timeout >= 0 ? (unsigned)u->timeout : t->cfg->pam_timeout;

	*b = u->timeout >= 0 ? BOUND_LINE : BOUND_PAM_CONF;
	if (mod == 0 || mod >= t->cfg->flow_ttl) {
		*b = BOUND_FLOW_TTL;
		return t->cfg->flow_ttl;
	}
	return mod;
}

/* "FILE:LINE" of the limit, "sshd -T", or "sshd's default". */
static void limit_source(const struct ctl_limit *lim, enum host_kind k, char *out, size_t len)
{
	if (!lim->found)
		snprintf(out, len, "%s's default", hosts[k].program);
	else if (lim->line == 0)
		snprintf(out, len, "%s", lim->file);
	else
		snprintf(out, len, "%s:%u", lim->file, lim->line);
}

/* Where to raise the limit: the file that sets it now (an earlier value would win), else the
 * main file. */
static const char *limit_file(const struct timing *t, enum host_kind k)
{
	const struct ctl_limit *lim = &t->lim[k];
	return lim->found && lim->line > 0 ? lim->file : t->main[k];
}

static void warn_longer(struct timing *t, const struct ctl_pam_use *u, enum host_kind k, unsigned secs)
{
	const struct ctl_limit *lim = &t->lim[k];
	unsigned fit = lim->secs > LIMIT_MARGIN ? lim->secs - LIMIT_MARGIN : (lim->secs + 1) / 2;
	char src[600];

	limit_source(lim, k, src, sizeof(src));
	ctl_finding(t->f, false,
	            "%s: the code lasts %u s but %s is %u s (%s): %s will drop the sign-in first; set %s %u "
	            "in %s or timeout=%u on the pam_nhslogin line in %s",
	            u->service, secs, hosts[k].setting, lim->secs, src, hosts[k].program, hosts[k].setting,
	            secs > HOST_ADVISED ? secs : HOST_ADVISED, limit_file(t, k), fit, u->file);
}

static void warn_short(struct timing *t, const struct ctl_pam_use *u, enum host_kind k, unsigned secs,
                       enum bound b)
{
	const struct ctl_limit *lim = k != HOST_NONE ? &t->lim[k] : NULL;
	const char *conf = t->cfg->path != NULL ? t->cfg->path : "the configuration";
	char fix[1400];

	if (b == BOUND_FLOW_TTL)
		snprintf(fix, sizeof(fix), "raise [daemon] flow_ttl in %s (300 s by default)", conf);
	else if (lim != NULL && lim->secs != 0 && lim->secs < HOST_ADVISED)
		snprintf(fix, sizeof(fix), "set %s %d in %s, then timeout=%d on the pam_nhslogin line in %s",
		         hosts[k].setting, HOST_ADVISED, limit_file(t, k), HOST_ADVISED - LIMIT_MARGIN,
		         u->file);
	else if (b == BOUND_PAM_CONF)
		snprintf(fix, sizeof(fix),
		         "raise [pam] timeout in %s, or set timeout= on the pam_nhslogin line in %s", conf,
		         u->file);
	else
		snprintf(fix, sizeof(fix), "raise or remove timeout= on the pam_nhslogin line in %s",
		         u->file);
	ctl_finding(
	    t->f, false,
	    "%s: the code lasts %u s: too short for a real NHS login sign-in, which takes 1-3 minutes; %s",
	    u->service, secs, fix);
}

static void check_use(struct timing *t, const struct ctl_pam_use *u)
{
	enum host_kind k = host_of(u->service);
	const struct ctl_limit *lim = host_limit(t, k);
	enum bound b;
	unsigned secs = effective(t, u, &b);

	if (lim != NULL && lim->secs != 0 && secs > lim->secs)
		warn_longer(t, u, k, secs);
	if (secs < SIGNIN_MIN)
		warn_short(t, u, k, secs, b);
}

void ctl_check_host_timing(const struct nl_config *cfg, const struct ctl_opts *o, struct ctl_findings *f)
{
	struct timing t = {.cfg = cfg, .o = o, .f = f};
	const char *dir = o->pamd != NULL ? o->pamd : CTL_PAMD_DEFAULT;
	struct ctl_pam_use *uses = calloc(MAX_USES, sizeof(*uses));
	size_t n = 0;
	int r;

	if (uses == NULL) {
		ctl_finding(f, false, "%s: not checked (out of memory)", dir);
		return;
	}
	r = ctl_pamd_scan(dir, uses, MAX_USES, &n);
	if (r != 0 && (r != NL_ERR_NOT_FOUND || o->pamd != NULL))
		ctl_finding(f, false, "%s: cannot read the PAM services (%s)", dir,
		            r == NL_ERR_NOT_FOUND ? "no such directory" : nl_strerror(r));
	for (size_t i = 0; i < n; i++)
		check_use(&t, &uses[i]);
	free(uses);
}
