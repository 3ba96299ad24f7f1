/* libmicrohttpd glue (see server.h).  The access handler is called once
 * when headers are in, then once per body chunk, then once more with no
 * data: those map to brt_api_begin / brt_api_body / brt_api_end.  A
 * response is queued only from the second call on, because a response
 * queued on the first call makes libmicrohttpd close the connection. */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api/api.h"
#include "common/error.h"
#include "common/log.h"
#include "http/request.h"

/* Bytes of body still read and dropped after an error before the
 * connection is cut instead. */
#define DISCARD_MAX ((uint64_t)64 << 20)

const char *brt_request_header(brt_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *brt_request_query(brt_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static brt_method parse_method(const char *m)
{
	switch (m[0]) {
	case 'G': return strcmp(m, "GET") == 0 ? BRT_GET : BRT_OTHER_METHOD;
	case 'H': return strcmp(m, "HEAD") == 0 ? BRT_HEAD : BRT_OTHER_METHOD;
	case 'P':
		if (strcmp(m, "PUT") == 0) return BRT_PUT;
		if (strcmp(m, "POST") == 0) return BRT_POST;
		if (strcmp(m, "PATCH") == 0) return BRT_PATCH;
		return BRT_OTHER_METHOD;
	case 'D': return strcmp(m, "DELETE") == 0 ? BRT_DELETE : BRT_OTHER_METHOD;
	}
	return BRT_OTHER_METHOD;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct brt_server *server = cls;
	brt_request *req = *con_cls;

	(void)version;
	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		brt_pool_init(&req->pool, server->config->manifest_max + (1u << 20));
		clock_gettime(CLOCK_MONOTONIC, &req->started);
		req->conn = conn;
		req->server = server;
		req->url = url;
		req->method_name = method;
		req->method = parse_method(method);
		if (server->tls) {
			const union MHD_ConnectionInfo *info =
				MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
			req->conn_state = info ? info->socket_context : NULL;
		}
		*con_cls = req;
		server->in_flight++;
		brt_api_begin(req);
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t len = *upload_data_size;
		*upload_data_size = 0;
		if (req->body_kind == BRT_BODY_DISCARD || req->responded) {
			req->discarded += len;
			return req->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
		}
		brt_api_body(req, upload_data, len);
		return MHD_YES;
	}
	if (!req->responded)
		brt_api_end(req);
	return req->responded ? MHD_YES : MHD_NO;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decoding of the path and query arguments.  "%00" stays as it
 * is: a decoded NUL would cut the string short and make the router see
 * another path than the client sent; left encoded, it fails validation. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	char *in = s, *out = s;

	(void)cls;
	(void)conn;
	while (*in) {
		int hi, lo;
		if (in[0] == '%' && (hi = hex_value(in[1])) >= 0 && (lo = hex_value(in[2])) >= 0 &&
		    (hi | lo) != 0) {
			*out++ = (char)(hi * 16 + lo);
			in += 3;
		} else {
			*out++ = *in++;
		}
	}
	*out = '\0';
	return (size_t)(out - s);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct brt_server *server = cls;
	brt_request *req = *con_cls;
	struct timespec now;
	double ms;

	(void)conn;
	if (!req)
		return;
	*con_cls = NULL;
	server->in_flight--;
	brt_api_cleanup(req);
	if (server->config->access_log) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (double)(now.tv_sec - req->started.tv_sec) * 1e3 +
		     (double)(now.tv_nsec - req->started.tv_nsec) / 1e6;
		brt_log_info("access method=%s path=%s status=%u bytes=%llu duration_ms=%.3f%s",
			     req->method_name, req->url, req->status,
			     (unsigned long long)req->bytes_out, ms,
			     toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
	}
	brt_pool_clear(&req->pool);
	free(req->body);
	free(req);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	brt_log_warn("http: %s", msg);
}

/* Per-connection state for TLS connections (the client certificate's
 * verdict), created when the connection opens and freed when it closes. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	(void)conn;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = calloc(1, sizeof(brt_conn_state));
	} else {
		free(*socket_context);
		*socket_context = NULL;
	}
}

/* A whole PEM file into a NUL-terminated malloc'd string (kept for the
 * daemon's life). */
static int read_pem(char **out, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;
	int error = 0;

	*out = NULL;
	if (!f)
		return brt_error_set(BRT_EIO, "cannot open %s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || size > (1L << 20) || fseek(f, 0, SEEK_SET) != 0) {
		error = brt_error_set(BRT_EIO, "cannot read %s (or it is over 1 MiB)", path);
		goto done;
	}
	if (!(buf = malloc((size_t)size + 1))) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
		error = brt_error_set(BRT_EIO, "cannot read %s", path);
		goto done;
	}
	buf[size] = '\0';
	*out = buf;
	buf = NULL;
done:
	free(buf);
	fclose(f);
	return error;
}

/* "HOST:PORT" or "[V6]:PORT" into a socket address. */
static int parse_listen(struct sockaddr_storage *out, socklen_t *len_out, const char *listen)
{
	char host[256];
	const char *port, *colon;
	struct addrinfo hints, *res = NULL;
	size_t host_len;
	int rc;

	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');
		if (!close || close[1] != ':')
			return brt_error_set(BRT_EINVALID, "listen address %s: expected [V6]:PORT", listen);
		host_len = (size_t)(close - listen - 1);
		memcpy(host, listen + 1, host_len < sizeof(host) ? host_len : 0);
		port = close + 2;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			return brt_error_set(BRT_EINVALID, "listen address %s: expected HOST:PORT", listen);
		host_len = (size_t)(colon - listen);
		if (host_len < sizeof(host))
			memcpy(host, listen, host_len);
		port = colon + 1;
	}
	if (host_len == 0 || host_len >= sizeof(host) || !*port)
		return brt_error_set(BRT_EINVALID, "listen address %s: bad host or port", listen);
	host[host_len] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return brt_error_set(BRT_EINVALID, "listen address %s: %s", listen, gai_strerror(rc));
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*len_out = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int brt_server_start(struct brt_server *server)
{
	const brt_config *c = server->config;
	struct sockaddr_storage addr;
	socklen_t addr_len = 0;
	unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_USE_ITC |
			     MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	int error;

	struct MHD_OptionItem tls_options[5];
	size_t n = 0;

	if ((error = parse_listen(&addr, &addr_len, c->listen)) < 0)
		return error;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (c->tls_cert[0] || c->tls_key[0]) {
		if (!c->tls_cert[0] || !c->tls_key[0])
			return brt_error_set(BRT_EINVALID, "TLS needs both a certificate and a key");
		if ((error = read_pem(&server->tls_cert_pem, c->tls_cert)) < 0 ||
		    (error = read_pem(&server->tls_key_pem, c->tls_key)) < 0 ||
		    (c->client_ca[0] && (error = read_pem(&server->client_ca_pem, c->client_ca)) < 0))
			return error;
		flags |= MHD_USE_TLS;
		server->tls = 1;
		tls_options[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, server->tls_cert_pem};
		tls_options[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, server->tls_key_pem};
		if (server->client_ca_pem)
			tls_options[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, server->client_ca_pem};
		tls_options[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, NULL};
	}
	tls_options[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	server->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, server,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)c->threads,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)c->connection_memory,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)c->connection_limit,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)c->connection_timeout,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, server,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024,
		MHD_OPTION_ARRAY, tls_options,
		MHD_OPTION_END);
	if (!server->daemon)
		return brt_error_set(BRT_EIO, "cannot listen on %s", c->listen);
	info = MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
	brt_log_info("listening on %s (port %u, %u threads, %s%s)", c->listen,
		     info ? (unsigned int)info->port : 0u, c->threads, server->tls ? "https" : "http",
		     server->client_ca_pem ? " with device certificates" : "");
	return 0;
}

void brt_server_stop(struct brt_server *server)
{
	int listen_fd;
	unsigned int waited_ms = 0;

	if (!server->daemon)
		return;
	listen_fd = MHD_quiesce_daemon(server->daemon);
	if (listen_fd >= 0)
		close(listen_fd);
	/* Let in-flight requests finish, bounded by the drain timeout. */
	while (waited_ms < server->config->drain_timeout * 1000u) {
		if (server->in_flight == 0)
			break;
		usleep(50 * 1000);
		waited_ms += 50;
	}
	MHD_stop_daemon(server->daemon);
	server->daemon = NULL;
	free(server->tls_cert_pem);
	free(server->tls_key_pem);
	free(server->client_ca_pem);
}
