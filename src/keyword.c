/* Inbound keywords: whole-message matching that ignores case, accents and surrounding spaces; replies. */
#include <string.h>

#include "payremind/keyword.h"
#include "payremind/utf8.h"

static const struct {
	const char *name;
	enum keyword_action action;
	enum keyword_lang lang;
} keyword_table[KEYWORD_COUNT] = {
	{ "STOP", KEYWORD_OPT_OUT, KEYWORD_EN },
	{ "ARRET", KEYWORD_OPT_OUT, KEYWORD_FR },
	{ "END", KEYWORD_OPT_OUT, KEYWORD_EN },
	{ "QUIT", KEYWORD_OPT_OUT, KEYWORD_EN },
	{ "CANCEL", KEYWORD_OPT_OUT, KEYWORD_EN },
	{ "UNSUBSCRIBE", KEYWORD_OPT_OUT, KEYWORD_EN },
	{ "OPTOUT", KEYWORD_OPT_OUT, KEYWORD_EN },
	{ "HELP", KEYWORD_HELP, KEYWORD_EN },
	{ "AIDE", KEYWORD_HELP, KEYWORD_FR },
	{ "INFO", KEYWORD_HELP, KEYWORD_EN },
	{ "START", KEYWORD_OPT_IN, KEYWORD_EN },
	{ "RETOUR", KEYWORD_OPT_IN, KEYWORD_FR },
};

/*
 * CWTA: name the program, the support line, how to stop, the frequency; the opt-out confirmation says
 * how to opt back in. French as OQLF writes it (1 877 322-1414, de 8 h à 20 h), English as CWTA does. GSM-7 only (é and à are in the basic set; ê, ç and ’ are not), one segment each:
 * test_keyword checks both.
 */
static const char *const keyword_replies[][2] = {
	[KEYWORD_OPT_OUT] = { "ARO: you are unsubscribed from payment reminders by text and will get no "
	                      "more. Reply START to "
	                      "resubscribe. Help: 1-877-322-1414",
	    "ARO : vous ne recevrez plus de textos de notre part. Aide : 1 877 322-1414. Pour vous réabonner, "
	    "textez RETOUR." },
	[KEYWORD_HELP] = { "ARO payment reminders: up to 3 texts per amount due. Help: 1-877-322-1414 "
	                   "(Mon-Fri 8:00-20:00 "
	                   "ET). Reply STOP to unsubscribe. Msg&data rates may apply.",
	    "ARO, rappels de paiement par texto (3 au plus par somme due). Aide : 1 877 322-1414, du lun. au "
	    "ven., de 8 h à 20 h (heure de l'Est). Textez ARRET pour cesser." },
	[KEYWORD_OPT_IN] = { "ARO: you are subscribed again to payment reminders by text. Reply STOP to "
	                     "unsubscribe, HELP for "
	                     "help. Info: 1-877-322-1414",
	    "ARO : vous recevrez de nouveau nos rappels de paiement par texto. Aide : 1 877 322-1414. Textez "
	    "ARRET pour ne plus en recevoir." },
};

/* Base letters of U+00C0..U+00FF ('?' for Æ, ×, Þ, ß, æ, ÷, þ: never part of a keyword). */
static const char keyword_latin1[] = "AAAAAA?CEEEEIIIIDNOOOOO?OUUUUY??"
                                     "AAAAAA?CEEEEIIIIDNOOOOO?OUUUUY?Y";

#define KEYWORD_OTHER '\x1a' /* a character no keyword contains */

static int
keyword_is_space(long cp)
{
	return cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == 0xa0 || (cp >= 0x2000 && cp <= 0x200b) ||
	    cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

/* What cp becomes for matching: an upper-case ASCII character, ' ' for any space, 0 to drop it
 * (combining accents), KEYWORD_OTHER for anything no keyword contains. */
static char
keyword_fold(long cp)
{
	if (keyword_is_space(cp))
		return ' ';
	if (cp >= 'a' && cp <= 'z')
		return (char)(cp - 'a' + 'A');
	if (cp < 0x80)
		return (char)cp;
	if (cp >= 0x300 && cp <= 0x36f)
		return 0;
	if (cp >= 0xc0 && cp <= 0xff)
		return keyword_latin1[cp - 0xc0] == '?' ? KEYWORD_OTHER : keyword_latin1[cp - 0xc0];
	return KEYWORD_OTHER;
}

static int
keyword_is_trimmed(char c)
{
	return c == ' ' || strchr(".!?,;:", c) != NULL;
}

/*
 * One pass: characters to trim are written but only kept (committed) once something else follows
 * them, so trailing ones vanish and a long run of trailing spaces cannot make "STOP" overflow out.
 */
int
keyword_normalize(const char *text, char *out, size_t len)
{
	const unsigned char *s = (const unsigned char *)text, *end = s + strlen(text);
	size_t w = 0, keep = 0;
	int lost = 0;

	if (len == 0)
		return -1;
	while (s < end) {
		uint32_t cp;
		char c;

		if (utf8_next(&s, (size_t)(end - s), &cp) == -1)
			return -1;
		if ((c = keyword_fold(cp)) == 0)
			continue;
		if (keyword_is_trimmed(c)) {
			if (keep == 0)
				continue;
			if (w + 1 < len)
				out[w++] = c;
			else
				lost = 1;
			continue;
		}
		if (lost || w + 1 >= len)
			return -1;
		out[w++] = c;
		keep = w;
	}
	out[keep] = '\0';
	return 0;
}

void
keyword_match(const char *text, struct keyword_match *out)
{
	char norm[KEYWORD_NORM_MAX + 1];
	int i;

	out->action = KEYWORD_NONE;
	out->lang = KEYWORD_EN;
	out->index = -1;
	if (text == NULL || keyword_normalize(text, norm, sizeof(norm)) == -1)
		return;
	for (i = 0; i < KEYWORD_COUNT; i++) {
		if (strcmp(norm, keyword_table[i].name) == 0) {
			out->action = keyword_table[i].action;
			out->lang = keyword_table[i].lang;
			out->index = i;
			return;
		}
	}
}

const char *
keyword_name(int index)
{
	return index >= 0 && index < KEYWORD_COUNT ? keyword_table[index].name : NULL;
}

const char *
keyword_reply(enum keyword_action action, enum keyword_lang lang)
{
	if (action == KEYWORD_NONE ||
	    (unsigned)action >= sizeof(keyword_replies) / sizeof(keyword_replies[0]))
		return NULL;
	return keyword_replies[action][lang == KEYWORD_FR];
}

const char *
keyword_action_to_text(enum keyword_action action)
{
	switch (action) {
	case KEYWORD_OPT_OUT:
		return "opt_out";
	case KEYWORD_HELP:
		return "help";
	case KEYWORD_OPT_IN:
		return "opt_in";
	case KEYWORD_NONE:
		break;
	}
	return "none";
}

const char *
keyword_lang_to_text(enum keyword_lang lang)
{
	return lang == KEYWORD_FR ? "fr" : "en";
}
