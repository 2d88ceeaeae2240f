/* The payment page: every way to pay, in the reminder's language, through the escaping writer. */
#include <stdio.h>
#include <string.h>

#include "payremind/paypage.h"
#include "payremind/template.h"
#include "payremind/tz.h"

#define NBSP "\xc2\xa0"

const char *const paypage_headers[][2] = {
	{ "Content-Type", "text/html; charset=utf-8" },
	{ "Cache-Control", "no-store" },
	{ "Referrer-Policy", "no-referrer" },
	{ "X-Robots-Tag", "noindex" },
	{ "X-Content-Type-Options", "nosniff" },
	/* no form-action: browsers apply it to the 303 that hands the person to the portal */
	{ "Content-Security-Policy",
	    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
	    "base-uri 'none'" },
	{ NULL, NULL },
};

/* The texts of one language; the French follows ../FRENCH.md (OQLF typography, "vous"). */
struct paypage_text {
	const char *lang, *title, *intro, *amount, *due, *ref, *how, *button, *phone, *bank_before,
	    *bank_middle, *bank_after, *mail, *stop_title, *stop, *spent, *nothing, *unknown, *other_lang,
	    *other_href, *permit, *permit_after;
};

static const struct paypage_text paypage_fr = {
	.lang = "fr",
	.title = "Rappel de paiement",
	.intro = "ARO vous écrit au sujet du dossier ",
	.amount = "Montant dû",
	.due = "Date d'échéance",
	.ref = "Référence",
	.how = "Comment payer",
	.button = "Payer en ligne",
	.phone = "Par téléphone" NBSP ": <a href=\"tel:+18773221414\">1" NBSP "877" NBSP
	         "322-1414</a>, du lundi au "
	         "vendredi, de 8" NBSP "h à 20" NBSP "h (heure de l'Est)",
	.bank_before =
	    "Par les services bancaires en ligne de votre institution financière" NBSP ": ajoutez ",
	.bank_middle = " comme fournisseur (ou bénéficiaire), puis inscrivez ",
	.bank_after = " comme numéro de compte.",
	.mail = "Par la poste" NBSP ": ",
	.stop_title = "Ne plus recevoir nos textos",
	.stop = "Pour ne plus recevoir nos textos, répondez ARRET à l'un d'eux.",
	.spent =
	    "Ce lien a déjà servi ou n'est plus valide. Vous pouvez toujours payer par téléphone ou par vos "
	    "services bancaires en ligne" NBSP ":",
	.nothing = "Aucun paiement n'est attendu pour ce dossier. Merci.",
	.unknown = "Ce lien n'est pas valide. Pour toute question, appelez-nous.",
	.other_lang = "English",
	.other_href = "?lang=en",
	.permit = "Titulaire du permis d'agence de recouvrement numéro ",
	.permit_after = ", délivré par l'Office de la protection du consommateur.",
};

static const struct paypage_text paypage_en = {
	.lang = "en",
	.title = "Payment reminder",
	.intro = "ARO is writing to you about account ",
	.amount = "Amount due",
	.due = "Due date",
	.ref = "Reference",
	.how = "How to pay",
	.button = "Pay online",
	.phone =
	    "By phone: <a href=\"tel:+18773221414\">1-877-322-1414</a>, Monday to Friday, 8" NBSP "a.m. to "
	    "8" NBSP "p.m. Eastern Time",
	.bank_before = "Through your financial institution's online banking: add ",
	.bank_middle = " as a payee, then enter ",
	.bank_after = " as the account number.",
	.mail = "By mail: ",
	.stop_title = "Stop our text messages",
	.stop = "To stop our text messages, reply STOP to any of them.",
	.spent =
	    "This link has already been used or is no longer valid. You can still pay by phone or through "
	    "online banking:",
	.nothing = "No payment is due on this account. Thank you.",
	.unknown = "This link is not valid. If you have a question, please call us.",
	.other_lang = "Français",
	.other_href = "?lang=fr",
	.permit = "Collection agency permit number ",
	.permit_after = ", issued by the Office de la protection du consommateur.",
};

/* Our own fixed texts above hold markup (links, entities): they go out through html_raw_ with their
 * length, never anything a request or a row carries. */
static void
paypage_fixed(struct html *h, const char *s)
{
	html_raw_(h, s, strlen(s));
}

/* One paragraph of our own text. */
static void
paypage_para(struct html *h, const char *text)
{
	html_lit(h, "<p>");
	paypage_fixed(h, text);
	html_lit(h, "</p>");
}

/* An account reference, kept on one line (its hyphen is no place to break it). */
static void
paypage_ref(struct html *h, const char *ref)
{
	html_lit(h, "<span class=\"ref\">");
	html_text(h, ref);
	html_lit(h, "</span>");
}

void
paypage_amount(int64_t cents, const char *currency, const char *lang, char *buf, size_t len)
{
	char plain[64];
	size_t i, w = 0;

	template_amount(cents, currency, lang, plain, sizeof(plain));
	for (i = 0; plain[i] != '\0' && w + 3 < len; i++) {
		if (plain[i] == ' ' && strcmp(lang, "fr") == 0) {
			memcpy(buf + w, NBSP, 2);
			w += 2;
		} else
			buf[w++] = plain[i];
	}
	if (len > 0)
		buf[w] = '\0';
}

void
paypage_date(int32_t day, const char *lang, char *buf, size_t len)
{
	static const char *const fr[] = { "janvier", "février", "mars", "avril", "mai", "juin", "juillet",
		"août", "septembre", "octobre", "novembre", "décembre" };
	static const char *const en[] = { "January", "February", "March", "April", "May", "June", "July",
		"August", "September", "October", "November", "December" };
	int y, m, d;

	tz_civil_from_days(day, &y, &m, &d);
	if (strcmp(lang, "fr") == 0)
		snprintf(buf, len, "le" NBSP "%d%s" NBSP "%s" NBSP "%d", d, d == 1 ? "er" : "", fr[m - 1], y);
	else
		snprintf(buf, len, "%s %d, %d", en[m - 1], d, y);
}

static void
paypage_head(struct html *h, const struct paypage_text *t)
{
	html_lit(h, "<!DOCTYPE html>\n<html lang=\"");
	html_text(h, t->lang);
	html_lit(h,
	    "\"><head><meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
	paypage_fixed(h, t->title);
	html_lit(h,
	    " – ARO</title><style>"
	    "body{margin:0;font:1.0625rem/1.5 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;"
	    "color:#1a1a1a;background:#fff}"
	    "main{max-width:36rem;margin:0 auto;padding:1rem}"
	    "h1{font-size:1.5rem;margin:.5rem 0}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}"
	    "dl{margin:1rem 0}"
	    "dt{font-weight:600}dd{margin:0 0 .5rem}.ref{white-space:nowrap}"
	    "p,li,dd{overflow-wrap:break-word}ul{padding-left:1.25rem}li{margin:.5rem 0}"
	    "button{font:inherit;font-weight:600;color:#fff;background:#0b4f8a;border:0;border-radius:.375rem;"
	    "padding:.75rem 1.25rem;min-height:44px;width:100%;max-width:20rem;cursor:pointer}"
	    "button:focus{outline:3px solid #f2a900;outline-offset:2px}"
	    "a{color:#0b4f8a}footer{margin-top:2rem;font-size:.875rem;color:#4a4a4a}"
	    "</style></head><body><main>");
}

static void
paypage_foot(struct html *h, const struct paypage_text *t, const struct paypage_conf *c)
{
	html_lit(h, "<footer><p><a href=\"");
	paypage_fixed(h, t->other_href);
	html_lit(h, "\" lang=\"");
	html_text(h, t == &paypage_fr ? "en" : "fr");
	html_lit(h, "\">");
	paypage_fixed(h, t->other_lang);
	html_lit(h, "</a></p>");
	if (c->permit != NULL && c->permit[0] != '\0') {
		html_lit(h, "<p>ARO. ");
		paypage_fixed(h, t->permit);
		html_text(h, c->permit);
		paypage_fixed(h, t->permit_after);
		html_lit(h, "</p>");
	}
	html_lit(h, "</footer></main></body></html>\n");
}

/* The phone line, online banking and (when configured) mail: every way to pay but the button. */
static void
paypage_other_ways(
    struct html *h, const struct paypage_text *t, const struct paypage_row *r, const struct paypage_conf *c)
{
	html_lit(h, "<ul><li>");
	paypage_fixed(h, t->phone);
	html_lit(h, "</li><li>");
	paypage_fixed(h, t->bank_before);
	html_lit(h, "<strong>");
	html_text(h, c->bank_payee != NULL && c->bank_payee[0] != '\0' ? c->bank_payee : "ARO");
	html_lit(h, "</strong>");
	paypage_fixed(h, t->bank_middle);
	html_lit(h, "<strong>");
	paypage_ref(h, r->account_ref);
	html_lit(h, "</strong>");
	paypage_fixed(h, t->bank_after);
	html_lit(h, "</li>");
	if (c->mail_address != NULL && c->mail_address[0] != '\0') {
		html_lit(h, "<li>");
		paypage_fixed(h, t->mail);
		html_text(h, c->mail_address);
		html_lit(h, "</li>");
	}
	html_lit(h, "</ul>");
}

static void
paypage_stop(struct html *h, const struct paypage_text *t)
{
	html_lit(h, "<h2>");
	paypage_fixed(h, t->stop_title);
	html_lit(h, "</h2>");
	paypage_para(h, t->stop);
}

static void
paypage_summary(struct html *h, const struct paypage_text *t, const struct paypage_row *r)
{
	char amount[64], due[64];

	paypage_amount(r->amount_cents, r->currency, t->lang, amount, sizeof(amount));
	paypage_date(r->due_date, t->lang, due, sizeof(due));
	html_lit(h, "<dl><dt>");
	paypage_fixed(h, t->amount);
	html_lit(h, "</dt><dd>");
	html_text(h, amount);
	html_lit(h, "</dd><dt>");
	paypage_fixed(h, t->due);
	html_lit(h, "</dt><dd>");
	html_text(h, due);
	html_lit(h, "</dd><dt>");
	paypage_fixed(h, t->ref);
	html_lit(h, "</dt><dd>");
	paypage_ref(h, r->account_ref);
	html_lit(h, "</dd></dl>");
}

int
paypage_render(enum paypage_view view, const char *lang, const struct paypage_row *row,
    const struct paypage_conf *conf, struct html *out)
{
	const struct paypage_text *t = lang != NULL && strcmp(lang, "fr") == 0 ? &paypage_fr : &paypage_en;

	paypage_head(out, t);
	html_lit(out, "<h1>");
	paypage_fixed(out, t->title);
	html_lit(out, "</h1>");
	switch (view) {
	case PAYPAGE_VALID:
		html_lit(out, "<p>");
		paypage_fixed(out, t->intro);
		paypage_ref(out, row->account_ref);
		html_lit(out, ".</p>");
		paypage_summary(out, t, row);
		html_lit(out, "<h2>");
		paypage_fixed(out, t->how);
		html_lit(out, "</h2>");
		if (conf->online) {
			html_lit(out, "<form method=\"post\"><button type=\"submit\">");
			paypage_fixed(out, t->button);
			html_lit(out, "</button></form>");
		}
		paypage_other_ways(out, t, row, conf);
		break;
	case PAYPAGE_SPENT:
		paypage_para(out, t->spent);
		paypage_other_ways(out, t, row, conf);
		break;
	case PAYPAGE_NOTHING:
		paypage_para(out, t->nothing);
		break;
	case PAYPAGE_UNKNOWN:
		paypage_para(out, t->unknown);
		paypage_para(out, t->phone);
		break;
	}
	if (view != PAYPAGE_UNKNOWN)
		paypage_stop(out, t);
	paypage_foot(out, t, conf);
	return view == PAYPAGE_SPENT ? 410 : view == PAYPAGE_UNKNOWN ? 404 : 200;
}
