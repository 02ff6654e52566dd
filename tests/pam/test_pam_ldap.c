/* The sign-in end to end with [identity] source = ldap: the real module under pam_wrapper, the real
 * nhslogind and nhslogin-mock, and a real slapd (StartTLS, its own CA) that says which local
 * account the mock's P9 person is. The account must exist here (uid 1000 or more): the first such
 * account of this computer stands in for the person. */
#include "config.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <security/pam_appl.h>

#include "faultutil.h"
#include "harness.h"
#include "skip.h"
#include "slapdproc.h"

#define P9_NHS_NUMBER "9686368973" /* the mock's P9 person (tests/lib/harness.c's map) */

/* A person's account on this computer: uid 1000..65533, a name the mapping accepts. */
static bool find_account(char *name, size_t len)
{
	struct passwd *pw;
	bool found = false;

	setpwent();
	while (!found && (pw = getpwent()) != NULL) {
		size_t n = strlen(pw->pw_name);

		found = pw->pw_uid >= 1000 && pw->pw_uid < 65534 && n > 0 && n < len && n <= 32 &&
		        pw->pw_name[0] >= 'a' && pw->pw_name[0] <= 'z' &&
		        strspn(pw->pw_name, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
		if (found)
			snprintf(name, len, "%s", pw->pw_name);
	}
	endpwent();
	return found;
}

static void test_signin_mapped_through_the_directory(void **state)
{
	char account[64], ldif[512], extra[1024], why[512];
	struct slapdproc_opts so = {ldif, true};
	struct slapdproc *sp = NULL;
	struct world_opts wo = {.mock_args = {NULL}};
	struct pam_run ok, other, cached, down;
	struct world *w = NULL;
	int r_ok = -1, r_other = -1, r_cached = -1, r_down = -1;
	json_t *flushed = NULL;

	(void)state;
	if (!find_account(account, sizeof(account)))
		skip_because("no account of uid 1000..65533 on this computer for the directory to name");
	if (!slapdproc_available(true, why, sizeof(why)))
		skip_because("%s", why);
	snprintf(ldif, sizeof(ldif),
	         "dn: cn=person," SLAPDPROC_SUFFIX "\nobjectClass: inetOrgPerson\ncn: person\nsn: p\n"
	         "uid: %s\nemployeeNumber: " P9_NHS_NUMBER "\n\n",
	         account);
	if (slapdproc_start(&so, &sp, why, sizeof(why)) != 0)
		fail_msg("%s", why);
	snprintf(extra, sizeof(extra),
	         "source = ldap\n[ldap]\nuri = %s\nbase = " SLAPDPROC_SUFFIX "\n"
	         "filter = (&(objectClass=inetOrgPerson)(employeeNumber=%%s))\nattribute = uid\n"
	         "ca_file = %s\ntimeout = 2\ncache_ttl = 300\n",
	         slapdproc_uri(sp), slapdproc_ca_file(sp));
	wo.identity_extra = extra;
	ok = (struct pam_run){.service = "nl-login", .user = account, .as_user = "p9"};
	other = (struct pam_run){.service = "nl-login", .user = "clinician", .as_user = "p9"};
	cached = (struct pam_run){.service = "nl-login", .user = account, .as_user = "p9"};
	down = (struct pam_run){.service = "nl-login", .user = account, .as_user = "p9"};
	if (world_start(&wo, &w) != 0) {
		slapdproc_free(sp);
		fail_msg("the daemon did not start with source = ldap");
	}
	if (world_activate(w) == 0) {
		r_ok = pam_run_auth(w, &ok);
		/* the map file says clinician; the directory, which now decides, does not */
		r_other = pam_run_auth(w, &other);
		slapdproc_stop(sp);
		/* within cache_ttl the directory's answer is remembered ... */
		r_cached = pam_run_auth(w, &cached);
		/* ... until an administrator flushes the daemon's caches (nhsloginctl flush) */
		flushed = fu_call_once(w->socket, "{\"op\":\"flush\"}", 10000);
		r_down = pam_run_auth(w, &down);
	}
	world_stop(w);
	slapdproc_free(sp);
	assert_int_equal(r_ok, PAM_SUCCESS);
	assert_int_equal(r_other, PAM_AUTH_ERR);
	assert_int_equal(r_cached, PAM_SUCCESS);
	assert_non_null(flushed);
	assert_true(json_is_true(json_object_get(flushed, "ok")));
	json_decref(flushed);
	/* the directory down: unavailable, so a break-glass stack falls through */
	assert_int_equal(r_down, PAM_AUTHINFO_UNAVAIL);
}

int main(void)
{
	harness_under_pam_wrapper();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signin_mapped_through_the_directory),
	};
	return cmocka_run_group_tests_name("pam_ldap", tests, NULL, NULL);
}
