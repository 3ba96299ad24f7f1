/* A connected loopback TCP pair for the HTTP layer's tests. */
#ifndef BRT_TEST_TCP_PAIR_H
#define BRT_TEST_TCP_PAIR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* *server_fd is the accepted end; `peer` (or NULL) gets the client's
 * address as the server sees it.  0, or -1 on failure. */
static inline int tcp_pair(int *client_fd, int *server_fd, struct sockaddr_in *peer)
{
	struct sockaddr_in addr = {.sin_family = AF_INET}, ignored;
	socklen_t len = sizeof(addr);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || bind(l, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(l, 4) < 0 ||
	    getsockname(l, (struct sockaddr *)&addr, &len) < 0)
		return -1;
	*client_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(*client_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return -1;
	if (!peer)
		peer = &ignored;
	len = sizeof(*peer);
	*server_fd = accept(l, (struct sockaddr *)peer, &len);
	close(l);
	return *server_fd < 0 ? -1 : 0;
}

#endif
