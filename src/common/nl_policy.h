/* [policy]: which sign-ins may start at all, by PAM service and by the remote host's network. One
 * decision, made by nhslogind when a sign-in is asked for (nhslogin.conf(5), POLICY). */
#ifndef NL_POLICY_H
#define NL_POLICY_H

#include <stddef.h>
#include "nl_config.h"

/* May a sign-in for PAM service `service` from remote host `rhost` start? NULL or "" rhost: at the
 * computer itself, where the network rules do not apply. Deny wins over allow; with either network
 * list set, a remote host that is not an address (a name) is refused, since no rule can place it.
 * 0, or NL_ERR_PERM with the reason in why (one line, for the log). */
int nl_policy_check(const struct nl_config *cfg, const char *service, const char *rhost, char *why,
                    size_t whylen);
/* A list of PAM service names as [policy] takes it: 1..NL_POLICY_SERVICES_MAX names of
 * [A-Za-z0-9._+@-], each at most 64 bytes, commas or spaces between. 0, or NL_ERR_CONFIG with the
 * reason in why. */
#define NL_POLICY_SERVICES_MAX 32
int nl_policy_services_check(const char *list, char *why, size_t whylen);
/* Is name one of the PAM service names in list (commas or spaces between)? */
bool nl_policy_service_listed(const char *list, const char *name);

#endif
