/* JSON on jansson with bounds: size, depth, duplicate keys, NUL bytes, trailing data. */
#include "config.h"
#include "nl_json.h"
#include "nl_err.h"

#include <string.h>

/* Depth of v, stopping early once it passes limit (so work stays bounded). */
static size_t json_depth(const json_t *v, size_t limit)
{
	size_t best = 0, d;
	const char *key;
	json_t *child;
	size_t i;

	if (limit == 0)
		return 1;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, child)
		{
			if ((d = json_depth(child, limit - 1)) > best)
				best = d;
			if (best >= limit)
				break;
		}
		return best + 1;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, child)
		{
			if ((d = json_depth(child, limit - 1)) > best)
				best = d;
			if (best >= limit)
				break;
		}
		return best + 1;
	}
	return 0;
}

int nl_json_parse(const char *buf, size_t len, size_t max_size, size_t max_depth, bool require_object,
                  json_t **out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *v;

	if (len > max_size)
		return nl_errf(err, errlen, NL_ERR_TOO_BIG, "JSON document too large");
	if (buf == NULL || memchr(buf, '\0', len) != NULL)
		return nl_errf(err, errlen, NL_ERR_INVALID, "JSON document contains a NUL byte");
	v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (v == NULL)
		return nl_errf(err, errlen, NL_ERR_INVALID, "malformed JSON at line %d column %d: %s",
		               jerr.line, jerr.column, jerr.text);
	if (require_object && !json_is_object(v)) {
		json_decref(v);
		return nl_errf(err, errlen, NL_ERR_INVALID, "JSON document is not an object");
	}
	/* Containers count as one level each: {"a":1} has depth 1. */
	if (json_depth(v, max_depth + 1) > max_depth) {
		json_decref(v);
		return nl_errf(err, errlen, NL_ERR_TOO_BIG, "JSON document nested too deeply");
	}
	*out = v;
	return 0;
}

const char *nl_json_str(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int nl_json_int(const json_t *obj, const char *key, long long *out)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL)
		return NL_ERR_NOT_FOUND;
	if (!json_is_integer(v))
		return NL_ERR_INVALID;
	*out = json_integer_value(v);
	return 0;
}

bool nl_json_array_has(const json_t *arr, const char *word)
{
	size_t i;
	const json_t *v;

	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), word) == 0)
			return true;
	}
	return false;
}

char *nl_json_dump(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT);
}
