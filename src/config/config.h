/* Server configuration: built-in defaults, then a YAML file shaped like
 * distribution's config.yml, then command-line flags (applied by the
 * caller).  Every client-controlled size has its limit here. */
#ifndef BRT_CONFIG_H
#define BRT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define BRT_CONFIG_PATH_MAX 1024

/* An unsigned setting left to be worked out at start. */
#define BRT_CONFIG_AUTO 0xffffffffu

/* storage.s3: the S3 blob store, keys named as distribution's s3 driver
 * names them where the meaning is the same (storage/s3/s3.h says what each
 * does). */
typedef struct brt_config_s3 {
	char region[64];                   /* region (signing region) */
	char endpoint[512];                /* regionendpoint; "" = AWS's for the region */
	char bucket[256];                  /* bucket */
	char prefix[256];                  /* rootdirectory, as a key prefix: "" or "dir/" */
	char access_key[256];              /* accesskey; "" = AWS_ACCESS_KEY_ID */
	char secret_key[256];              /* secretkey; "" = AWS_SECRET_ACCESS_KEY */
	char session_token[2048];          /* sessiontoken; "" = AWS_SESSION_TOKEN */
	int path_style;                    /* forcepathstyle */
	int secure;                        /* secure: https for AWS's endpoint (default true) */
	int skip_verify;                   /* skipverify: do not check the server's certificate */
	char ca_file[BRT_CONFIG_PATH_MAX]; /* cafile: CAs to check it with */
	uint64_t chunk_size;               /* chunksize: multipart part size, 5 MiB..5 GiB */
	uint64_t buffer_memory;            /* buffermemory: all uploads' part buffers, >= chunksize */
	unsigned int retries;              /* retries after a failed request */
	unsigned int timeout;              /* timeout (seconds) without progress */
	int redirect;                      /* redirect: blob GETs answered with presigned URLs */
	unsigned int redirect_ttl;         /* redirectttl (seconds) */
} brt_config_s3;

typedef struct brt_config {
	char listen[256];                   /* http.addr, "HOST:PORT" or "[v6]:PORT" */
	char data_dir[BRT_CONFIG_PATH_MAX]; /* storage.filesystem.rootdirectory */
	char blob_driver[32]; /* the blob store driver: the section under storage ("filesystem", "s3") */
	char meta_driver[32]; /* the metadata driver: the section under database ("sqlite", "postgres") */
	char meta_location[BRT_CONFIG_PATH_MAX]; /* database.sqlite.path; "" = <data_dir>/meta.db */
	brt_config_s3 s3;                        /* storage.s3 */
	char pg_dsn[1024];                       /* database.postgres.dsn (a libpq connection string) */
	unsigned int threads;                    /* http.threads */
	size_t connection_memory;                /* http.connection_memory_limit (bytes) */
	unsigned int
		connection_limit; /* http.max_connections; 0: as many as the fd limit allows, at most 4096 */
	unsigned int connection_timeout;   /* http.idle_timeout (seconds) */
	unsigned int per_address_limit;    /* http.max_connections_per_address (IPv6: per /64); 0: none */
	unsigned int reserved_connections; /* http.reserved_connections: the last slots, kept for addresses
					    * holding few connections; BRT_CONFIG_AUTO: 1/8 of the limit */
	unsigned int header_timeout;       /* http.header_timeout (seconds) to receive a request's headers */
	unsigned int request_timeout;      /* http.request_timeout (seconds) for a whole request other than a
					    * blob body or a blob download */
	uint64_t min_rate;                 /* http.min_rate (bytes/s) of a blob body or download; 0: off */
	unsigned int min_rate_window; /* http.min_rate_window (seconds) over which min_rate is measured */
	size_t body_memory;           /* http.body_memory_limit: bytes of request bodies held in memory
				       * (manifests) across all connections */
	unsigned int drain_timeout;   /* http.drain_timeout (seconds) on SIGTERM */
	size_t manifest_max;          /* limits.manifest_bytes */
	uint64_t blob_max;            /* limits.blob_bytes */
	size_t page_max;              /* limits.page_max (tags, catalog) */
	size_t referrers_max;         /* limits.referrers_max */
	size_t json_depth_max;        /* limits.json_depth */
	unsigned int
		uploads_expire_after; /* uploads.expire_after (seconds idle before a session is dropped) */
	unsigned int uploads_max_per_account; /* uploads.max_per_account: open sessions per account */
	unsigned int gc_interval;             /* gc.interval (seconds between collections; 0: none) */
	unsigned int gc_grace;                /* gc.grace (seconds an unreferenced thing is spared) */
	size_t gc_batch;                      /* gc.batch: queue rows per collection step */
	size_t gc_rate;                       /* gc.rate: queue rows per second at most */
	int log_level;                        /* log.level */
	int access_log;                       /* !log.accesslog.disabled */

	int auth_enabled;              /* auth.mode: token (1) | none (0) */
	char service[256];             /* auth.service: token audience; default public_host or "berth" */
	unsigned int token_ttl;        /* auth.token_ttl (seconds) */
	char device_account_field[32]; /* auth.device.account_field: OU, O, CN, UID or serialNumber */
	char region[64];               /* region, e.g. eu-west-1 (informational, in logs) */
	char public_host[256];         /* public_host: host[:port] clients use; "" = the request's Host */
	char tls_cert[BRT_CONFIG_PATH_MAX];  /* http.tls.certificate */
	char tls_key[BRT_CONFIG_PATH_MAX];   /* http.tls.key */
	char client_ca[BRT_CONFIG_PATH_MAX]; /* http.tls.clientca */
} brt_config;

void brt_config_defaults(brt_config *config);

/* A duration: a decimal number with a unit s, m, h or d ("90d"), or, when
 * `unit_required` is 0, a bare number of seconds.  BRT_EINVALID (no detail)
 * if malformed or out of 64 bits. */
int brt_config_parse_duration(uint64_t *seconds_out, const char *s, int unit_required);

/* The token service name: auth.service, else public_host, else "berth". */
const char *brt_config_service(const brt_config *config);

/* Read the YAML file at `path` over the current values: one document whose
 * top level is a mapping of sections.  Unknown keys are ignored with a
 * warning, whatever their shape.  Malformed values are BRT_EINVALID (detail
 * names the key), and so are a list or mapping where a value is read, a
 * known section that is not a mapping (empty is none), a key given twice in
 * one mapping, and a second document.  A path that cannot be read, or is
 * not a regular file, is BRT_EIO.  On any error `config` is left exactly as
 * it was. */
int brt_config_load(brt_config *config, const char *path);

#endif
