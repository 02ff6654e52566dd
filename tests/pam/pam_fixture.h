/* Shared by tests/pam/test_pam_signin.c and test_pam_protections.c: the main world
 * (pam_fixture.c), the daemon log reader and PAM run as a given service. */
#ifndef PAM_FIXTURE_H
#define PAM_FIXTURE_H

#include <stdbool.h>

#include "harness.h"

extern struct world *main_world;
int start_main(void **state);
int stop_main(void **state);
bool log_has(const char *path, const char *needle);
int run_at(struct world *w, struct pam_run *run, const char *service, const char *tty, const char *rhost);

#endif
