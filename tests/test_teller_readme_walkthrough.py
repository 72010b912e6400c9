"""The README's walk-through, run as a script (examples/walkthrough.sh) against a real
teller: every step's command and the shape of its answer."""

from __future__ import annotations

import json
import os
import re
import subprocess

from tests.support.core import ROOT
from tests.support.service import (
    SKY_ADDR,
    start_teller,
)

SCRIPT = ROOT / "examples" / "walkthrough.sh"


def run_walkthrough(t) -> list[tuple[str, str, str]]:
    env = {**os.environ, "PUBLIC": t.public, "ADMIN": t.admin, "DUMMY": t.dummy,
           "SKYADDR": SKY_ADDR}
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^walk-through done: deposit [0-9a-f]{64}:0 paid by \S+$",
                     result.stdout, re.M)
    steps = []
    for block in result.stdout.split("\n### ")[1:]:
        title, command, *answer = block.split("\n")
        assert command.startswith("$ curl -sf "), command
        text = "\n".join(line for line in answer if not line.startswith("walk-through done"))
        steps.append((title, command, text.strip()))
    return steps


def test_walkthrough_runs_and_each_answer_has_its_shape(teller):
    steps = run_walkthrough(teller)
    titles = [title.split(". ", 1)[1] for title, _, _ in steps]
    prefixes = ["bind:", "the buyer's status", "a scanner 'sees' 0.001 BTC arrive at",
                "at 500 SKY/BTC the teller paid 0.5 SKY", "status: waiting_confirm",
                "the dummy chain confirms payout", "status: done", "what the operator sees",
                "accounting", "health"]
    assert len(titles) == len(prefixes)
    for title, prefix in zip(titles, prefixes, strict=True):
        assert title.startswith(prefix), (title, prefix)
    answers = [json.loads(text) if text else None for _, _, text in steps]
    bind, waiting, deposit, broadcasts, confirming, confirm, done, records, accounting, \
        health = answers
    assert set(bind) == {"deposit_address", "coin_type", "buy_method"}
    assert (bind["coin_type"], bind["buy_method"]) == ("BTC", "direct")
    assert [s["status"] for s in waiting["statuses"]] == ["waiting_deposit"]
    assert deposit is None and confirm is None  # empty 200s
    [payout] = broadcasts
    assert payout["confirmed"] is False
    assert payout["outputs"] == [{"address": SKY_ADDR, "coins": "0.500000"}]
    assert f"txid={payout['txid']}" in steps[5][1]  # the real txid, not a placeholder
    assert [s["status"] for s in confirming["statuses"]] == ["waiting_confirm"]
    assert [s["status"] for s in done["statuses"]] == ["done"]
    [record] = records["deposits"]
    assert (record["status"], record["conversion_rate"], record["sky_sent"],
            record["txid"]) == ("done", "500", 500_000, payout["txid"])
    assert record["deposit_address"] == bind["deposit_address"]
    assert accounting["received"]["BTC"] == "0.00100000" and accounting["sent"] == "0.500000"
    assert health["status"] == "OK" and health["exchange"]["balance"]["coins"] == "99.500000"
    assert set(health) >= {"scanners", "address_pools", "warnings"}
    # each printed command runs as printed (pasted into a shell): the status query, again
    again = subprocess.run(["bash", "-c", steps[6][1].removeprefix("$ ")], capture_output=True,
                           text=True, timeout=30)
    assert [s["status"] for s in json.loads(again.stdout)["statuses"]] == ["done"]
    bind_again = subprocess.run(["bash", "-c", steps[0][1].removeprefix("$ ")],
                                capture_output=True, text=True, timeout=30)
    assert json.loads(bind_again.stdout)["coin_type"] == "BTC"


def test_walkthrough_runs_again_on_the_same_teller(tmp_path):
    t = start_teller(tmp_path)
    try:
        run_walkthrough(t)
        steps = run_walkthrough(t)  # a fresh deposit txid: a second deposit, a second payout
        records = json.loads(steps[7][2])["deposits"]
        assert len(records) == 2
    finally:
        t.close()
