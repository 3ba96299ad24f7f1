/* Lingering close (see linger.h): one thread, one epoll set, a fixed
 * table of slots.  Everything that touches the table holds the lock; the
 * reads are non-blocking and short, so the lock is never held long. */
#include "http/linger.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"

/* How often expired sockets are looked for when nothing happens. */
#define LINGER_TICK_MS 100
#define STOP_TAG UINT32_MAX

typedef struct slot {
	int fd; /* -1: free */
	uint64_t deadline_ms;
	uint64_t bytes;
} slot;

struct brt_linger {
	brt_linger_limits limits;
	pthread_mutex_t lock;
	pthread_t thread;
	int thread_started;
	int epoll_fd, stop_fd;
	unsigned int used;
	uint64_t taken, full;
	slot *slots;
	char sink[64 * 1024]; /* what is read goes here, unread */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Under the lock. */
static void release(brt_linger *linger, slot *s)
{
	close(s->fd); /* also leaves the epoll set: this was its last descriptor */
	s->fd = -1;
	linger->used--;
}

/* Under the lock: read and drop what is there; release the slot once the
 * peer has closed, failed, or sent its allowance. */
static void drain(brt_linger *linger, slot *s)
{
	for (;;) {
		ssize_t n = recv(s->fd, linger->sink, sizeof(linger->sink), 0);
		if (n > 0) {
			s->bytes += (uint64_t)n;
			if (s->bytes >= linger->limits.max_bytes)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break; /* end of stream or an error */
	}
	release(linger, s);
}

static void *run(void *arg)
{
	brt_linger *linger = arg;
	struct epoll_event events[32];

	for (;;) {
		int n = epoll_wait(linger->epoll_fd, events, 32, LINGER_TICK_MS);
		uint64_t now = now_ms();
		int stop = 0;

		pthread_mutex_lock(&linger->lock);
		for (int i = 0; i < n; i++) {
			uint32_t tag = events[i].data.u32;
			if (tag == STOP_TAG)
				stop = 1;
			else if (tag < linger->limits.slots && linger->slots[tag].fd >= 0)
				drain(linger, &linger->slots[tag]);
		}
		for (unsigned int i = 0; i < linger->limits.slots && linger->used > 0; i++)
			if (linger->slots[i].fd >= 0 && (stop || now >= linger->slots[i].deadline_ms))
				release(linger, &linger->slots[i]);
		pthread_mutex_unlock(&linger->lock);
		if (stop)
			return NULL;
	}
}

int brt_linger_start(brt_linger **out, const brt_linger_limits *limits)
{
	brt_linger *linger;
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = STOP_TAG};
	int error = 0;

	*out = NULL;
	if (!limits->slots || limits->slots >= STOP_TAG || !limits->max_ms || !limits->max_bytes)
		return brt_error_set(BRT_EINVALID, "linger limits must be above 0");
	linger = calloc(1, sizeof(*linger));
	if (!linger)
		return brt_error_set(BRT_ENOMEM, "out of memory");
	linger->limits = *limits;
	linger->epoll_fd = linger->stop_fd = -1;
	pthread_mutex_init(&linger->lock, NULL);
	linger->slots = calloc(limits->slots, sizeof(*linger->slots));
	if (!linger->slots) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	for (unsigned int i = 0; i < limits->slots; i++)
		linger->slots[i].fd = -1;
	linger->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	linger->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (linger->epoll_fd < 0 || linger->stop_fd < 0 ||
	    epoll_ctl(linger->epoll_fd, EPOLL_CTL_ADD, linger->stop_fd, &ev) < 0) {
		error = brt_error_set(BRT_EIO, "cannot set up the lingerer: %s", strerror(errno));
		goto done;
	}
	if (pthread_create(&linger->thread, NULL, run, linger) != 0) {
		error = brt_error_set(BRT_EIO, "cannot start the lingerer's thread");
		goto done;
	}
	linger->thread_started = 1;
	*out = linger;
	linger = NULL;
done:
	brt_linger_free(linger);
	return error;
}

int brt_linger_take(brt_linger *linger, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
	slot *s = NULL;
	int copy;

	if (!linger || fd < 0)
		return 0;
	pthread_mutex_lock(&linger->lock);
	if (linger->used < linger->limits.slots)
		for (unsigned int i = 0; i < linger->limits.slots; i++)
			if (linger->slots[i].fd < 0) {
				s = &linger->slots[i];
				ev.data.u32 = i;
				break;
			}
	if (!s) {
		linger->full++;
		pthread_mutex_unlock(&linger->lock);
		return 0;
	}
	copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (copy < 0) {
		pthread_mutex_unlock(&linger->lock);
		return 0;
	}
	/* Our answer is out; the peer reads it, then our end of stream. */
	shutdown(copy, SHUT_WR);
	fcntl(copy, F_SETFL, fcntl(copy, F_GETFL) | O_NONBLOCK);
	s->fd = copy;
	s->deadline_ms = now_ms() + linger->limits.max_ms;
	s->bytes = 0;
	linger->used++;
	if (epoll_ctl(linger->epoll_fd, EPOLL_CTL_ADD, copy, &ev) < 0) {
		release(linger, s);
		pthread_mutex_unlock(&linger->lock);
		return 0;
	}
	linger->taken++;
	pthread_mutex_unlock(&linger->lock);
	return 1;
}

void brt_linger_get_stats(brt_linger *linger, brt_linger_stats *out)
{
	pthread_mutex_lock(&linger->lock);
	out->taken = linger->taken;
	out->full = linger->full;
	out->held = linger->used;
	pthread_mutex_unlock(&linger->lock);
}

void brt_linger_free(brt_linger *linger)
{
	if (!linger)
		return;
	if (linger->thread_started) {
		uint64_t one = 1;
		if (write(linger->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			pthread_cancel(linger->thread);
		pthread_join(linger->thread, NULL);
	}
	if (linger->slots)
		for (unsigned int i = 0; i < linger->limits.slots; i++)
			if (linger->slots[i].fd >= 0)
				close(linger->slots[i].fd);
	if (linger->epoll_fd >= 0)
		close(linger->epoll_fd);
	if (linger->stop_fd >= 0)
		close(linger->stop_fd);
	pthread_mutex_destroy(&linger->lock);
	free(linger->slots);
	free(linger);
}
