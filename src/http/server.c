/* libmicrohttpd glue (see server.h).  The access handler is called once
 * when headers are in, then once per body chunk, then once more with no
 * data: those map to the handler's on_headers / on_body / on_complete.  A
 * response is queued only from the second call on, because a response
 * queued on the first call makes libmicrohttpd close the connection;
 * that is used on purpose for requests with ambiguous framing, which must
 * not leave anything on the connection to be read as another request.
 * Every connection is tracked by the guard (guard.h), which admits it,
 * knows what it is doing and cuts it when it is past its deadline. */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/error.h"
#include "common/log.h"
#include "http/framing.h"
#include "http/guard.h"
#include "http/linger.h"
#include "http/tls_loader.h"

struct brt_http_server {
	brt_http_options options;
	brt_http_handler handler;
	char *listen;
	/* One daemon with a thread pool sharing one listen socket, or one
	 * single-threaded daemon per thread, each with its own socket of one
	 * SO_REUSEPORT group (see start_listeners). */
	struct MHD_Daemon **daemons;
	unsigned int daemon_count;
	unsigned int max_connections;
	int shared_port;        /* one daemon per SO_REUSEPORT socket */
	int listen_token;       /* held while the SO_REUSEPORT group is ours; -1 if none */
	_Atomic long in_flight; /* requests begun and not completed */
	brt_http_budget body_budget;
	brt_guard *guard;
	brt_linger *linger;
	int tls;
	char *tls_cert_pem, *tls_key_pem, *client_ca_pem;
};

/* Bytes of body still read and dropped after an error before the
 * connection is cut instead. */
#define DISCARD_MAX ((uint64_t)64 << 20)

/* Connections answered before their body was read are closed by the
 * lingerer (linger.h): this many at once, each for at most this long and
 * this many bytes; later ones are closed at once. */
static const brt_linger_limits linger_limits = {.slots = 32, .max_ms = 2000, .max_bytes = (uint64_t)16 << 20};

/* Descriptors kept free for everything but client connections (listen
 * socket, epoll, the database, logs, the lingerer's slots). */
#define FD_RESERVE 128
/* http.max_connections when left to us (0), if the fd limit allows it. */
#define DEFAULT_MAX_CONNECTIONS 4096u

const char *brt_http_header(brt_http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *brt_http_query(brt_http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

int brt_http_has_body(brt_http_request *req)
{
	return req->has_body;
}

void brt_http_respond(brt_http_request *req, unsigned int status, struct MHD_Response *resp,
		      uint64_t body_len)
{
	if (req->responded) {
		if (resp)
			MHD_destroy_response(resp);
		return;
	}
	req->responded = 1;
	req->discard = 1;
	if (!resp) {
		/* Out of memory: let libmicrohttpd drop the connection. */
		brt_log_error("cannot create a response for %s %s", req->method_name, req->url);
		req->status = 500;
		return;
	}
	req->status = status;
	req->bytes_out = body_len;
	MHD_queue_response(req->conn, status, resp);
	MHD_destroy_response(resp);
}

void brt_http_discard_body(brt_http_request *req)
{
	req->discard = 1;
}

void brt_http_stream(brt_http_request *req)
{
	req->streaming = 1;
}

void *brt_http_conn_data(brt_http_request *req)
{
	return req->guard_conn && req->server->handler.conn_data_size ? brt_guard_conn_state(req->guard_conn)
								      : NULL;
}

void *brt_http_tls_session(brt_http_request *req)
{
	const union MHD_ConnectionInfo *info;

	if (!req->server->tls)
		return NULL;
	info = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	return info ? info->tls_session : NULL;
}

int brt_http_is_tls(const brt_http_request *req)
{
	return req->server->tls;
}

int brt_http_body_add(brt_http_request *req, const void *data, size_t len, size_t max)
{
	return brt_http_body_append(&req->body, &req->server->body_budget, data, len, max);
}

static brt_method parse_method(const char *m)
{
	switch (m[0]) {
	case 'G':
		return strcmp(m, "GET") == 0 ? BRT_GET : BRT_OTHER_METHOD;
	case 'H':
		return strcmp(m, "HEAD") == 0 ? BRT_HEAD : BRT_OTHER_METHOD;
	case 'P':
		if (strcmp(m, "PUT") == 0)
			return BRT_PUT;
		if (strcmp(m, "POST") == 0)
			return BRT_POST;
		if (strcmp(m, "PATCH") == 0)
			return BRT_PATCH;
		return BRT_OTHER_METHOD;
	case 'D':
		return strcmp(m, "DELETE") == 0 ? BRT_DELETE : BRT_OTHER_METHOD;
	}
	return BRT_OTHER_METHOD;
}

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	brt_framing_add(cls, key, value);
	return MHD_YES;
}

/* Refuse a request whose body length two parsers could read two ways
 * (RFC 9112 6.1, 6.3): 400 on the first call, so that libmicrohttpd
 * closes the connection and no byte after these headers is ever read as
 * another request.  Returns 1 if it refused. */
static int refuse_bad_framing(brt_http_request *req, const char *version)
{
	const brt_http_handler *h = &req->server->handler;
	brt_framing framing;
	int length_problem;

	memset(&framing, 0, sizeof(framing));
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, framing_header, &framing);
	req->has_body = framing.body;
	if (brt_framing_check(&framing, strcmp(version, MHD_HTTP_VERSION_1_0) == 0, &length_problem) == 0)
		return 0;
	if (h->on_refused)
		h->on_refused(req, 400, length_problem ? BRT_HTTP_REFUSED_LENGTH : BRT_HTTP_REFUSED_FRAMING,
			      brt_error_last(), h->payload);
	if (!req->responded) {
		static const char text[] = "malformed request framing\n";
		brt_http_respond(req, 400,
				 MHD_create_response_from_buffer(sizeof(text) - 1, (void *)text,
								 MHD_RESPMEM_PERSISTENT),
				 sizeof(text) - 1);
	}
	return 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	brt_http_server *server = cls;
	const brt_http_handler *h = &server->handler;
	brt_http_request *req = *con_cls;

	if (!req) {
		const union MHD_ConnectionInfo *info;

		req = malloc(sizeof(*req));
		if (!req)
			return MHD_NO;
		memset(req, 0, sizeof(*req));
		brt_pool_init(&req->pool, h->pool_size);
		clock_gettime(CLOCK_MONOTONIC, &req->started);
		req->conn = conn;
		req->server = server;
		req->url = url;
		req->method_name = method;
		req->method = parse_method(method);
		info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		req->guard_conn = info ? info->socket_context : NULL;
		*con_cls = req;
		atomic_fetch_add(&server->in_flight, 1);
		brt_error_clear();
		if (!refuse_bad_framing(req, version))
			h->on_headers(req, h->payload);
		/* Long transfers are held to a minimum rate instead; everything
		 * else has a deadline. */
		if (req->guard_conn)
			brt_guard_request_begin(req->guard_conn,
						req->streaming && !req->responded && !req->discard,
						req->has_body);
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t len = *upload_data_size;
		*upload_data_size = 0;
		if (req->discard) {
			req->discarded += len;
			return req->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
		}
		h->on_body(req, upload_data, len, h->payload);
		return MHD_YES;
	}
	if (req->guard_conn)
		brt_guard_request_received(req->guard_conn);
	if (!req->responded)
		h->on_complete(req, h->payload);
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
	brt_http_server *server = cls;
	brt_http_request *req = *con_cls;
	struct timespec now;
	double ms;

	(void)conn;
	if (!req)
		return;
	*con_cls = NULL;
	if (server->handler.on_cleanup)
		server->handler.on_cleanup(req, server->handler.payload);
	if (server->options.access_log) {
		/* Method and path are the client's: escaped, so that no byte of
		 * theirs can end the line or fake a field. */
		char method[64], path[1024];
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (double)(now.tv_sec - req->started.tv_sec) * 1e3 +
		     (double)(now.tv_nsec - req->started.tv_nsec) / 1e6;
		brt_log_info("access method=%s path=%s status=%u bytes=%llu duration_ms=%.3f%s%s%s",
			     brt_log_escape(method, sizeof(method), req->method_name,
					    strlen(req->method_name), BRT_LOG_ESCAPE_SPACE),
			     brt_log_escape(path, sizeof(path), req->url, strlen(req->url),
					    BRT_LOG_ESCAPE_SPACE),
			     req->status, (unsigned long long)req->bytes_out, ms, req->log_note ? " " : "",
			     req->log_note ? req->log_note : "",
			     toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
	}
	if (req->guard_conn)
		brt_guard_request_end(req->guard_conn);
	brt_pool_clear(&req->pool);
	brt_http_body_free(&req->body);
	free(req);
	atomic_fetch_sub(&server->in_flight, 1);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512], escaped[1024];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* libmicrohttpd quotes parts of what the client sent. */
	brt_log_warn("http: %s", brt_log_escape(escaped, sizeof(escaped), msg, n, 0));
}

/* Every connection is tracked by the guard from open to close; its entry
 * also holds the handler's per-connection memory (brt_http_conn_data).
 * libmicrohttpd reports the close before it closes the fd, so the guard
 * never shuts down a descriptor that was reused. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	brt_http_server *server = cls;
	const union MHD_ConnectionInfo *fd_info, *addr_info;
	brt_guard_conn *gc = NULL;

	if (code != MHD_CONNECTION_NOTIFY_STARTED) {
		/* Answered before its body was read: closing now would reset
		 * the connection under the answer. */
		if (*socket_context && brt_guard_body_unread(*socket_context) &&
		    (fd_info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD)))
			brt_linger_take(server->linger, fd_info->connect_fd);
		brt_guard_close(server->guard, *socket_context);
		*socket_context = NULL;
		return;
	}
	fd_info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	addr_info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (fd_info &&
	    brt_guard_open(&gc, server->guard, fd_info->connect_fd, addr_info ? addr_info->client_addr : NULL,
			   addr_info && addr_info->client_addr &&
					   addr_info->client_addr->sa_family == AF_INET6
				   ? (socklen_t)sizeof(struct sockaddr_in6)
				   : (socklen_t)sizeof(struct sockaddr_in),
			   server->handler.conn_data_size) < 0)
		brt_log_error("cannot track a connection: %s", brt_error_last());
	*socket_context = gc;
	/* Several daemons each admit against the guard's count before the
	 * connection is counted, so a few accepted at the same instant on
	 * other listeners can pass the total; one thread pool's
	 * per-worker share caps the sum instead.  The one that finds the
	 * count over the limit once it is counted is cut, as the watchdog cuts:
	 * libmicrohttpd reads the end and closes it. */
	if (gc && server->shared_port) {
		brt_guard_stats stats;
		brt_guard_get_stats(server->guard, &stats);
		if (stats.open > server->max_connections)
			shutdown(fd_info->connect_fd, SHUT_RDWR);
	}
}

/* Accept policy: the guard's per-address limit and reserved slots. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addr_len)
{
	brt_http_server *server = cls;

	return brt_guard_admit(server->guard, addr, addr_len) == BRT_GUARD_OK ? MHD_YES : MHD_NO;
}

/* Raise the soft fd limit to the hard one, and fit the connection limit
 * into it: a connection may hold a second descriptor (the blob it sends or
 * receives). */
static unsigned int fit_connection_limit(unsigned int configured, unsigned int threads)
{
	struct rlimit rl;
	uint64_t fds = 1024, budget, reserve;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			struct rlimit raised = rl;
			raised.rlim_cur = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
				rl = raised;
			else
				brt_log_warn("cannot raise the open file limit from %llu to %llu: %s",
					     (unsigned long long)rl.rlim_cur,
					     (unsigned long long)raised.rlim_cur, strerror(errno));
		}
		fds = rl.rlim_cur == RLIM_INFINITY ? (uint64_t)1 << 20 : (uint64_t)rl.rlim_cur;
	}
	/* Each thread holds a listen socket, an epoll and an event fd. */
	reserve = FD_RESERVE + 3 * (uint64_t)threads;
	budget = fds > reserve + 2 ? (fds - reserve) / 2 : 1;
	if (budget > 1000000)
		budget = 1000000;
	if (configured == 0)
		return budget < DEFAULT_MAX_CONNECTIONS ? (unsigned int)budget : DEFAULT_MAX_CONNECTIONS;
	if (configured > budget) {
		brt_log_warn("http.max_connections %u does not fit the open file limit %llu: using %llu",
			     configured, (unsigned long long)fds, (unsigned long long)budget);
		return (unsigned int)budget;
	}
	return configured;
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
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || size > (1L << 20) ||
	    fseek(f, 0, SEEK_SET) != 0) {
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

static char *dup_or_null(const char *s)
{
	return s && s[0] ? strdup(s) : NULL;
}

static unsigned int address_port(const struct sockaddr_storage *addr)
{
	return addr->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)addr)->sin6_port)
					   : ntohs(((const struct sockaddr_in *)addr)->sin_port);
}

static void set_address_port(struct sockaddr_storage *addr, unsigned int port)
{
	if (addr->ss_family == AF_INET6)
		((struct sockaddr_in6 *)addr)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)port);
}

/* A bound TCP socket for `addr`, with the options libmicrohttpd gives
 * its own (SO_REUSEADDR, IPv6 only for an IPv6 address), SO_REUSEPORT if
 * `reuse_port`, listening if `backlog` > 0.  0 or -errno; `*step_out`
 * names the call that failed. */
static int open_socket(int *fd_out, const char **step_out, const struct sockaddr_storage *addr, socklen_t len,
		       int reuse_port, int backlog)
{
	int fd, on = 1, error = 0;

	*fd_out = -1;
	*step_out = "socket";
	if ((fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	/* Like libmicrohttpd's: a restart binds despite TIME_WAIT
	 * connections; never fatal. */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	*step_out = "SO_REUSEPORT";
	if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0)
		goto failed;
	*step_out = "IPV6_V6ONLY";
	if (addr->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)
		goto failed;
	*step_out = "bind";
	if (bind(fd, (const struct sockaddr *)addr, len) < 0)
		goto failed;
	*step_out = "listen";
	if (backlog > 0 && listen(fd, backlog) < 0)
		goto failed;
	*fd_out = fd;
	return 0;
failed:
	error = -errno;
	close(fd);
	return error;
}

/* SO_REUSEPORT lets any socket of the same user join the group, so a
 * second server started on the same address would silently share its
 * connections instead of failing.  A token in the abstract unix socket
 * namespace (per network namespace, as ports are, and gone when the
 * process dies) names the address and port: a second server of ours
 * finds it taken.  0, -EADDRINUSE, or another -errno (the token cannot
 * be had: use one daemon instead). */
static int take_listen_token(int *fd_out, const struct sockaddr_storage *addr)
{
	struct sockaddr_un un;
	char host[INET6_ADDRSTRLEN];
	const void *raw = addr->ss_family == AF_INET6
				  ? (const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr
				  : (const void *)&((const struct sockaddr_in *)addr)->sin_addr;
	int fd, n, error;

	*fd_out = -1;
	if (!inet_ntop(addr->ss_family, raw, host, sizeof(host)))
		return -errno;
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	n = snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "brt-http-listen/%s/%u", host,
		     address_port(addr));
	if (n < 0 || (size_t)n >= sizeof(un.sun_path) - 1)
		return -ENAMETOOLONG;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&un,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) < 0) {
		error = -errno;
		close(fd);
		return error;
	}
	*fd_out = fd;
	return 0;
}

/* The listen sockets of one SO_REUSEPORT group on `addr`, one per
 * thread, so that the kernel spreads new connections over the daemons
 * by their address hash; with one shared socket, the thread pool's
 * workers race for each connection and some end up with twice the
 * connections of others.  Port 0 is asked for once and the others bind
 * the port the kernel chose (an automatic port never joins another
 * group).  Returns 0 with `count` sockets in fds, 1 if SO_REUSEPORT
 * cannot be used here (one daemon with a thread pool instead), or a
 * BRT_E* code; the address in use is BRT_EIO with "in use" in the
 * detail, as libmicrohttpd's own bind reports it. */
static int open_listeners(int *fds, unsigned int count, int *token_out, const char *listen,
			  struct sockaddr_storage *addr, socklen_t len)
{
	struct sockaddr_storage bound;
	socklen_t bound_len = sizeof(bound);
	const char *step = "";
	unsigned int i;
	int fd, rc, error = 0;

	*token_out = -1;
	for (i = 0; i < count; i++)
		fds[i] = -1;
	i = 0;
	if (address_port(addr) == 0) {
		/* The kernel's choice first, then the token for it. */
		if ((rc = open_socket(&fds[0], &step, addr, len, 1, 1024)) < 0)
			goto failed;
		if (getsockname(fds[0], (struct sockaddr *)&bound, &bound_len) < 0) {
			rc = -errno;
			step = "getsockname";
			goto failed;
		}
		set_address_port(addr, address_port(&bound));
		i = 1;
	}
	step = "token";
	if ((rc = take_listen_token(token_out, addr)) < 0)
		goto failed;
	if (i == 0) {
		/* Anything already bound to the address (another server, or
		 * a group of another program's) makes a plain bind fail: that
		 * is the error a second server must see. */
		if ((rc = open_socket(&fd, &step, addr, len, 0, 0)) < 0)
			goto failed;
		close(fd);
	}
	for (; i < count; i++)
		if ((rc = open_socket(&fds[i], &step, addr, len, 1, 1024)) < 0)
			goto failed;
	return 0;
failed:
	for (i = 0; i < count; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
	if (*token_out >= 0)
		close(*token_out);
	*token_out = -1;
	if (rc == -EADDRINUSE)
		error = brt_error_set(BRT_EIO, "cannot listen on %s: %s", listen, strerror(-rc));
	else if ((strcmp(step, "SO_REUSEPORT") == 0 && (rc == -ENOPROTOOPT || rc == -EINVAL)) ||
		 strcmp(step, "token") == 0)
		error = 1;
	else
		error = brt_error_set(BRT_EIO, "cannot listen on %s (%s): %s", listen, step, strerror(-rc));
	return error;
}

/* Whether `fd` is still the socket identified by `st` (libmicrohttpd
 * closes a given listen socket on some of its start failures, not on
 * others, and the number may have been reused since). */
static int same_file(int fd, const struct stat *st)
{
	struct stat now;

	return fstat(fd, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

static void server_free(brt_http_server *server)
{
	if (!server)
		return;
	free(server->daemons);
	if (server->listen_token >= 0)
		close(server->listen_token);
	brt_guard_free(server->guard);
	brt_linger_free(server->linger);
	free(server->listen);
	free((char *)server->options.tls_cert);
	free((char *)server->options.tls_key);
	free((char *)server->options.client_ca);
	free(server->tls_cert_pem);
	free(server->tls_key_pem);
	free(server->client_ca_pem);
	free(server);
}

/* Stop accepting on every daemon: each listen socket is closed as its
 * daemon lets go of it, so the kernel sends new connections to the
 * others (and, once all are closed, refuses them). */
static void quiesce_all(brt_http_server *server)
{
	for (unsigned int i = 0; i < server->daemon_count; i++) {
		int listen_fd = MHD_quiesce_daemon(server->daemons[i]);
		if (listen_fd >= 0)
			close(listen_fd);
	}
}

static void stop_all(brt_http_server *server)
{
	for (unsigned int i = 0; i < server->daemon_count; i++)
		MHD_stop_daemon(server->daemons[i]);
	server->daemon_count = 0;
}

int brt_http_server_start(brt_http_server **out, const brt_http_options *options,
			  const brt_http_handler *handler)
{
	brt_http_server *server;
	const brt_http_options *c;
	struct sockaddr_storage addr;
	socklen_t addr_len = 0;
	unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	unsigned int threads, i;
	const union MHD_DaemonInfo *info;
	brt_guard_limits limits;
	int *fds = NULL;
	int error = 0, rc;

	struct MHD_OptionItem tls_options[5];
	size_t n = 0;

	*out = NULL;
	if (!handler->on_headers || !handler->on_body || !handler->on_complete)
		return brt_error_set(BRT_EINVALID,
				     "an HTTP handler needs on_headers, on_body and on_complete");
	if (!(server = calloc(1, sizeof(*server))))
		return brt_error_set(BRT_ENOMEM, "out of memory");
	server->listen_token = -1;
	server->options = *options;
	server->handler = *handler;
	if (server->handler.pool_size == 0)
		server->handler.pool_size = 16384;
	/* The option strings are the caller's: keep our own copies. */
	server->options.tls_cert = dup_or_null(options->tls_cert);
	server->options.tls_key = dup_or_null(options->tls_key);
	server->options.client_ca = dup_or_null(options->client_ca);
	server->listen = strdup(options->listen ? options->listen : "");
	if (!server->listen || (options->tls_cert && options->tls_cert[0] && !server->options.tls_cert) ||
	    (options->tls_key && options->tls_key[0] && !server->options.tls_key) ||
	    (options->client_ca && options->client_ca[0] && !server->options.client_ca)) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	server->options.listen = server->listen;
	server->body_budget.limit = options->body_memory;
	c = &server->options;
	threads = c->threads > 0 ? c->threads : 1;

	if ((error = parse_listen(&addr, &addr_len, c->listen)) < 0)
		goto done;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (c->allow_suspend)
		flags |= MHD_ALLOW_SUSPEND_RESUME;
	if (c->tls_cert || c->tls_key) {
		if (!c->tls_cert || !c->tls_key) {
			error = brt_error_set(BRT_EINVALID, "TLS needs both a certificate and a key");
			goto done;
		}
		if ((error = read_pem(&server->tls_cert_pem, c->tls_cert)) < 0 ||
		    (error = read_pem(&server->tls_key_pem, c->tls_key)) < 0 ||
		    (c->client_ca && (error = read_pem(&server->client_ca_pem, c->client_ca)) < 0))
			goto done;
		if ((error = brt_tls_load()) < 0) { /* its own message, not a failed listen */
			char why[256];
			snprintf(why, sizeof(why), "%s", brt_error_last());
			error = brt_error_set(error, "TLS is configured but cannot be used: %s", why);
			goto done;
		}
		flags |= MHD_USE_TLS;
		server->tls = 1;
		tls_options[n++] =
			(struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, server->tls_cert_pem};
		tls_options[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, server->tls_key_pem};
		if (server->client_ca_pem)
			tls_options[n++] =
				(struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, server->client_ca_pem};
	}
	tls_options[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

	memset(&limits, 0, sizeof(limits));
	limits.max_connections = fit_connection_limit(c->max_connections, threads);
	limits.per_address = c->per_address;
	limits.reserved = c->reserved == BRT_HTTP_AUTO ? limits.max_connections / 8 : c->reserved;
	if (limits.reserved > limits.max_connections / 2)
		limits.reserved = limits.max_connections / 2;
	limits.header_ms = (uint64_t)c->header_timeout * 1000u;
	limits.request_ms = (uint64_t)c->request_timeout * 1000u;
	limits.min_rate = c->min_rate;
	limits.min_rate_window_ms = (uint64_t)c->min_rate_window * 1000u;
	server->max_connections = limits.max_connections;
	if ((error = brt_guard_new(&server->guard, &limits)) < 0 ||
	    (error = brt_linger_start(&server->linger, &linger_limits)) < 0)
		goto done;

	if (!(server->daemons = calloc(threads, sizeof(*server->daemons))) ||
	    !(fds = malloc(threads * sizeof(*fds)))) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	rc = threads > 1 ? open_listeners(fds, threads, &server->listen_token, c->listen, &addr, addr_len)
			 : 1;
	if (rc < 0) {
		error = rc;
		goto done;
	}
	if (rc == 0) {
		server->shared_port = 1;
		/* One single-threaded daemon per socket.  Each may hold every
		 * connection (the hash need not spread a few evenly); the
		 * guard counts them all against the one limit. */
		for (i = 0; i < threads; i++) {
			struct stat st;
			int have_st = fstat(fds[i], &st) == 0;
			struct MHD_Daemon *d =
				MHD_start_daemon(flags, 0, on_accept, server, on_request, server,
						 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
						 MHD_OPTION_LISTEN_SOCKET, fds[i],
						 MHD_OPTION_CONNECTION_MEMORY_LIMIT,
						 (size_t)c->connection_memory, MHD_OPTION_CONNECTION_LIMIT,
						 limits.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
						 (unsigned int)c->connection_timeout,
						 MHD_OPTION_NOTIFY_COMPLETED, on_completed, server,
						 MHD_OPTION_NOTIFY_CONNECTION, on_connection, server,
						 MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
						 MHD_OPTION_ARRAY, tls_options, MHD_OPTION_END);
			if (!d) {
				if (have_st && same_file(fds[i], &st))
					close(fds[i]);
				for (i++; i < threads; i++)
					close(fds[i]);
				error = brt_error_set(BRT_EIO, "cannot start serving on %s", c->listen);
				goto done;
			}
			/* Owned by the daemon from here on. */
			fds[i] = -1;
			server->daemons[server->daemon_count++] = d;
		}
	} else {
		server->daemons[0] =
			MHD_start_daemon(flags, 0, on_accept, server, on_request, server,
					 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
					 (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, threads,
					 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)c->connection_memory,
					 MHD_OPTION_CONNECTION_LIMIT, limits.max_connections,
					 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)c->connection_timeout,
					 MHD_OPTION_NOTIFY_COMPLETED, on_completed, server,
					 MHD_OPTION_NOTIFY_CONNECTION, on_connection, server,
					 MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
					 MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024, MHD_OPTION_ARRAY,
					 tls_options, MHD_OPTION_END);
		if (!server->daemons[0]) {
			error = brt_error_set(BRT_EIO, "cannot listen on %s", c->listen);
			goto done;
		}
		server->daemon_count = 1;
	}
	info = MHD_get_daemon_info(server->daemons[0], MHD_DAEMON_INFO_BIND_PORT);
	brt_log_info(
		"listening on %s (port %u, %u threads, %s; %s%s; at most %u connections, %u per address, "
		"%u reserved; headers within %us, requests within %us, long transfers at %llu B/s or more)",
		c->listen, info ? (unsigned int)info->port : 0u, threads,
		server->shared_port ? "one listen socket each (SO_REUSEPORT)" : "one listen socket",
		server->tls ? "https" : "http", server->client_ca_pem ? " with client certificates" : "",
		limits.max_connections, limits.per_address, limits.reserved, c->header_timeout,
		c->request_timeout, (unsigned long long)c->min_rate);
	*out = server;
	server = NULL;
done:
	if (server) {
		quiesce_all(server);
		stop_all(server);
	}
	free(fds);
	server_free(server);
	return error;
}

unsigned int brt_http_server_port(const brt_http_server *server)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(server->daemons[0], MHD_DAEMON_INFO_BIND_PORT);

	return info ? (unsigned int)info->port : 0u;
}

void brt_http_server_stop(brt_http_server *server)
{
	unsigned int waited_ms = 0;

	if (!server)
		return;
	if (server->daemon_count > 0) {
		quiesce_all(server);
		/* Let in-flight requests finish, bounded by the drain timeout. */
		while (waited_ms < server->options.drain_timeout * 1000u) {
			if (atomic_load(&server->in_flight) == 0)
				break;
			usleep(50 * 1000);
			waited_ms += 50;
		}
		if (server->handler.on_drained)
			server->handler.on_drained(server->handler.payload);
		stop_all(server);
	}
	server_free(server);
}
