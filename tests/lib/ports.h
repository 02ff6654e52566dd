/* Test helper: a loopback TCP port to listen on. */
#ifndef NL_TEST_PORTS_H
#define NL_TEST_PORTS_H

/* A loopback TCP port that was free a moment ago (bound to port 0, then closed), or -1. For a
 * server whose port must be known before it starts (a redirect_uri, a config file). */
int test_free_port(void);

#endif
