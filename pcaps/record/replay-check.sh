#!/usr/bin/env bash
# Acceptance check of `mailtap replay` against real servers (issue 11). Postfix and Dovecot
# are configured on 127.0.0.1 as for record.sh (conf/, lib.sh); fresh captures are recorded
# with real clients (swaks, poplib, imaplib, an IMAP IDLE with a concurrent SMTP delivery,
# curl); the mailboxes are put back as they were before each capture and every capture is
# replayed against the same servers: each must match under --compare full (exit 0). Then
# against deliberately different targets each must exit 3 with a divergence naming the
# right command and field:
#   - one attachment byte changed in bob's mailbox      -> FETCH, "FETCH 2 BODY[]"
#   - alice's messages 1 and 2 swapped                   -> RETR, "RETR sha256"
#   - an extra mailbox                                   -> LIST, "LIST Extra"
#   - a proxy dropping STARTTLS/8BITMIME, 5.1.1 -> 5.7.1 -> EHLO "EHLO", RCPT "code"
#   - a proxy holding the RETR answer past --timeout     -> RETR, timeout
# and a capture with nothing replayable exits 4.
#
# usage (as root, from anywhere):  bash pcaps/record/replay-check.sh
#   NO_INSTALL=1        do not apt-get missing packages
#   REPLAY_RUN_DIR      scratch directory (default /var/tmp/mailtap-replay-check)
# The shared system Postfix and Dovecot are reconfigured and restarted: the whole check
# holds /tmp/mailtap-servers.lock.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUN=${REPLAY_RUN_DIR:-/var/tmp/mailtap-replay-check}
OUT=$RUN/captures
PY=$(command -v python3 || true)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
log() { printf '[replay-check] %s\n' "$*" >&2; }

[[ $(id -u) -eq 0 ]] || die "run as root (starts Postfix and Dovecot, sniffs lo)"

PACKAGES=(postfix dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd swaks curl tcpdump openssl python3)
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
	[[ -z ${NO_INSTALL:-} ]] || die "missing packages and NO_INSTALL is set: ${missing[*]}"
	log "installing ${missing[*]}"
	debconf-set-selections <<-'EOF'
		postfix postfix/main_mailer_type select Local only
		postfix postfix/mailname string mail.example.test
	EOF
	(flock 9 && DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) 9>/tmp/mailtap-servers.lock
fi
PY=$(command -v python3)

mkdir -p "$RUN" "$OUT"
log "building mailtap and mangleproxy"
(cd "$ROOT" && go build -o "$RUN/mailtap" ./cmd/mailtap && go build -o "$RUN/mangleproxy" ./pcaps/record/mangleproxy)
MT=$RUN/mailtap

exec 9>/tmp/mailtap-servers.lock
log "waiting for /tmp/mailtap-servers.lock"
flock 9

subst() { sed "s|@RUN@|$RUN|g" "$1"; }

PROXY_PID=
cleanup() {
	local rc=$?
	[[ -z $PROXY_PID ]] || kill "$PROXY_PID" 2>/dev/null || true
	if [[ -n $TCPDUMP_PID ]]; then kill -INT "$TCPDUMP_PID" 2>/dev/null || true; fi
	postfix stop >/dev/null 2>&1 || true
	[[ -f $RUN/dovecot.conf ]] && doveadm -c "$RUN/dovecot.conf" stop 2>/dev/null || true
	((rc == 0)) || log "FAILED (exit $rc); logs and reports are in $RUN"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- servers, as record.sh sets them up -------------------------------------------------
mkdir -p "$RUN/tls"
if [[ ! -s $RUN/tls/cert.pem ]]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mail.example.test" \
		-keyout "$RUN/tls/key.pem" -out "$RUN/tls/cert.pem" 2>/dev/null
	chmod 600 "$RUN/tls/key.pem"
fi
subst "$HERE/conf/dovecot.conf" | sed 's/instance_name = mailtap-record/instance_name = mailtap-replay-check/' >"$RUN/dovecot.conf"
rm -rf "$RUN/mail"
dovecot_files
postfix_main
postfix check

doveadm -c "$RUN/dovecot.conf" stop 2>/dev/null || true
if postfix status >/dev/null 2>&1; then postfix stop >/dev/null 2>&1 || true; fi
for d in /etc/dovecot/dovecot.conf; do [[ -f $d ]] && doveadm stop 2>/dev/null || true; done
rm -f /var/spool/postfix/private/dovecot-lmtp /var/spool/postfix/private/auth
postsuper -d ALL >/dev/null 2>&1 || true
dovecot -c "$RUN/dovecot.conf"
wait_file /var/spool/postfix/private/dovecot-lmtp
wait_file /var/spool/postfix/private/auth
postfix start >/dev/null 2>&1
wait_port 25
wait_port 110
wait_port 143
log "postfix and dovecot are up"

# --- mailboxes: seeded, kept, put back -----------------------------------------------------
seed() { # seed USER: three messages through Postfix (clients/deliver.py)
	reset_user "$1"
	"$PY" "$HERE/clients/deliver.py" "$1" "$RUN/mail/$1/Maildir" "$HERE/files/quarterly-report.csv" >"$RUN/seed-$1.log"
	wait_queue_empty
}
snapshot() { # snapshot USER NAME: keep USER's mail store as NAME
	rm -rf "${RUN:?}/snap/$2"
	mkdir -p "$RUN/snap"
	cp -a "$RUN/mail/$1" "$RUN/snap/$2"
}
restore() { # restore USER NAME: put USER's mail store back as it was at NAME
	rm -rf "${RUN:?}/mail/$1"
	cp -a "$RUN/snap/$2" "$RUN/mail/$1"
}
drop_index() { # drop_index MAILDIR: Dovecot rebuilds its index from the files and uidlist
	find "$1" -name 'dovecot.index*' -delete
}

# --- recording -------------------------------------------------------------------------------
log "recording"
capture_start postfix-swaks "tcp port 25"
swaks --server 127.0.0.1 --port 25 --ehlo client.example.org --pipeline \
	--from sender@example.org --to carol@example.test,nobody@example.test \
	--header 'Subject: replay check' --header 'Message-Id: <replay-check@example.org>' \
	--body 'One good and one unknown recipient.' >"$RUN/swaks.log" 2>&1 || true
grep -q '550 5.1.1' "$RUN/swaks.log" || die "no 550 5.1.1 from Postfix (see $RUN/swaks.log)"
capture_stop

seed alice
snapshot alice alice0
capture_start dovecot-poplib "tcp port 110"
"$PY" "$HERE/clients/pop3_poplib.py" >"$RUN/poplib.log"
capture_stop
restore alice alice0
capture_start dovecot-pop3-curl "tcp port 110"
curl -sS --max-time 20 -u alice:secret pop3://127.0.0.1/ >/dev/null
curl -sS --max-time 20 -u alice:secret pop3://127.0.0.1/1 >/dev/null
capture_stop

seed bob
snapshot bob bob0
capture_start dovecot-imaplib "tcp port 143"
"$PY" "$HERE/clients/imap_imaplib.py" >"$RUN/imaplib.log"
capture_stop
snapshot bob bob1
capture_start dovecot-imap-idle "tcp port 143 or tcp port 25"
"$PY" "$HERE/clients/imap_idle.py" >"$RUN/imap-idle.log"
capture_stop
wait_queue_empty
restore bob bob0
capture_start dovecot-imap-curl "tcp port 143"
curl -sS --max-time 20 -u bob:secret 'imap://127.0.0.1/' >/dev/null
curl -sS --max-time 20 -u bob:secret 'imap://127.0.0.1/INBOX;UID=3' >/dev/null
capture_stop

# --- replaying -------------------------------------------------------------------------------
TARGETS=(--target smtp=127.0.0.1:25 --target pop3=127.0.0.1:110 --target imap=127.0.0.1:143)
FAILS=0
fail() { log "FAIL: $*"; FAILS=$((FAILS + 1)); }

# replay NAME WANT_EXIT [mailtap flags...]: replay real-NAME.pcap, check the exit status.
replay() {
	local name=$1 want=$2 rc=0
	shift 2
	"$MT" replay -f json "$@" "$OUT/real-$name.pcap" >"$RUN/report-$name.jsonl" 2>"$RUN/report-$name.err" || rc=$?
	if ((rc != want)); then
		fail "$name: exit $rc, want $want ($(head -c 300 "$RUN/report-$name.err"))"
		# The divergences of this run (replaying again would not see the same mailboxes).
		"$PY" -c 'import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    for d in (r.get("diverged") or [])[:12]:
        print("  session %s #%s %s %s %s: %s -> %s %s %s" % (d["session"], d["index"], d["verb"], d["field"], d["kind"],
              d.get("captured"), d.get("replayed"), d.get("removed") or "", d.get("added") or ""))' "$RUN/report-$name.jsonl" >&2 || true
		return 1
	fi
	log "ok: $name exit $rc"
}

# expect NAME VERB FIELD_PREFIX [KIND]: the report has a divergence of this verb whose field
# starts with FIELD_PREFIX (and of this kind).
expect() {
	"$PY" - "$RUN/report-$1.jsonl" "$2" "$3" "${4:-}" <<-'EOF' || fail "$1: no $2 divergence on ${3}* ${4:-} (see $RUN/report-$1.jsonl)"
		import json, sys
		path, verb, field, kind = sys.argv[1:5]
		for line in open(path):
		    r = json.loads(line)
		    for d in r.get("diverged") or []:
		        if d["verb"] == verb and d["field"].startswith(field) and (not kind or d["kind"] == kind):
		            print(f"  found: session {d['session']} #{d['index']} {verb} {d['field']} {d['kind']}: "
		                  f"{d.get('captured')} -> {d.get('replayed')} {d.get('removed') or ''} {d.get('added') or ''}")
		            sys.exit(0)
		sys.exit(1)
	EOF
}

log "replaying against the same servers: everything must match"
replay postfix-swaks 0 "${TARGETS[@]}" || true
restore alice alice0
replay dovecot-poplib 0 "${TARGETS[@]}" || true
restore alice alice0
replay dovecot-pop3-curl 0 "${TARGETS[@]}" || true
restore bob bob0
replay dovecot-imaplib 0 "${TARGETS[@]}" || true
restore bob bob1
replay dovecot-imap-idle 0 "${TARGETS[@]}" || true
wait_queue_empty
restore bob bob0
replay dovecot-imap-curl 0 "${TARGETS[@]}" || true

log "replaying against different servers: each must diverge"
# One byte of message 2's attachment (same size: a base64 character).
restore bob bob0
f=$(grep -rl 'bersicht.csv' "$RUN/mail/bob/Maildir/cur" "$RUN/mail/bob/Maildir/new" | head -1)
"$PY" - "$f" <<-'EOF'
	import sys
	p = sys.argv[1]
	b = bytearray(open(p, "rb").read())
	i = b.index(b"bersicht.csv")
	j = b.index(b"\n\n", i) + 2 if b"\n\n" in b[i:] else b.index(b"\r\n\r\n", i) + 4
	b[j] = ord("B") if b[j] != ord("B") else ord("C")
	open(p, "wb").write(b)
EOF
drop_index "$RUN/mail/bob/Maildir"
replay dovecot-imaplib 3 "${TARGETS[@]}" && expect dovecot-imaplib FETCH 'FETCH 2 BODY[]' value

# alice's messages 1 and 2 swapped (their places in dovecot-uidlist).
restore alice alice0
"$PY" - "$RUN/mail/alice/Maildir/dovecot-uidlist" <<-'EOF'
	import sys
	p = sys.argv[1]
	lines = open(p).read().split("\n")
	idx = {l.split(" ", 1)[0]: i for i, l in enumerate(lines[1:], 1) if l}
	a, b = lines[idx["1"]], lines[idx["2"]]
	na, nb = a[a.index(":"):], b[b.index(":"):]
	lines[idx["1"]] = a[:a.index(":")] + nb
	lines[idx["2"]] = b[:b.index(":")] + na
	open(p, "w").write("\n".join(lines))
EOF
drop_index "$RUN/mail/alice/Maildir"
replay dovecot-poplib 3 "${TARGETS[@]}" && expect dovecot-poplib RETR 'RETR sha256' value

# An extra mailbox.
restore bob bob0
install -d -o mail -g mail "$RUN/mail/bob/Maildir/.Extra" "$RUN/mail/bob/Maildir/.Extra/cur" "$RUN/mail/bob/Maildir/.Extra/new" "$RUN/mail/bob/Maildir/.Extra/tmp"
replay dovecot-imaplib 3 "${TARGETS[@]}" && expect dovecot-imaplib LIST 'LIST Extra' extra

# A proxy that drops STARTTLS and 8BITMIME and says 5.7.1 for 5.1.1.
start_proxy() {
	"$RUN/mangleproxy" "$@" >"$RUN/proxy.addr" 2>"$RUN/proxy.err" &
	PROXY_PID=$!
	for _ in $(seq 50); do [[ -s $RUN/proxy.addr ]] && break; sleep 0.1; done
	PROXY=$(head -1 "$RUN/proxy.addr")
	[[ -n $PROXY ]] || die "mangleproxy did not start: $(cat "$RUN/proxy.err")"
}
stop_proxy() { kill "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; PROXY_PID=; : >"$RUN/proxy.addr"; }
: >"$RUN/proxy.addr"
start_proxy -target 127.0.0.1:25 -drop STARTTLS,8BITMIME -code 5.1.1=5.7.1
if replay postfix-swaks 3 --target "smtp=$PROXY"; then
	expect postfix-swaks EHLO EHLO set
	expect postfix-swaks RCPT code value
fi
stop_proxy

# A proxy that holds the RETR answer 2 s with --timeout 1s: a timeout divergence, then the
# session goes on.
restore alice alice0
start_proxy -target 127.0.0.1:110 -delay-verb RETR -delay 2s
replay dovecot-poplib 3 --timeout 1s --target "pop3=$PROXY" && expect dovecot-poplib RETR status timeout
stop_proxy

# Nothing replayable: exit 4.
rc=0
"$MT" replay "$ROOT/pcaps/gen-pop3-loss.pcap" >/dev/null 2>"$RUN/nothing.err" || rc=$?
if ((rc == 4)) && grep -q 'nothing compared' "$RUN/nothing.err"; then log "ok: nothing replayable exits 4"; else fail "gen-pop3-loss: exit $rc, want 4"; fi

((FAILS == 0)) || die "$FAILS checks failed"
log "all checks passed"
