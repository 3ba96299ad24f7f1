/* Reading the S3 API's XML answers with libxml2: a tree of at most
 * S3_RESPONSE_MAX bytes of input, parsed without network access, DTD
 * loading or entity substitution, so an answer can never make the parser
 * fetch or expand anything.  Elements are matched by local name, as S3
 * and RGW put them in a default namespace (or none). */
#include "storage/s3/s3_internal.h"

#include <limits.h>
#include <string.h>

#include <libxml/parser.h>

xmlDoc *s3_xml_parse(const char *buf, size_t len)
{
	if (!buf || len == 0 || len > S3_RESPONSE_MAX || len > INT_MAX)
		return NULL;
	return xmlReadMemory(buf, (int)len, "s3.xml", NULL,
			     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
}

int s3_xml_is(const xmlNode *node, const char *name)
{
	return node && node->type == XML_ELEMENT_NODE && node->name &&
	       strcmp((const char *)node->name, name) == 0;
}

xmlNode *s3_xml_next(xmlNode *node, const char *name)
{
	for (node = node ? node->next : NULL; node; node = node->next)
		if (s3_xml_is(node, name))
			return node;
	return NULL;
}

xmlNode *s3_xml_child(xmlNode *parent, const char *name)
{
	xmlNode *node;

	if (!parent)
		return NULL;
	for (node = parent->children; node; node = node->next)
		if (s3_xml_is(node, name))
			return node;
	return NULL;
}

int s3_xml_text(xmlNode *parent, const char *name, char *out, size_t cap)
{
	xmlNode *node = s3_xml_child(parent, name);
	xmlChar *text;
	size_t len;

	if (cap > 0)
		out[0] = '\0';
	if (!node || !(text = xmlNodeGetContent(node)))
		return -1;
	len = strlen((const char *)text);
	if (len >= cap) {
		xmlFree(text);
		return -1;
	}
	memcpy(out, text, len + 1);
	xmlFree(text);
	return 0;
}

void s3_xml_error_code(const char *buf, size_t len, char *out, size_t cap)
{
	xmlDoc *doc = s3_xml_parse(buf, len);
	xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;

	if (cap > 0)
		out[0] = '\0';
	if (s3_xml_is(root, "Error") && s3_xml_text(root, "Code", out, cap) < 0 && cap > 0)
		out[0] = '\0';
	/* Only printable ASCII goes into error details. */
	for (size_t i = 0; i < cap && out[i]; i++)
		if ((unsigned char)out[i] < 0x21 || (unsigned char)out[i] > 0x7e)
			out[i] = '?';
	xmlFreeDoc(doc);
}
