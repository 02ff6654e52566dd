/* The bridge's insides, shared by bridge.c, bridge_entry.c and bridge_confirm.c only. */
#ifndef NL_BRIDGE_INT_H
#define NL_BRIDGE_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include "bridge.h"

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_result;
#else
typedef int mhd_result;
/* The agent API (bridge_agent.c). */
int bridge_agent_init(struct nl_bridge *b, char *err, size_t errlen);
void bridge_agent_stop(struct nl_bridge *b);
mhd_result bridge_agent_request(struct nl_bridge *b, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *upload_data, size_t *upload_data_size,
                                struct req *rq);

#endif

#define BRIDGE_BODY_MAX      4096 /* a POST body: one short form field */
#define BRIDGE_CODE_MAX      64   /* what we keep of a typed code */
#define BRIDGE_PARAM_MAX     4096 /* state / code / error query values */
#define BRIDGE_CB_PARAMS_MAX 32   /* query parameters of a callback */
#define BRIDGE_CONN_LIMIT    256  /* connections (threads) at once */
#define BRIDGE_CONN_PER_IP   32   /* a hospital Wi-Fi NAT puts many phones behind one address */
/* role = bridge: every agent's long-poll holds a connection (a thread) for up to 25 s, so a shift
 * change of 50 sign-ins a second keeps about 2,000 of them parked across the instances. */
#define BRIDGE_ROLE_CONN_LIMIT 2048
#define BRIDGE_CONN_TIMEOUT    30 /* seconds of silence before a connection is dropped */
#define BRIDGE_ORIGIN_MAX      256
#define BRIDGE_TLS_PRIORITIES  "NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1"
/* The browser binding (doc/threat-model.md, nhslogind(8)): a random value in a __Host- cookie,
 * which only this origin can set and which a browser sends to it alone. Chromium and curl keep a
 * Secure cookie over plain http from a loopback address, so the name is the same on the test
 * listener. */
#define BRIDGE_COOKIE           "__Host-nhslogin"
#define BRIDGE_COOKIE_LEN       43   /* base64url of 32 random bytes */
#define BRIDGE_COOKIE_AGE       3600 /* seconds; no flow lives longer */
#define BRIDGE_TOKEN_LEN        43   /* base64url of an HMAC-SHA256 */
#define BRIDGE_ANSWER_MAX       16
#define BRIDGE_AGENT_BODY_MAX   16384 /* an agent's JSON body (doc/bridge.md) */
#define BRIDGE_AGENT_TARGET_MAX 2048  /* an agent's request target, path and query */
#define BRIDGE_AGENT_WAIT_MAX   25    /* seconds of a long poll */
#define BRIDGE_WAKE_RING        256   /* ids of flows ended lately, for the parked long polls */

struct nl_store_sub;

/* The parked long polls of the agent API (bridge_agent.c): the store's subscriber notes each ended
 * flow id with a sequence number and wakes them all; each re-reads its flow if its id is among the
 * new ones, or if the ring overflowed or the subscription was remade (messages lost). */
struct bridge_waiters {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t seq;     /* events so far */
	uint64_t all_seq; /* the last event after which everyone must re-read */
	struct {
		uint64_t seq;
		char id[NL_FLOW_ID_LEN];
	} ring[BRIDGE_WAKE_RING];
	bool lost, stopping;
};

struct nl_bridge {
	const struct nl_config *cfg;
	struct nl_flows *fl;
	struct nl_oidc *oidc;
	struct nl_tokcache *tc;
	struct MHD_Daemon *mhd;
	uint16_t port;
	bool tls;
	char *cb_path;  /* the path of redirect_uri */
	char *base_url; /* what the phone uses, without a trailing '/' */
	char *cert_pem;
	char *key_pem; /* secret */
	size_t key_len;
	pthread_mutex_t mu;                    /* guards authz_origin */
	char issuer_origin[BRIDGE_ORIGIN_MAX]; /* "" if unusable */
	char authz_origin[BRIDGE_ORIGIN_MAX];  /* learned from the first authorize URL */
	unsigned char csrf_key[32];            /* secret: keys the confirmation form's token */
	/* role = bridge: the shared store, the enrolled workstations, the waiters of the agent API */
	struct nl_store *store;
	struct nl_hostauth_hosts *hosts;
	struct nl_store_sub *sub;
	struct bridge_waiters w;
	bool w_init;
};

/* One request's state between libmicrohttpd's calls. */
struct req {
	bool started, pp_checked;
	struct MHD_PostProcessor *pp;
	size_t body_len;
	char code[BRIDGE_CODE_MAX + 1]; /* the form's code field */
	size_t code_len;
	bool code_too_long;
	/* the confirmation form's fields; confirm_bad when one is too long */
	char flow[NL_FLOW_ID_LEN], token[BRIDGE_TOKEN_LEN + 1], answer[BRIDGE_ANSWER_MAX];
	size_t flow_len, token_len, answer_len;
	bool confirm_bad;
	/* the agent API: the raw request target, the body */
	bool agent, agent_too_big;
	char *target;
	char *body;
	size_t agent_len;
};

/* Responses (bridge.c). */
void bridge_url_origin(const char *url, char *out, size_t outlen);
mhd_result bridge_send_page_c(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url, unsigned status, char *html, const char *location,
                              const char *set_cookie);
mhd_result bridge_send_page(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                            const char *url, unsigned status, char *html, const char *location);
mhd_result bridge_send_message(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                               const char *url, unsigned status, const char *title, const char *text, bool ok,
                               bool again);
/* The phone's address, behind trusted proxies, and the /authorize origin it is sent to
 * (bridge_entry.c). */
void bridge_client_address(const struct nl_bridge *b, struct MHD_Connection *conn, char *out, size_t len);
void bridge_learn_authz_origin(struct nl_bridge *b, const char *url);
/* The browser binding and the confirmation form (bridge_confirm.c); the code entry form too. */
const char *bridge_request_cookie(struct MHD_Connection *conn);
int bridge_browser_hash(const char *cookie, unsigned char out[NL_FLOW_BROWSER_LEN]);
mhd_result bridge_handle_confirm(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                                 const char *url, struct req *rq);
mhd_result bridge_handle_form(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url, struct req *rq);

/* The agent API (bridge_agent.c). */
int bridge_agent_init(struct nl_bridge *b, char *err, size_t errlen);
void bridge_agent_stop(struct nl_bridge *b);
mhd_result bridge_agent_request(struct nl_bridge *b, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *upload_data, size_t *upload_data_size,
                                struct req *rq);

#endif
