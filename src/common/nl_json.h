/* JSON on jansson, bounded: size, nesting depth, duplicate keys rejected. */
#ifndef NL_JSON_H
#define NL_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define NL_JSON_MAX_DEPTH 16
#define NL_JSON_MAX_SIZE  (1024 * 1024)

/* Parse exactly len bytes (need not be NUL-terminated) as one JSON value.
 * Rejects: len > max_size, depth > max_depth, duplicate object keys, trailing garbage,
 * NUL bytes. If require_object, the top level must be an object.
 * On error writes a short reason to err (if non-NULL) and returns NL_ERR_INVALID/NL_ERR_TOO_BIG. */
int nl_json_parse(const char *buf, size_t len, size_t max_size, size_t max_depth, bool require_object,
                  json_t **out, char *err, size_t errlen);
/* The string value of key in obj, or NULL if absent or not a string. */
const char *nl_json_str(const json_t *obj, const char *key);
/* Integer value of key; NL_ERR_NOT_FOUND if absent, NL_ERR_INVALID if not an integer. */
int nl_json_int(const json_t *obj, const char *key, long long *out);
/* Does arr, an array, hold the string word? (false for anything else) */
bool nl_json_array_has(const json_t *arr, const char *word);
/* Serialize compactly into a new string (free(), or nl_free_secret() if it holds secrets). */
char *nl_json_dump(const json_t *v);

#endif
