# Helpers for record.sh and load.sh: sourced, not run. Expects HERE, RUN, OUT, PY to be set.

log() { printf '[record] %s\n' "$*" >&2; }
die() { printf '[record] error: %s\n' "$*" >&2; exit 1; }

# install_packages PKG...: apt-get install those of the Debian packages that are missing
# (unless NO_INSTALL is set: then fail).
install_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[[ ${#missing[@]} -gt 0 ]] || return 0
	[[ -z ${NO_INSTALL:-} ]] || die "missing packages and NO_INSTALL is set: ${missing[*]}"
	log "installing ${missing[*]}"
	# Postfix asks how to configure itself: "Local only", the rest is done with postconf.
	# tshark asks whether non-root users may capture: no.
	debconf-set-selections <<-'EOF'
		postfix postfix/main_mailer_type select Local only
		postfix postfix/mailname string mail.example.test
		wireshark-common wireshark-common/install-setuid boolean false
	EOF
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q "${missing[@]}"
}

# wait_port PORT [SECONDS]: until the server on 127.0.0.1:PORT sends its greeting. The
# probe then says goodbye properly and reads the answer, so none of its packets can trail
# into a capture started right after.
wait_port() {
	local port=$1 limit=${2:-20} i
	for ((i = 0; i < limit * 10; i++)); do
		if "$PY" - "$port" 2>/dev/null <<-'EOF'
			import socket, sys
			port = int(sys.argv[1])
			bye = {25: b"QUIT\r\n", 110: b"QUIT\r\n", 143: b"p LOGOUT\r\n"}[port]
			s = socket.create_connection(("127.0.0.1", port), 2)
			s.settimeout(5)
			if not s.recv(4096):
			    sys.exit(1)
			s.sendall(bye)
			while s.recv(4096):
			    pass
			s.close()
		EOF
		then
			return 0
		fi
		sleep 0.1
	done
	die "no server greets on 127.0.0.1:$port after ${limit}s"
}

# wait_file PATH [SECONDS]: until PATH exists.
wait_file() {
	local path=$1 limit=${2:-20} i
	for ((i = 0; i < limit * 10; i++)); do
		[[ -e $path ]] && return 0
		sleep 0.1
	done
	die "$path did not appear after ${limit}s"
}

# wait_queue_empty [SECONDS]: until Postfix has delivered (or bounced) everything.
wait_queue_empty() {
	local limit=${1:-30} i
	for ((i = 0; i < limit * 10; i++)); do
		if postqueue -p 2>/dev/null | grep -q 'Mail queue is empty'; then
			return 0
		fi
		sleep 0.1
	done
	postqueue -p >&2 || true
	die "Postfix queue not empty after ${limit}s (see $RUN/postfix.log)"
}

# maildir_count USER: messages in USER's INBOX (new + cur).
maildir_count() {
	local d=$RUN/mail/$1/Maildir
	find "$d/new" "$d/cur" -type f 2>/dev/null | wc -l
}

# wait_maildir USER N [SECONDS]: until USER's INBOX holds N messages.
wait_maildir() {
	local user=$1 want=$2 limit=${3:-30} i
	for ((i = 0; i < limit * 10; i++)); do
		[[ $(maildir_count "$user") -ge $want ]] && return 0
		sleep 0.1
	done
	die "INBOX of $user holds $(maildir_count "$user") messages, want $want"
}

# reset_user USER: empty USER's mail store so message numbers are the same on every run.
reset_user() {
	rm -rf "${RUN:?}/mail/$1"
}

TCPDUMP_PID=
CAPTURE_FILE=
CAPTURE_ERR=

# capture_start NAME FILTER: start tcpdump on lo writing $OUT/real-NAME.pcap and wait until
# it listens. --immediate-mode hands every packet to tcpdump at once (with the default
# TPACKET_V3 blocks, packets still in a block are lost at SIGINT) and -U writes it at once;
# Immediate mode uses one ring frame per packet sized for the snapshot length (a whole lo
# packet, up to 64 KiB): -B 131072 (KiB) gives room for hundreds of frames, so a burst is
# not dropped. -Z root keeps write access to the output directory.
capture_start() {
	local name=$1 filter=$2 i
	[[ -z $TCPDUMP_PID ]] || die "capture already running"
	CAPTURE_FILE=$OUT/real-$name.pcap
	CAPTURE_ERR=$RUN/tcpdump-$name.err
	rm -f "$CAPTURE_FILE"
	: >"$CAPTURE_ERR"
	tcpdump -i lo -n -U --immediate-mode -s 0 -B 131072 -Z root -w "$CAPTURE_FILE" "$filter" 2>"$CAPTURE_ERR" &
	TCPDUMP_PID=$!
	for ((i = 0; i < 100; i++)); do
		grep -q 'listening on' "$CAPTURE_ERR" && break
		kill -0 "$TCPDUMP_PID" 2>/dev/null || die "tcpdump exited: $(cat "$CAPTURE_ERR")"
		sleep 0.1
	done
	grep -q 'listening on' "$CAPTURE_ERR" || die "tcpdump not ready"
	sleep 0.3
	log "capturing real-$name.pcap ($filter)"
}

# capture_stop: let the last FIN/ACKs pass, stop tcpdump with SIGINT so it flushes and
# closes the file, and report how many packets it kept.
capture_stop() {
	[[ -n $TCPDUMP_PID ]] || return 0
	sleep 1
	kill -INT "$TCPDUMP_PID" 2>/dev/null || true
	wait "$TCPDUMP_PID" 2>/dev/null || true
	TCPDUMP_PID=
	local err=$CAPTURE_ERR captured received size
	captured=$(sed -n 's/^\([0-9]*\) packets\? captured$/\1/p' "$err")
	received=$(sed -n 's/^\([0-9]*\) packets\? received by filter$/\1/p' "$err")
	# On lo the kernel filter sees every packet twice (outgoing and incoming) and libpcap
	# keeps one copy, so a capture that lost nothing has received == 2 * captured.
	[[ -n $captured && -n $received ]] && ((received == 2 * captured)) ||
		die "tcpdump kept $captured of $received packets for $(basename "$CAPTURE_FILE"): $(cat "$err")"
	size=$(stat -c %s "$CAPTURE_FILE")
	log "wrote $(basename "$CAPTURE_FILE") ($size bytes)"
	((size < 300000)) || die "$CAPTURE_FILE is larger than 300 KB"
	((size > 24)) || die "$CAPTURE_FILE is empty"
}

# dovecot_files puts Dovecot's password file under $RUN and makes sure its
# mail store exists, owned by the mail user.
dovecot_files() {
	cp "$HERE/conf/users.passwd" "$RUN/users.passwd"
	chown root:dovecot "$RUN/users.passwd"
	chmod 640 "$RUN/users.passwd"
	mkdir -p "$RUN/mail"
	chown mail:mail "$RUN/mail"
}

# postfix_main puts Postfix's recipient map under $RUN and applies every
# setting of conf/postfix-main.cf (@RUN@ replaced by $RUN); no chroot,
# since nothing copies files into Postfix's spool here.
postfix_main() {
	cp "$HERE/conf/postfix-recipients" "$RUN/postfix-recipients"
	local line
	while IFS= read -r line; do
		[[ $line =~ ^[[:space:]]*(#|$) ]] && continue
		postconf -e "$line"
	done < <(sed "s|@RUN@|$RUN|g" "$HERE/conf/postfix-main.cf")
	postconf -F '*/*/chroot = n'
}
