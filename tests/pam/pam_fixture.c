/* The PAM tests' fixture, shared by the tests/pam/test_pam_signin and test_pam_protections programs:
 * the main world started once a program in the group setup, a daemon log reader, and PAM run as a
 * given service, tty and remote host. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <limits.h>

#include <security/pam_appl.h>

#include "harness.h"
#include "nl_time.h"
#include "pam_fixture.h"

struct world *main_world;

int start_main(void **state)
{
	static const struct world_opts o = {.mock_args = {NULL}};
	(void)state;
	return world_start(&o, &main_world) == 0 ? 0 : -1;
}

int stop_main(void **state)
{
	(void)state;
	world_stop(main_world);
	main_world = NULL;
	return 0;
}

/* Does the file at path contain needle? (A daemon log: small, read whole, at most 4 MiB.) */
bool log_has(const char *path, const char *needle)
{
	static char buf[4 << 20];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

/* Run PAM through nl-items as `service` would: PAM_SERVICE, PAM_TTY and PAM_RHOST set (NULL: unset). */
int run_at(struct world *w, struct pam_run *run, const char *service, const char *tty, const char *rhost)
{
	int rc;

	setenv("PAM_SERVICE", service, 1);
	if (tty != NULL)
		setenv("PAM_TTY", tty, 1);
	if (rhost != NULL)
		setenv("PAM_RHOST", rhost, 1);
	run->service = "nl-items";
	rc = pam_run_auth(w, run);
	unsetenv("PAM_SERVICE");
	unsetenv("PAM_TTY");
	unsetenv("PAM_RHOST");
	return rc;
}
