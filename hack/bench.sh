#!/usr/bin/env bash
# `make bench`: Moss side by side with rootless Podman on the same image in
# the same run, interleaved; medians and ratios. Figures, not a test: it
# never fails on numbers. As root it runs as mosstest.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-30}
if [ "$(id -u)" = 0 ]; then
	user=mosstest
	work=$(mktemp -d /tmp/moss-bench-XXXXXX)
	chmod 0755 "$work"
	cp bin/moss "$work/moss"
	cp "$0" "$work/bench.sh"
	contrib/mkimage.sh "$work" >/dev/null
	chmod -R a+rX "$work"
	uid=$(id -u $user)
	exec runuser -u $user -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$(getent passwd $user | cut -d: -f6)" \
		XDG_RUNTIME_DIR=/run/user/$uid RUNS="$runs" MOSS="$work/moss" ROOTFS="$work/busybox-rootfs.tar" bash "$work/bench.sh"
fi
moss=${MOSS:-$PWD/bin/moss}
rootfs=${ROOTFS:-}
if [ -z "$rootfs" ]; then
	tmp=$(mktemp -d)
	contrib/mkimage.sh "$tmp" >/dev/null
	rootfs=$tmp/busybox-rootfs.tar
fi
export MOSS_RUNTIME_DIR=$(mktemp -d /tmp/moss-bench-run-XXXXXX)
export MOSS_DATA_DIR=$(mktemp -d /tmp/moss-bench-data-XXXXXX)
img=bench/busybox:latest
pimg=localhost/bench/busybox:latest
"$moss" import "$rootfs" "$img" >/dev/null
have_podman=0
if command -v podman >/dev/null && podman import "$rootfs" "$pimg" >/dev/null 2>&1 &&
	podman run --rm --network none "$pimg" true; then
	have_podman=1
else
	echo "(podman is not usable here: no side-by-side figures)"
fi

ms() { echo $(( ($(date +%s%N) - $1) / 1000 )); } # microseconds
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
fmt_ms() { awk -v u="$1" 'BEGIN {printf "%.1f ms", u/1000}'; }

# Warm up both.
for _ in 1 2 3; do
	"$moss" run --rm --network none "$img" true
	if [ $have_podman = 1 ]; then podman run --rm --network none "$pimg" true; fi
done
: >/tmp/bench-moss.$$
: >/tmp/bench-podman.$$
for _ in $(seq "$runs"); do
	t=$(date +%s%N); "$moss" run --rm --network none "$img" true; ms "$t" >>/tmp/bench-moss.$$
	if [ $have_podman = 1 ]; then
		t=$(date +%s%N); podman run --rm --network none "$pimg" true; ms "$t" >>/tmp/bench-podman.$$
	fi
done
moss_run=$(median </tmp/bench-moss.$$)
echo "run --rm --network none IMAGE true ($runs runs, interleaved, median):"
echo "  moss:   $(fmt_ms "$moss_run")"
if [ $have_podman = 1 ]; then
	podman_run=$(median </tmp/bench-podman.$$)
	echo "  podman: $(fmt_ms "$podman_run")"
	awk -v m="$moss_run" -v p="$podman_run" 'BEGIN {printf "  moss is %.1fx faster than podman\n", p/m}'
fi

sleep 2
agent=$(cat "$MOSS_RUNTIME_DIR/agent.pid")
spare=$(pgrep -u "$(id -u)" -f "__shim --warm" | head -1)
[ -n "$spare" ] && echo "spare shim waiting for the next start: $(awk '/VmRSS/ {printf "%.1f MiB RSS", $2/1024}' /proc/$spare/status), $(awk '/^Pss:/ {printf "%.1f MiB PSS", $2/1024}' /proc/$spare/smaps_rollup)"
echo "agent idle: $(awk '/VmRSS/ {printf "%.1f MiB RSS", $2/1024}' /proc/$agent/status), $(awk '/^Pss:/ {printf "%.1f MiB PSS", $2/1024}' /proc/$agent/smaps_rollup)"
for fd in /proc/$agent/fd/*; do
	case "$(readlink "$fd")" in *memfd:*) echo "  plus the sealed copy of the binary the shims run from: $(stat -L -c %s "$fd" | awk '{printf "%.1f MiB (memfd)", $1/1048576}')";; esac
done
holder=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$MOSS_RUNTIME_DIR/holder.json")
child=$(sed -n 's/.*"child_pid":\([0-9]*\).*/\1/p' "$MOSS_RUNTIME_DIR/holder.json")
if [ -n "$holder" ]; then
	total=0
	for p in $holder $child $(pgrep -P "$child"); do
		total=$((total + $(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup 2>/dev/null || echo 0)))
	done
	echo "namespace holder (parent, child, pause; slirp4netns not counted): $(awk -v k=$total 'BEGIN {printf "%.1f MiB PSS", k/1024}')"
fi
id=$("$moss" run -d "$img" sleep 600)
sleep 1
shim=$(pgrep -f "__shim $id" | head -1)
shimmem() { # pid
	echo "$(awk '/VmRSS/ {printf "%.1f MiB RSS", $2/1024}' /proc/$1/status) ($(awk '/RssAnon/ {printf "%.1f MiB private anonymous", $2/1024}' /proc/$1/status), the rest the binary image shared by all shims), $(awk '/^Pss:/ {printf "%.1f MiB PSS", $2/1024}' /proc/$1/smaps_rollup)"
}
echo "shim of a running container: $(shimmem "$shim")"
"$moss" rm -f "$id" >/dev/null

t=$(date +%s%N)
for i in $(seq 50); do "$moss" run -d --name "par$i" "$img" sleep 600 >/dev/null & done
wait
echo "50 containers started in parallel with -d: $(fmt_ms "$(ms "$t")"), running: $("$moss" ps -q | wc -l)"
: >/tmp/bench-ps.$$
for _ in $(seq 10); do t=$(date +%s%N); "$moss" ps >/dev/null; ms "$t" >>/tmp/bench-ps.$$; done
echo "moss ps with 50 running (median of 10): $(fmt_ms "$(median </tmp/bench-ps.$$)")"
shim=$(pgrep -u "$(id -u)" -f "__shim" | head -1)
echo "one shim among 50: $(shimmem "$shim")"
"$moss" rm -f $("$moss" ps -aq) >/dev/null
rm -f /tmp/bench-*.$$
kill "$(cat "$MOSS_RUNTIME_DIR/agent.pid")" 2>/dev/null || true
[ -n "$holder" ] && kill "$holder" 2>/dev/null || true
