#!/usr/bin/env bash
# Check pcaps/real-*.pcap against the ground truth written in pcaps/README.md, reading the
# payload with tshark (an independent decoder). record.sh runs it after recording.
#
# usage: bash pcaps/record/verify.sh [smtp] [pop3] [fetchmail] [imap]     (default: all)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PCAPS=$(dirname "$HERE")
command -v tshark >/dev/null || { echo "verify: tshark is not installed" >&2; exit 1; }

GROUPS_=("$@")
[[ ${#GROUPS_[@]} -gt 0 ]] || GROUPS_=(smtp pop3 fetchmail imap)
FAILED=0
declare -A FAILED_FILES=() # a file counts once however many of its checks fail
CHECKED=0

# transcript FILE: every TCP stream of FILE as ASCII lines (CR and empty lines dropped),
# streams in order, both directions interleaved as they were sent.
transcript() {
	local f=$1 s
	for s in $(tshark -r "$f" -T fields -e tcp.stream 2>/dev/null | sort -nu); do
		echo "=== stream $s"
		tshark -r "$f" -q -z "follow,tcp,ascii,$s" 2>/dev/null | sed -n '/^Node 1:/,/^=====/p' |
			grep -vE '^(Node 1:|=====|	?[0-9]+$)' | tr -d '\r' | grep -v '^$'
	done
}

# failed NAME: count real-NAME.pcap as failed (once).
failed() {
	[[ -n ${FAILED_FILES[$1]:-} ]] && return 0
	FAILED_FILES[$1]=1
	FAILED=$((FAILED + 1))
}

# expect NAME STREAMS STRING...: real-NAME.pcap has STREAMS TCP connections, each with a
# SYN and closed by FIN or RST (so the capture holds whole connections), and its transcript contains every STRING (fixed strings, in
# this order).
expect() {
	local name=$1 streams=$2 f=$PCAPS/real-$1.pcap text got syns ends s rest
	shift 2
	CHECKED=$((CHECKED + 1))
	if [[ ! -s $f ]]; then
		echo "FAIL real-$name.pcap: missing"
		failed "$name"
		return
	fi
	text=$(transcript "$f")
	got=$(tshark -r "$f" -T fields -e tcp.stream 2>/dev/null | sort -nu | wc -l)
	syns=$(tshark -r "$f" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' -T fields -e tcp.stream 2>/dev/null | sort -u | wc -l)
	ends=$(tshark -r "$f" -Y 'tcp.flags.fin == 1 || tcp.flags.reset == 1' -T fields -e tcp.stream 2>/dev/null | sort -u | wc -l)
	local bad=()
	[[ $got -eq $streams ]] || bad+=("$got TCP streams, want $streams")
	[[ $syns -eq $streams ]] || bad+=("$syns streams open with SYN, want $streams")
	[[ $ends -eq $streams ]] || bad+=("$ends streams end with FIN or RST, want $streams")
	# Each string must appear after the previous one.
	rest=$text
	for s in "$@"; do
		if [[ $rest == *"$s"* ]]; then
			rest=${rest#*"$s"}
		else
			bad+=("missing or out of order: $s")
		fi
	done
	if [[ ${#bad[@]} -eq 0 ]]; then
		echo "ok   real-$name.pcap ($streams streams, $# facts)"
	else
		echo "FAIL real-$name.pcap"
		printf '     %s\n' "${bad[@]}"
		failed "$name"
	fi
}

verify_smtp() {
	expect postfix-swaks-basic 1 \
		'220 mail.example.test ESMTP Postfix' 'EHLO client.example.org' '250-PIPELINING' '250 CHUNKING' \
		'MAIL FROM:<sender@example.org>' '250 2.1.0 Ok' 'RCPT TO:<carol@example.test>' '250 2.1.5 Ok' \
		'DATA' '354 End data with' \
		'Subject: =?UTF-8?Q?Quartalsbericht_f=C3=BCr_M=C3=A4rz?=' 'Message-Id: <swaks-basic@example.org>' \
		'Content-Type: multipart/mixed;' 'Content-Type: text/csv; name="quarterly-report.csv"' \
		'filename="quarterly-report.csv"' 'Content-Transfer-Encoding: BASE64' \
		'cmVnaW9uLHF1YXJ0ZXIsb3JkZXJzLHJldmVudWVfZXVy' \
		'250 2.0.0 Ok: queued as ' 'QUIT' '221 2.0.0 Bye'
	expect postfix-swaks-pipelining 1 \
		'250-PIPELINING' \
		$'MAIL FROM:<sender@example.org>\nRCPT TO:<carol@example.test>\nRCPT TO:<nobody@example.test>\nDATA' \
		$'250 2.1.0 Ok\n250 2.1.5 Ok\n550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in local recipient table\n354 End data with' \
		'Subject: pipelined, one unknown recipient' '250 2.0.0 Ok: queued as ' 'QUIT' '221 2.0.0 Bye'
	expect postfix-smtplib-multi 1 \
		'ehlo smtplib.example.org' \
		'mail FROM:<erik@example.org> size=' 'rcpt TO:<carol@example.test>' 'data' \
		'Subject: smtplib message 1 of 3' '250 2.0.0 Ok: queued as ' \
		'mail FROM:<erik@example.org> size=' 'rcpt TO:<carol@example.test>' \
		'Subject: =?utf-8?b?UHLDvGZiZXJpY2h0IGbDvHIgTcOkcnog4oCT?= Nachricht 2' '250 2.0.0 Ok: queued as ' \
		'mail FROM:<erik@example.org> size=' 'Subject: smtplib message 3 of 3' '250 2.0.0 Ok: queued as ' \
		'QUIT' '221 2.0.0 Bye'
	expect postfix-bdat 1 \
		'EHLO bdat.example.org' '250 CHUNKING' 'MAIL FROM:<bdat@example.org>' 'RCPT TO:<carol@example.test>' \
		'BDAT 218' 'Subject: BDAT message 1 in two chunks' 'First body' '250 2.0.0 Ok: 218 bytes' \
		$'BDAT 140 LAST\n line.\n.this line starts with a dot and is not stuffed\n.\nThe line above' \
		'250 2.0.0 Ok: 358 bytes queued as ' \
		$'MAIL FROM:<bdat@example.org>\nRCPT TO:<carol@example.test>\nBDAT 199\n' \
		'Subject: BDAT message 2 pipelined' 'BDAT 0 LAST' \
		$'250 2.1.0 Ok\n250 2.1.5 Ok\n250 2.0.0 Ok: 199 bytes\n250 2.0.0 Ok: 199 bytes queued as ' \
		'QUIT' '221 2.0.0 Bye'
	expect postfix-auth 3 \
		'250-AUTH PLAIN LOGIN' 'AUTH PLAIN AGNhcm9sAHdyb25nLXBhc3N3b3Jk' \
		'535 5.7.8 Error: authentication failed' 'QUIT' '221 2.0.0 Bye' \
		'AUTH PLAIN AGNhcm9sAHNlY3JldA==' '235 2.7.0 Authentication successful' \
		'MAIL FROM:<carol@example.test>' 'Subject: sent after AUTH PLAIN' '250 2.0.0 Ok: queued as ' \
		$'AUTH LOGIN\n334 VXNlcm5hbWU6\nY2Fyb2w=\n334 UGFzc3dvcmQ6\nc2VjcmV0\n235 2.7.0 Authentication successful' \
		'Subject: sent after AUTH LOGIN' '250 2.0.0 Ok: queued as ' '221 2.0.0 Bye'
	expect postfix-starttls 1 \
		'EHLO client.example.org' '250-STARTTLS' $'STARTTLS\n220 2.0.0 Ready to start TLS'
	# After STARTTLS nothing is readable: one EHLO in clear text, no MAIL FROM.
	local t
	t=$(transcript "$PCAPS/real-postfix-starttls.pcap")
	if [[ $(grep -c '^EHLO' <<<"$t") -ne 1 ]] || grep -q '^MAIL FROM' <<<"$t"; then
		echo "FAIL real-postfix-starttls.pcap: clear text after STARTTLS"
		failed postfix-starttls
	fi
}

verify_pop3() {
	expect dovecot-poplib 1 \
		'+OK Dovecot (Debian) ready.' 'USER alice' '+OK' 'PASS secret' '+OK Logged in.' \
		'STAT' '+OK 3 ' $'LIST\n+OK 3 messages:\n1 ' '3 ' $'.\nUIDL\n+OK\n1 ' '3 ' \
		$'RETR 1\n+OK ' 'Delivered-To: alice@example.test' 'Subject: POP3 one: plain text' \
		'Message-ID: <alice-seed-1@example.org>' $'this is message one.\n..leading dot line\n..\nend of message one.\n.\n' \
		$'TOP 2 5\n+OK' 'Subject: =?utf-8?b?R3LDvMOfZSBhdXMgS8O2bG4g4oCTIFJlY2hudW5nIE3DpHJ6?=' \
		'Message-ID: <alice-seed-2@example.org>' 'Content-Type: multipart/mixed;' \
		$'Content-Transfer-Encoding: 8bit\nDie Rechnung liegt bei.\n.\nDELE 3\n+OK Marked to be deleted.' \
		$'QUIT\n+OK Logging out, messages deleted.'
	expect dovecot-pop3-curl 2 \
		'+OK Dovecot (Debian) ready.' $'CAPA\n+OK\nCAPA\nTOP\nUIDL' 'SASL PLAIN LOGIN' \
		$'AUTH PLAIN\n+ \nAGFsaWNlAHNlY3JldA==\n+OK Logged in.' $'LIST\n+OK 2 messages:\n1 ' '2 ' \
		$'.\nQUIT\n+OK Logging out.' \
		'=== stream 1' $'AUTH PLAIN\n+ \nAGFsaWNlAHNlY3JldA==\n+OK Logged in.' $'RETR 1\n+OK ' \
		'Subject: POP3 one: plain text' $'end of message one.\n.\nQUIT\n+OK Logging out.'
	expect dovecot-pop3-nodelete-drop 2 \
		'USER alice' 'PASS secret' '+OK Logged in.' $'STAT\n+OK 2 ' \
		$'DELE 1\n+OK Marked to be deleted.\n=== stream 1\n+OK Dovecot (Debian) ready.' \
		'USER alice' $'STAT\n+OK 2 ' $'LIST\n+OK 2 messages:\n1 ' '2 ' $'.\nQUIT\n+OK Logging out.'
	# No QUIT in the dropped connection.
	if [[ $(transcript "$PCAPS/real-dovecot-pop3-nodelete-drop.pcap" | grep -c '^QUIT') -ne 1 ]]; then
		echo "FAIL real-dovecot-pop3-nodelete-drop.pcap: want exactly one QUIT"
		failed dovecot-pop3-nodelete-drop
	fi
}

verify_fetchmail() {
	expect dovecot-pop3-fetchmail 1 \
		'+OK Dovecot (Debian) ready.' $'CAPA\n+OK\nCAPA\nTOP\nUIDL' $'SASL PLAIN LOGIN\n.\nUSER alice\n+OK\nPASS secret\n+OK Logged in.' \
		$'STAT\n+OK 3 ' $'LAST\n-ERR Unknown command: LAST\nUIDL\n+OK\n1 ' '3 ' \
		$'.\nLIST 1\n+OK 1 ' $'TOP 1 99999999\n+OK\nReturn-Path: <dora@example.org>' 'Delivered-To: alice@example.test' \
		'Subject: POP3 one: plain text' 'Message-ID: <alice-seed-1@example.org>' \
		$'this is message one.\n..leading dot line\n..\nend of message one.\n.\nDELE 1\n+OK Marked to be deleted.' \
		$'LIST 2\n+OK 2 ' $'TOP 2 99999999\n+OK\nReturn-Path: <dora@example.org>' \
		'Subject: =?utf-8?b?R3LDvMOfZSBhdXMgS8O2bG4g4oCTIFJlY2hudW5nIE3DpHJ6?=' 'Message-ID: <alice-seed-2@example.org>' \
		"filename*=utf-8''%C3%9Cbersicht.csv" 'cmVnaW9uLHF1YXJ0ZXIsb3JkZXJzLHJldmVudWVfZXVy' \
		$'.\nDELE 2\n+OK Marked to be deleted.' $'LIST 3\n+OK 3 ' $'TOP 3 99999999\n+OK\nReturn-Path: <dora@example.org>' \
		'Subject: POP3 three: to be deleted' 'Message-ID: <alice-seed-3@example.org>' \
		$'Message three for alice.\n.\nDELE 3\n+OK Marked to be deleted.\nQUIT\n+OK Logging out, messages deleted.'
	# fetchmail retrieves with TOP n 99999999, never RETR; three DELE, committed by one QUIT.
	local t
	t=$(transcript "$PCAPS/real-dovecot-pop3-fetchmail.pcap")
	if [[ $(grep -c '^RETR' <<<"$t") -ne 0 || $(grep -c '^DELE [123]$' <<<"$t") -ne 3 || $(grep -c '^QUIT$' <<<"$t") -ne 1 ]]; then
		echo "FAIL real-dovecot-pop3-fetchmail.pcap: want no RETR, DELE 1-3 and one QUIT"
		failed dovecot-pop3-fetchmail
	fi
}

verify_imap() {
	expect dovecot-imaplib 1 \
		'* OK [CAPABILITY IMAP4rev1' 'Dovecot (Debian) ready.' ' CAPABILITY' ' LOGIN bob "secret"' ' OK Logged in' \
		' LIST "" *' '* LIST (\HasNoChildren \Drafts) "/" Drafts' '* LIST (\HasNoChildren \Sent) "/" Sent' \
		'* LIST (\HasNoChildren \Trash) "/" Trash' '* LIST (\HasNoChildren) "/" INBOX' \
		' SELECT INBOX' '* 3 EXISTS' '* 3 RECENT' '* OK [UIDNEXT 4]' ' OK [READ-WRITE] Select completed' \
		' FETCH 1:3 (UID FLAGS RFC822.SIZE BODY.PEEK[])' '* 1 FETCH (UID 1 FLAGS (\Recent) RFC822.SIZE ' \
		'Subject: IMAP one: plain text' $'this is message one.\n.leading dot line\n.\nend of message one.\n)' \
		'* 2 FETCH (UID 2 FLAGS (\Recent) RFC822.SIZE ' 'Subject: =?utf-8?b?w5xiZXJ3ZWlzdW5nIGJlc3TDpHRpZ3Qg4oCT?= Anhang' \
		"filename*=utf-8''%C3%9Cbersicht.csv" '* 3 FETCH (UID 3 FLAGS (\Recent) RFC822.SIZE ' \
		'Subject: IMAP three: stays in INBOX' ' OK Fetch completed' \
		$' SEARCH UNSEEN\n* SEARCH 1 2 3' $' STORE 1 +FLAGS (\\Seen)\n* 1 FETCH (FLAGS (\\Seen \\Recent))' \
		' CREATE Archive' ' OK Create completed' ' COPY 1 Archive' ' OK [COPYUID ' \
		' UID MOVE 2 Archive' '* OK [COPYUID ' $'Moved UIDs.\n* 2 EXPUNGE' ' OK Move completed' \
		' CREATE Scratch' ' RENAME Scratch Projects' ' OK Rename completed' ' DELETE Projects' ' OK Delete completed' \
		$' APPEND INBOX (\\Seen) "01-Mar-2024 10:00:00 +0100" {' '+ OK' 'Subject: Appended by imaplib' \
		'* 3 EXISTS' ' OK [APPENDUID ' ' 4] Append completed' ' NOOP' \
		$' STORE 1 +FLAGS (\\Deleted)\n* 1 FETCH (FLAGS (\\Deleted \\Seen \\Recent))' \
		$' EXPUNGE\n* 1 EXPUNGE' ' EXAMINE Archive' '* 2 EXISTS' ' OK [READ-ONLY] Examine completed' \
		'* 1 FETCH (UID 1 FLAGS (\Seen \Recent) BODY[HEADER.FIELDS (SUBJECT)] {' 'Subject: IMAP one: plain text' \
		'* 2 FETCH (UID 2 FLAGS (\Recent) BODY[HEADER.FIELDS (SUBJECT)] {' \
		' LOGOUT' '* BYE Logging out' ' OK Logout completed'
	expect dovecot-imap-curl 2 \
		$'A001 CAPABILITY\n* CAPABILITY' $'A002 AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ=' 'A002 OK Logged in' \
		$'A003 LIST "" *\n* LIST (\\HasNoChildren) "/" Archive' '* LIST (\HasNoChildren) "/" INBOX' \
		'A003 OK List completed' $'A004 LOGOUT\n* BYE Logging out\nA004 OK' \
		'=== stream 1' 'A002 AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ=' 'A003 SELECT INBOX' '* 2 EXISTS' \
		$'A004 UID FETCH 3 BODY[]\n* 1 FETCH (UID 3 FLAGS (\\Seen) BODY[] {' 'Subject: IMAP three: stays in INBOX' \
		$'Message three for bob.\n)\nA004 OK Fetch completed' $'A005 LOGOUT\n* BYE Logging out\nA005 OK'
	expect dovecot-imap-idle 3 \
		'a1 LOGIN bob secret' 'a1 OK' $'a2 SELECT INBOX' '* 2 EXISTS' 'a2 OK [READ-WRITE]' \
		$'a3 IDLE\n+ idling\n* 3 EXISTS' '* 4 EXISTS' $'DONE\na3 OK Idle completed' \
		$'a4 FETCH 3:4 (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\n* 3 FETCH (UID 5 ' 'Subject: Delivered during IDLE' \
		'* 4 FETCH (UID 6 ' 'Subject: Appended during IDLE' 'a4 OK' $'a5 LOGOUT\n* BYE Logging out\na5 OK' \
		'=== stream 1' '220 mail.example.test ESMTP Postfix' 'ehlo idle.example.org' 'mail FROM:<dora@example.org>' \
		'rcpt TO:<bob@example.test>' 'Subject: Delivered during IDLE' '250 2.0.0 Ok: queued as ' '221 2.0.0 Bye' \
		'=== stream 2' ' LOGIN bob "secret"' ' APPEND INBOX {' '+ OK' 'Subject: Appended during IDLE' \
		' OK [APPENDUID ' ' 6] Append completed' '* BYE Logging out'
}

for g in "${GROUPS_[@]}"; do
	"verify_$g"
done
echo "verify: $((CHECKED - FAILED)) passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
