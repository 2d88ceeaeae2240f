"""The payment page and the funnel to payment (SPEC §10) through a running payremindd: links from a real
--once run, previews that never spend a link, the one hand-off to a checkout that checks the signature as
ARO's portal would, 410/404 pages, the portal's signed results, and what `paid` does to the next step."""

import concurrent.futures
import json
import os
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from paysite import Site, plain  # noqa: E402

USER_AGENTS = {
    "whatsapp": "WhatsApp/2.23.20.0 A",
    "imessage": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
                "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "slack": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "safelinks": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Microsoft Office/16.0 (Safe Links)",
    "curl": "curl/7.88.1",
}


def test_the_page_in_french_and_english_with_every_way_to_pay_and_its_headers(ctx):
    site = Site(ctx, [("A-1001", "+15145550201", "fr"), ("A-1002", "+15145550202", "en")])
    status, headers, fr = site.page("+15145550201")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8", (status, headers)
    for name, value in (("cache-control", "no-store"), ("referrer-policy", "no-referrer"),
                        ("x-robots-tag", "noindex"), ("x-content-type-options", "nosniff")):
        assert headers.get(name) == value, (name, headers)
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    text = plain(fr)
    assert '<html lang="fr">' in fr and "1 234,56 $" in text and "A-1001" in text, text
    assert "Payer en ligne" in text and "1 877 322-1414" in text and "fournisseur (ou bénéficiaire)" in text
    assert "répondez ARRET" in text and "<script" not in fr and "src=" not in fr
    status, _, en = site.page("+15145550202")
    assert status == 200 and '<html lang="en">' in en and "$1,234.56" in en and "Pay online" in en, en
    # ?lang switches; HEAD answers the same status and headers without a body and spends nothing.
    status, _, switched = site.page("+15145550201", query="?lang=en")
    assert status == 200 and '<html lang="en">' in switched
    status, headers, body = site.page("+15145550201", method="HEAD")
    assert (status, body) == (200, "") and headers["cache-control"] == "no-store"
    # Each GET counts as an opening (written within a second, the page itself writes nothing); HEAD does not.
    harness.wait_until(lambda: site.token_row("+15145550201") == (2, True, False), timeout=5, what="2 openings")
    time.sleep(1.5)
    assert site.token_row("+15145550201") == (2, True, False)
    # The token never reaches the daemon's log.
    assert site.tokens["+15145550201"] not in site.log()


def test_previews_never_spend_the_link_and_the_click_hands_off_once(ctx):
    site = Site(ctx, [("B-1", "+15145550211", "fr")])
    msisdn = "+15145550211"
    for ua in USER_AGENTS.values():
        for method in ("GET", "HEAD"):
            status, _, _ = site.page(msisdn, method=method, ua=ua)
            assert status == 200, (ua, method, status)
    harness.wait_until(lambda: site.token_row(msisdn) == (len(USER_AGENTS), True, False), timeout=5,
                       what="one opening per GET, none spent")
    status, headers, _ = site.page(msisdn, method="POST")
    assert status == 303, status
    location = headers["location"]
    assert location.startswith(site.checkout.url + "?reference="), location
    keys = [k for k, _ in urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query)]
    assert keys == ["reference", "account_ref", "amount_cents", "currency", "lang", "expires", "signature"], keys
    # The portal's own check of the hand-off.
    with urllib.request.urlopen(location) as r:
        assert r.status == 200 and r.read() == b"checkout ok"
    [seen] = site.checkout.seen
    assert seen["signature_ok"] and seen["fresh"] and seen["account_ref"] == "B-1" and seen["amount_cents"] == "123456"
    assert seen["lang"] == "fr" and seen["currency"] == "CAD"
    assert 590 <= int(seen["expires"]) - time.time() <= 600
    assert seen["reference"] == ctx.db.one("SELECT id::text FROM payremind.reminders WHERE msisdn = %s", msisdn)
    # Back and click again: the link is spent, the 410 page gives the other ways to pay.
    status, _, body = site.page(msisdn, method="POST")
    assert status == 410 and "Ce lien a déjà servi" in body and "322-1414" in body and "<button" not in body
    status, _, body = site.page(msisdn)
    assert status == 410, status
    assert site.token_row(msisdn)[2] is True


def test_twenty_concurrent_clicks_hand_off_exactly_once(ctx):
    site = Site(ctx, [("C-1", "+15145550221", "en")])
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda _: site.page("+15145550221", method="POST")[0], range(20)))
    assert sorted(statuses) == [303] + [410] * 19, statuses


def test_expired_settled_unknown_and_malformed_links(ctx):
    site = Site(ctx, [("D-1", "+15145550231", "fr"), ("D-2", "+15145550232", "en")])
    ctx.db.q("UPDATE payremind.payment_tokens SET expires_at = now() - interval '1 s' WHERE reminder_id ="
             " (SELECT id FROM payremind.reminders WHERE msisdn = '+15145550231')")
    status, _, body = site.page("+15145550231")
    assert status == 410 and "n'est plus valide" in body, (status, body)
    assert site.page("+15145550231", method="POST")[0] == 410
    ctx.db.q("UPDATE payremind.due_accounts SET settled_at = now() WHERE account_ref = 'D-2'")
    status, _, body = site.page("+15145550232")
    assert status == 200 and "No payment is due" in body and "<button" not in body, body
    assert site.page("+15145550232", method="POST")[0] == 200  # nothing to pay: nothing spent
    for path in ("/p/" + "A" * 22, "/p/short", "/p/", "/p/" + "A" * 22 + "/x", "/p/%41" + "A" * 21):
        status, _, body = site.request("GET", path)
        assert status == 404 and "322-1414" in body and "D-" not in body, (path, status, body)
    assert site.request("PUT", "/p/" + "A" * 22)[0] == 405


def test_no_checkout_configured_means_no_button_and_no_spent_link(ctx):
    site = Site(ctx, [("E-1", "+15145550241", "fr")], checkout=False)
    status, _, body = site.page("+15145550241")
    assert status == 200 and "<button" not in body and "322-1414" in body
    assert site.page("+15145550241", method="POST")[0] == 200
    assert site.token_row("+15145550241")[2] is False


def test_payment_results_are_signed_recorded_once_and_stop_the_next_reminder(ctx):
    site = Site(ctx, [("F-1", "+15145550251", "fr"), ("F-2", "+15145550252", "fr")])
    db = ctx.db
    rid = db.one("SELECT id::text FROM payremind.reminders WHERE msisdn = '+15145550251'")
    good = {"id": "pay-100", "reference": rid, "status": "paid", "amount_cents": 123456}
    assert site.pay(good, signature=False)[0] == 401
    assert site.pay(good, signature="not-the-secret")[0] == 401
    assert db.one("SELECT count(*) FROM payremind.payments") == 0
    assert site.pay(dict(good, reference="00000000-0000-7000-8000-000000000000"))[0] == 404
    for bad, field in (({"status": "refunded"}, "status"), ({"amount_cents": -1}, "amount_cents"),
                       ({"reference": "nope"}, "reference"), ({"id": ""}, "id")):
        status, _, body = site.pay(dict(good, **bad))
        assert status == 400 and field in body, (bad, status, body)
    assert site.pay(good)[:3:2] == (200, "recorded\n")
    assert site.pay(good)[:3:2] == (200, "duplicate\n")
    assert site.pay(dict(good, status="failed"))[:3:2] == (200, "duplicate\n")
    assert db.q("SELECT id, reminder_id::text, status, amount_cents FROM payremind.payments") == [
        ("pay-100", rid, "paid", 123456)]
    # The next step comes due: the paid row gets nothing, the other one its reminder.
    db.q("UPDATE payremind.due_accounts SET due_date = due_date - 10, next_at = now() - interval '1 s'")
    db.q("UPDATE payremind.reminders SET sent_at = now() - interval '2 days'")
    db.q("UPDATE payremind.contacts SET last_at = now() - interval '2 days'")
    dry = {r["account_ref"]: r["reason"] for r in json.loads(harness.ctl(site.conf, "batch", "--dry-run", "--json").stdout)}
    assert dry["F-1"] == "paid" and dry["F-2"] is None, dry
    status, _, metrics = site.request("GET", "/metrics")
    assert 'payremind_payments_total{status="paid"} 1' in metrics, metrics


def test_metrics_count_page_views_checkouts_and_the_log_holds_no_token(ctx):
    site = Site(ctx, [("G-1", "+15145550261", "en")])
    site.page("+15145550261")
    site.page("+15145550261", method="HEAD")
    site.request("GET", "/p/" + "Z" * 22)
    assert site.page("+15145550261", method="POST")[0] == 303
    site.page("+15145550261")
    _, _, metrics = site.request("GET", "/metrics")
    for line in ('payremind_page_views_total{result="valid"} 2', 'payremind_page_views_total{result="unknown"} 1',
                 'payremind_page_views_total{result="spent"} 1', "payremind_checkouts_total 1"):
        assert line in metrics, (line, metrics)
    log = site.log()
    assert site.tokens["+15145550261"] not in log and "checkout reminder=" in log


harness.main(globals())
