/* Fuzz target for the YAML configuration loader (config/config): the
 * input is the file.  brt_config_load takes a path, so the input is put in
 * an in-memory file (memfd) and loaded through /proc/self/fd, the same
 * code path as a file on disk.  Beyond memory safety it checks that a
 * load either succeeds with every bounded setting inside its bounds and
 * every string terminated, or fails with BRT_EINVALID or BRT_ENOMEM. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

static int fd = -1;
static char path[64];

static void check_config(const brt_config *c)
{
	if (!TERMINATED(c->listen) || !TERMINATED(c->data_dir) || !TERMINATED(c->service) ||
	    !TERMINATED(c->device_account_field) || !TERMINATED(c->region) || !TERMINATED(c->public_host) ||
	    !TERMINATED(c->tls_cert) || !TERMINATED(c->tls_key) || !TERMINATED(c->client_ca))
		abort();
	if (c->threads < 1 || c->threads > 256 || c->page_max < 1 || c->page_max > 100000 ||
	    c->json_depth_max < 4 || c->json_depth_max > 1000 || c->manifest_max < 1024 ||
	    c->manifest_max > (256u << 20) || c->token_ttl < 10 || c->token_ttl > 86400 ||
	    c->referrers_max < 1 || c->blob_max < 1)
		abort();
	if (c->log_level < BRT_LOG_DEBUG || c->log_level > BRT_LOG_ERROR ||
	    (c->auth_enabled != 0 && c->auth_enabled != 1))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	brt_config config;
	int error;

	if (fd < 0) {
		/* Unknown keys are logged as warnings: keep the output for crashes. */
		brt_log_set_level(BRT_LOG_ERROR + 1);
		fd = memfd_create("berth-fuzz-config", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	brt_config_defaults(&config);
	error = brt_config_load(&config, path);
	if (error == 0)
		check_config(&config);
	else if (error != BRT_EINVALID && error != BRT_ENOMEM)
		abort();
	return 0;
}
