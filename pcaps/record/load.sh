#!/usr/bin/env bash
# Record large mixed-load captures of real mail traffic for cmd/mailbench: Postfix and
# Dovecot as servers, Postfix's smtp-source/smtp-sink and Python smtplib/poplib/imaplib as
# clients, all at once, recorded on lo with tcpdump until the file reaches SIZE_MB.
#
# usage (as root):  bash pcaps/record/load.sh [lo] [mtu]
#   lo   64 KiB segments, as loopback hands them over (TSO/GSO)      -> $OUT/load-lo.pcap
#   mtu  lo set to MTU 1500 and gso_max_segs 1, so every TCP segment
#        is at most 1460 bytes, as on an Ethernet link             -> $OUT/load-mtu.pcap
#   no argument records both. Installs Postfix, Dovecot and tcpdump with apt-get when they
#   are missing (unless NO_INSTALL=1). Environment:
#   SIZE_MB         size of each capture (default 250)
#   LOAD_OUT        where the captures go (default /var/tmp/mailtap-load; never the repository)
#   RECORD_RUN_DIR  scratch directory for configs, mail, logs (default /var/tmp/mailtap-load-run)
#
# What runs, interleaved, for the whole recording:
#   - smtp-source -> smtp-sink on 127.0.0.1:2525: rounds of 1 KB - 5 MB messages, 4-40
#     parallel sessions, alternately one message per connection and connections reused (-d);
#     each round has its own sender and header recipient, and numbered envelope
#     recipients (-N), as a bulk sender's mail does;
#   - smtp-source -> Postfix on 127.0.0.1:25, local delivery to alice and bob (LMTP to Dovecot),
#     each round from its own sender;
#   - clients/load.py submit: smtplib sessions with AUTH PLAIN / LOGIN, MIME messages with
#     and without base64 attachments, to alice, bob, carol, whose From/To/Cc/Reply-To name
#     people drawn from a pool of tens of thousands (so address field values rarely repeat);
#   - clients/load.py bulk (2 clients): smtplib -> smtp-sink, sessions of 1-50 small
#     messages from and to such people, as a relay carries everyone's mail;
#   - clients/load.py pop3: poplib RETR + DELE of alice's mail;
#   - clients/load.py imap: imaplib UID FETCH BODY.PEEK[] of bob's and carol's mail.
# The system Postfix and Dovecot and the settings of lo are shared: the whole run holds
# flock /tmp/mailtap-servers.lock, restores /etc/postfix/{main,master}.cf and lo's MTU at
# the end and stops the servers it started. The captures are large: they are written
# outside the repository and never committed.
set -euo pipefail

if [[ -z ${MAILTAP_LOAD_LOCKED:-} ]]; then
	exec env MAILTAP_LOAD_LOCKED=1 flock /tmp/mailtap-servers.lock bash "$0" "$@"
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${LOAD_OUT:-/var/tmp/mailtap-load}
RUN=${RECORD_RUN_DIR:-/var/tmp/mailtap-load-run}
SIZE_MB=${SIZE_MB:-250}
PY=$(command -v python3)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

[[ $(id -u) -eq 0 ]] || die "run as root (starts Postfix and Dovecot, sniffs lo, sets lo's MTU)"
case $(realpath -m "$OUT")/ in "$REPO"/*) die "LOAD_OUT $OUT is inside the repository" ;; esac
[[ $SIZE_MB =~ ^[0-9]+$ && $SIZE_MB -ge 1 && $SIZE_MB -le 4096 ]] || die "SIZE_MB=$SIZE_MB: want 1..4096"
install_packages postfix dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd tcpdump openssl
for t in postfix dovecot smtp-source smtp-sink tcpdump; do
	command -v "$t" >/dev/null || [[ -x /usr/sbin/$t ]] || die "$t is not installed"
done
export PATH=$PATH:/usr/sbin

VARIANTS=("$@")
[[ ${#VARIANTS[@]} -gt 0 ]] || VARIANTS=(lo mtu)
for v in "${VARIANTS[@]}"; do
	case $v in lo | mtu) ;; *) die "unknown variant '$v' (want lo or mtu)" ;; esac
done

mkdir -p "$OUT" "$RUN"
LO_MTU=$(cat /sys/class/net/lo/mtu)
LO_SEGS=$(ip -d link show lo | sed -n 's/.*gso_max_segs \([0-9]*\).*/\1/p')
cp /etc/postfix/main.cf "$RUN/main.cf.saved"
cp /etc/postfix/master.cf "$RUN/master.cf.saved"
TCPDUMP_PID= SINK_PID= DOVECOT_STARTED= POSTFIX_STARTED=
STOP=$RUN/stop

cleanup() {
	local rc=$?
	touch "$STOP"
	[[ -z $TCPDUMP_PID ]] || { kill -INT "$TCPDUMP_PID" 2>/dev/null || true; }
	[[ -z $SINK_PID ]] || { kill "$SINK_PID" 2>/dev/null || true; }
	wait 2>/dev/null || true
	ip link set lo mtu "$LO_MTU" ${LO_SEGS:+gso_max_segs "$LO_SEGS"} || true
	[[ -z $POSTFIX_STARTED ]] || postfix stop >/dev/null 2>&1 || true
	[[ -z $DOVECOT_STARTED ]] || doveadm -c "$RUN/dovecot.conf" stop 2>/dev/null || true
	cp "$RUN/main.cf.saved" /etc/postfix/main.cf
	cp "$RUN/master.cf.saved" /etc/postfix/master.cf
	rm -rf "${RUN:?}/mail"
	((rc == 0)) || log "failed (exit $rc); logs are in $RUN"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The same server setup as record.sh (conf/), started here without systemd.
setup_servers() {
	mkdir -p "$RUN/tls"
	if [[ ! -s $RUN/tls/key.pem ]]; then
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mail.example.test" \
			-keyout "$RUN/tls/key.pem" -out "$RUN/tls/cert.pem" 2>/dev/null
	fi
	sed "s|@RUN@|$RUN|g" "$HERE/conf/dovecot.conf" >"$RUN/dovecot.conf"
	rm -rf "$RUN/mail"
	dovecot_files
	postfix_main
	# Room for the largest messages of the load.
	postconf -e message_size_limit=20000000
	if postfix status >/dev/null 2>&1; then postfix stop >/dev/null 2>&1 || true; fi
	doveadm -c "$RUN/dovecot.conf" stop 2>/dev/null || true
	rm -f /var/spool/postfix/private/dovecot-lmtp /var/spool/postfix/private/auth
	postsuper -d ALL >/dev/null 2>&1 || true
	dovecot -c "$RUN/dovecot.conf"
	DOVECOT_STARTED=1
	wait_file /var/spool/postfix/private/dovecot-lmtp
	wait_file /var/spool/postfix/private/auth
	postfix start >/dev/null 2>&1
	POSTFIX_STARTED=1
	wait_port 25
	wait_port 110
	wait_port 143
	smtp-sink -u postfix 127.0.0.1:2525 256 &
	SINK_PID=$!
	log "postfix, dovecot and smtp-sink (127.0.0.1:2525) are up"
}

# rand_addr: an address for a round's sender or header recipient, one of about a
# million: smtp-source repeats its -f and -t in every message of a round.
rand_addr() {
	local users=(news info billing noreply alerts orders support team) u
	u=${users[RANDOM % ${#users[@]}]}
	echo "$u$((RANDOM % 1000))@d$((RANDOM % 128)).example.com"
}

# sink_load: rounds of smtp-source -> smtp-sink, sizes and parallelism varied, at most
# 2000 messages or 5 MB a round; mostly small messages, as real mail is.
sink_load() {
	local sizes=(1000 1000 2000 2000 4000 4000 8000 16000 32000 100000 1000000 5000000) par=(4 10 20 40) r=0 l s m d
	while [[ ! -e $STOP ]]; do
		l=${sizes[RANDOM % ${#sizes[@]}]}
		s=${par[RANDOM % ${#par[@]}]}
		m=$((5000000 / l))
		((s <= m)) || s=$m
		((m <= 2000)) || m=2000
		d=
		((r % 2)) && d=-d
		smtp-source $d -N -s "$s" -m "$m" -l "$l" -f "$(rand_addr)" -t "$(rand_addr)" \
			-S "sink round $r" 127.0.0.1:2525 >>"$RUN/sink-load.log" 2>&1 || log "smtp-source (sink) failed: see $RUN/sink-load.log"
		r=$((r + 1))
	done
	echo "sink: $r rounds" >>"$RUN/totals.log"
}

# local_load: smtp-source -> Postfix, local delivery to alice and bob.
local_load() {
	local r=0 users=(alice bob) l
	while [[ ! -e $STOP ]]; do
		l=$((1000 + RANDOM % 40000))
		smtp-source -s 4 -m 40 -l "$l" -f "$(rand_addr)" -t "${users[r % 2]}@example.test" \
			-S "local round $r" 127.0.0.1:25 >>"$RUN/local-load.log" 2>&1 || log "smtp-source (postfix) failed: see $RUN/local-load.log"
		r=$((r + 1))
		# Let Postfix and Dovecot keep up instead of growing the queue without bound.
		while [[ ! -e $STOP ]] && (($(find /var/spool/postfix/active /var/spool/postfix/incoming -type f 2>/dev/null | wc -l) > 200)); do
			sleep 0.2
		done
	done
	echo "local: $r rounds of 40 messages" >>"$RUN/totals.log"
}

record() {
	local v=$1 file=$OUT/load-$1.pcap err=$RUN/tcpdump-$1.err pids=() i size captured received
	case $v in
	lo) ip link set lo mtu "$LO_MTU" ${LO_SEGS:+gso_max_segs "$LO_SEGS"} ;;
	mtu) ip link set lo mtu 1500 gso_max_segs 1 ;;
	esac
	rm -f "$STOP" "$file" "$RUN/totals.log"
	: >"$err"
	# No --immediate-mode: TPACKET_V3 blocks keep up with the load; a 256 MiB buffer
	# takes bursts. Packets still in a block at SIGINT are lost (the load is over by then).
	tcpdump -i lo -n -s 0 -B 262144 -Z root -w "$file" \
		'tcp port 25 or tcp port 2525 or tcp port 110 or tcp port 143' 2>"$err" &
	TCPDUMP_PID=$!
	for ((i = 0; i < 100; i++)); do
		grep -q 'listening on' "$err" && break
		sleep 0.1
	done
	grep -q 'listening on' "$err" || die "tcpdump not ready: $(cat "$err")"
	log "recording $file until it holds $SIZE_MB MB (lo mtu $(cat /sys/class/net/lo/mtu))"
	local t0=$SECONDS
	sink_load &
	pids+=($!)
	local_load &
	pids+=($!)
	for i in 1 2; do
		"$PY" "$HERE/clients/load.py" submit "$STOP" "$i" >>"$RUN/totals.log" 2>>"$RUN/clients.log" &
		pids+=($!)
		"$PY" "$HERE/clients/load.py" bulk "$STOP" "$i" >>"$RUN/totals.log" 2>>"$RUN/clients.log" &
		pids+=($!)
	done
	"$PY" "$HERE/clients/load.py" pop3 "$STOP" 1 >>"$RUN/totals.log" 2>>"$RUN/clients.log" &
	pids+=($!)
	"$PY" "$HERE/clients/load.py" imap "$STOP" 1 >>"$RUN/totals.log" 2>>"$RUN/clients.log" &
	pids+=($!)
	while :; do
		size=$(stat -c %s "$file" 2>/dev/null || echo 0)
		((size < SIZE_MB * 1000000)) || break
		((SECONDS - t0 < 1800)) || die "no $SIZE_MB MB after 30 minutes"
		for i in "${pids[@]}"; do kill -0 "$i" 2>/dev/null || die "a load client exited early: see $RUN/clients.log"; done
		sleep 1
	done
	touch "$STOP"
	for i in "${pids[@]}"; do wait "$i" || log "a load client failed: see $RUN/clients.log"; done
	sleep 1
	kill -INT "$TCPDUMP_PID"
	wait "$TCPDUMP_PID" || true
	TCPDUMP_PID=
	captured=$(sed -n 's/^\([0-9]*\) packets\? captured$/\1/p' "$err")
	received=$(sed -n 's/^\([0-9]*\) packets\? received by filter$/\1/p' "$err")
	log "wrote $file: $(stat -c %s "$file") bytes, $captured packets in $((SECONDS - t0)) s" \
		"(filter saw $received: twice each on lo; $(sed -n 's/^\([0-9]*\) packets\? dropped by kernel$/\1/p' "$err") dropped by the kernel)"
	sed 's/^/[record]   /' "$RUN/totals.log" >&2
	ip link set lo mtu "$LO_MTU" ${LO_SEGS:+gso_max_segs "$LO_SEGS"}
}

setup_servers
for v in "${VARIANTS[@]}"; do
	record "$v"
done
log "done"
