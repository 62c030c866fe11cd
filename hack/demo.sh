#!/usr/bin/env bash
# `sudo make demo`: prepares the host, builds Moss, builds a busybox image
# from the host's busybox-static and runs real rootless containers, offline,
# as an unprivileged user ($SUDO_USER, else mosstest).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "demo: run as root (sudo make demo): it installs packages and prepares the host" >&2
	exit 1
fi
hack/prepare-host.sh
make -s build
user=${SUDO_USER:-}
if [ -z "$user" ] || [ "$user" = root ]; then user=mosstest; fi
uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
mkdir -p "/run/user/$uid" && chown "$user:" "/run/user/$uid" && chmod 0700 "/run/user/$uid"
work=$(mktemp -d /tmp/moss-demo-XXXXXX)
chmod 0755 "$work"
cp bin/moss "$work/moss"
contrib/mkimage.sh "$work" >/dev/null
chmod -R a+rX "$work"
# An agent left from an earlier demo may run an older binary: stop it.
if [ -f "/run/user/$uid/moss/agent.pid" ]; then
	old=$(cat "/run/user/$uid/moss/agent.pid")
	kill "$old" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
fi
as() { runuser -u "$user" -- env HOME="$home" XDG_RUNTIME_DIR="/run/user/$uid" PATH=/usr/local/bin:/usr/bin:/bin "$@"; }
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
m="$work/moss"
say moss import busybox-rootfs.tar demo/busybox
as "$m" import "$work/busybox-rootfs.tar" demo/busybox
say moss run --rm demo/busybox sh -c 'echo hello from PID $$ on $(hostname); id; cat /proc/self/uid_map'
as "$m" run --rm demo/busybox sh -c 'echo hello from PID $$ on $(hostname); id; cat /proc/self/uid_map'
say moss network create demo-net
as "$m" network rm demo-net >/dev/null 2>&1 || true
as "$m" network create demo-net
page='mkdir -p /www && echo hello from the web container > /www/index.html && exec httpd -f -p 8080 -h /www'
say moss run -d --name web --network demo-net -p 127.0.0.1:18088:8080 demo/busybox sh -c "'$page'"
as "$m" run -d --name web --network demo-net -p 127.0.0.1:18088:8080 demo/busybox sh -c "$page"
say moss ps
as "$m" ps
say moss run --rm --network demo-net demo/busybox wget -qO- http://web:8080/
for _ in $(seq 50); do as "$m" run --rm --network demo-net demo/busybox wget -qO- http://web:8080/ 2>/dev/null && break; sleep 0.1; done
say curl http://127.0.0.1:18088/
curl -s http://127.0.0.1:18088/
say moss stop web '&&' moss rm web '&&' moss network rm demo-net
as "$m" stop -t 2 web && as "$m" rm web && as "$m" network rm demo-net
say "DOCKER_HOST=unix:///run/user/$uid/moss/moss.sock docker run --rm demo/busybox uname -a"
if command -v docker >/dev/null; then
	as env DOCKER_HOST="unix:///run/user/$uid/moss/moss.sock" docker run --rm demo/busybox uname -a
fi
say moss images
as "$m" images
say moss info
as "$m" info | sed -n '/^Moss:/,$p'
echo
echo "demo: done. The binary is bin/moss; the agent keeps running for $user (its log: /run/user/$uid/moss/agent.log)."
