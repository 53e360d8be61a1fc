#!/usr/bin/env bash
# Record real mail sessions on the loopback interface: Postfix and Dovecot as servers,
# swaks, Python (smtplib/poplib/imaplib/raw sockets), curl and fetchmail as clients,
# tcpdump as the recorder. Writes pcaps/real-*.pcap and pcaps/record/VERSIONS.txt.
#
# usage (as root):  bash pcaps/record/record.sh [smtp] [pop3] [fetchmail] [imap]
#   no argument records all four groups. Environment:
#   NO_INSTALL=1      skip apt-get (everything must already be installed)
#   RECORD_RUN_DIR    scratch directory for configs, mail, logs (default /var/tmp/mailtap-record)
#   NO_VERIFY=1       skip the tshark check of the captures at the end
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(dirname "$HERE")
RUN=${RECORD_RUN_DIR:-/var/tmp/mailtap-record}
PY=
# shellcheck source=lib.sh
. "$HERE/lib.sh"

[[ $(id -u) -eq 0 ]] || die "run as root (installs packages, starts Postfix and Dovecot, sniffs lo)"

STAGES=("$@")
[[ ${#STAGES[@]} -gt 0 ]] || STAGES=(smtp pop3 fetchmail imap)
for s in "${STAGES[@]}"; do
	case $s in smtp | pop3 | fetchmail | imap) ;; *) die "unknown group '$s' (want smtp, pop3, fetchmail or imap)" ;; esac
done

PACKAGES=(postfix dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd swaks libnet-ssleay-perl
	curl fetchmail tcpdump tshark openssl python3)

write_versions() {
	local f=$HERE/VERSIONS.txt
	{
		echo "# Versions of the servers and clients that recorded pcaps/real-*.pcap"
		echo "# (written by record.sh; groups recorded in the last run: ${STAGES[*]})"
		echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
		echo "postfix: $(postconf -h mail_version) (package $(dpkg-query -W -f='${Version}' postfix))"
		echo "dovecot: $(dovecot --version) (package $(dpkg-query -W -f='${Version}' dovecot-core))"
		echo "swaks: $(swaks --version 2>&1 | sed -n 's/^swaks version //p' | head -1) (package $(dpkg-query -W -f='${Version}' swaks))"
		echo "python3: $("$PY" -c 'import sys; print(sys.version.split()[0])')"
		echo "curl: $(curl --version | head -1)"
		echo "fetchmail: $(fetchmail --version 2>/dev/null | sed -n 's/^This is fetchmail release \([^+]*\).*/\1/p' | head -1) (package $(dpkg-query -W -f='${Version}' fetchmail))"
		echo "tcpdump: $(tcpdump --version 2>&1 | head -1); $(tcpdump --version 2>&1 | sed -n 2p)"
		echo "openssl: $(openssl version)"
		echo "tshark (verification only): $(tshark --version 2>/dev/null | head -1)"
	} >"$f"
	log "wrote $f"
}

make_tls() {
	mkdir -p "$RUN/tls"
	[[ -s $RUN/tls/cert.pem && -s $RUN/tls/key.pem ]] && return 0
	log "making a self-signed certificate for mail.example.test"
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mail.example.test" \
		-addext "subjectAltName=DNS:mail.example.test" \
		-keyout "$RUN/tls/key.pem" -out "$RUN/tls/cert.pem" 2>/dev/null
	chmod 600 "$RUN/tls/key.pem"
}

subst() { sed "s|@RUN@|$RUN|g" "$1"; }

configure_dovecot() {
	subst "$HERE/conf/dovecot.conf" >"$RUN/dovecot.conf"
	dovecot_files
	dovecot -c "$RUN/dovecot.conf" -n >/dev/null || die "dovecot rejects $RUN/dovecot.conf"
}

configure_postfix() {
	postfix_main
	postfix check
}

DOVECOT_STARTED= POSTFIX_STARTED=

stop_dovecot() {
	if [[ -f $RUN/dovecot.conf ]] && doveadm -c "$RUN/dovecot.conf" stop 2>/dev/null; then
		log "dovecot stopped"
	fi
}

start_servers() {
	# A previous run that was killed may have left them running: stop, then start fresh.
	stop_dovecot
	if postfix status >/dev/null 2>&1; then postfix stop >/dev/null 2>&1 || true; fi
	rm -f /var/spool/postfix/private/dovecot-lmtp /var/spool/postfix/private/auth
	postsuper -d ALL >/dev/null 2>&1 || true
	dovecot -c "$RUN/dovecot.conf"
	DOVECOT_STARTED=1
	wait_file /var/spool/postfix/private/dovecot-lmtp
	wait_file /var/spool/postfix/private/auth
	postfix start
	POSTFIX_STARTED=1
	wait_port 25
	wait_port 110
	wait_port 143
	log "postfix and dovecot are up"
}

cleanup() {
	local rc=$?
	if [[ -n $TCPDUMP_PID ]]; then
		kill -INT "$TCPDUMP_PID" 2>/dev/null || true
		wait "$TCPDUMP_PID" 2>/dev/null || true
	fi
	if [[ -n $POSTFIX_STARTED ]]; then postfix stop >/dev/null 2>&1 || true; fi
	if [[ -n $DOVECOT_STARTED ]]; then stop_dovecot; fi
	((rc == 0)) || log "failed (exit $rc); logs are in $RUN"
	exit "$rc"
}

# ---------------------------------------------------------------------------------------
# SMTP: Postfix on 127.0.0.1:25. Everything is delivered to carol (count checked at end).

stage_smtp() {
	local f='tcp port 25' swaks=(swaks --server 127.0.0.1 --port 25 --ehlo client.example.org
		--header 'X-Mailer: swaks')
	reset_user carol

	capture_start postfix-swaks-basic "$f"
	"${swaks[@]}" --from sender@example.org --to carol@example.test \
		--header 'Subject: =?UTF-8?Q?Quartalsbericht_f=C3=BCr_M=C3=A4rz?=' \
		--body 'Hello Carol, the quarterly report is attached.' \
		--attach-type text/csv --attach "@$HERE/files/quarterly-report.csv" --header 'Message-Id: <swaks-basic@example.org>' >"$RUN/swaks-basic.log"
	capture_stop

	capture_start postfix-swaks-pipelining "$f"
	# One good and one unknown recipient: Postfix answers 250 and 550 5.1.1, swaks still
	# sends the message to the good one.
	"${swaks[@]}" --pipeline --from sender@example.org --to carol@example.test,nobody@example.test \
		--header 'Subject: pipelined, one unknown recipient' \
		--body 'Sent with PIPELINING.' --header 'Message-Id: <swaks-pipelining@example.org>' >"$RUN/swaks-pipelining.log" || true
	grep -q '550 5.1.1 <nobody@example.test>' "$RUN/swaks-pipelining.log" || die "no 550 for nobody (see $RUN/swaks-pipelining.log)"
	capture_stop

	capture_start postfix-smtplib-multi "$f"
	"$PY" "$HERE/clients/smtplib_multi.py" >"$RUN/smtplib-multi.log"
	capture_stop

	capture_start postfix-bdat "$f"
	"$PY" "$HERE/clients/smtp_bdat.py" >"$RUN/bdat.log"
	capture_stop

	capture_start postfix-auth "$f"
	# 1: AUTH PLAIN with a wrong password (535, swaks gives up and QUITs),
	# 2: AUTH PLAIN, 3: AUTH LOGIN, each then sends one message.
	"${swaks[@]}" --from carol@example.test --to carol@example.test --auth PLAIN \
		--auth-user carol --auth-password wrong-password \
		--header 'Subject: never sent' --header 'Message-Id: <swaks-auth-bad@example.org>' >"$RUN/swaks-auth-bad.log" 2>&1 && die "wrong password accepted"
	grep -q '535 5.7.8' "$RUN/swaks-auth-bad.log" || die "no 535 (see $RUN/swaks-auth-bad.log)"
	"${swaks[@]}" --from carol@example.test --to carol@example.test --auth PLAIN \
		--auth-user carol --auth-password secret \
		--header 'Subject: sent after AUTH PLAIN' --body 'AUTH PLAIN worked.' --header 'Message-Id: <swaks-auth-plain@example.org>' >"$RUN/swaks-auth-plain.log"
	"${swaks[@]}" --from carol@example.test --to carol@example.test --auth LOGIN \
		--auth-user carol --auth-password secret \
		--header 'Subject: sent after AUTH LOGIN' --body 'AUTH LOGIN worked.' --header 'Message-Id: <swaks-auth-login@example.org>' >"$RUN/swaks-auth-login.log"
	capture_stop

	capture_start postfix-starttls "$f"
	"${swaks[@]}" --tls --from sender@example.org --to carol@example.test \
		--header 'Subject: sent over STARTTLS' --body 'Encrypted after STARTTLS.' --header 'Message-Id: <swaks-starttls@example.org>' >"$RUN/swaks-starttls.log"
	capture_stop

	wait_queue_empty
	# basic 1 + pipelining 1 + smtplib 3 + bdat 2 + auth 2 + starttls 1
	wait_maildir carol 10
	[[ $(maildir_count carol) -eq 10 ]] || die "carol has $(maildir_count carol) messages, want 10"
}

# ---------------------------------------------------------------------------------------
# POP3: Dovecot on 127.0.0.1:110, user alice with three seeded messages.

seed() { # seed USER: three messages through Postfix, in order (see clients/deliver.py)
	reset_user "$1"
	"$PY" "$HERE/clients/deliver.py" "$1" "$RUN/mail/$1/Maildir" "$HERE/files/quarterly-report.csv" >"$RUN/seed-$1.log"
	wait_queue_empty
	[[ $(maildir_count "$1") -eq 3 ]] || die "$1 has $(maildir_count "$1") messages, want 3"
}

stage_pop3() {
	local f='tcp port 110'
	seed alice

	capture_start dovecot-poplib "$f"
	"$PY" "$HERE/clients/pop3_poplib.py" >"$RUN/poplib.log"
	capture_stop

	capture_start dovecot-pop3-curl "$f"
	curl -sS --max-time 20 -u alice:secret pop3://127.0.0.1/ >"$RUN/curl-pop3-list.log"
	curl -sS --max-time 20 -u alice:secret pop3://127.0.0.1/1 >"$RUN/curl-pop3-retr.log"
	capture_stop

	capture_start dovecot-pop3-nodelete-drop "$f"
	"$PY" "$HERE/clients/pop3_drop.py" >"$RUN/pop3-drop.log"
	capture_stop
}

# ---------------------------------------------------------------------------------------
# fetchmail: a POP3 session of its own (a group of its own, so that recording it leaves the
# pop3 group's captures alone). alice is seeded again with the three messages; fetchmail
# logs in with USER/PASS, retrieves every message, marks each deleted and QUITs, which
# commits the deletions. Delivery goes to a file through an MDA, nowhere real.

stage_fetchmail() {
	local d=$RUN/fetchmail
	seed alice
	rm -rf "$d"
	mkdir -m 700 "$d"
	# sslproto '': no opportunistic STLS (Dovecot offers it; the capture stays readable).
	# A fresh FETCHMAILHOME each run: no .fetchids from an earlier run.
	cat >"$d/fetchmailrc" <<-EOF
		set no bouncemail
		poll 127.0.0.1 protocol pop3 service 110 timeout 20
		    user "alice" password "secret" is root here
		    sslproto ''
		    mda "cat >>$d/delivered.txt"
	EOF
	chmod 600 "$d/fetchmailrc"

	capture_start dovecot-pop3-fetchmail 'tcp port 110'
	# As root fetchmail runs the MDA as FETCHMAILUSER. Exit 0: mail was retrieved.
	FETCHMAILHOME=$d FETCHMAILUSER=root LC_ALL=C fetchmail -f "$d/fetchmailrc" \
		--nodetach --nosyslog -v >"$RUN/fetchmail.log" 2>&1 ||
		die "fetchmail failed (exit $?, see $RUN/fetchmail.log)"
	capture_stop

	[[ $(maildir_count alice) -eq 0 ]] || die "alice still has $(maildir_count alice) messages after fetchmail"
	[[ $(grep -c '^Message-ID: <alice-seed-' "$d/delivered.txt") -eq 3 ]] ||
		die "fetchmail did not deliver the three messages (see $d/delivered.txt)"
}

# ---------------------------------------------------------------------------------------
# IMAP: Dovecot on 127.0.0.1:143, user bob with three seeded messages.

stage_imap() {
	local f='tcp port 143'
	seed bob

	capture_start dovecot-imaplib "$f"
	"$PY" "$HERE/clients/imap_imaplib.py" >"$RUN/imaplib.log"
	capture_stop

	capture_start dovecot-imap-curl "$f"
	curl -sS --max-time 20 -u bob:secret 'imap://127.0.0.1/' >"$RUN/curl-imap-list.log"
	curl -sS --max-time 20 -u bob:secret 'imap://127.0.0.1/INBOX;UID=3' >"$RUN/curl-imap-fetch.log"
	capture_stop

	# IDLE: the SMTP delivery that wakes the idling client is part of this capture.
	capture_start dovecot-imap-idle 'tcp port 143 or tcp port 25'
	"$PY" "$HERE/clients/imap_idle.py" >"$RUN/imap-idle.log"
	capture_stop
	wait_queue_empty
}

# ---------------------------------------------------------------------------------------

install_packages "${PACKAGES[@]}"
PY=${PYTHON:-/usr/bin/python3}
[[ -x $PY ]] || PY=$(command -v python3)
mkdir -p "$RUN"
trap cleanup EXIT
trap 'exit 130' INT TERM
make_tls
configure_dovecot
configure_postfix
write_versions
start_servers
for s in "${STAGES[@]}"; do
	log "recording the $s group"
	"stage_$s"
done
if [[ -z ${NO_VERIFY:-} ]]; then
	bash "$HERE/verify.sh" "${STAGES[@]}"
fi
log "done"
