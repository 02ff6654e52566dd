/* The QR code of the verification URL, drawn with text so any terminal can show it. */
#include "config.h"
#include "nl_qr.h"
#include "nl_err.h"

#include <qrencode.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define QR_QUIET 2 /* light modules around the code; phone scanners need a margin */

/* Is the module at (x, y) dark? Outside the symbol (the quiet zone) is light. */
static bool dark(const QRcode *qr, int x, int y)
{
	if (x < 0 || y < 0 || x >= qr->width || y >= qr->width)
		return false;
	return (qr->data[y * qr->width + x] & 1) != 0;
}

/* Terminals draw light text on a dark background, so light modules are printed as blocks and
 * dark modules as spaces; the scanner then sees dark-on-light as the standard requires. */
static size_t render_utf8(const QRcode *qr, char *p)
{
	static const char *cells[4] = {"\xe2\x96\x88", "\xe2\x96\x80", "\xe2\x96\x84", " "};
	size_t n = 0;
	int lo = -QR_QUIET, hi = qr->width + QR_QUIET;

	for (int y = lo; y < hi; y += 2) {
		for (int x = lo; x < hi; x++) {
			/* index: top dark = 2, bottom dark = 1 */
			int idx = (dark(qr, x, y) ? 2 : 0) | (dark(qr, x, y + 1) ? 1 : 0);
			const char *c = cells[idx];
			size_t l = strlen(c);
			memcpy(p + n, c, l);
			n += l;
		}
		p[n++] = '\n';
	}
	return n;
}

static size_t render_ascii(const QRcode *qr, char *p)
{
	size_t n = 0;
	int lo = -QR_QUIET, hi = qr->width + QR_QUIET;

	for (int y = lo; y < hi; y++) {
		for (int x = lo; x < hi; x++) {
			const char *c = dark(qr, x, y) ? "  " : "##";
			memcpy(p + n, c, 2);
			n += 2;
		}
		p[n++] = '\n';
	}
	return n;
}

int nl_qr_render(const char *text, enum nl_qr_style style, char **out)
{
	QRcode *qr;
	char *buf;
	size_t side, cap, n;

	if (text == NULL || strlen(text) > 1024)
		return NL_ERR_INVALID;
	if ((qr = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1)) == NULL)
		return NL_ERR_INVALID;
	side = (size_t)qr->width + 2 * QR_QUIET;
	/* Worst case: 3 bytes a cell (UTF-8) or 2 (ASCII), plus a newline a line. */
	cap = side * (side + 1) * 3 + 1;
	if ((buf = malloc(cap)) == NULL) {
		QRcode_free(qr);
		return NL_ERR_NOMEM;
	}
	n = style == NL_QR_ASCII ? render_ascii(qr, buf) : render_utf8(qr, buf);
	buf[n] = '\0';
	QRcode_free(qr);
	*out = buf;
	return 0;
}
