/* Placeholder until fsck lands. */
#include "maint/maint.h"

#include <string.h>

#include "common/error.h"

int brt_fsck_run(brt_fsck_result *out, brt_meta *meta, brt_blobstore *blobs, const brt_fsck_options *opt,
		 FILE *report)
{
	(void)meta;
	(void)blobs;
	(void)opt;
	(void)report;
	memset(out, 0, sizeof(*out));
	return brt_error_set(BRT_EUNSUPPORTED, "fsck is not built yet");
}
