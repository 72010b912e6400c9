"""The buyer page and the operator console in a real chromium against a real dummy-mode teller.

A buyer binds on the page, a deposit arrives through the dummy API, and the page's status list
moves to ``done`` with the payout txid. An operator filters and searches the deposits, opens
one, retries a deposit the exchanger held in ``needs_review`` (a payout the node forgot past
``dead_after``: the path the admin API tests use), and the audit log shows who did it. Any
console error, uncaught exception or non-loopback request fails the test. Screenshots of both
pages at desktop and phone width are saved (`make screenshots` writes the README's).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path

import pytest
from bip_utils import SegwitBech32Encoder
from playwright.sync_api import Browser, expect

from sender.dummy import DummySender
from tests.support.browser import DESKTOP, PHONE, open_page
from tests.support.service import (
    BTC_ADDRESSES,
    SKY_ADDR,
    TellerHarness,
    btcsim_scanner,
    sky_address,
    start_teller,
)
from tests.support.wait import wait_until
from tests.support.web import WEB_OVERRIDES, pay
from tools.btcsim import SimulatorHandle, output

log = logging.getLogger(__name__)

pytestmark = pytest.mark.slow

TOKEN = "console-test-token-0123"  # the guard wants at least 16 characters

def held_for_review(t: TellerHarness, skyaddr: str, tx: str) -> str:
    """A deposit the exchanger itself holds in needs_review: its payout is broadcast, the dummy
    node drops it, and past dead_after the exchanger gives up on it. Returns the key."""
    addr = t.bind(skyaddr)
    count = len(t.broadcasts()) + 1
    t.deposit(addr, 200_000, tx)
    txid = t.wait_broadcasts(count)[-1]["txid"]
    time.sleep(1.2)  # older than dead_after before the node forgets it
    assert t.service is not None and isinstance(t.service.sender, DummySender)
    assert t.service.sender.drop(txid)
    t.wait_status(skyaddr, ["needs_review"])
    return f"BTC/{tx}:0"


def test_buyer_binds_and_watches_the_deposit_to_done(web_teller: TellerHarness,
                                                     browser: Browser) -> None:
    t = web_teller
    bp = open_page(browser)
    page = bp.page
    page.goto(t.public + "/")
    expect(page.locator("#coin option")).to_have_count(1)
    expect(page.locator("#rate")).to_have_text("Rate: 1 BTC = 500.000000 SKY")
    expect(page.locator("#inventory")).to_have_text("100.000000")
    bp.screenshot("buyer-start-desktop", DESKTOP)

    log.info("a bad address gets the server's own message and binds nothing")
    bp.expected.append("status of 400")
    page.fill("#address", "not-an-address")
    page.click("#bind")
    expect(page.locator("#address-error")).to_contain_text("Invalid skycoin address")
    assert t.deposits() == [] and t.service is not None
    assert t.service.store.bindings_of("not-an-address") == []

    log.info("keyboard only: type the address, Enter binds")
    page.fill("#address", "")
    page.focus("#address")
    page.keyboard.type(SKY_ADDR)
    page.keyboard.press("Enter")
    expect(page.locator("#deposit")).to_be_visible()
    deposit_address = page.locator("#deposit-address").inner_text()
    assert deposit_address == t.service.store.bindings_of(SKY_ADDR)[0]["address"]
    expect(page.locator("#status-list li")).to_have_attribute("data-status", "waiting_deposit")
    wait_until(lambda: page.eval_on_selector("#qr", "img => img.naturalWidth") > 0, 10,
               message="the QR code image loaded")
    page.click("#copy")
    expect(page.locator("#copied")).not_to_be_empty()

    log.info("the deposit arrives through the dummy API and is paid")
    t.deposit(deposit_address, 100_000, "aa" * 32)
    txid = t.wait_broadcasts(1)[0]["txid"]
    t.confirm(txid)
    item = page.locator("#status-list li").first
    expect(item).to_have_attribute("data-status", "done", timeout=15_000)
    expect(item).to_contain_text("Done")
    expect(item.locator(".txid")).to_contain_text(txid)
    bp.screenshot("buyer-desktop", DESKTOP)
    bp.screenshot("buyer-phone", PHONE)
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not overflow, "the buyer page scrolls sideways at phone width"

    log.info("a second visit with ?address= shows the same list without binding again")
    page.goto(t.public + f"/?address={SKY_ADDR}")
    expect(page.locator("#status-list li").first).to_have_attribute("data-status", "done")
    assert len(t.service.store.bindings_of(SKY_ADDR)) == 1
    bp.assert_clean()


def test_bind_limit_and_disabled_notices(tmp_path: Path, browser: Browser) -> None:
    t = start_teller(tmp_path, WEB_OVERRIDES)
    try:
        bp = open_page(browser)
        page = bp.page
        t.bind(SKY_ADDR)
        t.bind(SKY_ADDR)
        page.goto(t.public + "/")
        expect(page.locator("#coin option")).to_have_count(1)
        bp.expected.append("status of 409")
        page.fill("#address", SKY_ADDR)
        page.click("#bind")
        expect(page.locator("#notices")).to_contain_text(
            "The maximum number of addresses have been assigned")
        expect(page.locator("#status-list li")).to_have_count(2)
        bp.assert_clean()
        t.restart(WEB_OVERRIDES + "\n[teller]\nbind_enabled = false\n")
        page.goto(t.public + "/")
        expect(page.locator("#notices")).to_contain_text("not being handed out")
        expect(page.locator("#bind")).to_be_disabled()
        bp.assert_clean()
    finally:
        t.close()
    log.info("an empty hot wallet is sold out: the page says so before anyone deposits")
    (tmp_path / "sold-out").mkdir()
    sold_out = start_teller(tmp_path / "sold-out", WEB_OVERRIDES + '[dummy]\nsender_coins = "0"\n')
    try:
        bp = open_page(browser)
        bp.page.goto(sold_out.public + "/")
        expect(bp.page.locator("#notices")).to_contain_text("Sold out")
        expect(bp.page.locator("#inventory")).to_have_text("0.000000")
        bp.assert_clean()
    finally:
        sold_out.close()


def test_console_pages_through_deposits(web_teller: TellerHarness,
                                        browser: Browser) -> None:
    t = web_teller
    assert t.service is not None
    t.service.exchanger.stop()  # 55 deposits stay in waiting_decide: paging, not paying
    addr = t.bind(SKY_ADDR)
    for i in range(55):
        t.deposit(addr, 1_000 + i, f"{i:064x}")
    bp = open_page(browser)
    page = bp.page
    page.goto(t.admin + "/#deposits")
    info = page.locator("#page-info")
    expect(info).to_have_text("1–50 of 55 deposits")
    expect(page.locator("#deposit-table tbody tr").first).to_contain_text("55")
    expect(page.locator("#prev")).to_be_disabled()
    page.click("#next")
    expect(info).to_have_text("51–55 of 55 deposits")
    expect(page.locator("#deposit-table tbody tr")).to_have_count(5)
    expect(page.locator("#deposit-table tbody tr").last).to_contain_text("0.00001000")
    expect(page.locator("#next")).to_be_disabled()
    page.click("#prev")
    expect(info).to_have_text("1–50 of 55 deposits")
    bp.assert_clean()


def test_operator_filters_opens_and_retries_with_audit(web_teller: TellerHarness,
                                                       browser: Browser) -> None:
    t = web_teller
    paid = [pay(t, sky_address(i), 100_000 * (i + 1), f"{i:02x}" * 32) for i in range(3)]
    held = held_for_review(t, SKY_ADDR, "ee" * 32)
    bp = open_page(browser)
    page = bp.page
    page.goto(t.admin + "/")
    expect(page.locator("#counts")).to_contain_text("needs_review")
    expect(page.locator("#review-count")).to_have_text("1")
    expect(page.locator("#events")).to_contain_text("notice=WATCH")
    expect(page.locator("#chart svg rect.received")).to_have_count(1)
    bp.screenshot("console-overview-desktop", DESKTOP)
    bp.screenshot("console-overview-phone", PHONE)
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not overflow, "the console scrolls sideways at phone width (tables scroll inside)"
    page.set_viewport_size(DESKTOP)

    log.info("filter by status, then search by receive address")
    page.click("a[data-tab=deposits]")
    expect(page.locator("#deposit-table tbody tr")).to_have_count(4)
    page.select_option("#f-status", "done")
    page.click("#filter button[type=submit]")
    expect(page.locator("#deposit-table tbody tr")).to_have_count(3)
    expect(page.locator("#page-info")).to_have_text("1–3 of 3 deposits (filtered)")
    page.select_option("#f-status", "")
    page.fill("#f-q", sky_address(1))
    page.press("#f-q", "Enter")
    expect(page.locator("#deposit-table tbody tr")).to_have_count(1)
    expect(page.locator("#deposit-table tbody")).to_contain_text("0.002")
    page.fill("#f-q", paid[0][:10])  # no deposit txid starts like a payout txid
    page.press("#f-q", "Enter")
    expect(page.locator("#deposit-table tbody tr")).to_have_count(0)
    page.fill("#f-q", "ee" * 5)  # a deposit txid prefix
    page.press("#f-q", "Enter")
    expect(page.locator("#deposit-table tbody tr")).to_have_count(1)

    log.info("open the held deposit: its full record, payout and reason")
    page.click(f"button[data-open='{held}']")
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("needs_review")
    expect(detail).to_contain_text("not seen by the node")
    expect(detail).to_contain_text("No operator action yet.")
    bp.screenshot("console-deposits-desktop", DESKTOP)
    bp.screenshot("console-deposits-phone", PHONE)
    page.set_viewport_size(DESKTOP)

    log.info("the CSV download carries the filter and the token path (fetch + blob)")
    with page.expect_download() as download_info:
        page.click("#dl-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert [r["deposit_id"] for r in rows] == [f"{'ee' * 32}:0"]
    assert rows[0]["deposit_value"] == "0.00200000" and rows[0]["status"] == "needs_review"

    log.info("review queue: retry asks for confirmation, then pays again once")
    page.click("a[data-tab=review]")
    item = page.locator(f".review-item[data-deposit='{held}']")
    expect(item).to_contain_text("not seen by the node")
    bp.screenshot("console-review-desktop", DESKTOP)
    item.locator("button[data-action=retry]").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    bp.screenshot("console-confirm-phone", PHONE, full_page=False)
    page.set_viewport_size(DESKTOP)
    page.fill("#confirm-note", "dropped by the node")
    page.fill("#confirm-operator", "alice")
    page.click("#confirm-ok")
    expect(page.locator("#flash")).to_contain_text("is now waiting_send")
    expect(page.locator("#review-list")).to_contain_text("Nothing to review.")
    second = t.wait_broadcasts(5)[-1]["txid"]
    t.confirm(second)
    t.wait_status(SKY_ADDR, ["done"])

    log.info("the audit log shows who retried what, and when")
    page.click("a[data-tab=audit]")
    row = page.locator("#audit-table tbody tr").first
    expect(row).to_contain_text("alice")
    expect(row).to_contain_text("retry")
    expect(row.locator(f"td[title='{held}']")).to_have_count(1)
    expect(row).to_contain_text("done: status is now waiting_send")
    expect(row).to_contain_text("dropped by the node")
    bp.screenshot("console-audit-desktop", DESKTOP)
    bp.screenshot("console-audit-phone", PHONE)
    bp.assert_clean()


def test_console_asks_for_the_admin_token_and_sends_it(tmp_path: Path,
                                                       browser: Browser) -> None:
    """The real admin guard ([admin_panel] token_file): the console's files load without the
    token, every API call and download needs it."""
    (tmp_path / "admin.token").write_text(TOKEN + "\n")
    t = start_teller(tmp_path, WEB_OVERRIDES + '[admin_panel]\ntoken_file = "admin.token"\n',
                     btc_addresses=BTC_ADDRESSES)
    try:
        pay(t, SKY_ADDR, 100_000, "ab" * 32)
        bp = open_page(browser)
        bp.expected.append("status of 401")
        page = bp.page
        seen: list[str | None] = []
        page.on("request", lambda r: seen.append(r.headers.get("authorization"))
                if "/api/" in r.url else None)
        page.goto(t.admin + "/")
        login = page.locator("#login")
        expect(login).to_be_visible()
        expect(page.locator("#login-why")).to_have_text("admin token required")
        bp.screenshot("console-token-phone", PHONE, full_page=False)
        page.set_viewport_size(DESKTOP)
        log.info("a wrong token is asked for again")
        page.fill("#login-token", "wrong")
        page.press("#login-token", "Enter")
        expect(login).to_be_visible()
        page.fill("#login-token", TOKEN)
        page.fill("#login-operator", "carol")
        page.click("#login button[type=submit]")
        expect(login).to_be_hidden()
        expect(page.locator("#counts")).to_contain_text("done")
        assert page.evaluate("sessionStorage.getItem('teller.admin.token')") == TOKEN
        log.info("downloads go through fetch with the header")
        with page.expect_download() as download_info:
            page.click("#dl-backup")
        assert Path(download_info.value.path()).stat().st_size > 0
        log.info("a reload keeps the token for the tab: no second sign-in")
        page.reload()
        expect(page.locator("#counts")).to_contain_text("done")
        expect(login).to_be_hidden()
        assert f"Bearer {TOKEN}" in seen and seen[-1] == f"Bearer {TOKEN}"
        bp.assert_clean()
    finally:
        t.close()


def test_status_polling_backs_off_on_429(tmp_path: Path, browser: Browser) -> None:
    t = start_teller(tmp_path, WEB_OVERRIDES.replace("[web]\n", "[web]\nthrottle_max = 3\n"))
    try:
        bp = open_page(browser)
        bp.expected.append("status of 429")
        page = bp.page
        polls: list[float] = []
        page.on("request", lambda r: polls.append(time.monotonic())
                if "/api/status?" in r.url else None)
        page.goto(t.public + f"/?address={SKY_ADDR}")
        expect(page.locator("#status-empty")).to_contain_text("No deposit address is bound")
        page.click("#bind")
        log.info("the third /api/status request of the minute is the last one allowed")
        expect(page.locator("#poll-note")).to_have_text("Busy; checking again in 10 s.",
                                                        timeout=15_000)
        busy_at = len(polls)
        page.wait_for_timeout(3_000)
        assert len(polls) == busy_at, "polled again inside the back-off"
        expect(page.locator("#deposit")).to_be_visible()  # the bind has its own bucket
        bp.assert_clean()
    finally:
        t.close()


def test_console_shows_a_chain_scanner_and_its_outage(tmp_path: Path, browser: Browser,
                                                      btcsim: SimulatorHandle) -> None:
    """A real bitcoind scanner (against tools/btcsim.py): tip, cursor, lag, then unreachable."""
    address = SegwitBech32Encoder.Encode("bcrt", 0, bytes([7]) * 20)
    t = start_teller(tmp_path, WEB_OVERRIDES + btcsim_scanner(btcsim, confirmations=2),
                     btc_addresses=[address])
    try:
        buyer = sky_address(7)
        assert t.bind(buyer) == address
        btcsim.control.generate(3)
        btcsim.control.mine([[output(address, 200_000)]])
        btcsim.control.generate(1)
        t.wait_status(buyer, ["waiting_confirm"])
        t.confirm(t.broadcasts()[0]["txid"])
        t.wait_status(buyer, ["done"])
        tip = btcsim.control.state()["height"]
        assert t.service is not None
        wait_until(lambda: t.service.scanners["BTC"].health()["tip"] == tip, 10,
                   message="the scanner at the simulator's tip")
        health = t.service.scanners["BTC"].health()
        bp = open_page(browser)
        page = bp.page
        page.goto(t.admin + "/")
        row = page.locator("#scanners tbody tr").first
        expect(row).to_contain_text("reachable")
        expect(row.locator("td").nth(1)).to_have_text(str(tip))
        expect(row.locator("td").nth(2)).to_have_text(str(health["cursor_height"]))
        expect(row.locator("td").nth(3)).to_have_text(str(health["lag_blocks"]))
        expect(page.locator("#pools")).to_contain_text("empty: binds answer 503")
        bp.screenshot("console-overview-scanner-desktop", DESKTOP)
        log.info("the node goes away: the overview says so on its next refresh")
        btcsim.pause()
        wait_until(lambda: t.service is not None and
                   not t.service.scanners["BTC"].health()["node_reachable"], 10,
                   message="the scanner to notice the outage")
        page.reload()
        expect(row).to_contain_text("unreachable")
        expect(page.locator("#warnings")).to_contain_text("BTC node unreachable")
        btcsim.resume()
        bp.assert_clean()
    finally:
        t.close()
