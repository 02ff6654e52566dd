/* The token cache's insides, shared by tokcache.c and tokcache_file.c only. */
#ifndef NL_TOKCACHE_INT_H
#define NL_TOKCACHE_INT_H

#include <jansson.h>
#include <pthread.h>
#include "tokcache.h"

#define TC_VERSION     2
#define TC_VERSION_OLD 1 /* before the place was kept: such a file can never be reused */
#define TC_USER_MAX    32
#define TC_MAX_ENTRIES 100000  /* bound on what a directory listing may load */
#define TC_TMP_PREFIX  ".tmp-" /* cannot be a user name: those start with [a-z_] */
#define TC_BAD_SUFFIX  ".bad"
#define TC_BOOT_LEN    36         /* /proc/sys/kernel/random/boot_id: a UUID */
#define TC_PLACE_MAX   256        /* service, rhost and tty: as the socket protocol bounds them */
#define TC_NOTES       4096       /* starts remembered for the sign-ins they lead to */
#define TC_NOTE_AGE    (2 * 3600) /* longer than any flow lives (flow_ttl <= 3600) */

struct tc_entry {
	char user[TC_USER_MAX + 1];
	char *sub;
	char *vot;
	int level;
	time_t auth_time;    /* NHS login's: when the person last authenticated there */
	time_t first_signin; /* ours: when this full sign-in was approved; reuse never moves it */
	time_t id_exp;
	char *refresh_token; /* secret */
	json_t *claims;      /* only the claims the mapping reads (the map is checked again) */
	/* where it was earned */
	char *service, *rhost, *tty;
	bool by_root;
	uint32_t audit;
	char boot[TC_BOOT_LEN + 1];
	struct tc_entry *next;
};

/* A start from a place a sign-in can be bound to: its caller's audit session, kept for the store of
 * the sign-in it may lead to (the flow knows its connection, not the process behind it). */
struct tc_note {
	uint64_t conn;
	uint32_t audit;
	time_t at;
};

struct nl_tokcache {
	pthread_mutex_t mu;
	char *dir; /* NULL: memory only */
	bool safe; /* dir exists with safe owner/mode: we may read and write files in it */
	struct tc_entry *head;
	size_t count;
	char boot[TC_BOOT_LEN + 1]; /* this boot; "" if unknown */
	struct tc_note *notes;      /* ring of TC_NOTES, allocated on first use */
	size_t note_next;
};

/* Names, entries and the list (tokcache.c); entries must be held under tc->mu where named _locked. */
bool tokcache_valid_user(const char *u);
void tokcache_copy_user(char dst[TC_USER_MAX + 1], const char *user);
bool tokcache_ends_with(const char *s, const char *suffix);
void tokcache_entry_free(struct tc_entry *e);
void tokcache_put_locked(struct nl_tokcache *tc, struct tc_entry *e);
char *tokcache_path_join(const char *dir, const char *name);
/* Files (tokcache_file.c). */
int tokcache_fsync_dir(const char *dir);
int tokcache_entry_write(const char *dir, const struct tc_entry *e);
void tokcache_load_all_locked(struct nl_tokcache *tc);
bool tokcache_dir_prepare(const char *dir);

#endif
