/* Work that waits on the network, run off the socket loop: a few worker threads take jobs from a
 * bounded queue and hand them back finished through an eventfd that the loop watches. The loop
 * never blocks on a provider; a slow provider delays only the sign-ins that need it. */
#ifndef NL_JOBS_H
#define NL_JOBS_H

#include <stddef.h>

struct nl_jobs;

/* workers threads (1..16), at most max_queued jobs waiting or finished-but-untaken. */
int nl_jobs_new(unsigned workers, size_t max_queued, struct nl_jobs **out);
/* Readable (an eventfd) when finished jobs are waiting to be taken. */
int nl_jobs_fd(const struct nl_jobs *j);
/* Queue run(arg) for a worker. NL_ERR_LIMIT when the queue is full. arg stays the caller's: it
 * comes back from nl_jobs_take_done once run has returned. */
int nl_jobs_submit(struct nl_jobs *j, void (*run)(void *arg), void *arg);
/* One finished job's arg (oldest first), or NULL when none is waiting. Drains the eventfd when
 * it returns NULL. */
void *nl_jobs_take_done(struct nl_jobs *j);
/* Stop the workers (a running job finishes first; its run bounds its own wait) and hand every
 * job not yet taken, run or not, to discard. NULL is fine. */
void nl_jobs_free(struct nl_jobs *j, void (*discard)(void *arg));

#endif
