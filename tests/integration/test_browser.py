"""Real headless Chromium (Debian's chromium + chromium-driver, python3-selenium) on the real payment page
served by payremindd, with links from a real --once run: the texts and amounts in French and English,
every way to pay, the click that lands on a checkout checking the signature and expiry, the back-and-click
410, expired, settled and unknown links, a 360x640 phone with no sideways scrolling; and the report page.
Long: runs once, not again under the sanitizers (label `long`)."""

import datetime
import os
import shutil
import sys
import tempfile
import zoneinfo

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from paysite import Site, plain  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


def browser(ctx, phone=False):
    """Headless Chromium as root (no sandbox), closed to the outside network; phone: a 360x640 phone."""
    assert shutil.which("chromium") and shutil.which("chromedriver"), \
        "apt-get install chromium chromium-driver python3-selenium"
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tempfile.mkdtemp(dir=ctx.tmp)}"):
        opts.add_argument(flag)
    if phone:
        opts.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": 360, "height": 640,
                                                                           "pixelRatio": 3.0}})
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    driver.set_page_load_timeout(30)
    ctx.cleanups.append(driver.quit)
    return driver


def text_of(driver):
    return plain(driver.find_element(By.TAG_NAME, "body").text)


def no_console_errors(driver):
    """No script, rendering or security error (the network's own lines report statuses: a 410 page is
    one, on purpose)."""
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and e["source"] != "network"]
    assert errors == [], errors


def test_french_and_english_pages_the_click_the_back_button_and_a_phone_screen(ctx):
    rows = [("A-1001", "+15145550401", "fr"), ("A-1002", "+15145550402", "en"), ("A-1003", "+15145550403", "fr"),
            ("A-1004", "+15145550404", "fr")]
    site = Site(ctx, rows)
    base = f"http://127.0.0.1:{site.port}/p/"
    d = browser(ctx)
    d.get(base + site.tokens["+15145550401"])
    fr = text_of(d)
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    for want in ("Rappel de paiement", "ARO vous écrit au sujet du dossier A-1001.", "Montant dû",
                 "1 234,56 $", "Date d'échéance", "Payer en ligne", "1 877 322-1414",
                 "du lundi au vendredi, de 8 h à 20 h (heure de l'Est)", "services bancaires en ligne",
                 "ajoutez ARO comme fournisseur (ou bénéficiaire), puis inscrivez A-1001 comme numéro de compte",
                 "répondez ARRET"):
        assert want in fr, (want, fr)
    button = d.find_element(By.CSS_SELECTOR, "form[method=post] button[type=submit]")
    assert button.text == "Payer en ligne" and button.is_displayed()
    no_console_errors(d)
    # The English page, and the switch.
    d.get(base + site.tokens["+15145550402"])
    en = text_of(d)
    for want in ("Payment reminder", "$1,234.56", "Pay online", "1-877-322-1414", "Monday to Friday",
                 "add ARO as a payee, then enter A-1002 as the account number", "reply STOP"):
        assert want in en, (want, en)
    d.find_element(By.LINK_TEXT, "Français").click()
    assert "Payer en ligne" in text_of(d)
    # The click: the person lands on the portal, which accepts the signature and the expiry.
    d.get(base + site.tokens["+15145550401"])
    d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    harness.wait_until(lambda: "checkout ok" in d.page_source, timeout=10, what="the checkout")
    [seen] = [s for s in site.checkout.seen if s["path"] == "/checkout"]  # not the favicon
    assert seen["signature_ok"] and seen["fresh"] and seen["account_ref"] == "A-1001" and seen["lang"] == "fr", seen
    # Back, and click again: the link is spent.
    d.back()
    d.refresh()
    assert "Ce lien a déjà servi ou n'est plus valide" in text_of(d)
    assert d.find_elements(By.CSS_SELECTOR, "button") == []
    assert "1 877 322-1414" in text_of(d)
    # Expired, settled, unknown.
    site.ctx.db.q("UPDATE payremind.payment_tokens SET expires_at = now() - interval '1 s' WHERE reminder_id ="
                  " (SELECT id FROM payremind.reminders WHERE msisdn = '+15145550403')")
    d.get(base + site.tokens["+15145550403"])
    assert "n'est plus valide" in text_of(d)
    site.ctx.db.q("UPDATE payremind.due_accounts SET settled_at = now() WHERE account_ref = 'A-1004'")
    d.get(base + site.tokens["+15145550404"])
    assert "Aucun paiement n'est attendu pour ce dossier" in text_of(d)
    d.get(base + "AAAAAAAAAAAAAAAAAAAAAA")
    unknown = text_of(d)
    assert "Ce lien n'est pas valide" in unknown and "A-10" not in unknown
    no_console_errors(d)
    # A phone 360 pixels wide: nothing wider than the screen, the button within it.
    phone = browser(ctx, phone=True)
    site.ctx.db.q("UPDATE payremind.due_accounts SET settled_at = NULL WHERE account_ref = 'A-1004'")
    phone.get(base + site.tokens["+15145550404"])
    width, scroll = phone.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
    assert width == 360 and scroll <= width, (width, scroll)
    box = phone.find_element(By.CSS_SELECTOR, "button").rect
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360 and box["height"] >= 44, box
    png = os.path.join(ctx.tmp, "phone.png")
    phone.save_screenshot(png)
    assert os.path.getsize(png) > 1000


def test_the_report_page_renders_without_errors(ctx):
    site = Site(ctx, [("R-1", "+15145550411", "fr"), ("R-2", "+15145550412", "en")])
    page = os.path.join(ctx.tmp, "report.html")
    # the report's days are ARO's (America/Toronto), not this host's: after 19:00 in Montréal UTC is a day ahead
    today = datetime.datetime.now(zoneinfo.ZoneInfo("America/Toronto")).strftime("%Y-%m-%d")
    p = harness.ctl(site.conf, "report", "--since", today, "--until", today, "--by", "language", "--html", page)
    assert p.returncode == 0, p.stderr
    d = browser(ctx)
    d.get("file://" + page)
    assert d.title == "payremind report"
    svgs = d.find_elements(By.TAG_NAME, "svg")
    assert len(svgs) == 2 and all(s.size["width"] > 100 and s.size["height"] > 50 for s in svgs), \
        [s.size for s in svgs]
    rows = [r.text.split() for r in d.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert rows[-1][:2] == ["total", "2"], rows
    no_console_errors(d)


harness.main(globals())
