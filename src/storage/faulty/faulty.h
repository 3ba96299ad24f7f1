/* A fault-injecting blob store that wraps another one (see faulty.c).
 *
 * It exists so tests can reach every error path above the blob store: it
 * passes each call to the store it wraps, except that calls matching one of
 * its rules fail with BRT_EIO (detail "input/output error" or "no space
 * left on device"), after a number of calls or of bytes appended, once or
 * from then on, optionally after writing part of the data or after letting
 * the inner operation run.  berthd installs it when BERTH_FAULT_INJECTION is
 * set:
 *
 *   BERTH_FAULT_INJECTION = RULE *( ";" RULE )        at most 8 rules
 *   RULE  = PAIR *( "," PAIR )                         each key at most once
 *   PAIR  = KEY "=" VALUE                              no spaces anywhere
 *
 *   op=OP[|OP...]     required.  OP: append, sync (an attempt's calls),
 *                     read (reader calls), stat, reader_open, open_fd,
 *                     writer_open, commit, upload_remove, remove, copy,
 *                     list, upload_list, upload_prune; "open" =
 *                     reader_open|open_fd|writer_open; "all" = every one
 *                     of them.
 *   after=N           the first N matching calls succeed (default 0: the
 *                     first one fails).
 *   after_bytes=N     append only, instead of after: appends succeed until
 *                     N bytes in all have gone through; the append that
 *                     would pass N fails.  N may end in k, m or g (KiB,
 *                     MiB, GiB).
 *   error=eio|enospc  the detail of the failure (default eio); both are
 *                     BRT_EIO, as a real device error is.
 *   persistent=0|1    0 (default): the rule fires once, then never again;
 *                     1: every matching call from the first fault on fails.
 *   partial=0|1       append only: before failing, pass the bytes up to
 *                     the after_bytes limit (or half the data, without
 *                     after_bytes) to the inner store, as a filling disk
 *                     does.
 *   phase=before|after  commit, copy, remove, upload_remove, upload_prune
 *                     and sync only: "after" runs the inner call first and
 *                     then reports the failure (published, but the caller
 *                     is told it failed).  Default before: the inner call
 *                     never runs.
 *
 * Rules count independently; a call fails if any rule fires, and the first
 * rule that fires decides how.  An attempt that saw an append or sync fault
 * is unusable, like a real one, and freeing it (it was never adopted)
 * drops what it wrote.  While any rule names `read`,
 * open_fd is hidden, so every read goes through a reader that can fail.
 *
 * Example: op=append,after_bytes=1m,error=enospc,persistent=1 */
#ifndef BRT_STORAGE_FAULTY_H
#define BRT_STORAGE_FAULTY_H

#include <stddef.h>
#include <stdint.h>

#include "storage/blobstore.h"

/* Operations a rule can match (a bit mask). */
enum brt_fault_op {
	BRT_FAULT_STAT = 1u << 0,
	BRT_FAULT_READER_OPEN = 1u << 1,
	BRT_FAULT_READ = 1u << 2,
	BRT_FAULT_OPEN_FD = 1u << 3,
	BRT_FAULT_WRITER_OPEN = 1u << 4,
	BRT_FAULT_APPEND = 1u << 5,
	BRT_FAULT_SYNC = 1u << 6,
	BRT_FAULT_COMMIT = 1u << 7,
	BRT_FAULT_UPLOAD_PRUNE = 1u << 8,
	BRT_FAULT_UPLOAD_REMOVE = 1u << 9,
	BRT_FAULT_REMOVE = 1u << 10,
	BRT_FAULT_COPY = 1u << 11,
	BRT_FAULT_LIST = 1u << 12,
	BRT_FAULT_UPLOAD_LIST = 1u << 13,
};

#define BRT_FAULT_RULES_MAX 8

typedef struct brt_fault_rule {
	unsigned int ops;     /* BRT_FAULT_* mask; 0 matches nothing */
	uint64_t after;       /* matching calls that succeed first */
	int by_bytes;         /* count appended bytes (after_bytes) instead */
	uint64_t after_bytes; /* with by_bytes: bytes that go through first */
	int error;            /* code a fault returns; 0 means BRT_EIO */
	int nospace;          /* detail "no space left on device" */
	int persistent;       /* fail every matching call from the first fault */
	int partial;          /* a failing append writes part of its data first */
	int phase_after;      /* run the inner call, then report failure */
} brt_fault_rule;

typedef struct brt_fault_spec {
	brt_fault_rule rules[BRT_FAULT_RULES_MAX];
	size_t count;
} brt_fault_spec;

/* Parse `text` in the grammar above into `out`.  BRT_EINVALID (detail
 * names the offending rule and key) for anything it does not describe:
 * unknown or repeated keys, bad values, keys that do not fit the rule's
 * operations, empty rules, more than BRT_FAULT_RULES_MAX rules. */
int brt_fault_spec_parse(brt_fault_spec *out, const char *text);

/* Wrap `inner` (borrowed: it must outlive the wrapper and is not freed
 * with it) in a store that injects the faults of `spec` (copied).  Free
 * the result with its ->free().  BRT_ENOMEM, or BRT_EINVALID if `spec`
 * has a rule the grammar could not express. */
int brt_blobstore_faulty_wrap(brt_blobstore **out, brt_blobstore *inner, const brt_fault_spec *spec);

/* Replace the rules of the wrapper `bs` and reset every counter (between
 * test cases; not while other threads use the store).  BRT_EINVALID as
 * for wrap, or if `bs` is not a fault-injecting store. */
int brt_blobstore_faulty_set(brt_blobstore *bs, const brt_fault_spec *spec);

/* Faults injected by `bs` so far (0 for any other store). */
uint64_t brt_blobstore_faulty_injected(brt_blobstore *bs);

/* If the environment variable BERTH_FAULT_INJECTION is set, replace *store
 * with a wrapper around it that injects the faults it describes and logs a
 * warning that it does; the wrapper then owns the inner store.  0 and no
 * change when the variable is unset; BRT_EINVALID (and *store unchanged,
 * still owned by the caller) if it cannot be parsed, also when it is set
 * but empty; BRT_ENOMEM. */
int brt_blobstore_faulty_from_env(brt_blobstore **store);

#endif
