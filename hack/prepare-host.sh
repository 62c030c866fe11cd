#!/usr/bin/env bash
# Prepares a Debian 12 host (as root) for building and testing Moss:
# installs the packages, creates the unprivileged test users and makes
# /dev/net/tun usable, as TESTING.md describes. Idempotent.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "prepare-host: run as root (sudo $0)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
pkgs=(uidmap busybox-static podman runc fuse-overlayfs slirp4netns libseccomp-dev pkg-config iproute2 tmux hyperfine util-linux procps gcc make git curl file)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# A user with a subordinate ID range, and one without any (single-ID mode).
make_user() {
	id -u "$1" >/dev/null 2>&1 || useradd -m -s /bin/bash "$1"
	local uid
	uid=$(id -u "$1")
	mkdir -p "/run/user/$uid"
	chown "$1:$1" "/run/user/$uid"
	chmod 0700 "/run/user/$uid"
}
make_user mosstest
make_user mossnosub
sed -i '/^mosstest:/d; /^mossnosub:/d' /etc/subuid /etc/subgid
echo "mosstest:200000:65536" >>/etc/subuid
echo "mosstest:200000:65536" >>/etc/subgid

# A tap device opened inside a user namespace needs /dev/net/tun 0666, as on
# ordinary distributions.
if [ ! -e /dev/net/tun ]; then
	mkdir -p /dev/net
	mknod /dev/net/tun c 10 200
fi
chmod 0666 /dev/net/tun

# Podman, the bench peer, rootless with runc and native overlay (crun refuses
# the hybrid cgroup layout here).
for u in mosstest; do
	home=$(getent passwd "$u" | cut -d: -f6)
	install -d -o "$u" -g "$u" "$home/.config/containers"
	printf '[engine]\nruntime = "runc"\n' >"$home/.config/containers/containers.conf"
	printf '[storage]\ndriver = "overlay"\n' >"$home/.config/containers/storage.conf"
	chown "$u:$u" "$home/.config/containers/containers.conf" "$home/.config/containers/storage.conf"
done
echo "prepare-host: ready (users mosstest, mossnosub; /dev/net/tun 0666)"
