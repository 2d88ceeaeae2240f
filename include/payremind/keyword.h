/* Inbound keywords (STOP, ARRET, HELP, AIDE, INFO, START, …): matching and reply texts; pure. */
#ifndef PAYREMIND_KEYWORD_H
#define PAYREMIND_KEYWORD_H

#include <stddef.h>

/* Number of keywords known; keyword_name(i) for i in [0, KEYWORD_COUNT). */
#define KEYWORD_COUNT 12
/* Room for a normalised keyword candidate: longer messages are never keywords. */
#define KEYWORD_NORM_MAX 32

enum keyword_action {
	KEYWORD_NONE,    /* not a keyword: stored, no reply */
	KEYWORD_OPT_OUT, /* STOP, ARRET, END, QUIT, CANCEL, UNSUBSCRIBE, OPTOUT */
	KEYWORD_HELP,    /* HELP, AIDE, INFO */
	KEYWORD_OPT_IN,  /* START, RETOUR */
};

enum keyword_lang { KEYWORD_EN, KEYWORD_FR };

struct keyword_match {
	enum keyword_action action;
	enum keyword_lang lang; /* language of the reply: French for ARRET, AIDE, RETOUR */
	int index;              /* into keyword_name(), -1 when action is KEYWORD_NONE */
};

/* Normalise a message for matching: surrounding white space (NBSP included) and sentence punctuation
 * (. ! ? , ; :) dropped, letters upper-cased with their accents removed (ARRÊT -> ARRET, also in
 * decomposed form). 0, or -1 when text is not UTF-8 or the result does not fit in len. */
int keyword_normalize(const char *text, char *out, size_t len) __attribute__((warn_unused_result));
/* Match a whole inbound text (NULL is no keyword). */
void keyword_match(const char *text, struct keyword_match *out);
/* The canonical keyword (upper case, no accent) of index, NULL when out of range. */
const char *keyword_name(int index);
/* The reply to send for action in lang: <= 160 GSM-7 characters; NULL for KEYWORD_NONE. */
const char *keyword_reply(enum keyword_action action, enum keyword_lang lang);
/* "none", "opt_out", "help" or "opt_in" (the values of inbound_messages.action and replies.kind). */
const char *keyword_action_to_text(enum keyword_action action);
/* "en" or "fr". */
const char *keyword_lang_to_text(enum keyword_lang lang);

#endif
