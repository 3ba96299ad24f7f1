/* Shared downloads (see download.h).  One mutex guards the list of
 * running downloads and their progress; it is held for bookkeeping only,
 * never across network or disk I/O.  A download is reference counted:
 * its thread holds one reference and every request that joined it one
 * more, so the file descriptor readers follow stays open until the last
 * of them is done, whatever order they finish in. */
#include "edge/download.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/random.h"

#define REPOSITORY_MAX 512
#define READ_CHUNK (256 * 1024)
/* Download threads need little stack (libcurl and TLS included). */
#define THREAD_STACK (512 * 1024)
/* Downloads at once; a request beyond that forwards on its own (its
 * bytes stream straight through), so a client asking for many distinct
 * objects cannot make threads without bound. */
#define DOWNLOADS_MAX 32
/* How long stopping waits for download threads to notice. */
#define STOP_WAIT_MS 3000

/* What a manifest fetch by digest accepts: every manifest type, since
 * the digest fixes the content anyway. */
static const char manifest_accept[] =
	"Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
	"application/vnd.docker.distribution.manifest.list.v2+json, "
	"application/vnd.docker.distribution.manifest.v2+json, "
	"application/vnd.docker.distribution.manifest.v1+prettyjws, "
	"application/vnd.oci.artifact.manifest.v1+json, "
	"*/*";

typedef enum download_state {
	STARTING,  /* waiting for the upstream's headers */
	STREAMING, /* bytes flow into the file */
	DONE,      /* verified and stored */
	FAILED,    /* cut short, wrong digest, stopped: every stream ends with an error */
	UNSHARED,  /* not downloadable here: each request forwards on its own */
	UNREACHABLE,
} download_state;

struct brt_edge_download {
	brt_edge_downloads *owner;
	struct brt_edge_download *next; /* in owner->running while STARTING or STREAMING */
	unsigned int refs;
	download_state state;
	int manifest;
	int fd; /* the data so far, -1 before the first byte */
	uint64_t size, written;
	int verified; /* every byte is in and matches the digest: readers may end */
	brt_edge_waiter *waiters;
	brt_digest digest;
	char repository[REPOSITORY_MAX];
	char media_type[BRT_EDGE_MEDIA_TYPE_MAX + 1];
};

struct brt_edge_downloads {
	brt_edge_cache *cache;
	brt_upstream *upstream;
	pthread_mutex_t lock;
	pthread_cond_t changed; /* a download left STARTING, or a thread ended */
	brt_edge_download *running;
	unsigned int threads;
	int stopping;
	_Atomic uint64_t started, shared, failed, bytes;
};

int brt_edge_downloads_new(brt_edge_downloads **out, brt_edge_cache *cache, brt_upstream *upstream)
{
	brt_edge_downloads *d = calloc(1, sizeof(*d));

	*out = NULL;
	if (!d)
		return brt_error_set(BRT_ENOMEM, "out of memory");
	d->cache = cache;
	d->upstream = upstream;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->changed, NULL);
	*out = d;
	return 0;
}

/* Wake every parked reader.  Lock held. */
static void wake_all(brt_edge_download *dl)
{
	while (dl->waiters) {
		brt_edge_waiter *w = dl->waiters;
		dl->waiters = w->next;
		w->next = NULL;
		w->queued = 0;
		w->wake(w->payload);
	}
}

/* Drop one reference.  Lock held. */
static void unref(brt_edge_download *dl)
{
	if (--dl->refs > 0)
		return;
	if (dl->fd >= 0)
		close(dl->fd);
	free(dl);
}

/* Leave the running list and enter a final state.  Lock held. */
static void finish(brt_edge_download *dl, download_state state)
{
	brt_edge_downloads *d = dl->owner;

	for (brt_edge_download **p = &d->running; *p; p = &(*p)->next)
		if (*p == dl) {
			*p = dl->next;
			break;
		}
	dl->next = NULL;
	if (dl->state != FAILED) /* stop may have failed it already */
		dl->state = state;
	if (dl->state == FAILED)
		atomic_fetch_add(&d->failed, 1);
	wake_all(dl);
	pthread_cond_broadcast(&d->changed);
}

static void set_state(brt_edge_download *dl, download_state state)
{
	pthread_mutex_lock(&dl->owner->lock);
	finish(dl, state);
	pthread_mutex_unlock(&dl->owner->lock);
}

/* The upstream's headers: 0 if the body can stream into the cache. */
static int take_headers(brt_edge_download *dl, brt_upstream_transfer *t)
{
	const char *name, *value;
	int64_t length = brt_upstream_content_length(t);

	if (brt_upstream_status(t) != 200 || length < 0)
		return BRT_EUNSUPPORTED;
	dl->size = (uint64_t)length;
	snprintf(dl->media_type, sizeof(dl->media_type), "application/octet-stream");
	for (size_t i = 0; brt_upstream_header(t, i, &name, &value); i++)
		if (strcasecmp(name, "Content-Type") == 0 && value[0] &&
		    strlen(value) <= BRT_EDGE_MEDIA_TYPE_MAX)
			snprintf(dl->media_type, sizeof(dl->media_type), "%s", value);
	return 0;
}

/* Stream the body into an upload of the cache's store; 0 once it is
 * verified and committed. */
static int fetch_body(brt_edge_download *dl, brt_upstream_transfer *t, char *buf)
{
	brt_edge_downloads *d = dl->owner;
	brt_blobstore *store = brt_edge_cache_store(d->cache);
	brt_blob_writer *writer = NULL;
	char upload_id[BRT_UPLOAD_ID_LEN + 1];
	const unsigned char *state;
	size_t state_len;
	brt_hasher hasher;
	brt_digest got;
	ssize_t n;
	int error, stopped = 0;

	if ((error = brt_random_hex(upload_id, BRT_UPLOAD_ID_LEN)) < 0 ||
	    (error = brt_blobstore_writer_open(&writer, store, upload_id, 0, NULL, 0)) < 0)
		return error;
	brt_hasher_init(&hasher, dl->digest.alg);
	while (!stopped && (n = brt_upstream_read(t, buf, READ_CHUNK)) > 0) {
		if (dl->written + (uint64_t)n > dl->size) {
			error = brt_error_set(BRT_EDIGEST,
					      "the upstream sent more than the %llu bytes announced",
					      (unsigned long long)dl->size);
			goto done;
		}
		brt_hasher_update(&hasher, buf, (size_t)n);
		if ((error = writer->append(writer, buf, (size_t)n)) < 0)
			goto done;
		atomic_fetch_add(&d->bytes, (uint64_t)n);
		pthread_mutex_lock(&d->lock);
		if (dl->fd < 0 && (error = brt_blob_writer_data_fd(writer, &dl->fd)) < 0) {
			pthread_mutex_unlock(&d->lock);
			goto done;
		}
		dl->written += (uint64_t)n;
		stopped = dl->state == FAILED;
		wake_all(dl);
		pthread_mutex_unlock(&d->lock);
	}
	if (stopped) {
		error = brt_error_set(BRT_EIO, "stopped");
		goto done;
	}
	if (n < 0) {
		error = BRT_EIO;
		goto done;
	}
	if (dl->written != dl->size) {
		error = brt_error_set(BRT_EDIGEST, "the upstream sent %llu of the %llu bytes announced",
				      (unsigned long long)dl->written, (unsigned long long)dl->size);
		goto done;
	}
	brt_hasher_final(&hasher, &got);
	if (strcmp(got.str, dl->digest.str) != 0) {
		error = brt_error_set(BRT_EDIGEST, "the upstream sent %s instead", got.str);
		goto done;
	}
	/* The clients have what they asked for, checked: their last byte
	 * need not wait for the disk.  Whether the cache keeps the object is
	 * the commit's business. */
	pthread_mutex_lock(&d->lock);
	dl->verified = 1;
	wake_all(dl);
	pthread_mutex_unlock(&d->lock);
	if ((error = writer->sync(writer, &state, &state_len)) < 0)
		goto done;
	writer->adopt(writer);
	/* The commit consumes the upload's data either way. */
	error = brt_edge_cache_commit(d->cache, upload_id, state, state_len, dl->size, &dl->digest,
				      dl->repository, dl->media_type);
	writer->free(writer);
	return error;
done:
	writer->free(writer);
	brt_edge_cache_unreserve(d->cache, dl->size);
	return error;
}

static void *download_main(void *arg)
{
	brt_edge_download *dl = arg;
	brt_edge_downloads *d = dl->owner;
	brt_upstream_transfer *t = NULL;
	const char *headers[2] = {dl->manifest ? manifest_accept : NULL, NULL};
	char path[REPOSITORY_MAX + 64 + BRT_DIGEST_STR_MAX], *buf = NULL;
	int error;

	snprintf(path, sizeof(path), "/v2/%s/%s/%s", dl->repository, dl->manifest ? "manifests" : "blobs",
		 dl->digest.str);
	if (brt_upstream_start(&t, d->upstream, "GET", path, headers) < 0) {
		brt_log_warn("download %s: %s", dl->digest.str, brt_error_last());
		set_state(dl, UNREACHABLE);
		goto done;
	}
	if (brt_upstream_status(t) >= 500) {
		set_state(dl, UNREACHABLE);
		goto done;
	}
	if (take_headers(dl, t) < 0 || !(buf = malloc(READ_CHUNK)) ||
	    brt_edge_cache_reserve(d->cache, dl->size) < 0) {
		brt_log_info("download of %s for %s: not cached (upstream status %u, length %lld%s)",
			     dl->digest.str, dl->repository, brt_upstream_status(t),
			     (long long)brt_upstream_content_length(t),
			     dl->size ? ", too big or no room" : "");
		set_state(dl, UNSHARED);
		goto done;
	}
	pthread_mutex_lock(&d->lock);
	if (dl->state == STARTING)
		dl->state = STREAMING;
	pthread_cond_broadcast(&d->changed);
	pthread_mutex_unlock(&d->lock);
	atomic_fetch_add(&d->started, 1);
	if ((error = fetch_body(dl, t, buf)) < 0) {
		brt_log_warn("download of %s for %s failed, nothing cached: %s", dl->digest.str,
			     dl->repository, brt_error_last());
		set_state(dl, FAILED);
	} else {
		brt_log_info("download of %s for %s: %llu bytes verified and cached", dl->digest.str,
			     dl->repository, (unsigned long long)dl->size);
		set_state(dl, DONE);
	}
done:
	brt_upstream_transfer_free(t);
	free(buf);
	pthread_mutex_lock(&d->lock);
	unref(dl);
	d->threads--;
	pthread_cond_broadcast(&d->changed);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Start a download's thread.  Lock held. */
static int spawn(brt_edge_download *dl)
{
	pthread_attr_t attr;
	pthread_t thread;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&thread, &attr, download_main, dl);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return brt_error_set(BRT_EIO, "cannot start a download thread: %s", strerror(rc));
	dl->owner->threads++;
	return 0;
}

int brt_edge_download_join(brt_edge_download **out, int *shared_out, brt_edge_downloads *d,
			   const char *repository, const brt_digest *digest, int manifest)
{
	brt_edge_download *dl;
	int error = 0;

	*out = NULL;
	*shared_out = 0;
	if (strlen(repository) >= REPOSITORY_MAX)
		return brt_error_set(BRT_EUNSUPPORTED, "repository name too long to share a download");
	pthread_mutex_lock(&d->lock);
	if (d->stopping) {
		error = brt_error_set(BRT_EUNSUPPORTED, "stopping");
		goto done;
	}
	for (dl = d->running; dl; dl = dl->next)
		if (dl->manifest == manifest && strcmp(dl->digest.str, digest->str) == 0 &&
		    strcmp(dl->repository, repository) == 0)
			break;
	if (dl) {
		dl->refs++;
		*shared_out = 1;
		atomic_fetch_add(&d->shared, 1);
	} else if (d->threads >= DOWNLOADS_MAX) {
		error = brt_error_set(BRT_EUNSUPPORTED, "%d downloads are running", DOWNLOADS_MAX);
		goto done;
	} else {
		if (!(dl = calloc(1, sizeof(*dl)))) {
			error = brt_error_set(BRT_ENOMEM, "out of memory");
			goto done;
		}
		dl->owner = d;
		dl->refs = 2; /* the thread's and this request's */
		dl->fd = -1;
		dl->manifest = manifest;
		dl->digest = *digest;
		snprintf(dl->repository, sizeof(dl->repository), "%s", repository);
		if ((error = spawn(dl)) < 0) {
			free(dl);
			goto done;
		}
		dl->next = d->running;
		d->running = dl;
	}
	/* The upstream's headers are a connection and a round trip away;
	 * the upstream client's connect timeout bounds the wait. */
	while (dl->state == STARTING)
		pthread_cond_wait(&d->changed, &d->lock);
	if (dl->state == STREAMING || dl->state == DONE) {
		*out = dl;
	} else {
		if (dl->state == UNREACHABLE)
			error = brt_error_set(BRT_EIO, "the upstream registry is unreachable");
		else if (dl->state == FAILED)
			error = brt_error_set(BRT_EDIGEST,
					      "the upstream's answer was cut short or did not match its "
					      "digest");
		else
			error = brt_error_set(BRT_EUNSUPPORTED, "not a shared download");
		unref(dl);
	}
done:
	pthread_mutex_unlock(&d->lock);
	return error;
}

uint64_t brt_edge_download_size(const brt_edge_download *dl)
{
	return dl->size;
}

const char *brt_edge_download_media_type(const brt_edge_download *dl)
{
	return dl->media_type;
}

int brt_edge_download_read(size_t *read_out, int *parked_out, brt_edge_download *dl, void *buf, size_t len,
			   uint64_t offset, brt_edge_waiter *waiter)
{
	brt_edge_downloads *d = dl->owner;
	uint64_t ready;
	ssize_t n;
	int fd;

	*read_out = 0;
	*parked_out = 0;
	pthread_mutex_lock(&d->lock);
	if (dl->state == FAILED && !dl->verified) {
		pthread_mutex_unlock(&d->lock);
		return brt_error_set(BRT_EIO, "the download failed");
	}
	ready = dl->written;
	/* The last byte waits for the digest check. */
	if (!dl->verified && ready > 0 && ready == dl->size)
		ready--;
	if (offset >= ready) {
		if (!dl->verified) {
			if (!waiter->queued) {
				waiter->park(waiter->payload);
				waiter->queued = 1;
				waiter->next = dl->waiters;
				dl->waiters = waiter;
			}
			*parked_out = 1;
		}
		pthread_mutex_unlock(&d->lock);
		return 0;
	}
	fd = dl->fd;
	pthread_mutex_unlock(&d->lock);
	if (len > ready - offset)
		len = (size_t)(ready - offset);
	do
		n = pread(fd, buf, len, (off_t)offset);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return brt_error_set(BRT_EIO, "cannot read the download: %s",
				     n < 0 ? strerror(errno) : "short file");
	*read_out = (size_t)n;
	return 0;
}

void brt_edge_download_leave(brt_edge_download *dl, brt_edge_waiter *waiter)
{
	brt_edge_downloads *d;

	if (!dl)
		return;
	d = dl->owner; /* dl may be gone after unref */
	pthread_mutex_lock(&d->lock);
	if (waiter && waiter->queued) {
		for (brt_edge_waiter **p = &dl->waiters; *p; p = &(*p)->next)
			if (*p == waiter) {
				*p = waiter->next;
				break;
			}
		waiter->queued = 0;
	}
	unref(dl);
	pthread_mutex_unlock(&d->lock);
}

void brt_edge_downloads_stop(brt_edge_downloads *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stopping = 1;
	for (brt_edge_download *dl = d->running; dl; dl = dl->next) {
		dl->state = FAILED;
		wake_all(dl);
	}
	pthread_cond_broadcast(&d->changed);
	pthread_mutex_unlock(&d->lock);
}

void brt_edge_downloads_free(brt_edge_downloads *d)
{
	struct timespec until;
	int leaked;

	if (!d)
		return;
	brt_edge_downloads_stop(d);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STOP_WAIT_MS / 1000;
	pthread_mutex_lock(&d->lock);
	while (d->threads > 0 && pthread_cond_timedwait(&d->changed, &d->lock, &until) == 0)
		;
	leaked = d->threads > 0;
	pthread_mutex_unlock(&d->lock);
	if (leaked) {
		/* A thread still waits on the upstream: it may touch `d`, so
		 * `d` stays (the process is ending). */
		brt_log_warn("%u downloads still running at exit", d->threads);
		return;
	}
	pthread_cond_destroy(&d->changed);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

void brt_edge_downloads_counts(brt_edge_download_counts *out, brt_edge_downloads *d)
{
	out->started = atomic_load(&d->started);
	out->shared = atomic_load(&d->shared);
	out->failed = atomic_load(&d->failed);
	out->bytes = atomic_load(&d->bytes);
}

unsigned int brt_edge_downloads_running(brt_edge_downloads *d)
{
	unsigned int n;

	pthread_mutex_lock(&d->lock);
	n = d->threads;
	pthread_mutex_unlock(&d->lock);
	return n;
}
