# shellcheck shell=sh
# A throwaway OpenSSH server on loopback, for baton's SSH tests and benchmarks.
#
# Source this file (from bash or a POSIX sh), then:
#
#   ssh_harness_can_run || skip          # prints why and returns 1 when it cannot
#   ssh_harness_start DIR                # keys, user, sshd on 127.0.0.1:<free port>
#   ssh_harness_inventory FILE N [PREFIX [GROUP]]
#                                        # baton inventory: PREFIX1..PREFIXN (default h1..hN),
#                                        # all this server, in group GROUP (default fleet)
#   ssh_harness_count PATTERN            # how many processes of the test user match
#                                        # PATTERN (pgrep -f, an ERE on the command line)
#   ssh_harness_list PATTERN             # those processes, "PID COMMAND LINE" per line
#   ssh_harness_wait_gone PATTERN [SECS] # poll (bounded, default 5 s) until that count is 0
#   ssh_harness_stop                     # this sshd and its sessions gone; when no other
#                                        # harness runs, every process of the user too,
#                                        # and the user deleted
#
# ssh_harness_start exports:
#   SSH_DIR                the directory (absolute) holding keys, config, log
#   SSH_PORT               the port sshd listens on (127.0.0.1)
#   SSH_USER               the remote user (batontest)
#   SSH_KEY                the client's private key (ed25519, no passphrase)
#   SSH_KNOWN_HOSTS        a known_hosts with the server's key for [127.0.0.1]:PORT
#   SSH_WRONG_KNOWN_HOSTS  a known_hosts with another key for [127.0.0.1]:PORT
#   SSH_PID                sshd's pid
#   SSH_LOG                sshd's log (LogLevel VERBOSE: "Connection from", "Accepted publickey for")
#   SSH_HARNESS_TOKEN      this instance's registration (for ssh_harness_stop)
# and leaves also in DIR: other_ed25519 (a client key the server does not accept),
# wrong_host_ed25519 (the key behind SSH_WRONG_KNOWN_HOSTS), sshd_config.
#
# It needs root (it creates the user and runs sshd as a daemon would) and
# /usr/sbin/sshd. Several harnesses may run at once: they share the user,
# each adds its own client key to its authorized_keys, and only the last one
# to stop kills the user's processes and deletes the user (all under a lock
# in /run/baton-ssh-harness). Every wait is bounded.
#
# Safe under `set -eu`: the functions return non-zero on failure rather than
# relying on errexit, and reference no unset variables.

SSH_HARNESS_USER=${SSH_HARNESS_USER:-batontest}
SSH_HARNESS_SSHD=${SSH_HARNESS_SSHD:-/usr/sbin/sshd}
SSH_HARNESS_RUN=/run/baton-ssh-harness

_ssh_h_say() { printf 'ssh harness: %s\n' "$*" >&2; }

# python3, resolved once (the pyenv shim costs ~100 ms per call).
_ssh_h_py() {
	if [ -z "${E2E_PY:-}" ]; then
		E2E_PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || E2E_PY=python3
		export E2E_PY
	fi
	"$E2E_PY" "$@"
}

ssh_harness_can_run() {
	if [ "$(id -u)" != 0 ]; then
		echo "ssh harness: needs root (creates user $SSH_HARNESS_USER, runs sshd); skipping"
		return 1
	fi
	if [ ! -x "$SSH_HARNESS_SSHD" ]; then
		echo "ssh harness: $SSH_HARNESS_SSHD not found (apt-get install openssh-server); skipping"
		return 1
	fi
	for _c in ssh-keygen useradd usermod userdel pkill pgrep flock; do
		if ! command -v "$_c" >/dev/null 2>&1; then
			echo "ssh harness: $_c not found; skipping"
			return 1
		fi
	done
	if ! command -v "${E2E_PY:-python3}" >/dev/null 2>&1; then
		echo "ssh harness: python3 not found; skipping"
		return 1
	fi
	return 0
}

# _ssh_h_locked CMD...: run CMD in a subshell holding the harness lock (10 s max wait).
_ssh_h_locked() {
	mkdir -p "$SSH_HARNESS_RUN/instances" || return 1
	(
		flock -w 10 9 || {
			_ssh_h_say "could not take $SSH_HARNESS_RUN/lock in 10 s"
			exit 1
		}
		"$@"
	) 9>"$SSH_HARNESS_RUN/lock"
}

# Is the instance registered in file $1 still alive? Its directory still
# belongs to it, and its sshd runs, or it is starting and registered less
# than 60 s ago.
_ssh_h_instance_alive() {
	_d=$(cat "$1" 2>/dev/null) || return 1
	[ -n "$_d" ] || return 1
	[ "$(cat "$_d/instance.harness" 2>/dev/null)" = "${1##*/}" ] || return 1
	if [ -f "$_d/sshd.pid.harness" ]; then
		_p=$(cat "$_d/sshd.pid.harness" 2>/dev/null) || _p=
		case "$_p" in '' | *[!0-9]*) return 1 ;; esac
		tr '\0' ' ' <"/proc/$_p/cmdline" 2>/dev/null | grep -qF -- "$_d/sshd_config"
		return
	fi
	_age=$(($(date +%s) - $(stat -c %Y "$1" 2>/dev/null || echo 0)))
	[ "$_age" -lt 60 ]
}

# (under the lock) the user exists, with a home, an unlocked account, and
# our client key among its authorized keys; this instance is registered.
_ssh_h_prepare_user() {
	_u=$SSH_HARNESS_USER
	if ! id "$_u" >/dev/null 2>&1; then
		useradd -m -s /bin/sh -c 'baton ssh test harness' "$_u" >/dev/null 2>&1 ||
			id "$_u" >/dev/null 2>&1 || {
			_ssh_h_say "useradd $_u failed"
			exit 1
		}
	fi
	# UsePAM no: sshd refuses a locked account ('!' password) even for keys
	usermod -p '*' "$_u" >/dev/null 2>&1 || {
		_ssh_h_say "usermod -p '*' $_u failed"
		exit 1
	}
	_home=$(getent passwd "$_u" | cut -d: -f6)
	[ -n "$_home" ] || _home=/home/$_u
	mkdir -p "$_home/.ssh" || exit 1
	touch "$_home/.ssh/authorized_keys" || exit 1
	grep -qF -- "$(cut -d' ' -f2 "$SSH_DIR/client_ed25519.pub")" "$_home/.ssh/authorized_keys" ||
		cat "$SSH_DIR/client_ed25519.pub" >>"$_home/.ssh/authorized_keys" || exit 1
	chown -R "$_u:" "$_home" || exit 1
	chmod 755 "$_home"
	chmod 700 "$_home/.ssh"
	chmod 600 "$_home/.ssh/authorized_keys"
	rm -f "$SSH_DIR/sshd.pid.harness"
	printf '%s\n' "$SSH_HARNESS_TOKEN" >"$SSH_DIR/instance.harness" || exit 1
	printf '%s\n' "$SSH_DIR" >"$SSH_HARNESS_RUN/instances/$SSH_HARNESS_TOKEN" || exit 1
}

# (under the lock) forget this instance; when it was the last one alive,
# kill every process of the user and delete the user.
_ssh_h_release_user() {
	_u=$SSH_HARNESS_USER
	rm -f "$SSH_HARNESS_RUN/instances/$SSH_HARNESS_TOKEN"
	_others=0
	for _f in "$SSH_HARNESS_RUN"/instances/*; do
		[ -f "$_f" ] || continue
		if _ssh_h_instance_alive "$_f"; then
			_others=$((_others + 1))
		else
			rm -f "$_f"
		fi
	done
	id "$_u" >/dev/null 2>&1 || exit 0
	_home=$(getent passwd "$_u" | cut -d: -f6)
	if [ "$_others" -gt 0 ]; then
		# others still use the user: only take our key out
		if [ -n "$_home" ] && [ -f "$_home/.ssh/authorized_keys" ] && [ -f "$SSH_DIR/client_ed25519.pub" ]; then
			grep -vF -- "$(cut -d' ' -f2 "$SSH_DIR/client_ed25519.pub")" "$_home/.ssh/authorized_keys" \
				>"$_home/.ssh/authorized_keys.new" || true
			mv -f "$_home/.ssh/authorized_keys.new" "$_home/.ssh/authorized_keys"
			chown "$_u:" "$_home/.ssh/authorized_keys" 2>/dev/null || true
		fi
		exit 0
	fi
	pkill -TERM -u "$_u" 2>/dev/null || true
	_i=0
	while [ "$_i" -lt 30 ] && pgrep -u "$_u" >/dev/null 2>&1; do
		if [ "$_i" = 10 ]; then pkill -KILL -u "$_u" 2>/dev/null || true; fi
		sleep 0.1
		_i=$((_i + 1))
	done
	if pgrep -u "$_u" >/dev/null 2>&1; then
		_ssh_h_say "processes of $_u survive SIGKILL; leaving the user in place"
		exit 0
	fi
	userdel -r "$_u" >/dev/null 2>&1 || userdel "$_u" >/dev/null 2>&1 || true
	exit 0
}

# Is pid $1 alive (a zombie is not)?
_ssh_h_alive() {
	_st=$(cut -d')' -f2 "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2) || return 1
	[ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

# the pids of every descendant of pid $1 (children first found, depth-first)
_ssh_h_descendants() {
	for _c in $(pgrep -P "$1" 2>/dev/null); do
		echo "$_c"
		_ssh_h_descendants "$_c"
	done
}

_ssh_h_free_port() {
	_ssh_h_py -S -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

_ssh_h_write_config() { # CONFIG PORT
	cat >"$1" <<EOF
# written by tests/ssh/harness.sh
ListenAddress 127.0.0.1
Port $2
HostKey $SSH_DIR/host_ed25519
PidFile $SSH_DIR/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers $SSH_HARNESS_USER
StrictModes no
MaxStartups ${SSH_HARNESS_MAX_STARTUPS:-200:30:400}
MaxSessions ${SSH_HARNESS_MAX_SESSIONS:-64}
MaxAuthTries 10
Subsystem sftp internal-sftp
LoginGraceTime 30
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
LogLevel VERBOSE
EOF
}

ssh_harness_start() {
	if [ $# -lt 1 ] || [ -z "$1" ]; then
		_ssh_h_say "usage: ssh_harness_start DIR"
		return 2
	fi
	ssh_harness_can_run >&2 || return 1
	mkdir -p "$1" || return 1
	SSH_DIR=$(cd "$1" && pwd) || return 1
	export SSH_DIR
	SSH_USER=$SSH_HARNESS_USER
	export SSH_USER
	SSH_HARNESS_TOKEN="$(date +%s)-$$-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
	export SSH_HARNESS_TOKEN

	# keys: the server's, the client's, a client key nobody accepts, and a
	# second host key for "the key changed"
	for _k in host_ed25519 client_ed25519 other_ed25519 wrong_host_ed25519; do
		if [ ! -f "$SSH_DIR/$_k" ]; then
			ssh-keygen -q -t ed25519 -N '' -C "baton-harness-$_k" -f "$SSH_DIR/$_k" </dev/null >/dev/null || {
				_ssh_h_say "ssh-keygen failed for $SSH_DIR/$_k"
				return 1
			}
		fi
	done
	chmod 600 "$SSH_DIR/client_ed25519" "$SSH_DIR/other_ed25519" "$SSH_DIR/host_ed25519"
	SSH_KEY=$SSH_DIR/client_ed25519
	export SSH_KEY

	_ssh_h_locked _ssh_h_prepare_user || return 1
	mkdir -p /run/sshd && chmod 755 /run/sshd

	SSH_LOG=$SSH_DIR/sshd.log
	export SSH_LOG
	SSH_PID=
	_try=0
	while [ "$_try" -lt 5 ]; do
		_try=$((_try + 1))
		SSH_PORT=$(_ssh_h_free_port) || {
			_ssh_h_say "could not pick a free port"
			return 1
		}
		_ssh_h_write_config "$SSH_DIR/sshd_config" "$SSH_PORT"
		: >"$SSH_LOG"
		# fd 3 closed: bats waits for whoever holds it
		"$SSH_HARNESS_SSHD" -D -f "$SSH_DIR/sshd_config" -E "$SSH_LOG" </dev/null >/dev/null 2>&1 3>&- &
		_pid=$!
		printf '%s\n' "$_pid" >"$SSH_DIR/sshd.pid.harness"
		# up to ~5 s for "Server listening on 127.0.0.1 port N"
		_i=0
		_up=no
		while [ "$_i" -lt 100 ]; do
			if grep -q "Server listening on 127.0.0.1 port $SSH_PORT" "$SSH_LOG" 2>/dev/null; then
				_up=yes
				break
			fi
			_ssh_h_alive "$_pid" || break
			sleep 0.05
			_i=$((_i + 1))
		done
		if [ "$_up" = yes ]; then
			SSH_PID=$_pid
			break
		fi
		kill -KILL "$_pid" 2>/dev/null || true
		wait "$_pid" 2>/dev/null || true
		if grep -q 'Address already in use' "$SSH_LOG" 2>/dev/null; then
			continue # lost the port to someone else: another one
		fi
		_ssh_h_say "sshd did not start; its log:"
		sed 's/^/  /' "$SSH_LOG" >&2
		break
	done
	if [ -z "$SSH_PID" ]; then
		rm -f "$SSH_DIR/sshd.pid.harness"
		_ssh_h_locked _ssh_h_release_user || true
		return 1
	fi
	export SSH_PORT SSH_PID

	_hostkey=$(cut -d' ' -f1,2 "$SSH_DIR/host_ed25519.pub")
	_wrongkey=$(cut -d' ' -f1,2 "$SSH_DIR/wrong_host_ed25519.pub")
	printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$_hostkey" >"$SSH_DIR/known_hosts"
	printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$_wrongkey" >"$SSH_DIR/wrong_known_hosts"
	SSH_KNOWN_HOSTS=$SSH_DIR/known_hosts
	SSH_WRONG_KNOWN_HOSTS=$SSH_DIR/wrong_known_hosts
	export SSH_KNOWN_HOSTS SSH_WRONG_KNOWN_HOSTS
	return 0
}

# ssh_harness_inventory FILE N [PREFIX [GROUP]]: a baton inventory
# (plan-format.md section 7) of N hosts PREFIX1..PREFIXN, every one this
# server, all in GROUP (default fleet).
ssh_harness_inventory() {
	if [ $# -lt 2 ] || [ -z "${SSH_PORT:-}" ]; then
		_ssh_h_say "usage: ssh_harness_inventory FILE N [PREFIX [GROUP]] (after ssh_harness_start)"
		return 2
	fi
	_file=$1 _n=$2 _prefix=${3:-h} _group=${4:-fleet}
	{
		echo "# written by tests/ssh/harness.sh: $_n names for one sshd on 127.0.0.1:$SSH_PORT"
		echo "hosts:"
		_i=1
		while [ "$_i" -le "$_n" ]; do
			printf '  %s%s: { address: 127.0.0.1, port: %s, user: %s, identity: "%s" }\n' \
				"$_prefix" "$_i" "$SSH_PORT" "$SSH_USER" "$SSH_KEY"
			_i=$((_i + 1))
		done
		echo "groups:"
		printf '  %s: [' "$_group"
		_i=1
		while [ "$_i" -le "$_n" ]; do
			if [ "$_i" -gt 1 ]; then printf ', '; fi
			printf '%s%s' "$_prefix" "$_i"
			_i=$((_i + 1))
		done
		echo "]"
	} >"$_file"
}

# ssh_harness_count PATTERN: how many live processes of the test user have a
# command line matching PATTERN (an extended regex, as pgrep -f); 0 when the
# user does not exist.
ssh_harness_count() {
	if ! id "$SSH_HARNESS_USER" >/dev/null 2>&1; then
		echo 0
		return 0
	fi
	_n=$(pgrep -c -u "$SSH_HARNESS_USER" -f -- "$1" 2>/dev/null) || _n=0
	echo "${_n:-0}"
}

# ssh_harness_list PATTERN: those processes, "pid command line" per line.
ssh_harness_list() {
	id "$SSH_HARNESS_USER" >/dev/null 2>&1 || return 0
	pgrep -a -u "$SSH_HARNESS_USER" -f -- "$1" 2>/dev/null || true
}

# ssh_harness_wait_gone PATTERN [SECONDS]: poll every 0.1 s, up to SECONDS
# (default 5), until no process of the test user matches PATTERN. Returns 1,
# listing them on stderr, when some remain.
ssh_harness_wait_gone() {
	_limit=$(( ${2:-5} * 10 ))
	_i=0
	while [ "$_i" -lt "$_limit" ]; do
		[ "$(ssh_harness_count "$1")" = 0 ] && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	_ssh_h_say "processes of $SSH_HARNESS_USER matching '$1' still running after ${2:-5} s:"
	ssh_harness_list "$1" | sed 's/^/  /' >&2
	return 1
}

ssh_harness_stop() {
	if [ -n "${SSH_PID:-}" ]; then
		# the connections' own sshd processes (and what they run) first, then
		# the listener; what escaped to init is for _ssh_h_release_user
		_kids=$(_ssh_h_descendants "$SSH_PID")
		# shellcheck disable=SC2086
		[ -n "$_kids" ] && { kill -TERM $_kids 2>/dev/null || true; }
		kill -TERM "$SSH_PID" 2>/dev/null || true
		_i=0
		while [ "$_i" -lt 30 ] && _ssh_h_alive "$SSH_PID"; do
			sleep 0.1
			_i=$((_i + 1))
		done
		kill -KILL "$SSH_PID" 2>/dev/null || true
		# shellcheck disable=SC2086
		[ -n "$_kids" ] && { kill -KILL $_kids 2>/dev/null || true; }
		wait "$SSH_PID" 2>/dev/null || true
	fi
	if [ -n "${SSH_DIR:-}" ]; then
		rm -f "$SSH_DIR/sshd.pid.harness" "$SSH_DIR/instance.harness"
	fi
	if [ -n "${SSH_HARNESS_TOKEN:-}" ]; then
		_ssh_h_locked _ssh_h_release_user || true
	fi
	SSH_PID=
	return 0
}
