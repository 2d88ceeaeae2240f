/* The funnel report: counts per group rendered as text, JSON or one HTML page with inline SVG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payremind/report.h"

static const char *const report_names[REPORT_NSTAGES] = { "sent", "delivered", "failed", "unknown", "opened",
	"checkout", "paid", "opted_out" };

/* The stages drawn as the funnel: how many got each step further towards a payment. */
static const enum report_stage report_funnel[] = { REPORT_SENT, REPORT_DELIVERED, REPORT_OPENED,
	REPORT_CHECKOUT, REPORT_PAID };

const char *
report_stage_name(enum report_stage s)
{
	return s >= 0 && s < REPORT_NSTAGES ? report_names[s] : "?";
}

static void
report_total(const struct report_group *g, int n, struct report_group *t)
{
	int i, s;

	memset(t, 0, sizeof(*t));
	snprintf(t->key, sizeof(t->key), "total");
	for (i = 0; i < n; i++)
		for (s = 0; s < REPORT_NSTAGES; s++)
			t->n[s] += g[i].n[s];
}

json_t *
report_json(const char *by, const struct report_group *g, int n)
{
	json_t *arr = json_array(), *o;
	int i, s;

	for (i = 0; arr != NULL && i < n; i++) {
		if ((o = json_object()) == NULL)
			break;
		if (strcmp(by, "step") == 0)
			json_object_set_new(o, by, json_integer(strtol(g[i].key, NULL, 10)));
		else
			json_object_set_new(o, by, json_string(g[i].key));
		for (s = 0; s < REPORT_NSTAGES; s++)
			json_object_set_new(o, report_names[s], json_integer(g[i].n[s]));
		json_array_append_new(arr, o);
	}
	return arr;
}

void
report_text(FILE *fp, const char *by, const struct report_group *g, int n)
{
	struct report_group t;
	int i, s;

	report_total(g, n, &t);
	fprintf(fp, "%-12s", by);
	for (s = 0; s < REPORT_NSTAGES; s++)
		fprintf(fp, " %10s", report_names[s]);
	fputc('\n', fp);
	for (i = 0; i <= n; i++) {
		const struct report_group *r = i < n ? &g[i] : &t;

		fprintf(fp, "%-12s", r->key);
		for (s = 0; s < REPORT_NSTAGES; s++)
			fprintf(fp, " %10ld", r->n[s]);
		fputc('\n', fp);
	}
}

/* The funnel: one bar per stage, its width the share of those sent. */
static void
report_svg_funnel(struct html *h, const struct report_group *t)
{
	size_t i, nf = sizeof(report_funnel) / sizeof(report_funnel[0]);
	long top = t->n[REPORT_SENT] > 0 ? t->n[REPORT_SENT] : 1;

	html_lit(h, "<svg role=\"img\" aria-labelledby=\"funnel-title\" viewBox=\"0 0 640 ");
	html_textf(h, "%zu", 40 * nf + 10);
	html_lit(h, "\" width=\"100%\"><title id=\"funnel-title\">Funnel</title>");
	for (i = 0; i < nf; i++) {
		long v = t->n[report_funnel[i]];
		double w = 420.0 * (double)v / (double)top;

		html_lit(h, "<text x=\"0\" y=\"");
		html_textf(h, "%zu", 40 * i + 27);
		html_lit(h, "\" font-size=\"14\">");
		html_text(h, report_names[report_funnel[i]]);
		html_lit(h, "</text><rect x=\"100\" y=\"");
		html_textf(h, "%zu", 40 * i + 10);
		html_lit(h, "\" height=\"26\" fill=\"#0b4f8a\" width=\"");
		html_textf(h, "%.1f", w > 420.0 ? 420.0 : w);
		html_lit(h, "\"/><text x=\"");
		html_textf(h, "%.1f", 108.0 + (w > 420.0 ? 420.0 : w));
		html_lit(h, "\" y=\"");
		html_textf(h, "%zu", 40 * i + 28);
		html_lit(h, "\" font-size=\"14\">");
		html_textf(h, "%ld (%.1f %%)", v, 100.0 * (double)v / (double)top);
		html_lit(h, "</text>");
	}
	html_lit(h, "</svg>");
}

/* Sent (bars) and paid (dots) per day, one column a day. */
static void
report_svg_days(struct html *h, const struct report_group *g, int n)
{
	long max = 1;
	double col;
	int i;

	for (i = 0; i < n; i++)
		max = g[i].n[REPORT_SENT] > max ? g[i].n[REPORT_SENT] : max;
	col = n > 0 ? 600.0 / n : 600.0;
	html_lit(h,
	    "<svg role=\"img\" aria-labelledby=\"days-title\" viewBox=\"0 0 640 260\" width=\"100%\">"
	    "<title id=\"days-title\">Sent (bars) and paid (dots) per day</title>"
	    "<line x1=\"30\" y1=\"220\" x2=\"640\" y2=\"220\" stroke=\"#4a4a4a\"/>");
	for (i = 0; i < n; i++) {
		double x = 30.0 + col * i, hs = 200.0 * (double)g[i].n[REPORT_SENT] / (double)max,
		       hp = 200.0 * (double)g[i].n[REPORT_PAID] / (double)max;

		html_lit(h, "<rect fill=\"#0b4f8a\" x=\"");
		html_textf(h, "%.1f", x + col * 0.1);
		html_lit(h, "\" y=\"");
		html_textf(h, "%.1f", 220.0 - hs);
		html_lit(h, "\" width=\"");
		html_textf(h, "%.1f", col * 0.8);
		html_lit(h, "\" height=\"");
		html_textf(h, "%.1f", hs);
		html_lit(h, "\"><title>");
		html_textf(h, "%s: %ld sent, %ld paid", g[i].key, g[i].n[REPORT_SENT], g[i].n[REPORT_PAID]);
		html_lit(h, "</title></rect><circle fill=\"#f2a900\" r=\"4\" cx=\"");
		html_textf(h, "%.1f", x + col * 0.5);
		html_lit(h, "\" cy=\"");
		html_textf(h, "%.1f", 220.0 - hp);
		html_lit(h, "\"/>");
		if (i == 0 || i == n - 1) {
			html_lit(h, "<text font-size=\"12\" y=\"240\" x=\"");
			html_textf(h, "%.1f", x);
			html_lit(h, "\">");
			html_text(h, g[i].key);
			html_lit(h, "</text>");
		}
	}
	html_lit(h, "</svg>");
}

void
report_html(struct html *h, const char *by, const char *period, const struct report_group *g, int n,
    const struct report_group *days, int ndays)
{
	struct report_group t;
	int i, s;

	report_total(g, n, &t);
	html_lit(h,
	    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	    "<title>payremind report</title><style>"
	    "body{font:15px/1.4 system-ui,sans-serif;color:#1a1a1a;margin:1rem auto;max-width:60rem;padding:0 1rem}"
	    "table{border-collapse:collapse}th,td{padding:.25rem .6rem;text-align:right;border-bottom:1px solid #ddd}"
	    "th:first-child,td:first-child{text-align:left}"
	    "</style></head><body><h1>payremind: from SMS to payment</h1><p>");
	html_text(h, period);
	html_lit(h, "</p><h2>Funnel</h2>");
	report_svg_funnel(h, &t);
	html_lit(h, "<h2>By ");
	html_text(h, by);
	html_lit(h, "</h2><table><thead><tr><th scope=\"col\">");
	html_text(h, by);
	html_lit(h, "</th>");
	for (s = 0; s < REPORT_NSTAGES; s++) {
		html_lit(h, "<th scope=\"col\">");
		html_text(h, report_names[s]);
		html_lit(h, "</th>");
	}
	html_lit(h, "</tr></thead><tbody>");
	for (i = 0; i <= n; i++) {
		const struct report_group *r = i < n ? &g[i] : &t;

		html_lit(h, "<tr><th scope=\"row\">");
		html_text(h, r->key);
		html_lit(h, "</th>");
		for (s = 0; s < REPORT_NSTAGES; s++) {
			html_lit(h, "<td>");
			html_textf(h, "%ld", r->n[s]);
			html_lit(h, "</td>");
		}
		html_lit(h, "</tr>");
	}
	html_lit(h, "</tbody></table>");
	html_lit(h, "<h2>Per day</h2>");
	report_svg_days(h, days, ndays);
	html_lit(h, "</body></html>\n");
}
