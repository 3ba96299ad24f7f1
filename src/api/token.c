/* The token endpoint of Docker token authentication: GET /v2/token with
 * Basic KEY:<access key> (or a device certificate), or POST with an OAuth2
 * password grant form.  It signs a short-lived token granting the
 * intersection of the requested scopes and what the caller may do; scopes
 * it cannot grant are left out, not refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "api/internal.h"
#include "auth/auth.h"
#include "auth/token.h"

#define FORM_VALUE_MAX 4096
/* The whole form: the fields above with room for encoding, and no more. */
#define FORM_BODY_MAX (64 * 1024)

struct brt_token_form {
	struct MHD_PostProcessor *pp;
	char grant_type[32];
	char username[64];
	char password[128];
	char service[256];
	char scope[FORM_VALUE_MAX];
	int too_big;
	size_t received;
};

struct scope_acc {
	brt_api_request *req;
	const brt_principal *principal;
	brt_token_claims *claims;
};

/* Add what can be granted of one scope (or several, space-separated). */
static void add_scopes(struct scope_acc *acc, const char *value)
{
	brt_api_request *req = acc->req;
	const char *p = value;

	while (*p) {
		const char *repo, *end;
		char *item;
		unsigned int actions, granted;
		int catalog;

		while (*p == ' ')
			p++;
		end = strchr(p, ' ');
		if (!end)
			end = p + strlen(p);
		item = end > p ? brt_pool_strndup(req->pool, p, (size_t)(end - p)) : NULL;
		p = end;
		if (!item || brt_scope_parse(&repo, &actions, &catalog, req->pool, item) < 0)
			continue;
		if (catalog) {
			acc->claims->catalog = 1;
			continue;
		}
		granted = actions & brt_auth_allowed(acc->principal, repo);
		if (!granted || acc->claims->grant_count >= BRT_TOKEN_MAX_GRANTS)
			continue;
		acc->claims->grants[acc->claims->grant_count].repo = repo;
		acc->claims->grants[acc->claims->grant_count].actions = granted;
		acc->claims->grant_count++;
	}
}

static enum MHD_Result scope_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	if (value && strcmp(key, "scope") == 0)
		add_scopes(cls, value);
	return MHD_YES;
}

static enum MHD_Result form_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
				  const char *content_type, const char *transfer_encoding, const char *data,
				  uint64_t off, size_t size)
{
	struct brt_token_form *form = cls;
	char *dst = NULL;
	size_t cap = 0;

	(void)kind;
	(void)filename;
	(void)content_type;
	(void)transfer_encoding;
	if (strcmp(key, "grant_type") == 0)
		dst = form->grant_type, cap = sizeof(form->grant_type);
	else if (strcmp(key, "username") == 0)
		dst = form->username, cap = sizeof(form->username);
	else if (strcmp(key, "password") == 0)
		dst = form->password, cap = sizeof(form->password);
	else if (strcmp(key, "service") == 0)
		dst = form->service, cap = sizeof(form->service);
	else if (strcmp(key, "scope") == 0)
		dst = form->scope, cap = sizeof(form->scope);
	if (!dst)
		return MHD_YES;
	if (off + size >= cap) {
		form->too_big = 1;
		return MHD_YES;
	}
	memcpy(dst + off, data, size);
	dst[off + size] = '\0';
	return MHD_YES;
}

int api_token_begin(brt_api_request *req)
{
	struct brt_token_form *form;

	if (req->http->method != BRT_POST)
		return 0;
	form = brt_pool_alloc(req->pool, sizeof(*form));
	if (!form)
		return brt_error_set(BRT_ENOMEM, "out of request memory");
	memset(form, 0, sizeof(*form));
	form->pp = MHD_create_post_processor(req->http->conn, 4096, form_field, form);
	if (!form->pp)
		return brt_error_set(BRT_EUNSUPPORTED,
				     "the token endpoint takes an application/x-www-form-urlencoded form");
	req->form = form;
	return 0;
}

int api_token_body(brt_api_request *req, const char *data, size_t len)
{
	/* A GET has no form: its body is ignored. */
	if (!req->form) {
		brt_http_discard_body(req->http);
		return 0;
	}
	/* The form is parsed as it streams in (nothing is buffered beyond the
	 * post processor's fixed buffer), but a form longer than its fields
	 * could ever need is refused rather than read for as long as the
	 * client likes. */
	if (__builtin_add_overflow(req->form->received, len, &req->form->received) ||
	    req->form->received > FORM_BODY_MAX)
		return brt_error_set(BRT_ETOOBIG, "the form is larger than %d bytes", FORM_BODY_MAX);
	if (MHD_post_process(req->form->pp, data, len) != MHD_YES)
		return brt_error_set(BRT_EINVALID, "malformed form");
	return 0;
}

/* 401 (the error table adds the Basic challenge of the token endpoint). */
static int unauthorized(void)
{
	return brt_error_set(BRT_EUNAUTHORIZED, "valid credentials are required: user KEY and an access key");
}

int api_token_end(brt_api_request *req)
{
	const brt_config *config = req->api->config;
	const brt_principal *principal;
	brt_principal form_principal;
	brt_token_claims claims;
	struct scope_acc acc;
	char *token = NULL, *text = NULL, issued[32];
	json_t *body = NULL;
	time_t now = time(NULL);
	struct tm tm;
	size_t len;
	int error;

	if (req->form) {
		if (req->form->too_big)
			return brt_error_set(BRT_EINVALID, "form field too long");
		if (strcmp(req->form->grant_type, "password") != 0)
			return brt_error_set(BRT_EUNSUPPORTED, "only the password grant is supported");
		error = brt_auth_password(&form_principal, &req->api->auth, req->form->username,
					  req->form->password);
		if (error < 0)
			return error == BRT_EUNAVAILABLE ? error : unauthorized();
		principal = &form_principal;
	} else {
		principal = api_principal(req);
		if (principal->unavailable)
			return brt_error_set(BRT_EUNAVAILABLE, "credentials cannot be checked now");
	}
	if (!req->api->auth.enabled)
		return brt_error_set(BRT_ENOTFOUND, "authentication is switched off: no tokens needed");
	if (principal->kind != BRT_PRINCIPAL_KEY && principal->kind != BRT_PRINCIPAL_DEVICE)
		return unauthorized();
	memset(&claims, 0, sizeof(claims));
	memcpy(claims.subject, principal->subject, sizeof(claims.subject));
	memcpy(claims.account, principal->account, sizeof(claims.account));
	claims.grants = brt_pool_alloc(req->pool, sizeof(brt_grant) * BRT_TOKEN_MAX_GRANTS);
	if (!claims.grants)
		return brt_error_set(BRT_ENOMEM, "out of request memory");
	acc.req = req;
	acc.principal = principal;
	acc.claims = &claims;
	if (req->form)
		add_scopes(&acc, req->form->scope);
	else
		MHD_get_connection_values(req->http->conn, MHD_GET_ARGUMENT_KIND, scope_arg, &acc);
	if ((error = brt_token_sign(&token, req->api->auth.token_secret, req->api->auth.service, &claims,
				    (int64_t)now, config->token_ttl)) < 0)
		return error;
	gmtime_r(&now, &tm);
	strftime(issued, sizeof(issued), "%Y-%m-%dT%H:%M:%SZ", &tm);
	body = json_pack("{s:s,s:s,s:i,s:s}", "token", token, "access_token", token, "expires_in",
			 (int)config->token_ttl, "issued_at", issued);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!text) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
	} else {
		struct MHD_Response *resp;
		len = strlen(text);
		resp = api_response_json(text, len, 1);
		if (resp)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
		api_send(req, 200, resp, len);
	}
	free(text);
	json_decref(body);
	free(token);
	return error;
}

void api_token_cleanup(brt_api_request *req)
{
	if (req->form && req->form->pp) {
		MHD_destroy_post_processor(req->form->pp);
		req->form->pp = NULL;
	}
}
