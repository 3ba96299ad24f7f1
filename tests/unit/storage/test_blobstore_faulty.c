/* The fault-injecting blob store driver: its specification grammar (what
 * it accepts and every kind of input it must refuse, so berthd never
 * starts with a fault plan it misread), brt_blobstore_faulty_from_env, and
 * the shared suite through a wrapper with no rules (a transparent wrapper
 * must keep the whole contract) and with injected faults. */
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "blobstore_suite.h"
#include "common/error.h"
#include "storage/blobstore.h"
#include "storage/faulty/faulty.h"

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

static void test_parse_ok(void)
{
	brt_fault_spec spec;

	CHECK_EQ_INT(brt_fault_spec_parse(&spec, "op=append,after_bytes=1048576,error=enospc,persistent=1"),
		     0);
	CHECK_EQ_INT(spec.count, 1);
	CHECK_EQ_INT(spec.rules[0].ops, BRT_FAULT_APPEND);
	CHECK_EQ_INT(spec.rules[0].by_bytes, 1);
	CHECK_EQ_INT(spec.rules[0].after_bytes, 1048576);
	CHECK_EQ_INT(spec.rules[0].nospace, 1);
	CHECK_EQ_INT(spec.rules[0].persistent, 1);
	CHECK_EQ_INT(spec.rules[0].partial, 0);

	CHECK_EQ_INT(brt_fault_spec_parse(&spec, "op=append,after_bytes=24m,partial=1"), 0);
	CHECK_EQ_INT(spec.rules[0].after_bytes, (uint64_t)24 << 20);
	CHECK_EQ_INT(spec.rules[0].partial, 1);
	CHECK_EQ_INT(brt_fault_spec_parse(&spec, "op=append,after_bytes=3k"), 0);
	CHECK_EQ_INT(spec.rules[0].after_bytes, 3072);
	CHECK_EQ_INT(brt_fault_spec_parse(&spec, "op=append,after_bytes=2g"), 0);
	CHECK_EQ_INT(spec.rules[0].after_bytes, (uint64_t)2 << 30);
	CHECK_EQ_INT(brt_fault_spec_parse(&spec, "op=append,after_bytes=0"), 0);
	CHECK_EQ_INT(spec.rules[0].by_bytes, 1);

	CHECK_EQ_INT(brt_fault_spec_parse(&spec,
					  "op=sync,after=3;op=commit|copy|upload_prune,phase=after;op=open"),
		     0);
	CHECK_EQ_INT(spec.count, 3);
	CHECK_EQ_INT(spec.rules[0].ops, BRT_FAULT_SYNC);
	CHECK_EQ_INT(spec.rules[0].after, 3);
	CHECK_EQ_INT(spec.rules[0].nospace, 0);
	CHECK_EQ_INT(spec.rules[1].ops, BRT_FAULT_COMMIT | BRT_FAULT_COPY | BRT_FAULT_UPLOAD_PRUNE);
	CHECK_EQ_INT(spec.rules[1].phase_after, 1);
	CHECK_EQ_INT(spec.rules[2].ops, BRT_FAULT_READER_OPEN | BRT_FAULT_OPEN_FD | BRT_FAULT_WRITER_OPEN);

	CHECK_EQ_INT(brt_fault_spec_parse(&spec, "op=all,persistent=0,error=eio,phase=before"), 0);
	CHECK_EQ_INT(spec.rules[0].ops, (BRT_FAULT_UPLOAD_LIST << 1) - 1);
	CHECK_EQ_INT(brt_fault_spec_parse(&spec,
					  "op=read|stat|upload_prune|list|upload_list|remove|upload_remove"),
		     0);
	CHECK_EQ_INT(spec.rules[0].ops, BRT_FAULT_READ | BRT_FAULT_STAT | BRT_FAULT_UPLOAD_PRUNE |
						BRT_FAULT_LIST | BRT_FAULT_UPLOAD_LIST | BRT_FAULT_REMOVE |
						BRT_FAULT_UPLOAD_REMOVE);
	CHECK_EQ_INT(brt_fault_spec_parse(&spec,
					  "op=read;op=read;op=read;op=read;op=read;op=read;op=read;op=read"),
		     0);
	CHECK_EQ_INT(spec.count, BRT_FAULT_RULES_MAX);
	CHECK_EQ_INT(brt_fault_spec_parse(&spec, "op=append,after=18446744073709551615"), 0);
	CHECK_EQ_INT(spec.rules[0].after, UINT64_MAX);
}

static void test_parse_refused(void)
{
	static const char *const bad[] = {
		"",
		";",
		"op=append;",
		";op=append",
		"op=append;;op=sync",
		"op=append,",
		",op=append",
		"op=append,,after=1",
		"op=rewind",
		"op=move",
		"op",
		"op=",
		"=append",
		"op=append,after",
		"op=Append",
		"op=append|",
		"op=|append",
		"op=append||sync",
		"op=appendx",
		"op=append op=sync",
		" op=append",
		"op=append ",
		"op=append,after=1 ",
		"after=1",
		"error=enospc",
		"op=append,op=sync",
		"op=append,after=1,after=2",
		"op=append,colour=red",
		"op=append,after=-1",
		"op=append,after=+1",
		"op=append,after=1k",
		"op=append,after=0x10",
		"op=append,after=18446744073709551616",
		"op=append,after_bytes=",
		"op=append,after_bytes=k",
		"op=append,after_bytes=1K",
		"op=append,after_bytes=1t",
		"op=append,after_bytes=17179869184g",
		"op=append,after_bytes=1,after=1",
		"op=sync,after_bytes=1",
		"op=append|sync,after_bytes=1",
		"op=append,error=ENOSPC",
		"op=append,error=enomem",
		"op=append,persistent=yes",
		"op=append,persistent=2",
		"op=append,persistent=",
		"op=sync,partial=1",
		"op=append,partial=true",
		"op=append,phase=after",
		"op=read,phase=after",
		"op=commit,phase=later",
		"op=commit,phase=",
		"op=read;op=read;op=read;op=read;op=read;op=read;op=read;op=read;op=read",
	};
	brt_fault_spec spec;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int error = brt_fault_spec_parse(&spec, bad[i]);
		if (error != BRT_EINVALID)
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
		CHECK_EQ_INT(error, BRT_EINVALID);
		CHECK(brt_error_last()[0] != '\0');
	}
	CHECK_EQ_INT(brt_fault_spec_parse(&spec, NULL), BRT_EINVALID);
	/* The detail says what is wrong, and where. */
	CHECK_EQ_INT(brt_fault_spec_parse(&spec, "op=append;op=sync,colour=red"), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "rule 2") != NULL);
	CHECK(strstr(brt_error_last(), "colour") != NULL);
	{
		/* Far too long to be a plan anyone wrote. */
		char text[2048];
		memset(text, 'a', sizeof(text) - 1);
		text[sizeof(text) - 1] = '\0';
		CHECK_EQ_INT(brt_fault_spec_parse(&spec, text), BRT_EINVALID);
	}
}

/* The wrapper refuses a spec built in C that the grammar could not say. */
static void test_wrap_checks(brt_blobstore *inner)
{
	brt_fault_spec spec;
	brt_blobstore *bs = NULL;

	memset(&spec, 0, sizeof(spec));
	spec.count = 1;
	spec.rules[0].ops = BRT_FAULT_SYNC;
	spec.rules[0].partial = 1;
	CHECK_EQ_INT(brt_blobstore_faulty_wrap(&bs, inner, &spec), BRT_EINVALID);
	CHECK(bs == NULL);
	spec.rules[0].partial = 0;
	spec.rules[0].ops = 1u << 20;
	CHECK_EQ_INT(brt_blobstore_faulty_wrap(&bs, inner, &spec), BRT_EINVALID);
	spec.count = BRT_FAULT_RULES_MAX + 1;
	CHECK_EQ_INT(brt_blobstore_faulty_wrap(&bs, inner, &spec), BRT_EINVALID);
	CHECK_EQ_INT(brt_blobstore_faulty_set(inner, &spec), BRT_EINVALID);
	CHECK_EQ_INT(brt_blobstore_faulty_injected(inner), 0);
}

static void test_from_env(const char *root)
{
	brt_blobstore *bs = NULL, *inner = NULL;
	brt_blob_writer *w = NULL;

	CHECK_EQ_INT(brt_blobstore_fs_open(&inner, root), 0);
	if (!inner)
		return;
	bs = inner;
	unsetenv("BERTH_FAULT_INJECTION");
	CHECK_EQ_INT(brt_blobstore_faulty_from_env(&bs), 0);
	CHECK(bs == inner);

	/* Set but wrong: refused, and the store is left to the caller. */
	setenv("BERTH_FAULT_INJECTION", "", 1);
	CHECK_EQ_INT(brt_blobstore_faulty_from_env(&bs), BRT_EINVALID);
	CHECK(bs == inner);
	CHECK(strstr(brt_error_last(), "BERTH_FAULT_INJECTION") != NULL);
	setenv("BERTH_FAULT_INJECTION", "op=append,bogus=1", 1);
	CHECK_EQ_INT(brt_blobstore_faulty_from_env(&bs), BRT_EINVALID);
	CHECK(bs == inner);
	CHECK(strstr(brt_error_last(), "bogus") != NULL);

	setenv("BERTH_FAULT_INJECTION", "op=writer_open,after=1", 1);
	CHECK_EQ_INT(brt_blobstore_faulty_from_env(&bs), 0);
	CHECK(bs != inner);
	CHECK_EQ_INT(bs->writer_open(&w, bs, "0123456789abcdef0123456789abcdef", 0, NULL, 0), 0);
	if (w)
		w->free(w);
	w = NULL;
	CHECK_EQ_INT(bs->writer_open(&w, bs, "0123456789abcdef0123456789abcdef", 0, NULL, 0), BRT_EIO);
	CHECK(w == NULL);
	CHECK_EQ_INT(brt_blobstore_faulty_injected(bs), 1);
	unsetenv("BERTH_FAULT_INJECTION");
	/* The wrapper owns the inner store now (ASan sees a leak if not). */
	bs->free(bs);
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	char tmp_root[PATH_MAX], root[PATH_MAX + 16];
	brt_blobstore *inner = NULL, *bs = NULL;
	brt_fault_spec none;
	int n;

	n = snprintf(tmp_root, sizeof(tmp_root), "%s/berth-blobstore-faulty-XXXXXX",
		     base && *base ? base : "/tmp");
	if (n < 0 || (size_t)n >= sizeof(tmp_root) || !mkdtemp(tmp_root)) {
		fprintf(stderr, "cannot create a temporary directory\n");
		return 1;
	}

	test_parse_ok();
	test_parse_refused();

	snprintf(root, sizeof(root), "%s/suite", tmp_root);
	CHECK_EQ_INT(brt_blobstore_fs_open(&inner, root), 0);
	if (inner) {
		test_wrap_checks(inner);
		memset(&none, 0, sizeof(none));
		CHECK_EQ_INT(brt_blobstore_faulty_wrap(&bs, inner, &none), 0);
		if (bs) {
			CHECK_EQ_STR(bs->name, "fault-injecting");
			CHECK_EQ_INT(blobstore_suite_run(bs, "fault-injecting, no rules"), 0);
			CHECK_EQ_INT(brt_blobstore_faulty_injected(bs), 0);
			bs->free(bs);
		}
		CHECK_EQ_INT(blobstore_suite_run_faults(inner, "fault-injecting over filesystem"), 0);
		inner->free(inner);
	}

	snprintf(root, sizeof(root), "%s/env", tmp_root);
	test_from_env(root);

	nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return check_exit("test_blobstore_faulty");
}
