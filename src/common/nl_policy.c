/* [policy]: refuse or allow a sign-in before it starts, by PAM service and by remote network. */
#include "config.h"
#include "nl_policy.h"
#include "nl_text.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "nl_err.h"

#define RHOST_MAX 256

int nl_policy_services_check(const char *list, char *why, size_t whylen)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+@-";
	size_t n = 0, len;

	for (list += strspn(list, ", \t"); *list != '\0'; list += strspn(list, ", \t")) {
		len = strcspn(list, ", \t");
		if (strspn(list, ok) < len || len > 64 || ++n > NL_POLICY_SERVICES_MAX)
			return nl_errf(why, whylen, NL_ERR_CONFIG,
			               "'%.*s' is not a list of PAM service names (at most %d, "
			               "commas between)",
			               (int)(len > 64 ? 64 : len), list, NL_POLICY_SERVICES_MAX);
		list += len;
	}
	if (n == 0)
		return nl_errf(why, whylen, NL_ERR_CONFIG, "empty list of PAM service names");
	return 0;
}

bool nl_policy_service_listed(const char *list, const char *name)
{
	size_t n = strlen(name), len;

	if (list == NULL)
		return false;
	for (list += strspn(list, ", \t"); *list != '\0'; list += strspn(list, ", \t")) {
		len = strcspn(list, ", \t");
		if (len == n && strncmp(list, name, n) == 0)
			return true;
		list += len;
	}
	return false;
}

/* rhost as an address: "10.1.2.3", "2001:db8::1", "[2001:db8::1]", "fe80::1%eth0" (the zone is
 * dropped). false for a name or anything else. */
static bool rhost_address(const char *rhost, int *family, unsigned char addr[16])
{
	char buf[RHOST_MAX];
	size_t n = strlen(rhost);

	if (n == 0 || n >= sizeof(buf))
		return false;
	if (rhost[0] == '[' && rhost[n - 1] == ']') {
		rhost++;
		n -= 2;
	}
	memcpy(buf, rhost, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*family = AF_INET;
		return true;
	}
	buf[strcspn(buf, "%")] = '\0';
	if (inet_pton(AF_INET6, buf, addr) == 1) {
		*family = AF_INET6;
		return true;
	}
	return false;
}

int nl_policy_check(const struct nl_config *cfg, const char *service, const char *rhost, char *why,
                    size_t whylen)
{
	const struct nl_cidr_list *allow = &cfg->remote_networks_allow, *deny = &cfg->remote_networks_deny;
	unsigned char addr[16];
	char svc[72], host[80];
	int family = 0;

	if (service == NULL)
		service = "";
	if (rhost == NULL)
		rhost = "";
	/* For the reason line: printable ASCII, shortened. */
	nl_text_ascii_copy(service[0] != '\0' ? service : "(none)", svc, sizeof(svc));
	nl_text_ascii_copy(rhost, host, sizeof(host));
	if (nl_policy_service_listed(cfg->services_deny, service))
		return nl_errf(why, whylen, NL_ERR_PERM, "PAM service %s is in [policy] services_deny", svc);
	if (cfg->services_allow != NULL && !nl_policy_service_listed(cfg->services_allow, service))
		return nl_errf(why, whylen, NL_ERR_PERM, "PAM service %s is not in [policy] services_allow",
		               svc);
	if (rhost[0] == '\0' || (allow->n == 0 && deny->n == 0))
		return 0;
	if (!rhost_address(rhost, &family, addr))
		return nl_errf(why, whylen, NL_ERR_PERM,
		               "remote host %s is not an address, so [policy] remote_networks_* "
		               "cannot place it",
		               host);
	if (nl_cidr_match(deny->v, deny->n, family, addr))
		return nl_errf(why, whylen, NL_ERR_PERM, "remote host %s is in [policy] remote_networks_deny",
		               host);
	if (allow->n > 0 && !nl_cidr_match(allow->v, allow->n, family, addr))
		return nl_errf(why, whylen, NL_ERR_PERM,
		               "remote host %s is not in [policy] remote_networks_allow", host);
	return 0;
}
