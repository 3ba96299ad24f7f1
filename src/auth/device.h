/* Devices: a TLS client certificate signed by the configured client CA
 * identifies a device (its CN) of an account (a configurable subject
 * field, the OU by default). */
#ifndef BRT_DEVICE_H
#define BRT_DEVICE_H

#include "auth/auth.h"
#include "meta/meta.h"

/* Inspect the client certificate of the GnuTLS session `tls_session` and
 * record the verdict in `state` (state->state; the caller keeps it for the
 * connection's later requests).  `field` names the subject field holding the
 * account id: OU, O, CN, UID or serialNumber.  A certificate that does not
 * verify against the client CA, is outside its validity period, or names
 * no existing account is refused (state -1). */
void brt_device_check(brt_auth_device *state, void *tls_session, brt_meta *meta, const char *field);

#endif
