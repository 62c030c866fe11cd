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
# uidmap: newuidmap/newgidmap. busybox-static: the test image. gcc,
# libc6-dev, libseccomp-dev, pkg-config: cgo, the static link, seccomp.
# podman, runc, fuse-overlayfs, slirp4netns: the bench peer (and overlay and
# network fallbacks). docker-registry: registry tests of later issues.
# hyperfine, jq, iperf3: make bench. util-linux: runuser, nsenter, unshare.
# protobuf-compiler: the proto drift check. containernetworking-plugins: the
# CNI adapter (contrib/cni). rclone, fuse3: a real Docker volume plugin
# (rclone serve docker) for the Docker-protocol adapter. systemd:
# systemd-analyze, which checks the user unit in contrib/systemd.
pkgs=(uidmap busybox-static gcc libc6-dev make git pkg-config libseccomp-dev
	podman runc fuse-overlayfs slirp4netns iproute2 tmux docker-registry
	hyperfine jq curl file procps util-linux ca-certificates protobuf-compiler
	iperf3 containernetworking-plugins rclone fuse3 systemd)
# (No `cmd | grep -q` with pipefail: grep's early exit fails the pipeline.)
installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }
available() { [[ $(apt-cache policy "$1" 2>/dev/null) =~ Candidate:\ [0-9] ]]; }
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
	apt-get update -q
fi
# Optional: pasta (Debian package passt), when the mirror has it.
if ! installed passt && available passt; then missing+=(passt); fi
if [ "${#missing[@]}" -gt 0 ]; then
	echo "prepare-host: installing ${missing[*]}"
	apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
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

# FUSE for unprivileged users (rclone's mounts), and the root mount shared
# so that mounts made on the host after the namespace holder started reach
# it (rootlesskit's rslave), both as on systemd distributions.
[ -e /dev/fuse ] || mknod -m 0666 /dev/fuse c 10 229
chmod 0666 /dev/fuse
mount --make-rshared /

# Podman, the bench peer, rootless with runc and native overlay (crun refuses
# the hybrid cgroup layout here).
for u in mosstest; do
	home=$(getent passwd "$u" | cut -d: -f6)
	# install -d makes missing parents owned by root: create each level.
	install -d -o "$u" -g "$u" "$home/.config" "$home/.config/containers"
	printf '[engine]\nruntime = "runc"\n' >"$home/.config/containers/containers.conf"
	printf '[storage]\ndriver = "overlay"\n' >"$home/.config/containers/storage.conf"
	chown "$u:$u" "$home/.config/containers/containers.conf" "$home/.config/containers/storage.conf"
done
# cgroups for mosstest's containers: on cgroup v1 (this host's hybrid
# layout binds every controller to v1) a user gets limits only where root
# delegated a subtree: a directory per controller, it and its files owned
# by the user. The integration tests name them in the user's moss.toml
# ([cgroups] v1). On a pure cgroup v2 host systemd delegates instead.
cgroups_v1=""
if [ ! -e /sys/fs/cgroup/cgroup.controllers ]; then
	for c in memory cpu cpuacct pids freezer blkio cpuset; do
		mnt=/sys/fs/cgroup/$c
		[ -d "$mnt" ] || continue
		d=$mnt/moss-mosstest
		mkdir -p "$d"
		if [ "$c" = cpuset ]; then
			# A cpuset without CPUs or memory nodes takes no tasks.
			cat "$mnt/cpuset.cpus" >"$d/cpuset.cpus"
			cat "$mnt/cpuset.mems" >"$d/cpuset.mems"
		fi
		chown -R mosstest:mosstest "$d"
		cgroups_v1="$cgroups_v1 $c"
	done
fi
echo "prepare-host: ready (users mosstest, mossnosub; /dev/net/tun and /dev/fuse 0666; / shared; cgroup v1 subtrees moss-mosstest:${cgroups_v1:- none})"
