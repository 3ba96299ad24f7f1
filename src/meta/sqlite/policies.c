/* The SQLite driver's retention and immutability policies. */
#include "meta/sqlite/internal.h"

int brt_sqlite_tag_guard(sqlite_conn *c, const char *account_id, const char *repo, const char *tag, int code)
{
	(void)c;
	(void)account_id;
	(void)repo;
	(void)tag;
	(void)code;
	return 0;
}

int brt_sqlite_manifest_tags_guard(sqlite_conn *c, const char *account_id, const char *repo,
				   int64_t manifest_id)
{
	(void)c;
	(void)account_id;
	(void)repo;
	(void)manifest_id;
	return 0;
}

void brt_sqlite_policies_slots(brt_meta *m)
{
	(void)m;
}
