/* The fault-injecting blob store (see faulty.h for the rule grammar).  Every
 * slot of the interface, and of the writers and readers it hands out, is
 * wrapped; a call first asks the rules whether it fails, then either runs
 * the inner call or returns the injected error (or both, for phase=after).
 * Rule state is shared by all threads of the server and kept under one
 * mutex: this driver is for tests, where simplicity beats throughput. */
#include "storage/faulty/faulty.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"

#define FAULT_ENV "BERTH_FAULT_INJECTION"
/* Longest specification accepted (a guard, not a limit anyone needs). */
#define FAULT_SPEC_MAX 1024

typedef struct fault_state {
	uint64_t calls; /* matching calls seen */
	uint64_t bytes; /* bytes appended through matching calls */
	int fired;
} fault_state;

typedef struct faulty_store {
	brt_blobstore base;
	brt_blobstore *inner;
	int owns_inner;
	pthread_mutex_t lock;
	brt_fault_spec spec;
	fault_state state[BRT_FAULT_RULES_MAX];
	uint64_t injected;
} faulty_store;

typedef struct faulty_writer {
	brt_blob_writer base;
	faulty_store *store;
	brt_blob_writer *inner;
	char upload_id[BRT_UPLOAD_ID_LEN + 1];
	/* After an append or sync fault the contract makes an attempt
	 * unusable; the wrapper keeps to that though the inner one would
	 * carry on.  Never adopted, the inner attempt drops its data when
	 * freed, as a real failed one does. */
	int broken;
} faulty_writer;

typedef struct faulty_reader {
	brt_blob_reader base;
	faulty_store *store;
	brt_blob_reader *inner;
	char key[BRT_BLOB_KEY_MAX];
} faulty_reader;

/* What a call should do, decided before it runs. */
typedef struct fault_decision {
	int fail;
	int error;
	int nospace;
	int phase_after;
	int partial;
	size_t partial_len; /* append: bytes to pass down before failing */
} fault_decision;

#define FAULT_OPS_ALL (((unsigned int)BRT_FAULT_UPLOAD_LIST << 1) - 1)
#define FAULT_OPS_PHASE                                                                                    \
	(BRT_FAULT_COMMIT | BRT_FAULT_COPY | BRT_FAULT_REMOVE | BRT_FAULT_UPLOAD_REMOVE | BRT_FAULT_SYNC | \
	 BRT_FAULT_UPLOAD_PRUNE)

static const struct {
	const char *name;
	unsigned int ops;
} op_names[] = {
	{"stat", BRT_FAULT_STAT},
	{"reader_open", BRT_FAULT_READER_OPEN},
	{"read", BRT_FAULT_READ},
	{"open_fd", BRT_FAULT_OPEN_FD},
	{"writer_open", BRT_FAULT_WRITER_OPEN},
	{"append", BRT_FAULT_APPEND},
	{"sync", BRT_FAULT_SYNC},
	{"commit", BRT_FAULT_COMMIT},
	{"upload_prune", BRT_FAULT_UPLOAD_PRUNE},
	{"upload_remove", BRT_FAULT_UPLOAD_REMOVE},
	{"remove", BRT_FAULT_REMOVE},
	{"copy", BRT_FAULT_COPY},
	{"list", BRT_FAULT_LIST},
	{"upload_list", BRT_FAULT_UPLOAD_LIST},
	{"open", BRT_FAULT_READER_OPEN | BRT_FAULT_OPEN_FD | BRT_FAULT_WRITER_OPEN},
	{"all", FAULT_OPS_ALL},
};

/* --------------------------------------------------------------- parsing */

/* The `len` bytes at `s` as one operation name's mask; 0 if unknown. */
static unsigned int op_mask(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (strlen(op_names[i].name) == len && memcmp(op_names[i].name, s, len) == 0)
			return op_names[i].ops;
	return 0;
}

static int value_is(const char *v, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(v, word, len) == 0;
}

/* A decimal number, optionally with a binary k/m/g suffix. */
static int parse_number(uint64_t *out, const char *v, size_t len, int suffix_ok)
{
	uint64_t n = 0, unit = 1;
	size_t i;

	*out = 0;
	if (len > 0 && suffix_ok) {
		switch (v[len - 1]) {
		case 'k':
			unit = (uint64_t)1 << 10;
			len--;
			break;
		case 'm':
			unit = (uint64_t)1 << 20;
			len--;
			break;
		case 'g':
			unit = (uint64_t)1 << 30;
			len--;
			break;
		default:
			break;
		}
	}
	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(v[i] - '0'), &n))
			return -1;
	}
	if (__builtin_mul_overflow(n, unit, &n))
		return -1;
	*out = n;
	return 0;
}

static int parse_flag(int *out, const char *v, size_t len)
{
	if (value_is(v, len, "0"))
		*out = 0;
	else if (value_is(v, len, "1"))
		*out = 1;
	else
		return -1;
	return 0;
}

static int parse_ops(unsigned int *out, const char *v, size_t len)
{
	unsigned int ops = 0;
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		unsigned int m;
		if (i < len && v[i] != '|')
			continue;
		if (!(m = op_mask(v + start, i - start)))
			return -1;
		ops |= m;
		start = i + 1;
	}
	*out = ops;
	return 0;
}

/* Which keys a rule has named, so none is given twice. */
enum {
	KEY_OP = 1,
	KEY_AFTER = 2,
	KEY_AFTER_BYTES = 4,
	KEY_ERROR = 8,
	KEY_PERSISTENT = 16,
	KEY_PARTIAL = 32,
	KEY_PHASE = 64
};

static int parse_pair(brt_fault_rule *rule, unsigned int *seen, size_t index, const char *pair, size_t len)
{
	const char *eq = memchr(pair, '=', len);
	const char *v;
	size_t key_len, v_len;
	unsigned int key;
	int bad = 0;

	if (!eq)
		return brt_error_set(BRT_EINVALID, "fault rule %zu: \"%.*s\" is not KEY=VALUE", index,
				     (int)len, pair);
	key_len = (size_t)(eq - pair);
	v = eq + 1;
	v_len = len - key_len - 1;
	if (value_is(pair, key_len, "op")) {
		key = KEY_OP;
		bad = parse_ops(&rule->ops, v, v_len);
	} else if (value_is(pair, key_len, "after")) {
		key = KEY_AFTER;
		bad = parse_number(&rule->after, v, v_len, 0);
	} else if (value_is(pair, key_len, "after_bytes")) {
		key = KEY_AFTER_BYTES;
		rule->by_bytes = 1;
		bad = parse_number(&rule->after_bytes, v, v_len, 1);
	} else if (value_is(pair, key_len, "error")) {
		key = KEY_ERROR;
		if (value_is(v, v_len, "eio"))
			rule->nospace = 0;
		else if (value_is(v, v_len, "enospc"))
			rule->nospace = 1;
		else
			bad = 1;
	} else if (value_is(pair, key_len, "persistent")) {
		key = KEY_PERSISTENT;
		bad = parse_flag(&rule->persistent, v, v_len);
	} else if (value_is(pair, key_len, "partial")) {
		key = KEY_PARTIAL;
		bad = parse_flag(&rule->partial, v, v_len);
	} else if (value_is(pair, key_len, "phase")) {
		key = KEY_PHASE;
		if (value_is(v, v_len, "before"))
			rule->phase_after = 0;
		else if (value_is(v, v_len, "after"))
			rule->phase_after = 1;
		else
			bad = 1;
	} else {
		return brt_error_set(BRT_EINVALID, "fault rule %zu: unknown key \"%.*s\"", index,
				     (int)key_len, pair);
	}
	if (*seen & key)
		return brt_error_set(BRT_EINVALID, "fault rule %zu: \"%.*s\" given twice", index,
				     (int)key_len, pair);
	*seen |= key;
	if (bad)
		return brt_error_set(BRT_EINVALID, "fault rule %zu: bad value \"%.*s\" for %.*s", index,
				     (int)v_len, v, (int)key_len, pair);
	return 0;
}

/* Whether `rule` makes sense; `index` names it in the detail. */
static int check_rule(const brt_fault_rule *rule, size_t index)
{
	if (rule->ops == 0 || (rule->ops & ~FAULT_OPS_ALL) != 0)
		return brt_error_set(BRT_EINVALID, "fault rule %zu: needs op=", index);
	if (rule->by_bytes && rule->ops != BRT_FAULT_APPEND)
		return brt_error_set(BRT_EINVALID, "fault rule %zu: after_bytes needs op=append alone",
				     index);
	if (rule->by_bytes && rule->after != 0)
		return brt_error_set(BRT_EINVALID, "fault rule %zu: after and after_bytes exclude each other",
				     index);
	if (rule->partial && rule->ops != BRT_FAULT_APPEND)
		return brt_error_set(BRT_EINVALID, "fault rule %zu: partial needs op=append alone", index);
	if (rule->phase_after && (rule->ops & ~(unsigned int)FAULT_OPS_PHASE) != 0)
		return brt_error_set(BRT_EINVALID,
				     "fault rule %zu: phase=after needs ops among commit, copy, remove, "
				     "upload_remove, upload_prune, sync",
				     index);
	if (rule->error > 0)
		return brt_error_set(BRT_EINVALID, "fault rule %zu: error must be a BRT_E* code", index);
	return 0;
}

int brt_fault_spec_parse(brt_fault_spec *out, const char *text)
{
	size_t len, start = 0;

	memset(out, 0, sizeof(*out));
	if (!text || !*text)
		return brt_error_set(BRT_EINVALID, "fault specification is empty");
	len = strlen(text);
	if (len > FAULT_SPEC_MAX)
		return brt_error_set(BRT_EINVALID, "fault specification is longer than %d characters",
				     FAULT_SPEC_MAX);
	for (size_t i = 0; i <= len; i++) {
		brt_fault_rule *rule;
		unsigned int seen = 0;
		size_t pair_start, rule_len = i - start;
		int error;

		if (i < len && text[i] != ';')
			continue;
		if (out->count == BRT_FAULT_RULES_MAX)
			return brt_error_set(BRT_EINVALID, "more than %d fault rules", BRT_FAULT_RULES_MAX);
		rule = &out->rules[out->count];
		if (rule_len == 0)
			return brt_error_set(BRT_EINVALID, "fault rule %zu is empty", out->count + 1);
		pair_start = start;
		for (size_t j = start; j <= i; j++) {
			if (j < i && text[j] != ',')
				continue;
			if ((error = parse_pair(rule, &seen, out->count + 1, text + pair_start,
						j - pair_start)) < 0)
				return error;
			pair_start = j + 1;
		}
		if ((error = check_rule(rule, out->count + 1)) < 0)
			return error;
		out->count++;
		start = i + 1;
	}
	return 0;
}

static int check_spec(const brt_fault_spec *spec)
{
	int error;

	if (spec->count > BRT_FAULT_RULES_MAX)
		return brt_error_set(BRT_EINVALID, "more than %d fault rules", BRT_FAULT_RULES_MAX);
	for (size_t i = 0; i < spec->count; i++)
		if ((error = check_rule(&spec->rules[i], i + 1)) < 0)
			return error;
	return 0;
}

/* --------------------------------------------------------------- deciding */

/* Decide call `op` (for an append: of `len` bytes).  Every matching rule
 * counts the call; the first that fires decides the fault.  Appended bytes
 * are counted only for calls that go through. */
static fault_decision decide(faulty_store *fs, unsigned int op, size_t len)
{
	fault_decision d;
	int matched = 0;

	memset(&d, 0, sizeof(d));
	pthread_mutex_lock(&fs->lock);
	for (size_t i = 0; i < fs->spec.count; i++) {
		const brt_fault_rule *rule = &fs->spec.rules[i];
		fault_state *st = &fs->state[i];
		int fire = 0;
		size_t partial_len = len / 2;

		if (!(rule->ops & op))
			continue;
		matched = 1;
		st->calls++;
		if (st->fired) {
			fire = rule->persistent;
			partial_len = 0;
		} else if (rule->by_bytes) {
			uint64_t end;
			if (__builtin_add_overflow(st->bytes, (uint64_t)len, &end) ||
			    end > rule->after_bytes) {
				fire = 1;
				partial_len = (size_t)(rule->after_bytes - st->bytes);
			}
		} else {
			fire = st->calls > rule->after;
		}
		if (!fire)
			continue;
		st->fired = 1;
		if (!d.fail) {
			d.fail = 1;
			d.error = rule->error ? rule->error : BRT_EIO;
			d.nospace = rule->nospace;
			d.phase_after = rule->phase_after;
			d.partial = rule->partial;
			d.partial_len = rule->partial ? partial_len : 0;
		}
	}
	if (d.fail)
		fs->injected++;
	else if (matched && op == BRT_FAULT_APPEND)
		for (size_t i = 0; i < fs->spec.count; i++)
			if (fs->spec.rules[i].ops & op)
				fs->state[i].bytes += len;
	pthread_mutex_unlock(&fs->lock);
	return d;
}

/* The injected error, with a detail like a real one: it names the
 * operation and the upload or key, never a path. */
static int inject(const fault_decision *d, const char *what, const char *name)
{
	return brt_error_set(d->error, "blob store: %s %s: %s (injected fault)", what, name,
			     d->nospace ? "no space left on device" : "input/output error");
}

/* --------------------------------------------------------------- readers */

static int faulty_read(brt_blob_reader *r, void *buf, size_t len, size_t *read_out)
{
	faulty_reader *fr = (faulty_reader *)r;
	fault_decision d = decide(fr->store, BRT_FAULT_READ, len);

	*read_out = 0;
	if (d.fail)
		return inject(&d, "read", fr->key);
	return fr->inner->read(fr->inner, buf, len, read_out);
}

static void faulty_reader_free(brt_blob_reader *r)
{
	faulty_reader *fr = (faulty_reader *)r;

	if (!fr)
		return;
	if (fr->inner)
		fr->inner->free(fr->inner);
	free(fr);
}

static int faulty_reader_open(brt_blob_reader **out, brt_blobstore *bs, const char *key, uint64_t offset)
{
	faulty_store *fs = (faulty_store *)bs;
	fault_decision d = decide(fs, BRT_FAULT_READER_OPEN, 0);
	faulty_reader *fr;
	int error;

	*out = NULL;
	if (d.fail)
		return inject(&d, "open", key);
	if (!(fr = calloc(1, sizeof(*fr))))
		return brt_error_set(BRT_ENOMEM, "blob store: out of memory");
	if ((error = fs->inner->reader_open(&fr->inner, fs->inner, key, offset)) < 0) {
		free(fr);
		return error;
	}
	fr->base.read = faulty_read;
	fr->base.free = faulty_reader_free;
	fr->store = fs;
	snprintf(fr->key, sizeof(fr->key), "%s", key);
	*out = &fr->base;
	return 0;
}

static int faulty_open_fd(int *fd_out, uint64_t *size_out, brt_blobstore *bs, const char *key)
{
	faulty_store *fs = (faulty_store *)bs;
	fault_decision d = decide(fs, BRT_FAULT_OPEN_FD, 0);

	*fd_out = -1;
	if (size_out)
		*size_out = 0;
	if (d.fail)
		return inject(&d, "open", key);
	return fs->inner->open_fd(fd_out, size_out, fs->inner, key);
}

/* --------------------------------------------------------------- writers */

static int faulty_append(brt_blob_writer *w, const void *data, size_t len)
{
	faulty_writer *fw = (faulty_writer *)w;
	fault_decision d;
	int error;

	if (fw->broken)
		return brt_error_set(BRT_EIO, "blob store: upload %s: attempt is no longer usable",
				     fw->upload_id);
	d = decide(fw->store, BRT_FAULT_APPEND, len);
	if (d.fail) {
		fw->broken = 1;
		/* The partial tail is never acknowledged: w->size stays. */
		if (d.partial_len > 0 && d.partial_len < len)
			(void)fw->inner->append(fw->inner, data, d.partial_len);
		return inject(&d, "write upload", fw->upload_id);
	}
	error = fw->inner->append(fw->inner, data, len);
	if (error < 0)
		fw->broken = 1;
	else
		w->size = fw->inner->size;
	return error;
}

static int faulty_sync(brt_blob_writer *w, const unsigned char **state_out, size_t *len_out)
{
	faulty_writer *fw = (faulty_writer *)w;
	fault_decision d;
	int error;

	*state_out = NULL;
	*len_out = 0;
	if (fw->broken)
		return brt_error_set(BRT_EIO, "blob store: upload %s: attempt is no longer usable",
				     fw->upload_id);
	d = decide(fw->store, BRT_FAULT_SYNC, 0);
	if (d.fail) {
		fw->broken = 1;
		if (d.phase_after)
			(void)fw->inner->sync(fw->inner, state_out, len_out);
		*state_out = NULL;
		*len_out = 0;
		return inject(&d, "sync upload", fw->upload_id);
	}
	if ((error = fw->inner->sync(fw->inner, state_out, len_out)) < 0)
		fw->broken = 1;
	return error;
}

static void faulty_adopt(brt_blob_writer *w)
{
	faulty_writer *fw = (faulty_writer *)w;

	fw->inner->adopt(fw->inner);
}

static void faulty_keep(brt_blob_writer *w)
{
	faulty_writer *fw = (faulty_writer *)w;

	fw->inner->keep(fw->inner);
}

static int faulty_data_fd(brt_blob_writer *w, int *fd_out)
{
	return brt_blob_writer_data_fd(((faulty_writer *)w)->inner, fd_out);
}

static void faulty_writer_free(brt_blob_writer *w)
{
	faulty_writer *fw = (faulty_writer *)w;

	if (!fw)
		return;
	fw->inner->free(fw->inner);
	free(fw);
}

static int faulty_writer_open(brt_blob_writer **out, brt_blobstore *bs, const char *upload_id,
			      uint64_t offset, const unsigned char *state, size_t state_len)
{
	faulty_store *fs = (faulty_store *)bs;
	fault_decision d = decide(fs, BRT_FAULT_WRITER_OPEN, 0);
	faulty_writer *fw;
	int error;

	*out = NULL;
	if (d.fail)
		return inject(&d, "open upload", upload_id);
	if (!(fw = calloc(1, sizeof(*fw))))
		return brt_error_set(BRT_ENOMEM, "blob store: out of memory");
	if ((error = fs->inner->writer_open(&fw->inner, fs->inner, upload_id, offset, state, state_len)) <
	    0) {
		free(fw);
		return error;
	}
	fw->store = fs;
	fw->base.size = fw->inner->size;
	fw->base.append = faulty_append;
	fw->base.sync = faulty_sync;
	fw->base.adopt = faulty_adopt;
	fw->base.keep = fw->inner->keep ? faulty_keep : NULL;
	fw->base.free = faulty_writer_free;
	fw->base.data_fd = faulty_data_fd;
	snprintf(fw->upload_id, sizeof(fw->upload_id), "%s", upload_id);
	*out = &fw->base;
	return 0;
}

/* --------------------------------------------------------------- store */

static int faulty_stat(brt_blobstore *bs, const char *key, uint64_t *size_out)
{
	faulty_store *fs = (faulty_store *)bs;
	fault_decision d = decide(fs, BRT_FAULT_STAT, 0);

	*size_out = 0;
	if (d.fail)
		return inject(&d, "stat", key);
	return fs->inner->stat(fs->inner, key, size_out);
}

/* What a call decided as `d` reports, its inner call (if it ran: not
 * with phase=before) having returned `error`. */
static int outcome(const fault_decision *d, int error, const char *what, const char *name)
{
	if (error < 0 || !d->fail)
		return error;
	return inject(d, what, name);
}

static int runs_inner(const fault_decision *d)
{
	return !d->fail || d->phase_after;
}

static int faulty_commit(brt_blobstore *bs, const char *upload_id, const unsigned char *state,
			 size_t state_len, uint64_t size, const char *key)
{
	faulty_store *fs = (faulty_store *)bs;
	fault_decision d = decide(fs, BRT_FAULT_COMMIT, 0);

	/* Failing before the inner commit models a failed rename: nothing
	 * is published and the data stays for a retry. */
	int error = 0;

	if (runs_inner(&d))
		error = fs->inner->commit(fs->inner, upload_id, state, state_len, size, key);
	return outcome(&d, error, "publish", key);
}

static int faulty_upload_remove(brt_blobstore *bs, const char *upload_id, const unsigned char *state,
				size_t state_len)
{
	faulty_store *fs = (faulty_store *)bs;
	fault_decision d = decide(fs, BRT_FAULT_UPLOAD_REMOVE, 0);

	int error = 0;

	if (runs_inner(&d))
		error = fs->inner->upload_remove(fs->inner, upload_id, state, state_len);
	return outcome(&d, error, "remove upload", upload_id);
}

static int faulty_upload_prune(unsigned long *removed_out, brt_blobstore *bs, const char *upload_id,
			       const unsigned char *keep, size_t keep_len, int64_t before_ms)
{
	faulty_store *fs = (faulty_store *)bs;
	fault_decision d = decide(fs, BRT_FAULT_UPLOAD_PRUNE, 0);

	int error = 0;

	*removed_out = 0;
	if (runs_inner(&d))
		error = fs->inner->upload_prune(removed_out, fs->inner, upload_id, keep, keep_len, before_ms);
	return outcome(&d, error, "prune upload", upload_id);
}

static int faulty_copy(brt_blobstore *bs, const char *from, const char *to)
{
	faulty_store *fs = (faulty_store *)bs;
	fault_decision d = decide(fs, BRT_FAULT_COPY, 0);

	int error = 0;

	if (runs_inner(&d))
		error = fs->inner->copy(fs->inner, from, to);
	return outcome(&d, error, "copy to", to);
}

static int faulty_remove(brt_blobstore *bs, const char *key)
{
	faulty_store *fs = (faulty_store *)bs;
	fault_decision d = decide(fs, BRT_FAULT_REMOVE, 0);
	int error = 0;

	if (runs_inner(&d))
		error = fs->inner->remove(fs->inner, key);
	return outcome(&d, error, "remove", key);
}

static int faulty_list(brt_blobstore *bs, int (*cb)(const char *key, uint64_t size, void *payload),
		       void *payload)
{
	faulty_store *fs = (faulty_store *)bs;
	fault_decision d = decide(fs, BRT_FAULT_LIST, 0);

	if (d.fail)
		return inject(&d, "list", "blobs");
	return fs->inner->list(fs->inner, cb, payload);
}

static int faulty_list_dated(brt_blobstore *bs, brt_object_list_cb cb, void *payload)
{
	faulty_store *fs = (faulty_store *)bs;
	fault_decision d = decide(fs, BRT_FAULT_LIST, 0);

	if (d.fail)
		return inject(&d, "list", "blobs");
	return fs->inner->list_dated(fs->inner, cb, payload);
}

static int faulty_upload_list(brt_blobstore *bs, brt_upload_list_cb cb, void *payload)
{
	faulty_store *fs = (faulty_store *)bs;
	fault_decision d = decide(fs, BRT_FAULT_UPLOAD_LIST, 0);

	if (d.fail)
		return inject(&d, "list", "uploads");
	return fs->inner->upload_list(fs->inner, cb, payload);
}

static void faulty_free(brt_blobstore *bs)
{
	faulty_store *fs = (faulty_store *)bs;

	if (!fs)
		return;
	if (fs->owns_inner)
		fs->inner->free(fs->inner);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
}

/* Naming a key and signing a URL touch no data: nothing to inject. */
static int faulty_upload_key(brt_blobstore *bs, const char *upload_id, char *key_out)
{
	faulty_store *fs = (faulty_store *)bs;

	return fs->inner->upload_key(fs->inner, upload_id, key_out);
}

static int faulty_presign(brt_blobstore *bs, const char *key, unsigned int ttl_seconds, char *url_out,
			  size_t cap)
{
	faulty_store *fs = (faulty_store *)bs;

	return fs->inner->presign(fs->inner, key, ttl_seconds, url_out, cap);
}

/* Zero-copy reads bypass readers, so they are hidden while reads fail. */
static void set_open_fd_slot(faulty_store *fs)
{
	unsigned int ops = 0;

	for (size_t i = 0; i < fs->spec.count; i++)
		ops |= fs->spec.rules[i].ops;
	fs->base.open_fd = fs->inner->open_fd && !(ops & BRT_FAULT_READ) ? faulty_open_fd : NULL;
}

int brt_blobstore_faulty_wrap(brt_blobstore **out, brt_blobstore *inner, const brt_fault_spec *spec)
{
	faulty_store *fs;
	int error;

	*out = NULL;
	if ((error = check_spec(spec)) < 0 || (error = brt_blobstore_check(inner)) < 0)
		return error;
	if (!(fs = calloc(1, sizeof(*fs))))
		return brt_error_set(BRT_ENOMEM, "blob store: out of memory");
	if (pthread_mutex_init(&fs->lock, NULL) != 0) {
		free(fs);
		return brt_error_set(BRT_ENOMEM, "blob store: cannot create a mutex");
	}
	fs->inner = inner;
	fs->spec = *spec;
	fs->base.version = BRT_BLOBSTORE_VERSION;
	fs->base.name = "fault-injecting";
	fs->base.stat = faulty_stat;
	fs->base.reader_open = faulty_reader_open;
	fs->base.writer_open = faulty_writer_open;
	fs->base.commit = faulty_commit;
	fs->base.upload_remove = faulty_upload_remove;
	fs->base.remove = faulty_remove;
	fs->base.copy = faulty_copy;
	fs->base.list = faulty_list;
	fs->base.free = faulty_free;
	/* Optional slots stay unsupported where the inner store lacks them. */
	fs->base.upload_list = inner->upload_list ? faulty_upload_list : NULL;
	fs->base.upload_prune = inner->upload_prune ? faulty_upload_prune : NULL;
	fs->base.list_dated = inner->list_dated ? faulty_list_dated : NULL;
	fs->base.chunk_min = inner->chunk_min;
	fs->base.adopt_replaces = inner->adopt_replaces;
	fs->base.upload_key = inner->upload_key ? faulty_upload_key : NULL;
	fs->base.presign = inner->presign ? faulty_presign : NULL;
	set_open_fd_slot(fs);
	*out = &fs->base;
	return 0;
}

int brt_blobstore_faulty_set(brt_blobstore *bs, const brt_fault_spec *spec)
{
	faulty_store *fs = (faulty_store *)bs;
	int error;

	if (!bs || bs->free != faulty_free)
		return brt_error_set(BRT_EINVALID, "not a fault-injecting blob store");
	if ((error = check_spec(spec)) < 0)
		return error;
	pthread_mutex_lock(&fs->lock);
	fs->spec = *spec;
	memset(fs->state, 0, sizeof(fs->state));
	fs->injected = 0;
	set_open_fd_slot(fs);
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

uint64_t brt_blobstore_faulty_injected(brt_blobstore *bs)
{
	faulty_store *fs = (faulty_store *)bs;
	uint64_t n;

	if (!bs || bs->free != faulty_free)
		return 0;
	pthread_mutex_lock(&fs->lock);
	n = fs->injected;
	pthread_mutex_unlock(&fs->lock);
	return n;
}

int brt_blobstore_faulty_from_env(brt_blobstore **store)
{
	const char *text = getenv(FAULT_ENV);
	brt_fault_spec spec;
	brt_blobstore *wrapped = NULL;
	int error;

	if (!text)
		return 0;
	if ((error = brt_fault_spec_parse(&spec, text)) < 0) {
		char detail[512];
		snprintf(detail, sizeof(detail), "%s", brt_error_last());
		return brt_error_set(error, "%s: %s", FAULT_ENV, detail);
	}
	if ((error = brt_blobstore_faulty_wrap(&wrapped, *store, &spec)) < 0)
		return error;
	((faulty_store *)wrapped)->owns_inner = 1;
	brt_log_warn(
		"FAULT INJECTION IS ON (%s=%s): the %s blob store fails on purpose; for tests only, "
		"never in production",
		FAULT_ENV, text, (*store)->name);
	*store = wrapped;
	return 0;
}
