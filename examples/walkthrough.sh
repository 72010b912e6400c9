#!/usr/bin/env bash
# The README's dummy-mode walk-through as a script: each step prints "### N. what", the
# command ("$ curl ..."), and the teller's answer. Run it against `make run` in another
# terminal (the defaults), or point it elsewhere with PUBLIC, ADMIN and DUMMY.
#
# Unlike a copy-paste of the README, it uses the real values: the deposit address the bind
# returned, a fresh deposit txid, and the payout txid the dummy sender broadcast.
set -euo pipefail

PUBLIC=${PUBLIC:-http://127.0.0.1:7071}
ADMIN=${ADMIN:-http://127.0.0.1:7711}
DUMMY=${DUMMY:-http://127.0.0.1:4121}
SKYADDR=${SKYADDR:-2Wbi4wvxC4fkTYMsS2f6HaFfW4pafDjXcQW}
PYTHON=${PYTHON:-python3}
n=0

quoted() {  # the command as one would type it: arguments with shell characters in '...'
    local arg out=""
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=" $arg"
        else out+=" '${arg//\'/\'\\\'\'}'"; fi
    done
    printf '%s' "${out# }"
}

step() {  # step "title" command...: print the step, the command and its answer ($ANSWER)
    n=$((n + 1))
    printf '\n### %d. %s\n$ %s\n' "$n" "$1" "$(quoted "${@:2}")"
    ANSWER=$("${@:2}")
    printf '%s\n' "$ANSWER"
}

json() {  # json 'python expression over d' < answer: one value out of a JSON answer
    "$PYTHON" -c "import json, sys; d = json.load(sys.stdin); print($1)"
}

wait_for() {  # wait_for "what" command...: retry a check for up to 20 s
    for _ in $(seq 200); do
        if "${@:2}" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for $1" >&2
    exit 1
}

status_is() {
    curl -sf "$PUBLIC/api/status?skyaddr=$SKYADDR" | json "d['statuses'][-1]['status']" \
        | grep -qx "$1"
}

TX=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')  # a fresh deposit txid

bind_body="{\"skyaddr\":\"$SKYADDR\",\"coin_type\":\"BTC\"}"
step "bind: where should the SKY go, and which coin will you pay with?" \
    curl -sf -XPOST "$PUBLIC/api/bind" -H 'Content-Type: application/json' -d "$bind_body"
DEPOSIT_ADDR=$(json "d['deposit_address']" <<< "$ANSWER")

step "the buyer's status: the new address waits for a deposit" \
    curl -sf "$PUBLIC/api/status?skyaddr=$SKYADDR"

step "a scanner 'sees' 0.001 BTC arrive at $DEPOSIT_ADDR (output 0 of transaction $TX)" \
    curl -sf "$DUMMY/dummy/scanner/deposit?addr=$DEPOSIT_ADDR&value=100000&height=494713&tx=$TX&n=0"

payout_txid() {  # the newest unconfirmed payout to SKYADDR
    curl -sf "$DUMMY/dummy/sender/broadcasts?confirmed=false" \
        | json "[b['txid'] for b in d if any(o['address'] == '$SKYADDR' for o in b['outputs'])][-1]"
}
wait_for "the payout broadcast" payout_txid
TXID=$(payout_txid)

step "at 500 SKY/BTC the teller paid 0.5 SKY: broadcast, waiting for confirmation" \
    curl -sf "$DUMMY/dummy/sender/broadcasts?confirmed=false"
wait_for "waiting_confirm" status_is waiting_confirm
step "status: waiting_confirm" curl -sf "$PUBLIC/api/status?skyaddr=$SKYADDR"

step "the dummy chain confirms payout $TXID" \
    curl -sf "$DUMMY/dummy/sender/confirm?txid=$TXID"
wait_for "done" status_is done
step "status: done" curl -sf "$PUBLIC/api/status?skyaddr=$SKYADDR"

step "what the operator sees: full deposit records (Go field names)" \
    curl -sf "$ADMIN/api/deposits?status=done"
step "accounting" curl -sf "$ADMIN/api/accounting"
step "health: balance, sender_error, scanners, address_pools, warnings" \
    curl -sf "$PUBLIC/api/health"
echo "walk-through done: deposit $TX:0 paid by $TXID"
