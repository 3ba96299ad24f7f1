/* Client-certificate identification of devices (see device.h), using the
 * connection's GnuTLS session: GnuTLS verifies the chain against
 * the trust list libmicrohttpd loaded from the client CA, and the time. */
#include "auth/device.h"

#include "auth/keys.h"

#include <stdio.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "common/log.h"
#include "oci/names.h"

static const char *field_oid(const char *field)
{
	if (strcmp(field, "OU") == 0)
		return GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME;
	if (strcmp(field, "O") == 0)
		return GNUTLS_OID_X520_ORGANIZATION_NAME;
	if (strcmp(field, "CN") == 0)
		return GNUTLS_OID_X520_COMMON_NAME;
	if (strcmp(field, "UID") == 0)
		return GNUTLS_OID_LDAP_UID;
	if (strcmp(field, "serialNumber") == 0)
		return "2.5.4.5";
	return NULL;
}

/* A certificate with an extended key usage must allow TLS client
 * authentication (or any purpose); one without it may be used for any. */
static int client_purpose(gnutls_x509_crt_t crt)
{
	char oid[128];
	size_t size;
	int seen = 0;

	for (unsigned int i = 0; i < 64; i++) {
		size = sizeof(oid);
		int rc = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &size, NULL);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (rc < 0)
			return 0;
		seen = 1;
		if (strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0 || strcmp(oid, GNUTLS_KP_ANY) == 0)
			return 1;
	}
	return !seen;
}

static int identify(brt_auth_device *state, gnutls_session_t session, brt_meta *meta, const char *field)
{
	const gnutls_datum_t *certs;
	unsigned int count = 0, status = 0;
	gnutls_x509_crt_t crt = NULL;
	char account[64], name[sizeof(state->name)];
	size_t account_len = sizeof(account), name_len = sizeof(name);
	brt_account found;
	const char *oid = field_oid(field);
	int result = -1;

	certs = gnutls_certificate_get_peers(session, &count);
	if (!certs || count == 0)
		return 0;
	if (gnutls_certificate_verify_peers2(session, &status) < 0 || status != 0) {
		brt_log_info("device certificate refused: does not verify (status 0x%x)", status);
		return -1;
	}
	if (!oid || gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) < 0 ||
	    gnutls_x509_crt_get_dn_by_oid(crt, oid, 0, 0, account, &account_len) < 0 ||
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, name, &name_len) < 0) {
		brt_log_info("device certificate refused: no %s or CN in its subject", field);
		goto done;
	}
	if (!client_purpose(crt)) {
		brt_log_info(
			"device certificate refused: its extended key usage excludes client authentication");
		goto done;
	}
	if (!brt_account_id_valid(account) || brt_meta_account_get(meta, &found, account) < 0) {
		brt_log_info("device certificate refused: %s=%.40s is no account", field, account);
		goto done;
	}
	memcpy(state->account, account, 33); /* 32 hex chars + NUL, checked above */
	snprintf(state->name, sizeof(state->name), "%s", name);
	result = 1;
done:
	gnutls_x509_crt_deinit(crt);
	return result;
}

void brt_device_check(brt_auth_device *state, void *tls_session, brt_meta *meta, const char *field)
{
	state->state = identify(state, (gnutls_session_t)tls_session, meta, field);
}
