/* GSM 03.38 (GSM-7) / UCS-2 detection, SMS segment counting and French transliteration; pure. */
#ifndef PAYREMIND_GSM_H
#define PAYREMIND_GSM_H

#include <stddef.h>

enum gsm_coding { GSM_CODING_GSM7, GSM_CODING_UCS2 };

struct gsm_info {
	enum gsm_coding coding; /* GSM-7 when every character is in the basic set or its extension */
	size_t units;           /* septets (extension chars count 2) or UTF-16 code units (astral count 2) */
	int segments;           /* 1 when units <= 160/70, else ceil(units / 153) or ceil(units / 67) */
};

/* Analyse a UTF-8 text; -1 when it is not valid UTF-8. An empty text is 0 units, 1 segment. */
int gsm_analyze(const char *utf8, struct gsm_info *out) __attribute__((warn_unused_result));
/* 1 when the UTF-8 text is entirely GSM-7 (basic set + extension), 0 otherwise or when invalid. */
int gsm_is_gsm7(const char *utf8);
/* Newly allocated copy with ç→c, Ç→C, ê/ë→e, â→a, î/ï→i, ô→o, û→u, À→A, È→E, ’‘→', « »“”→", NBSP/NNBSP→space, –—→-. */
char *gsm_transliterate(const char *utf8);
/* "gsm7" or "ucs2". */
const char *gsm_coding_to_text(enum gsm_coding coding);

#endif
