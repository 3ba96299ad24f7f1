/* The SQLite driver's storage lifecycle: review queues, collection, the
 * storage-delete outbox, usage and quotas. */
#include "meta/sqlite/internal.h"

void brt_sqlite_gc_slots(brt_meta *m)
{
	(void)m;
}
