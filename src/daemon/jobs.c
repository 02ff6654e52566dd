/* Worker threads for the socket server's provider I/O (jobs.h). One mutex, one condition for the
 * workers, two FIFO lists: queued and done. */
#include "config.h"
#include "jobs.h"
#include "nl_err.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define WORKERS_MAX 16

struct job {
	void (*run)(void *arg);
	void *arg;
	struct job *next;
};

struct list {
	struct job *head, *tail;
};

struct nl_jobs {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct list queued, done;
	size_t count, max; /* queued + running + done */
	int fd;
	bool stopping;
	unsigned nthreads;
	pthread_t threads[WORKERS_MAX];
};

static void push(struct list *l, struct job *jb)
{
	jb->next = NULL;
	if (l->tail != NULL)
		l->tail->next = jb;
	else
		l->head = jb;
	l->tail = jb;
}

static struct job *pop(struct list *l)
{
	struct job *jb = l->head;
	if (jb != NULL) {
		l->head = jb->next;
		if (l->head == NULL)
			l->tail = NULL;
	}
	return jb;
}

static void *worker(void *p)
{
	struct nl_jobs *j = p;
	uint64_t one = 1;

	pthread_mutex_lock(&j->mu);
	for (;;) {
		struct job *jb;
		while (!j->stopping && j->queued.head == NULL)
			pthread_cond_wait(&j->cv, &j->mu);
		if (j->stopping)
			break;
		jb = pop(&j->queued);
		pthread_mutex_unlock(&j->mu);
		jb->run(jb->arg);
		pthread_mutex_lock(&j->mu);
		push(&j->done, jb);
		/* An eventfd write of 1 cannot fail short of overflow (2^64 - 1 unread). */
		if (write(j->fd, &one, sizeof(one)) < 0) {
			/* nothing to do: the loop also drains done jobs on its next take */
		}
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

int nl_jobs_new(unsigned workers, size_t max_queued, struct nl_jobs **out)
{
	struct nl_jobs *j;

	if (out == NULL || workers == 0 || workers > WORKERS_MAX || max_queued == 0)
		return NL_ERR_INTERNAL;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NL_ERR_NOMEM;
	j->max = max_queued;
	if ((j->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		free(j);
		return NL_ERR_IO;
	}
	if (pthread_mutex_init(&j->mu, NULL) != 0 || pthread_cond_init(&j->cv, NULL) != 0) {
		close(j->fd);
		free(j);
		return NL_ERR_INTERNAL;
	}
	for (; j->nthreads < workers; j->nthreads++) {
		if (pthread_create(&j->threads[j->nthreads], NULL, worker, j) != 0) {
			nl_jobs_free(j, NULL);
			return NL_ERR_INTERNAL;
		}
	}
	*out = j;
	return 0;
}

int nl_jobs_fd(const struct nl_jobs *j)
{
	return j != NULL ? j->fd : -1;
}

int nl_jobs_submit(struct nl_jobs *j, void (*run)(void *arg), void *arg)
{
	struct job *jb;
	int r = NL_ERR_LIMIT;

	if (j == NULL || run == NULL)
		return NL_ERR_INTERNAL;
	if ((jb = calloc(1, sizeof(*jb))) == NULL)
		return NL_ERR_NOMEM;
	jb->run = run;
	jb->arg = arg;
	pthread_mutex_lock(&j->mu);
	if (j->count < j->max && !j->stopping) {
		push(&j->queued, jb);
		j->count++;
		jb = NULL;
		pthread_cond_signal(&j->cv);
		r = 0;
	}
	pthread_mutex_unlock(&j->mu);
	free(jb);
	return r;
}

void *nl_jobs_take_done(struct nl_jobs *j)
{
	struct job *jb;
	void *arg = NULL;
	uint64_t v;

	if (j == NULL)
		return NULL;
	pthread_mutex_lock(&j->mu);
	if ((jb = pop(&j->done)) != NULL) {
		j->count--;
		arg = jb->arg;
	} else if (read(j->fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: already drained */
	}
	pthread_mutex_unlock(&j->mu);
	free(jb);
	return arg;
}

void nl_jobs_free(struct nl_jobs *j, void (*discard)(void *arg))
{
	struct job *jb;

	if (j == NULL)
		return;
	pthread_mutex_lock(&j->mu);
	j->stopping = true;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	for (unsigned i = 0; i < j->nthreads; i++)
		pthread_join(j->threads[i], NULL);
	while ((jb = pop(&j->queued)) != NULL || (jb = pop(&j->done)) != NULL) {
		if (discard != NULL)
			discard(jb->arg);
		free(jb);
	}
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	close(j->fd);
	free(j);
}
