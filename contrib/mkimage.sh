#!/usr/bin/env bash
# Builds a small busybox root file system tarball from the host's static
# busybox (Debian package busybox-static): OUT_DIR/busybox-rootfs.tar.
# Offline and deterministic (sorted names, mtime 0, owner 0:0, fixed modes);
# import it with `moss import OUT_DIR/busybox-rootfs.tar NAME[:TAG]`.
set -euo pipefail
out=${1:?usage: mkimage.sh OUT_DIR}
bb=${BUSYBOX:-/bin/busybox}
export LC_ALL=C
umask 022
# A dynamic busybox would need the host's libraries inside the image.
if [ ! -x "$bb" ] || ldd "$bb" >/dev/null 2>&1; then
	echo "mkimage: $bb is missing or not statically linked: install busybox-static" >&2
	exit 1
fi
mkdir -p "$out"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
mkdir -p "$root"/{bin,sbin,etc,tmp,proc,sys,dev,root,var/www,home,usr/bin,usr/sbin}
cp "$bb" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
for applet in $("$bb" --list); do
	[ "$applet" = busybox ] && continue
	ln -s busybox "$root/bin/$applet"
done
cat >"$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
www:x:33:33:www:/var/www:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >"$root/etc/group" <<'G'
root:x:0:
tty:x:5:
www:x:33:
nogroup:x:65534:
G
echo "<h1>moss</h1>" >"$root/var/www/index.html"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
tar --sort=name --mtime=@0 --numeric-owner --owner=0 --group=0 --format=gnu \
	-C "$root" -cf "$out/busybox-rootfs.tar" .
echo "$out/busybox-rootfs.tar"
