/* Devices: a TLS client certificate signed by the configured client CA
 * identifies a device (its CN) of an account (a configurable subject
 * field, the OU by default). */
#ifndef BRT_DEVICE_H
#define BRT_DEVICE_H

#include <microhttpd.h>

#include "http/request.h"
#include "meta/meta.h"

/* Inspect the client certificate of `conn` (once per connection; the
 * result is kept in `state`).  `field` names the subject field holding the
 * account id: OU, O, CN, UID or serialNumber.  A certificate that does not
 * verify against the client CA, is outside its validity period, or names
 * no existing account is refused (state -1). */
void brt_device_check(brt_conn_state *state, struct MHD_Connection *conn, brt_meta *meta, const char *field);

#endif
