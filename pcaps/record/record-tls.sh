#!/usr/bin/env bash
# Record mail sessions over TLS with their key logs: Postfix (STARTTLS on 25 and 587, SMTPS
# on 465) and Dovecot (STLS on 110, POP3S on 995, STARTTLS on 143, IMAPS on 993) on
# 127.0.0.1 with a self-signed certificate, Python clients (clients/tls_sessions.py, with
# SSLContext.keylog_filename) and curl (SSLKEYLOGFILE), tcpdump on lo. Writes
#   pcaps/real-tls.pcap          every session (TLS 1.3 and 1.2; AES-128/256-GCM,
#                                CHACHA20-POLY1305, AES-128-CBC-SHA)
#   pcaps/real-tls.keylog        the secrets of every session
#   pcaps/real-tls-partial.keylog  the secrets of the SMTP sessions only
#   pcaps/real-tls.truth.json    what the Python clients saw (ground truth for tests)
#   pcaps/real-tls-dsb.pcapng    real-tls.pcap with the key log embedded
#                                (editcap --inject-secrets)
#   pcaps/real-tls-2mb.pcap      a 2 MB message over SMTPS (TLS 1.3), with its
#                                .keylog and .truth.json
# The shared system Postfix and Dovecot are started, reconfigured and stopped under
# flock /tmp/mailtap-servers.lock.
#
# usage (as root): bash pcaps/record/record-tls.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z ${MAILTAP_SERVERS_LOCKED:-} ]]; then
	exec env MAILTAP_SERVERS_LOCKED=1 flock /tmp/mailtap-servers.lock bash "${BASH_SOURCE[0]}" "$@"
fi
OUT=$(dirname "$HERE")
RUN=${RECORD_RUN_DIR:-/var/tmp/mailtap-record-tls}
PY=${PYTHON:-/usr/bin/python3}
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[[ $(id -u) -eq 0 ]] || die "run as root (starts Postfix and Dovecot, sniffs lo)"
for t in postfix dovecot tcpdump editcap curl openssl "$PY"; do
	command -v "$t" >/dev/null || die "$t is not installed"
done

subst() { sed "s|@RUN@|$RUN|g" "$1"; }

mkdir -p "$RUN/tls"
if [[ ! -s $RUN/tls/cert.pem ]]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mail.example.test" \
		-addext "subjectAltName=DNS:mail.example.test" \
		-keyout "$RUN/tls/key.pem" -out "$RUN/tls/cert.pem" 2>/dev/null
	chmod 600 "$RUN/tls/key.pem"
fi

# Dovecot: the recording configuration with the implicit-TLS listeners turned on.
subst "$HERE/conf/dovecot.conf" | awk '
	/inet_listener imaps/ { l = "993" } /inet_listener pop3s/ { l = "995" }
	/port = 0/ && l != "" { sub(/port = 0/, "port = " l); l = "" } { print }' >"$RUN/dovecot.conf"
rm -rf "$RUN/mail"
dovecot_files
dovecot -c "$RUN/dovecot.conf" -n >/dev/null || die "dovecot rejects $RUN/dovecot.conf"

# Postfix: the recording configuration plus submission (587) and smtps (465).
postfix_main
postconf -M submission/inet="submission inet n - n - - smtpd"
postconf -M smtps/inet="smtps inet n - n - - smtpd"
postconf -P "smtps/inet/smtpd_tls_wrappermode=yes"
postfix check

stop_servers() {
	postfix stop >/dev/null 2>&1 || true
	doveadm -c "$RUN/dovecot.conf" stop 2>/dev/null || true
	postconf -MX submission/inet smtps/inet 2>/dev/null || true
}
cleanup() {
	local rc=$?
	if [[ -n $TCPDUMP_PID ]]; then kill -INT "$TCPDUMP_PID" 2>/dev/null || true; wait "$TCPDUMP_PID" 2>/dev/null || true; fi
	stop_servers
	((rc == 0)) || log "failed (exit $rc); logs are in $RUN"
	exit "$rc"
}
trap cleanup EXIT

doveadm -c "$RUN/dovecot.conf" stop 2>/dev/null || true
if postfix status >/dev/null 2>&1; then postfix stop >/dev/null 2>&1 || true; fi
rm -f /var/spool/postfix/private/dovecot-lmtp /var/spool/postfix/private/auth
postsuper -d ALL >/dev/null 2>&1 || true
dovecot -c "$RUN/dovecot.conf"
wait_file /var/spool/postfix/private/dovecot-lmtp
wait_file /var/spool/postfix/private/auth
postfix start
wait_port 25
wait_port 110
wait_port 143

KEYS=$OUT/real-tls.keylog
TRUTH=$OUT/real-tls.truth.json
rm -f "$KEYS" "$TRUTH"
: >"$KEYS"

# One capture of every session; no size limit (lib.sh's capture_stop caps at 300 KB).
CAP=$OUT/real-tls.pcap
rm -f "$CAP"
tcpdump -i lo -n -U --immediate-mode -s 0 -B 131072 -Z root -w "$CAP" \
	'tcp port 25 or tcp port 587 or tcp port 465 or tcp port 110 or tcp port 995 or tcp port 143 or tcp port 993' 2>"$RUN/tcpdump.err" &
TCPDUMP_PID=$!
for ((i = 0; i < 100; i++)); do grep -q 'listening on' "$RUN/tcpdump.err" && break; sleep 0.1; done
sleep 0.3

"$PY" "$HERE/clients/tls_sessions.py" "$KEYS" "$TRUTH" send >"$RUN/tls-send.log"
wait_queue_empty
wait_maildir alice 2
wait_maildir bob 2
# curl, keys through SSLKEYLOGFILE: POP3S LIST and IMAPS LIST (TLS 1.3).
SSLKEYLOGFILE=$KEYS curl -sS -k --max-time 20 -u alice:secret pop3s://127.0.0.1/ >"$RUN/curl-pop3s.log"
SSLKEYLOGFILE=$KEYS curl -sS -k --max-time 20 -u bob:secret 'imaps://127.0.0.1/INBOX' >"$RUN/curl-imaps.log"
"$PY" "$HERE/clients/tls_sessions.py" "$KEYS" "$TRUTH" read >"$RUN/tls-read.log"

sleep 1
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
TCPDUMP_PID=
log "wrote $CAP ($(stat -c %s "$CAP") bytes), $(grep -vc '^#' "$KEYS") key log lines"

# The SMTP sessions' client randoms: the partial key log keeps their lines only.
"$PY" - "$KEYS" "$OUT/real-tls-partial.keylog" "$CAP" <<-'PYEOF'
	import sys
	keys, out, cap = sys.argv[1:4]
	lines = [l for l in open(keys) if l.strip() and not l.startswith("#")]
	# Secrets are logged in connection order; the first four connections are SMTP.
	randoms = []
	for l in lines:
	    r = l.split()[1]
	    if r not in randoms:
	        randoms.append(r)
	keep = set(randoms[:4])
	with open(out, "w") as f:
	    f.write("# the secrets of the four SMTP sessions only\n")
	    f.writelines(l for l in lines if l.split()[1] in keep)
PYEOF
editcap -F pcapng --inject-secrets "tls,$KEYS" "$CAP" "$OUT/real-tls-dsb.pcapng"
log "wrote real-tls-dsb.pcapng, real-tls-partial.keylog, real-tls.truth.json"

# A 2 MB message over TLS, in a capture of its own.
BIG=$OUT/real-tls-2mb.pcap
rm -f "$BIG" "$OUT/real-tls-2mb.keylog" "$OUT/real-tls-2mb.truth.json"
: >"$RUN/tcpdump.err"
tcpdump -i lo -n -U --immediate-mode -s 0 -B 131072 -Z root -w "$BIG" 'tcp port 465' 2>"$RUN/tcpdump.err" &
TCPDUMP_PID=$!
for ((i = 0; i < 100; i++)); do grep -q 'listening on' "$RUN/tcpdump.err" && break; sleep 0.1; done
sleep 0.3
"$PY" "$HERE/clients/tls_sessions.py" "$OUT/real-tls-2mb.keylog" "$OUT/real-tls-2mb.truth.json" big >"$RUN/tls-big.log"
sleep 1
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
TCPDUMP_PID=
wait_queue_empty
log "wrote $BIG ($(stat -c %s "$BIG") bytes)"
