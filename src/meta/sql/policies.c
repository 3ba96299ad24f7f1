/* The SQL drivers' retention and immutability policies: storing and
 * listing them, the immutable-tag guards that manifest PUT, tag DELETE and
 * manifest DELETE run inside their own write transactions, and retention,
 * applied one repository per transaction (so requests interleave) and one
 * page of rows at a time (so a repository of 100 000 tags costs a page of
 * memory, not all of them).
 *
 * Patterns and tag globs are fnmatch(3) globs without FNM_PATHNAME: "*"
 * matches "/" too.  A repository pattern sees the name after
 * "<account>/"; tag globs are comma-separated lists, blanks around each
 * glob ignored.
 *
 * A tag goes only if every policy that applies with tag rules (keep-last,
 * keep-within) lets it go and none protects it or makes it immutable;
 * keep-last ranks all of a repository's tags, protected ones included, as
 * they stand when its transaction starts; and tags younger than the grace
 * period are never taken.  An untagged manifest goes after the longest
 * untagged-after delay of the policies that set one. */
#include "meta/sql/slots.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynbuf.h"
#include "common/error.h"

/* Rows per page of an account's repositories, of a repository's tags and
 * of its untagged manifests. */
#define REPO_PAGE 128
#define TAG_PAGE 512
#define MANIFEST_PAGE 256

/* Room for any digest the API accepts (the longest algorithm and hex). */
#define DIGEST_TEXT_MAX 255

/* The glob lists' size in brt_policy, and so the longest glob. */
#define GLOBS_MAX (sizeof(((brt_policy *)0)->protect_tags) - 1)

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Calls `fn` for each glob of the comma-separated list (blanks around it
 * cut, empty ones passed as ""), until it returns non-zero. */
static int globs_each(const char *globs, int (*fn)(const char *glob, void *payload), void *payload)
{
	char glob[GLOBS_MAX + 1];
	const char *p = globs;
	int result = 0;

	while (p && result == 0) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		while (n > 0 && is_blank(*p)) {
			p++;
			n--;
		}
		while (n > 0 && is_blank(p[n - 1]))
			n--;
		/* Longer than a stored list can be: matches nothing. */
		if (n <= GLOBS_MAX) {
			memcpy(glob, p, n);
			glob[n] = '\0';
			result = fn(glob, payload);
		}
		p = end ? end + 1 : NULL;
	}
	return result;
}

static int glob_matches(const char *glob, void *payload)
{
	return glob[0] != '\0' && fnmatch(glob, payload, 0) == 0;
}

/* Whether `name` matches a glob of the list (NULL or "": none). */
static int globs_match(const char *globs, const char *name)
{
	if (!globs || !globs[0])
		return 0;
	return globs_each(globs, glob_matches, (void *)name);
}

static int glob_empty(const char *glob, void *payload)
{
	(void)payload;
	return glob[0] == '\0';
}

/* A list handed to policy_set: empty, or globs none of which is empty. */
static int globs_check(const char *globs, const char *what)
{
	if (globs[0] && globs_each(globs, glob_empty, NULL))
		return brt_error_set(BRT_EINVALID, "%s '%s' has an empty glob", what, globs);
	return 0;
}

/* Whether `pattern` matches `repo` of `account`: the name after
 * "<account>/", or the whole name where it does not start so (without
 * authentication the account is only the name's first component). */
static int pattern_match(const char *pattern, const char *repo, const char *account)
{
	size_t n = strlen(account);

	if (strncmp(repo, account, n) == 0 && repo[n] == '/')
		repo += n + 1;
	return fnmatch(pattern, repo, 0) == 0;
}

/* a - b, or INT64_MIN where that does not fit (a threshold nothing is
 * older than). */
static int64_t minus_saturated(int64_t a, int64_t b)
{
	int64_t r;

	return __builtin_sub_overflow(a, b, &r) ? INT64_MIN : r;
}

/* --- the guards ---------------------------------------------------- */

/* The first policy of `account_id` with immutable tags that applies to
 * `repo` and, when `tag` is not NULL, makes that tag immutable:
 * *found_out = 1, and with a tag the error `code` naming tag and rule. */
static int immutable_find(brt_sql_conn *c, const char *account_id, const char *repo, const char *tag,
			  int code, int *found_out)
{
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_POLICY_IMMUTABLE);
	int error;
	int row;

	*found_out = 0;
	if ((error = brt_sql_bind(c, st, "t", account_id)) < 0)
		goto done;
	while ((error = brt_sql_step(c, st, &row)) == 0 && row) {
		const char *pattern = (const char *)brt_sql_column_text(st, 0);
		const char *globs = (const char *)brt_sql_column_text(st, 1);

		if (!pattern || !globs) {
			error = brt_error_set(BRT_ENOMEM, "out of memory");
			break;
		}
		if (!pattern_match(pattern, repo, account_id) || (tag && !globs_match(globs, tag)))
			continue;
		*found_out = 1;
		if (tag)
			error = brt_error_set(code,
					      "tag %s of %s is immutable (policy '%s' of account %s: "
					      "immutable tags '%s')",
					      tag, repo, pattern, account_id, globs);
		break;
	}
done:
	brt_sql_end(st);
	return error;
}

int brt_sql_tag_guard(brt_sql_conn *c, const char *account_id, const char *repo, const char *tag, int code)
{
	char account[BRT_ACCOUNT_ID_LEN + 1];
	int found;

	if (!account_id)
		account_id = brt_meta_repo_account(account, repo);
	return immutable_find(c, account_id, repo, tag, code, &found);
}

int brt_sql_manifest_tags_guard(brt_sql_conn *c, const char *account_id, const char *repo,
				int64_t manifest_id)
{
	char account[BRT_ACCOUNT_ID_LEN + 1];
	brt_sql_statement *st = NULL;
	int found;
	int error;
	int row;

	if (!account_id)
		account_id = brt_meta_repo_account(account, repo);
	/* Most deletes meet no immutable policy: then the tags are not read. */
	if ((error = immutable_find(c, account_id, repo, NULL, 0, &found)) < 0 || !found)
		return error;
	st = brt_sql_stmt(c, BRT_SQL_POLICY_MANIFEST_TAGS);
	if ((error = brt_sql_bind(c, st, "i", manifest_id)) < 0)
		goto done;
	while ((error = brt_sql_step(c, st, &row)) == 0 && row) {
		const char *tag = (const char *)brt_sql_column_text(st, 0);

		if (!tag) {
			error = brt_error_set(BRT_ENOMEM, "out of memory");
			break;
		}
		if ((error = immutable_find(c, account_id, repo, tag, BRT_EPROTECTED, &found)) < 0)
			break;
	}
done:
	brt_sql_end(st);
	return error;
}

/* --- storing and listing ------------------------------------------- */

/* An optional number column: NULL reads as 0 ("not set"). */
static int64_t column_optional(brt_sql_statement *st, int col)
{
	return brt_sql_column_is_null(st, col) ? 0 : brt_sql_column_int64(st, col);
}

static int column_optional_text(brt_sql_conn *c, brt_sql_statement *st, int col, char *out, size_t out_size)
{
	if (brt_sql_column_is_null(st, col)) {
		out[0] = '\0';
		return 0;
	}
	return brt_sql_column_copy_text(c, st, col, out, out_size);
}

/* Columns as BRT_SQL_POLICY_LIST reads them. */
static int policy_from_row(brt_sql_conn *c, brt_sql_statement *st, void *row)
{
	brt_policy *p = row;
	int64_t keep_last;
	int error;

	memset(p, 0, sizeof(*p));
	if ((error = brt_sql_column_copy_text(c, st, 0, p->account_id, sizeof(p->account_id))) < 0 ||
	    (error = brt_sql_column_copy_text(c, st, 1, p->repository_pattern,
					      sizeof(p->repository_pattern))) < 0 ||
	    (error = column_optional_text(c, st, 5, p->protect_tags, sizeof(p->protect_tags))) < 0 ||
	    (error = column_optional_text(c, st, 6, p->immutable_tags, sizeof(p->immutable_tags))) < 0)
		return error;
	keep_last = column_optional(st, 2);
	p->keep_last = keep_last > 0 ? (uint64_t)keep_last : 0;
	p->keep_within_ms = column_optional(st, 3);
	p->untagged_after_ms = column_optional(st, 4);
	p->updated_at = brt_sql_column_int64(st, 7);
	return 0;
}

static int policy_check(const brt_policy *p)
{
	int error;

	if ((error = brt_sql_field_check(p->account_id, sizeof(p->account_id), 1, "account id")) < 0 ||
	    (error = brt_sql_field_check(p->repository_pattern, sizeof(p->repository_pattern), 1,
					 "repository pattern")) < 0 ||
	    (error = brt_sql_field_check(p->protect_tags, sizeof(p->protect_tags), 0, "protected tags")) <
		    0 ||
	    (error = brt_sql_field_check(p->immutable_tags, sizeof(p->immutable_tags), 0, "immutable tags")) <
		    0)
		return error;
	if (p->keep_last > (uint64_t)INT64_MAX)
		return brt_error_set(BRT_EINVALID, "keep-last %" PRIu64 " too large", p->keep_last);
	if (p->keep_within_ms < 0 || p->untagged_after_ms < 0)
		return brt_error_set(BRT_EINVALID, "negative duration in policy '%s'", p->repository_pattern);
	if ((error = globs_check(p->protect_tags, "protected tags")) < 0 ||
	    (error = globs_check(p->immutable_tags, "immutable tags")) < 0)
		return error;
	return 0;
}

/* The account is checked first, so that an unknown one is a clear
 * BRT_ENOTFOUND rather than a foreign key failure. */
static int tx_policy_set(brt_sql_conn *c, void *ctx)
{
	const brt_policy *p = ctx;
	int found;
	int error;

	if ((error = brt_sql_exists(c, BRT_SQL_ACCOUNT_EXISTS, "t", 0, p->account_id, &found)) < 0)
		return error;
	if (!found)
		return brt_error_set(BRT_ENOTFOUND, "account %s unknown", p->account_id);
	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_POLICY_UPSERT), "ttzzztti", p->account_id,
				  p->repository_pattern, (int64_t)p->keep_last, p->keep_within_ms,
				  p->untagged_after_ms, p->protect_tags[0] ? p->protect_tags : NULL,
				  p->immutable_tags[0] ? p->immutable_tags : NULL, p->updated_at)) < 0)
		return error;
	return brt_sql_run(c, BRT_SQL_POLICY_UPSERT);
}

static int meta_policy_set(brt_meta *m, const brt_policy *policy)
{
	int error;

	if ((error = policy_check(policy)) < 0)
		return error;
	return brt_sql_run_write(m, tx_policy_set, (void *)policy);
}

typedef struct policy_emit {
	brt_meta_policy_cb cb;
	void *payload;
} policy_emit;

static int emit_policy(const void *row, void *ctx)
{
	const policy_emit *e = ctx;

	return e->cb(row, e->payload);
}

static int meta_policy_list(brt_meta *m, const char *account_id, brt_meta_policy_cb cb, void *payload)
{
	policy_emit e = {cb, payload};
	brt_policy tmp;
	brt_sql_conn *c;
	int error;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		return error;
	return brt_sql_list_rows(c, account_id ? BRT_SQL_POLICY_LIST_ACCOUNT : BRT_SQL_POLICY_LIST,
				 account_id, policy_from_row, &tmp, sizeof(tmp), emit_policy, &e);
}

typedef struct policy_key {
	const char *account_id;
	const char *pattern;
} policy_key;

static int tx_policy_delete(brt_sql_conn *c, void *ctx)
{
	const policy_key *k = ctx;
	int error;

	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_POLICY_DELETE), "tt", k->account_id,
				  k->pattern)) < 0 ||
	    (error = brt_sql_run(c, BRT_SQL_POLICY_DELETE)) < 0)
		return error;
	if (brt_sql_changes(c) == 0)
		return brt_error_set(BRT_ENOTFOUND, "no policy '%s' for account %s", k->pattern,
				     k->account_id);
	return 0;
}

static int meta_policy_delete(brt_meta *m, const char *account_id, const char *repository_pattern)
{
	policy_key k = {account_id, repository_pattern};

	if (!account_id || !repository_pattern)
		return brt_error_set(BRT_EINVALID, "a policy is named by account and pattern");
	return brt_sql_run_write(m, tx_policy_delete, &k);
}

/* --- retention ------------------------------------------------------ */

static int has_tag_rules(const brt_policy *p)
{
	return p->keep_last > 0 || p->keep_within_ms > 0;
}

static int has_retention_rules(const brt_policy *p)
{
	return has_tag_rules(p) || p->untagged_after_ms > 0;
}

/* A policy that applies to the repository at hand, with its keep-last
 * cutoff: the first tag past the N most recently pushed, in the order
 * (updated_at desc, name asc); none when the repository has N or fewer. */
typedef struct rule_state {
	const brt_policy *policy;
	int has_cutoff;
	int64_t cutoff_time;
	char cutoff_name[BRT_TAG_MAX + 1];
} rule_state;

/* One repository's retention transaction. */
typedef struct repo_job {
	const brt_gc_params *params;
	int64_t repo_id;
	const char *repo;
	rule_state *rules; /* every policy that applies, rules or not */
	size_t rule_count;
	int tag_rules;             /* one of them has keep-last or keep-within */
	int64_t untagged_after_ms; /* the longest of theirs; 0: none */
	const char *why;           /* of the tags it deletes */
	const char *untagged_why;  /* of the manifests it removes */
	/* What this attempt removed; added to the caller's once it commits
	 * (or, dry, once it rolled back without error). */
	brt_gc_counts counts;
} repo_job;

static int cutoff_find(brt_sql_conn *c, int64_t repo_id, rule_state *r)
{
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_POLICY_TAG_CUTOFF);
	int error;
	int row;

	r->has_cutoff = 0;
	if ((error = brt_sql_bind(c, st, "iu", repo_id, r->policy->keep_last)) == 0 &&
	    (error = brt_sql_step(c, st, &row)) == 0 && row) {
		r->cutoff_time = brt_sql_column_int64(st, 0);
		error = brt_sql_column_copy_text(c, st, 1, r->cutoff_name, sizeof(r->cutoff_name));
		r->has_cutoff = error == 0;
	}
	brt_sql_end(st);
	return error;
}

/* Whether retention keeps tag `name`, pushed at `updated_at`: it is young
 * (within the grace period), protected or immutable by any policy that
 * applies, or kept by one of those with tag rules (none: kept). */
static int tag_kept(const repo_job *job, const char *name, int64_t updated_at)
{
	int64_t now = job->params->now;
	int ruled = 0;
	size_t i;

	if (updated_at > minus_saturated(now, job->params->grace_ms))
		return 1;
	for (i = 0; i < job->rule_count; i++) {
		const brt_policy *p = job->rules[i].policy;

		if (globs_match(p->protect_tags, name) || globs_match(p->immutable_tags, name))
			return 1;
	}
	for (i = 0; i < job->rule_count; i++) {
		const rule_state *r = &job->rules[i];
		const brt_policy *p = r->policy;

		if (!has_tag_rules(p))
			continue;
		ruled = 1;
		if (p->keep_last > 0 && (!r->has_cutoff || updated_at > r->cutoff_time ||
					 (updated_at == r->cutoff_time && strcmp(name, r->cutoff_name) < 0)))
			return 1;
		if (p->keep_within_ms > 0 && updated_at > minus_saturated(now, p->keep_within_ms))
			return 1;
	}
	return !ruled;
}

static int report_tag(repo_job *job, const char *tag)
{
	brt_gc_item item = {"tag", job->repo, tag, 0, job->why, NULL};

	job->counts.tags++;
	return job->params->cb ? job->params->cb(&item, job->params->payload) : 0;
}

/* Walk the repository's tags a page at a time in name order (the primary
 * key, so no sort), decide each against the cutoffs found first, and
 * delete a page's doomed tags once its statement is reset. */
static int tags_apply(brt_sql_conn *c, repo_job *job)
{
	brt_sql_statement *st = NULL;
	brt_dynbuf doomed;
	char last[BRT_TAG_MAX + 1] = "";
	size_t rows, count, offset, i;
	int error = 0;
	int row;

	brt_dynbuf_init(&doomed, BRT_SQL_LISTING_MAX);
	for (i = 0; i < job->rule_count; i++)
		if (job->rules[i].policy->keep_last > 0 &&
		    (error = cutoff_find(c, job->repo_id, &job->rules[i])) < 0)
			goto done;
	do {
		rows = 0;
		count = 0;
		brt_dynbuf_reset(&doomed);
		st = brt_sql_stmt(c, BRT_SQL_POLICY_TAGS);
		if ((error = brt_sql_bind(c, st, "iti", job->repo_id, last, (int64_t)TAG_PAGE)) < 0)
			goto done;
		while ((error = brt_sql_step(c, st, &row)) == 0 && row) {
			if ((error = brt_sql_column_copy_text(c, st, 0, last, sizeof(last))) < 0)
				goto done;
			rows++;
			if (tag_kept(job, last, brt_sql_column_int64(st, 1)))
				continue;
			if ((error = brt_dynbuf_add(&doomed, last, strlen(last) + 1)) < 0)
				goto done;
			count++;
		}
		if (error < 0)
			goto done;
		brt_sql_end(st);
		st = NULL;
		for (i = 0, offset = 0; i < count; i++) {
			const char *tag = brt_dynbuf_ptr(&doomed) + offset;
			int removed = 0;

			offset += strlen(tag) + 1;
			if ((error = brt_sql_tag_remove(c, job->repo_id, tag, job->params->now, &removed)) <
			    0)
				goto done;
			if (removed && (error = report_tag(job, tag)) != 0)
				goto done;
		}
	} while (rows == TAG_PAGE);
done:
	brt_sql_end(st);
	brt_dynbuf_free(&doomed);
	return error;
}

/* The collector's reports, with the untagged rule as the reason for the
 * manifests it removes on retention's behalf. */
static int untagged_report(const brt_gc_item *item, void *payload)
{
	const repo_job *job = payload;
	brt_gc_item reasoned = *item;

	if (!reasoned.why)
		reasoned.why = job->untagged_why;
	return job->params->cb(&reasoned, job->params->payload);
}

/* Manifests no tag, no index and no live subject holds, older than the
 * longest untagged-after of the policies (and than the grace period), a
 * page at a time by digest; each is re-checked and removed by the
 * collector's own step, which reports it and queues what it held. */
static int untagged_apply(brt_sql_conn *c, repo_job *job)
{
	brt_gc_params params = *job->params;
	brt_sql_statement *st = NULL;
	int64_t ids[MANIFEST_PAGE];
	char last[DIGEST_TEXT_MAX + 1] = "";
	int64_t delay = job->untagged_after_ms;
	int64_t before;
	size_t rows, i;
	int error = 0;
	int row;

	if (params.cb) {
		params.cb = untagged_report;
		params.payload = job;
	}
	if (params.grace_ms > delay)
		delay = params.grace_ms;
	before = minus_saturated(params.now, delay);
	do {
		rows = 0;
		st = brt_sql_stmt(c, BRT_SQL_POLICY_UNTAGGED);
		if ((error = brt_sql_bind(c, st, "iiti", job->repo_id, before, last,
					  (int64_t)MANIFEST_PAGE)) < 0)
			goto done;
		while (rows < MANIFEST_PAGE && (error = brt_sql_step(c, st, &row)) == 0 && row) {
			ids[rows++] = brt_sql_column_int64(st, 0);
			if ((error = brt_sql_column_copy_text(c, st, 1, last, sizeof(last))) < 0)
				goto done;
		}
		if (error < 0)
			goto done;
		brt_sql_end(st);
		st = NULL;
		for (i = 0; i < rows; i++) {
			int removed = 0;

			if ((error = brt_sql_gc_manifest_remove(c, ids[i], &params, &job->counts,
								&removed)) != 0)
				goto done;
		}
	} while (rows == MANIFEST_PAGE);
done:
	brt_sql_end(st);
	return error;
}

static int tx_repo_retention(brt_sql_conn *c, void *ctx)
{
	repo_job *job = ctx;
	int error;

	memset(&job->counts, 0, sizeof(job->counts));
	if (job->tag_rules && (error = tags_apply(c, job)) != 0)
		return error;
	if (job->untagged_after_ms > 0)
		return untagged_apply(c, job);
	return 0;
}

/* A duration as the CLI takes it: the largest whole unit. */
static int duration_add(brt_dynbuf *b, int64_t ms)
{
	static const struct {
		int64_t ms;
		const char *unit;
	} units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (ms % units[i].ms == 0)
			return brt_dynbuf_addf(b, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
	return brt_dynbuf_addf(b, "%" PRId64 "ms", ms);
}

/* Why retention deletes this repository's tags (every policy with tag
 * rules would, e.g. "keep-last 3, keep-within 7d of policy 'web-*'") and
 * its untagged manifests (the policy with the longest delay), built in
 * `b`; job->why and job->untagged_why point into it (NULL: no such rule). */
static int why_build(brt_dynbuf *b, repo_job *job)
{
	const brt_policy *untagged = NULL;
	size_t tag_len, i;
	int error = 0;

	brt_dynbuf_reset(b);
	for (i = 0; i < job->rule_count && error == 0; i++) {
		const brt_policy *p = job->rules[i].policy;

		if (p->untagged_after_ms > 0 &&
		    (!untagged || p->untagged_after_ms > untagged->untagged_after_ms))
			untagged = p;
		if (!has_tag_rules(p))
			continue;
		if (brt_dynbuf_len(b) > 0 && (error = brt_dynbuf_add(b, "; ", 2)) < 0)
			break;
		if (p->keep_last > 0 && (error = brt_dynbuf_addf(b, "keep-last %" PRIu64, p->keep_last)) < 0)
			break;
		if (p->keep_within_ms > 0 &&
		    ((error = brt_dynbuf_addf(b, "%skeep-within ", p->keep_last > 0 ? ", " : "")) < 0 ||
		     (error = duration_add(b, p->keep_within_ms)) < 0))
			break;
		error = brt_dynbuf_addf(b, " of policy '%s'", p->repository_pattern);
	}
	tag_len = brt_dynbuf_len(b);
	if (error == 0 && (error = brt_dynbuf_add(b, "", 1)) == 0 && untagged &&
	    (error = brt_dynbuf_add(b, "untagged-after ", 15)) == 0 &&
	    (error = duration_add(b, untagged->untagged_after_ms)) == 0)
		error = brt_dynbuf_addf(b, " of policy '%s'", untagged->repository_pattern);
	if (error < 0)
		return error;
	/* Only now: the buffer may have moved while it grew. */
	job->why = tag_len > 0 ? brt_dynbuf_ptr(b) : NULL;
	job->untagged_why = untagged ? brt_dynbuf_ptr(b) + tag_len + 1 : NULL;
	return 0;
}

typedef struct repo_row {
	int64_t id;
	char name[BRT_NAME_MAX + 1];
} repo_row;

/* One page of the account's repositories after `last`. */
static int repos_page(brt_sql_conn *c, const char *account_id, const char *last, repo_row *page,
		      size_t *rows_out)
{
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_POLICY_REPOS);
	int error;
	int row;

	*rows_out = 0;
	if ((error = brt_sql_bind(c, st, "tti", account_id, last, (int64_t)REPO_PAGE)) < 0)
		goto done;
	while (*rows_out < REPO_PAGE && (error = brt_sql_step(c, st, &row)) == 0 && row) {
		repo_row *r = &page[*rows_out];

		r->id = brt_sql_column_int64(st, 0);
		if ((error = brt_sql_column_copy_text(c, st, 1, r->name, sizeof(r->name))) < 0)
			goto done;
		(*rows_out)++;
	}
done:
	brt_sql_end(st);
	return error;
}

/* Apply the `count` policies of one account to each of its repositories
 * that one of them with a retention rule matches: each repository in a
 * transaction of its own, or (`in_tx`) on the one the caller holds on `c`. */
static int account_apply(brt_meta *m, brt_sql_conn *c, int in_tx, const brt_gc_params *params,
			 const brt_policy *policies, size_t count, brt_gc_counts *out)
{
	const char *account_id = policies[0].account_id;
	repo_row *page = NULL;
	brt_dynbuf why;
	repo_job job;
	char last[BRT_NAME_MAX + 1] = "";
	size_t rows, i, k;
	int error = 0;

	memset(&job, 0, sizeof(job));
	brt_dynbuf_init(&why, 64 * 1024);
	if (!(page = calloc(REPO_PAGE, sizeof(*page))) || !(job.rules = calloc(count, sizeof(*job.rules)))) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	job.params = params;
	do {
		if ((error = repos_page(c, account_id, last, page, &rows)) < 0)
			goto done;
		for (i = 0; i < rows; i++) {
			int ruled = 0;

			job.rule_count = 0;
			job.tag_rules = 0;
			job.untagged_after_ms = 0;
			for (k = 0; k < count; k++) {
				const brt_policy *p = &policies[k];

				if (!pattern_match(p->repository_pattern, page[i].name, account_id))
					continue;
				memset(&job.rules[job.rule_count], 0, sizeof(job.rules[0]));
				job.rules[job.rule_count++].policy = p;
				ruled |= has_retention_rules(p);
				job.tag_rules |= has_tag_rules(p);
				if (p->untagged_after_ms > job.untagged_after_ms)
					job.untagged_after_ms = p->untagged_after_ms;
			}
			if (!ruled)
				continue;
			if ((error = why_build(&why, &job)) < 0)
				goto done;
			job.repo_id = page[i].id;
			job.repo = page[i].name;
			if (in_tx)
				error = tx_repo_retention(c, &job);
			else if (params->dry_run)
				error = brt_sql_run_dry(m, tx_repo_retention, &job);
			else
				error = brt_sql_run_write(m, tx_repo_retention, &job);
			if (error != 0)
				goto done;
			brt_sql_gc_counts_add(out, &job.counts);
		}
		if (rows > 0)
			memcpy(last, page[rows - 1].name, sizeof(last));
	} while (rows == REPO_PAGE);
done:
	free(job.rules);
	free(page);
	brt_dynbuf_free(&why);
	return error;
}

static int policy_collect(const void *row, void *payload)
{
	return brt_dynbuf_add(payload, row, sizeof(brt_policy));
}

/* Retention by every policy (of params->account_id's only, when set), on
 * `c`: see account_apply for `in_tx`. */
static int retention_run(brt_meta *m, brt_sql_conn *c, int in_tx, const brt_gc_params *params,
			 brt_gc_counts *out)
{
	brt_dynbuf all;
	brt_policy tmp;
	const brt_policy *policies;
	size_t count, i, j, k;
	int error;

	brt_dynbuf_init(&all, BRT_SQL_LISTING_MAX);
	if ((error = brt_sql_list_rows(c,
				       params->account_id ? BRT_SQL_POLICY_LIST_ACCOUNT : BRT_SQL_POLICY_LIST,
				       params->account_id, policy_from_row, &tmp, sizeof(tmp), policy_collect,
				       &all)) != 0)
		goto done;
	/* malloc'd, so aligned for the struct; listed by account. */
	policies = (const brt_policy *)brt_dynbuf_ptr(&all);
	count = brt_dynbuf_len(&all) / sizeof(brt_policy);
	for (i = 0; i < count; i = j) {
		int ruled = 0;

		for (j = i; j < count && strcmp(policies[j].account_id, policies[i].account_id) == 0; j++)
			ruled |= has_retention_rules(&policies[j]);
		k = j - i;
		if (ruled && (error = account_apply(m, c, in_tx, params, &policies[i], k, out)) != 0)
			goto done;
	}
done:
	brt_dynbuf_free(&all);
	return error;
}

static int meta_retention_apply(brt_meta *m, const brt_gc_params *params, brt_gc_counts *out)
{
	brt_sql_conn *c;
	int error;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		return error;
	return retention_run(m, c, 0, params, out);
}

/* Retention on the write transaction the caller holds on `c`, every
 * repository in it: for a dry run of retention and collection together
 * (one transaction, rolled back), whose collection then sees the manifests
 * that the tags retention would delete leave behind. */

int brt_sql_retention_in_tx(brt_sql_conn *c, const brt_gc_params *params, brt_gc_counts *out)
{
	return retention_run(NULL, c, 1, params, out);
}

void brt_sql_policies_slots(brt_meta *m)
{
	m->policy_set = meta_policy_set;
	m->policy_list = meta_policy_list;
	m->policy_delete = meta_policy_delete;
	m->retention_apply = meta_retention_apply;
}
