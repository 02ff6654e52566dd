/* Shared by the tests/unit/test_flows_*.c programs: the table under test (flows_fixture.c), its
 * fake clock and the steps of a sign-in. */
#ifndef FLOWS_FIXTURE_H
#define FLOWS_FIXTURE_H

#include <stdint.h>
#include <time.h>

#include "flows.h"
#include "nl_config.h"

struct fx {
	struct nl_config cfg;
	struct nl_flows *fl;
	int efd;
};

extern time_t fake_now;
int setup_with(void **state, unsigned max_flows, unsigned per_user);
int setup(void **state);
int teardown(void **state);
void start_ok(struct fx *fx, const char *user, uint64_t owner, struct nl_flow_started *s);
void begin_and_take(struct fx *fx, struct nl_flow_started *s, struct nl_flow_exchange *x);

#endif
