/* SigV4 query-string signing ("presigned URLs"), which curl does not do:
 * a GET of one object whose credentials, scope, expiry and signature
 * travel in the query, so a client can fetch the object from the store
 * directly.  The steps follow the AWS Signature Version 4 documentation:
 * canonical request (payload UNSIGNED-PAYLOAD, only "host" signed),
 * string to sign, signing key derived from the secret by HMAC-SHA256
 * over date, region, service and "aws4_request". */
#include "storage/s3/s3_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "common/error.h"
#include "common/hex.h"

/* S3 refuses presigned URLs valid for longer than seven days. */
#define PRESIGN_TTL_MAX (7u * 24 * 3600)

static int hmac(unsigned char out[32], const void *key, size_t key_len, const char *msg)
{
	unsigned int len = 0;

	if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &len) ||
	    len != 32)
		return brt_error_set(BRT_EIO, "S3: HMAC-SHA256 failed");
	return 0;
}

/* Scheme and host[:port] of the URL `url` as the Host header names it. */
static int url_host(const char *url, char *host, size_t cap)
{
	const char *start = strstr(url, "://"), *end;

	if (!start)
		return brt_error_set(BRT_EINVALID, "S3: URL without scheme");
	start += 3;
	end = strchr(start, '/');
	if (!end || (size_t)(end - start) >= cap)
		return brt_error_set(BRT_EINVALID, "S3: URL without path");
	memcpy(host, start, (size_t)(end - start));
	host[end - start] = '\0';
	return 0;
}

int brt_s3_presign_url(char *out, size_t cap, const brt_s3_options *o, const char *key, unsigned int ttl,
		       int64_t now)
{
	char base[S3_URL_MAX], host[600], stamp[17], date[9], scope[160], path_hex[65], sig_hex[65];
	unsigned char digest[32], k1[32], k2[32], k3[32], k4[32], sig[32];
	brt_dynbuf query, canon, to_sign, secret;
	const char *path;
	struct tm tm;
	time_t t = (time_t)now;
	int error;

	if (cap > 0)
		out[0] = '\0';
	if (ttl == 0 || ttl > PRESIGN_TTL_MAX)
		return brt_error_set(BRT_EINVALID, "S3: a presigned URL lives 1 s to 7 days, not %u s", ttl);
	if (!o->access_key[0] || !o->secret_key[0])
		return brt_error_set(BRT_EINVALID, "S3: no credentials to sign with");
	if ((error = s3_url(base, sizeof(base), o, key, NULL)) < 0 ||
	    (error = url_host(base, host, sizeof(host))) < 0)
		return error;
	path = strstr(base, "://") + 3;
	path = strchr(path, '/');
	if (!gmtime_r(&t, &tm))
		return brt_error_set(BRT_EINVALID, "S3: time out of range");
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	memcpy(date, stamp, 8);
	date[8] = '\0';
	snprintf(scope, sizeof(scope), "%s/%s/s3/aws4_request", date, o->region);

	brt_dynbuf_init(&query, S3_URL_MAX);
	brt_dynbuf_init(&canon, S3_URL_MAX * 2);
	brt_dynbuf_init(&to_sign, 1024);
	brt_dynbuf_init(&secret, 512);
	/* The query in canonical order: parameter names sorted. */
	error = brt_dynbuf_addf(&query, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
	if (error == 0)
		error = s3_encode(&query, o->access_key, 0);
	if (error == 0)
		error = brt_dynbuf_add(&query, "%2F", 3);
	if (error == 0)
		error = s3_encode(&query, scope, 0);
	if (error == 0)
		error = brt_dynbuf_addf(&query, "&X-Amz-Date=%s&X-Amz-Expires=%u", stamp, ttl);
	if (error == 0 && o->session_token[0]) {
		error = brt_dynbuf_addf(&query, "&X-Amz-Security-Token=");
		if (error == 0)
			error = s3_encode(&query, o->session_token, 0);
	}
	if (error == 0)
		error = brt_dynbuf_addf(&query, "&X-Amz-SignedHeaders=host");
	if (error == 0)
		error = brt_dynbuf_addf(&canon, "GET\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", path,
					brt_dynbuf_ptr(&query), host);
	if (error < 0)
		goto done;
	SHA256((const unsigned char *)brt_dynbuf_ptr(&canon), brt_dynbuf_len(&canon), digest);
	brt_hex_encode(path_hex, digest, sizeof(digest));
	if ((error = brt_dynbuf_addf(&to_sign, "AWS4-HMAC-SHA256\n%s\n%s\n%s", stamp, scope, path_hex)) < 0 ||
	    (error = brt_dynbuf_addf(&secret, "AWS4%s", o->secret_key)) < 0)
		goto done;
	if ((error = hmac(k1, brt_dynbuf_ptr(&secret), brt_dynbuf_len(&secret), date)) < 0 ||
	    (error = hmac(k2, k1, sizeof(k1), o->region)) < 0 ||
	    (error = hmac(k3, k2, sizeof(k2), "s3")) < 0 ||
	    (error = hmac(k4, k3, sizeof(k3), "aws4_request")) < 0 ||
	    (error = hmac(sig, k4, sizeof(k4), brt_dynbuf_ptr(&to_sign))) < 0)
		goto done;
	brt_hex_encode(sig_hex, sig, sizeof(sig));
	if ((size_t)snprintf(out, cap, "%s?%s&X-Amz-Signature=%s", base, brt_dynbuf_ptr(&query), sig_hex) >=
	    cap) {
		if (cap > 0)
			out[0] = '\0';
		error = brt_error_set(BRT_ETOOBIG, "S3: presigned URL longer than %zu bytes", cap);
	}
done:
	/* The derived keys are as good as the secret for a day. */
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	OPENSSL_cleanse(k3, sizeof(k3));
	OPENSSL_cleanse(k4, sizeof(k4));
	if (secret.ptr)
		OPENSSL_cleanse(secret.ptr, secret.len);
	brt_dynbuf_free(&secret);
	brt_dynbuf_free(&to_sign);
	brt_dynbuf_free(&canon);
	brt_dynbuf_free(&query);
	return error;
}
