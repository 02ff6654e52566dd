/* Project error codes and their descriptions. */
#include "config.h"
#include "nl_err.h"

#include <stdio.h>

const char *nl_strerror(int r)
{
	switch (r) {
	case NL_OK:
		return "success";
	case NL_ERR_INTERNAL:
		return "internal error";
	case NL_ERR_NOMEM:
		return "out of memory";
	case NL_ERR_INVALID:
		return "malformed input";
	case NL_ERR_IO:
		return "input/output error";
	case NL_ERR_PERM:
		return "unsafe owner or mode, or not allowed";
	case NL_ERR_CONFIG:
		return "configuration error";
	case NL_ERR_TOO_BIG:
		return "size limit exceeded";
	case NL_ERR_TIMEOUT:
		return "timed out";
	case NL_ERR_NETWORK:
		return "network error";
	case NL_ERR_HTTP:
		return "unexpected HTTP response";
	case NL_ERR_ALG:
		return "algorithm not allowed";
	case NL_ERR_SIGNATURE:
		return "signature did not verify";
	case NL_ERR_KEY:
		return "no usable key";
	case NL_ERR_CLAIM:
		return "claim check failed";
	case NL_ERR_EXPIRED:
		return "expired";
	case NL_ERR_NOT_FOUND:
		return "not found";
	case NL_ERR_DENIED:
		return "denied";
	case NL_ERR_LIMIT:
		return "limit reached";
	case NL_ERR_UNAVAILABLE:
		return "service unavailable";
	case NL_ERR_CLOSED:
		return "connection closed";
	}
	return "unknown error";
}

int nl_verrf(char *err, size_t errlen, int ret, const char *fmt, va_list ap)
{
	if (err != NULL && errlen > 0)
		vsnprintf(err, errlen, fmt, ap);
	return ret;
}

int nl_errf(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	nl_verrf(err, errlen, ret, fmt, ap);
	va_end(ap);
	return ret;
}
