/* The QR code of the verification URL, drawn with text so that any terminal can show it
 * (libqrencode). Used by the PAM module and by nhsloginctl login. */
#ifndef NL_QR_H
#define NL_QR_H

/* How the QR code is drawn: UTF-8 half blocks (two module rows a line) or ASCII ("##"). */
enum nl_qr_style { NL_QR_UTF8 = 0, NL_QR_ASCII };

/* Draw text as a QR code; a new string of lines ending in '\n' (free()). */
int nl_qr_render(const char *text, enum nl_qr_style style, char **out);

#endif
