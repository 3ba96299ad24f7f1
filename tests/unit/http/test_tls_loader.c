/* GnuTLS on demand (src/http/tls_loader.c): a process that links
 * libmicrohttpd from its archive does not map libgnutls until
 * brt_tls_load(), although libmicrohttpd's constructor has called
 * gnutls_global_init(); a GnuTLS call before loading aborts with a log
 * line naming the function; after loading, the functions libmicrohttpd and
 * device.c use work, and loading again is a no-op.  With the shared
 * libmicrohttpd (-DBERTH_SHARED_MHD=ON) GnuTLS is always there and only
 * the last part applies. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "check.h"
#include "http/tls_loader.h"

/* 1 if /proc/self/maps names a file whose name contains `needle`. */
static int mapped(const char *needle)
{
	char line[4096];
	int found = 0;
	FILE *maps = fopen("/proc/self/maps", "r");

	if (!maps)
		return -1;
	while (!found && fgets(line, sizeof(line), maps))
		found = strstr(line, needle) != NULL;
	fclose(maps);
	return found;
}

/* In a child: call gnutls_strerror() with GnuTLS not loaded.  It must die
 * of SIGABRT after logging the function's name on stderr. */
static void check_unloaded_call_aborts(void)
{
	int fds[2], status = 0;
	char out[1024];
	ssize_t n, total = 0;
	pid_t pid;

	CHECK(pipe(fds) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		const char *text;

		close(fds[0]);
		dup2(fds[1], 2);
		text = gnutls_strerror(0);
		fprintf(stderr, "returned \"%s\"\n", text ? text : "(null)");
		_exit(0);
	}
	close(fds[1]);
	while (total < (ssize_t)sizeof(out) - 1 &&
	       (n = read(fds[0], out + total, sizeof(out) - 1 - total)) > 0)
		total += n;
	out[total] = '\0';
	close(fds[0]);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	CHECK(strstr(out, "gnutls_strerror called, but GnuTLS is not loaded") != NULL);
	if (!strstr(out, "GnuTLS is not loaded"))
		fprintf(stderr, "child's stderr: %s\n", out);
}

int main(void)
{
	gnutls_x509_crt_t crt = NULL;

	if (!brt_tls_loaded()) {
		/* libmicrohttpd.a is linked (brt_tls_load pulls in daemon.o,
		 * whose constructor called gnutls_global_init), GnuTLS is not. */
		CHECK_EQ_INT(mapped("libgnutls"), 0);
		CHECK_EQ_INT(mapped("libnettle"), 0);
		check_unloaded_call_aborts();
		CHECK_EQ_INT(mapped("libgnutls"), 0);
	} else {
		printf("shared libmicrohttpd: GnuTLS is always loaded\n");
	}

	CHECK_EQ_INT(brt_tls_load(), 0);
	CHECK_EQ_INT(brt_tls_loaded(), 1);
	CHECK_EQ_INT(mapped("libgnutls.so.30"), 1);
	CHECK_EQ_INT(brt_tls_load(), 0);

	/* The replayed global init left GnuTLS usable: what libmicrohttpd
	 * calls at start-up and what device.c calls per client certificate. */
	CHECK_EQ_STR(gnutls_strerror(GNUTLS_E_SUCCESS), "Success.");
	{
		gnutls_certificate_credentials_t cred = NULL;
		gnutls_priority_t priority = NULL;
		gnutls_session_t session = NULL;

		CHECK_EQ_INT(gnutls_certificate_allocate_credentials(&cred), 0);
		CHECK_EQ_INT(gnutls_priority_init(&priority, "NORMAL", NULL), 0);
		CHECK_EQ_INT(gnutls_init(&session, GNUTLS_SERVER), 0);
		CHECK_EQ_INT(gnutls_priority_set(session, priority), 0);
		CHECK_EQ_INT(gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, cred), 0);
		gnutls_session_set_ptr(session, &crt);
		CHECK(gnutls_session_get_ptr(session) == &crt);
		CHECK(gnutls_certificate_get_peers(session, &(unsigned int){0}) == NULL);
		gnutls_deinit(session);
		gnutls_priority_deinit(priority);
		gnutls_certificate_free_credentials(cred);
	}
	CHECK_EQ_INT(gnutls_x509_crt_init(&crt), 0);
	{
		const gnutls_datum_t junk = {(unsigned char *)"not a certificate", 17};

		CHECK(gnutls_x509_crt_import(crt, &junk, GNUTLS_X509_FMT_DER) < 0);
	}
	gnutls_x509_crt_deinit(crt);
	return check_exit("test_tls_loader");
}
