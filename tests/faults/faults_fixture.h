/* Shared by the tests/faults/test_faults_*.c programs: the current world (faults_fixture.c) and
 * socket-level sign-in pieces. */
#ifndef FAULTS_FIXTURE_H
#define FAULTS_FIXTURE_H

#include <jansson.h>

#include "harness.h"

#define HTTP_TIMEOUT_S 2
#define MARGIN_MS      5000 /* generous: two cores shared by several test programs */

struct started {
	int fd;
	char device_code[128], user_code[16];
};

extern struct world *cur_world;
int world_teardown(void **state);
void start_pending(const struct world *w, const char *user, struct started *st);
json_t *wait_on(int fd, const char *device_code);
void assert_status_answers(const struct world *w);

#endif
