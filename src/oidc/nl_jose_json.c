/* The JSON of a JWS header and of a JWT's claims, parsed fast. jansson's reader costs as much as a
 * third of an RSA verification on a typical ID token; the shapes tokens are made of (ASCII strings
 * with the short escapes, integers, literals, arrays and objects) are built here straight into
 * jansson values. Anything else, and every error, goes to nl_json_parse, whose verdict and value
 * are the rule: this path only ever accepts what it would accept, with the same value. */
#include "config.h"
#include "nl_jose_int.h"
#include "nl_json.h"

#include <string.h>

#define FAST_STR_MAX    256 /* longest string with escapes decoded here (on the stack) */
#define FAST_INT_DIGITS 18  /* any 18-digit integer fits in a json_int_t */

struct fast {
	const char *p, *end;
	size_t depth;
};

static json_t *fast_value(struct fast *s);

static void fast_ws(struct fast *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool fast_at(struct fast *s, char c)
{
	fast_ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return true;
	}
	return false;
}

/* A string of printable ASCII with the escapes \" \\ \/ \b \f \n \r \t (no \u, no byte >= 0x80:
 * those are left to jansson, which checks UTF-8 and surrogates). buf holds FAST_STR_MAX bytes;
 * *out points at the bytes, in the input itself when there is no escape. */
static bool fast_string(struct fast *s, char *buf, const char **out, size_t *len)
{
	static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
	const char *q, *start;
	size_t n = 0;
	bool escaped = false;

	fast_ws(s);
	if (s->p >= s->end || *s->p != '"')
		return false;
	start = q = s->p + 1;
	for (; q < s->end && *q != '"'; q++) {
		if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x80)
			return false;
		if (*q == '\\') {
			if (++q >= s->end || memchr(esc_in, *q, sizeof(esc_in) - 1) == NULL)
				return false;
			escaped = true;
		}
	}
	if (q >= s->end)
		return false;
	s->p = q + 1;
	if (!escaped) {
		*out = start;
		*len = (size_t)(q - start);
		return true;
	}
	if ((size_t)(q - start) > FAST_STR_MAX)
		return false;
	for (const char *c = start; c < q; c++)
		buf[n++] = *c != '\\' ? *c : esc_out[strchr(esc_in, *++c) - esc_in];
	*out = buf;
	*len = n;
	return true;
}

/* -?(0|[1-9][0-9]*) of at most FAST_INT_DIGITS digits; a fraction or exponent is jansson's. */
static json_t *fast_integer(struct fast *s)
{
	bool neg = false;
	json_int_t v = 0;
	size_t digits = 0;

	if (*s->p == '-') {
		neg = true;
		s->p++;
	}
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		if (++digits > FAST_INT_DIGITS || (digits == 2 && v == 0))
			return NULL;
		v = v * 10 + (*s->p++ - '0');
	}
	if (digits == 0 || (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E')))
		return NULL;
	return json_integer(neg ? -v : v);
}

static json_t *fast_literal(struct fast *s, const char *word, json_t *v)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return NULL;
	s->p += n;
	return v;
}

static json_t *fast_object(struct fast *s)
{
	char buf[FAST_STR_MAX];
	json_t *obj = json_object(), *v;
	const char *key;
	size_t len;

	if (obj == NULL)
		return NULL;
	if (fast_at(s, '}'))
		return obj;
	do {
		if (!fast_string(s, buf, &key, &len) || !fast_at(s, ':') ||
		    json_object_getn(obj, key, len) != NULL)
			goto fail;
		/* key points into the input or into this frame's buf, which fast_value does not touch. */
		if ((v = fast_value(s)) == NULL)
			goto fail;
		if (json_object_setn_new_nocheck(obj, key, len, v) != 0)
			goto fail;
	} while (fast_at(s, ','));
	if (fast_at(s, '}'))
		return obj;
fail:
	json_decref(obj);
	return NULL;
}

static json_t *fast_array(struct fast *s)
{
	json_t *arr = json_array(), *v;

	if (arr == NULL)
		return NULL;
	if (fast_at(s, ']'))
		return arr;
	do {
		if ((v = fast_value(s)) == NULL || json_array_append_new(arr, v) != 0)
			goto fail;
	} while (fast_at(s, ','));
	if (fast_at(s, ']'))
		return arr;
fail:
	json_decref(arr);
	return NULL;
}

static json_t *fast_value(struct fast *s)
{
	char buf[FAST_STR_MAX];
	const char *str;
	json_t *v = NULL;
	size_t len;

	fast_ws(s);
	if (s->p >= s->end)
		return NULL;
	switch (*s->p) {
	case '{':
	case '[':
		/* Containers count as one level each, as nl_json_parse counts them. */
		if (++s->depth > NL_JSON_MAX_DEPTH)
			return NULL;
		s->p++;
		v = s->p[-1] == '{' ? fast_object(s) : fast_array(s);
		s->depth--;
		return v;
	case '"':
		return fast_string(s, buf, &str, &len) ? json_stringn_nocheck(str, len) : NULL;
	case 't':
		return fast_literal(s, "true", json_true());
	case 'f':
		return fast_literal(s, "false", json_false());
	case 'n':
		return fast_literal(s, "null", json_null());
	default:
		return fast_integer(s);
	}
}

int nl_jose_json_parse(const char *buf, size_t len, size_t max_size, json_t **out)
{
	struct fast s = {.p = buf, .end = buf, .depth = 0};
	json_t *v = NULL;

	if (buf != NULL)
		s.end = buf + len;
	if (buf != NULL && len <= max_size && fast_at(&s, '{')) {
		s.depth = 1;
		v = fast_object(&s);
		fast_ws(&s);
		if (v != NULL && s.p == s.end) {
			*out = v;
			return 0;
		}
		json_decref(v);
	}
	return nl_json_parse(buf, len, max_size, NL_JSON_MAX_DEPTH, true, out, NULL, 0);
}
