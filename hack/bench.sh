#!/usr/bin/env bash
# `make bench`: Moss side by side with rootless Podman on the same busybox
# image in the same run. Figures, not a test: it never fails on numbers.
# As root it runs as the test user mosstest (hack/prepare-host.sh creates it
# and configures its Podman as TESTING.md says); otherwise as the current
# user. Needs hyperfine and jq.
#
#   ROUNDS=6 PER_ROUND=5   run --rm timings: hyperfine alternates Moss and
#                          Podman in ROUNDS blocks of PER_ROUND runs each
#                          (30 each by default) so that machine noise hits
#                          both alike; medians over all runs.
#   PARALLEL=50            containers started at once with -d
set -euo pipefail
[ -n "${BENCH_TRACE:-}" ] && set -x
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-6}
per=${PER_ROUND:-5}
parallel=${PARALLEL:-50}

if [ "$(id -u)" = 0 ]; then
	user=mosstest
	id -u $user >/dev/null 2>&1 || {
		echo "bench: user $user is missing: run hack/prepare-host.sh first" >&2
		exit 1
	}
	work=$(mktemp -d /tmp/moss-bench-XXXXXX)
	trap 'rm -rf "$work"' EXIT
	chmod 0755 "$work"
	cp bin/moss "$work/moss"
	${GO:-go} build -o "$work/mkarchive" ./hack/mkarchive || true # the pull figures' image
	cp "$0" "$work/bench.sh"
	contrib/mkimage.sh "$work" >/dev/null
	chmod -R a+rX "$work"
	uid=$(id -u $user)
	mkdir -p "/run/user/$uid" && chown "$user:" "/run/user/$uid" && chmod 0700 "/run/user/$uid"
	echo "bench: running as $user"
	cd "$work"
	runuser -u $user -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$(getent passwd $user | cut -d: -f6)" \
		USER=$user XDG_RUNTIME_DIR="/run/user/$uid" BENCH_TRACE="${BENCH_TRACE:-}" ROUNDS="$rounds" PER_ROUND="$per" PARALLEL="$parallel" \
		MOSS="$work/moss" ROOTFS="$work/busybox-rootfs.tar" bash "$work/bench.sh" </dev/null
	exit 0
fi

for tool in hyperfine jq; do
	command -v $tool >/dev/null || {
		echo "bench: $tool is not installed (hack/prepare-host.sh installs it)" >&2
		exit 1
	}
done
moss=${MOSS:-$PWD/bin/moss}
tmp=$(mktemp -d /tmp/moss-bench-run-XXXXXX)
rootfs=${ROOTFS:-}
if [ -z "$rootfs" ]; then
	contrib/mkimage.sh "$tmp" >/dev/null
	rootfs=$tmp/busybox-rootfs.tar
fi
# A private agent: the user's own agent and containers are left alone.
export MOSS_RUNTIME_DIR=$tmp/run MOSS_DATA_DIR=$tmp/data
mkdir -m 0700 "$MOSS_RUNTIME_DIR" "$MOSS_DATA_DIR"
img=bench/busybox:latest
pimg=localhost/bench/busybox:latest

cleanup() {
	local ids holder child
	ids=$("$moss" ps -aq 2>/dev/null || true)
	[ -z "$ids" ] || "$moss" rm -f $ids >/dev/null 2>&1 || true
	[ -f "$MOSS_RUNTIME_DIR/agent.pid" ] && kill "$(cat "$MOSS_RUNTIME_DIR/agent.pid")" 2>/dev/null || true
	holder=$(jq -r '.pid // empty' "$MOSS_RUNTIME_DIR/holder.json" 2>/dev/null || true)
	child=$(jq -r '.child_pid // empty' "$MOSS_RUNTIME_DIR/holder.json" 2>/dev/null || true)
	# Layers hold files of subordinate IDs: remove them inside the holder's user namespace.
	[ -n "$child" ] && nsenter --user --mount --preserve-credentials -t "$child" rm -rf "$MOSS_DATA_DIR" 2>/dev/null || true
	[ -n "$holder" ] && kill "$holder" 2>/dev/null || true
	[ "${have_podman:-0}" = 1 ] && podman rmi -f "$pimg" >/dev/null 2>&1 || true
	rm -rf "$tmp" 2>/dev/null || true
}
trap cleanup EXIT

"$moss" import "$rootfs" "$img" >/dev/null
have_podman=0
if command -v podman >/dev/null && podman import "$rootfs" "$pimg" >/dev/null 2>&1 &&
	podman run --rm --network none "$pimg" true; then
	have_podman=1
else
	echo "(podman is not usable here: no side-by-side figures)"
fi

# median FILTER FILES...: the median of the numbers FILTER selects in the
# hyperfine JSON files, in milliseconds.
median() {
	local filter=$1
	shift
	jq -s "[.[] | $filter] | flatten | sort | if length == 0 then null
		elif length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end | . * 1000 | . * 10 | round / 10" "$@"
}
# alternate NAME CMD...: hyperfine runs the commands alternating, in
# $rounds blocks of $per runs each (warm-up in the first), into
# $tmp/NAME-ROUND.json; with PAUSE set, each run comes that long after the
# last (hyperfine --prepare), for both tools alike.
alternate() {
	local name=$1 r warm prep=()
	shift
	[ -n "${PAUSE:-}" ] && prep=(--prepare "sleep $PAUSE")
	for r in $(seq "$rounds"); do
		warm=0
		[ "$r" = 1 ] && warm=3
		hyperfine -N -i --style none --warmup $warm --runs "$per" "${prep[@]}" --export-json "$tmp/$name-$r.json" "$@" >/dev/null
	done
}
row() { printf '  %-52s %s\n' "$1" "$2"; }
rss() { awk '/^VmRSS/ {printf "%.1f MiB RSS", $2/1024}' "/proc/$1/status"; }
pss() { awk '/^Pss:/ {printf "%.1f MiB PSS", $2/1024}' "/proc/$1/smaps_rollup" 2>/dev/null; }

mrun="$moss run --rm --network none $img true"
prun="podman run --rm --network none $pimg true"
cmds=("$mrun")
[ $have_podman = 1 ] && cmds+=("$prun")
echo "bench: ${#cmds[@]} command(s), $rounds rounds of $per runs each, alternating"
# The latency of one run: each comes 0.3 s after the last, so that the
# agent has finished what a run leaves it (removing the container, making
# the next warm one; agent/warm.go). Then the same runs back to back,
# where that work competes with the next run: a measure of throughput.
PAUSE=0.3 alternate run "${cmds[@]}"
alternate runb2b "${cmds[@]}"
moss_ms=$(median '.results[0].times' "$tmp"/run-*.json)
b2b_ms=$(median '.results[0].times' "$tmp"/runb2b-*.json)
failed=$(jq -s '[.[].results[0].exit_codes[] | select(. != 0)] | length' "$tmp"/run-*.json "$tmp"/runb2b-*.json)

echo
echo "Moss $("$moss" version 2>/dev/null | awk '/Version:/ {print $2; exit}'), $(uname -r), $(nproc) CPUs, $(date -u +%F)"
row "run --rm --network none IMAGE true (median of $((rounds * per)))" "moss $moss_ms ms (0.3 s apart)"
[ "$failed" = 0 ] || row "" "($failed moss runs exited non-zero!)"
if [ $have_podman = 1 ]; then
	podman_ms=$(median '.results[1].times' "$tmp"/run-*.json)
	row "" "podman $podman_ms ms (same runs, alternating)"
	row "" "$(awk -v m="$moss_ms" -v p="$podman_ms" 'BEGIN {printf "moss %.1fx faster (target: >= 5x, <= 25 ms)", p/m}')"
fi
row "" "moss $b2b_ms ms back to back$([ $have_podman = 1 ] && echo ", podman $(median '.results[1].times' "$tmp"/runb2b-*.json) ms")"

# Idle figures: let the agent finish what the runs left it to do.
sleep 2
agent=$(cat "$MOSS_RUNTIME_DIR/agent.pid")
row "agent idle (target <= 40 MiB RSS)" "$(rss "$agent"), $(pss "$agent")"
id=$("$moss" run -d "$img" sleep 600)
shim=
for _ in $(seq 50); do
	shim=$(pgrep -u "$(id -u)" -f "__shim.*$id" | head -1 || true)
	[ -n "$shim" ] && break
	sleep 0.1
done
if [ -n "$shim" ]; then
	row "supervisor of one running container (target <= 5 MiB)" "$(rss "$shim"), $(pss "$shim")"
else
	row "supervisor of one running container" "(no process with __shim and the container ID in its command line)"
fi
spare=$(pgrep -u "$(id -u)" -f "__shim --warm" | head -1 || true)
[ -z "$spare" ] || row "spare shim waiting for the next start" "$(rss "$spare"), $(pss "$spare")"
holder=$(jq -r '.pid // empty' "$MOSS_RUNTIME_DIR/holder.json" 2>/dev/null || true)
child=$(jq -r '.child_pid // empty' "$MOSS_RUNTIME_DIR/holder.json" 2>/dev/null || true)
if [ -n "$holder" ]; then
	total=0
	for p in $holder $child $(pgrep -P "$child" 2>/dev/null | grep -vx "$agent" || true); do
		total=$((total + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
	done
	row "namespace holder (its processes, not the agent)" "$(awk -v k=$total 'BEGIN {printf "%.1f MiB PSS", k/1024}')"
fi
# exec into a running container, Moss and Podman alternating as above.
ecmds=("$moss exec $id true")
if [ $have_podman = 1 ]; then
	pid_=$(podman run -d --network none "$pimg" sleep 600)
	ecmds+=("podman exec $pid_ true")
fi
alternate exec "${ecmds[@]}"
exec_ms=$(median '.results[0].times' "$tmp"/exec-*.json)
row "exec CTR true (median of $((rounds * per)))" "moss $exec_ms ms"
if [ $have_podman = 1 ]; then
	pexec_ms=$(median '.results[1].times' "$tmp"/exec-*.json)
	row "" "podman $pexec_ms ms (same runs, alternating)"
	row "" "$(awk -v m="$exec_ms" -v p="$pexec_ms" 'BEGIN {printf "moss %.1fx faster (target: >= 5x, <= 15 ms)", p/m}')"
	podman rm -f -t 0 "$pid_" >/dev/null 2>&1 || true
fi
"$moss" rm -f "$id" >/dev/null

# A container writes 200 MB to stdout: all of it logged, then read back.
logbytes=200000000
line=0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456
lid=$("$moss" run -d "$img" sh -c "yes $line | head -c $logbytes")
"$moss" wait "$lid" >/dev/null
t0=$(date +%s%N)
got=$("$moss" logs "$lid" | wc -c)
t1=$(date +%s%N)
row "200 MB to stdout, then logs > /dev/null (target >= 300 MB/s)" \
	"moss $(awk -v b="$got" -v ns=$((t1 - t0)) 'BEGIN {printf "%.0f MB/s", b / (ns / 1e9) / 1e6}') ($got of $logbytes bytes logged)"
"$moss" rm -f "$lid" >/dev/null
if [ $have_podman = 1 ]; then
	plid=$(podman run -d --network none "$pimg" sh -c "yes $line | head -c $logbytes")
	podman wait "$plid" >/dev/null
	t0=$(date +%s%N)
	pgot=$(podman logs "$plid" 2>/dev/null | wc -c)
	t1=$(date +%s%N)
	row "" "podman $(awk -v b="$pgot" -v ns=$((t1 - t0)) 'BEGIN {printf "%.0f MB/s", b / (ns / 1e9) / 1e6}') ($pgot bytes)"
	podman rm -f "$plid" >/dev/null 2>&1 || true
fi

# Networks: run --rm on the default bridge network, Moss against Podman's
# default rootless network, alternating as above.
bcmds=("$moss run --rm $img true")
[ $have_podman = 1 ] && bcmds+=("podman run --rm $pimg true")
PAUSE=0.3 alternate bridge "${bcmds[@]}"
alternate bridgeb2b "${bcmds[@]}"
bridge_ms=$(median '.results[0].times' "$tmp"/bridge-*.json)
row "run --rm IMAGE true, default bridge network (median of $((rounds * per)))" "moss $bridge_ms ms (0.3 s apart)"
if [ $have_podman = 1 ]; then
	pbridge_ms=$(median '.results[1].times' "$tmp"/bridge-*.json)
	row "" "podman $pbridge_ms ms (its default rootless network, same runs)"
	row "" "$(awk -v m="$bridge_ms" -v p="$pbridge_ms" 'BEGIN {printf "moss %.1fx faster (target: >= 4x, <= 40 ms)", p/m}')"
fi
row "" "moss $(median '.results[0].times' "$tmp"/bridgeb2b-*.json) ms back to back$([ $have_podman = 1 ] && echo ", podman $(median '.results[1].times' "$tmp"/bridgeb2b-*.json) ms")"
# The Connect round trip to the bridge plugin, as the agent's debug log
# times it, over 20 starts.
stop_agent() {
	local pid
	pid=$(cat "$MOSS_RUNTIME_DIR/agent.pid" 2>/dev/null || true)
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
}
stop_agent
MOSS_DEBUG=1 "$moss" version >/dev/null
for _ in $(seq 20); do "$moss" run --rm "$img" true; done
# durations as hclog prints them (1.2ms, 850µs, 3s) in milliseconds, then
# their median; the C locale of the bench takes µ as two bytes.
ms_median() {
	awk -v key="$1=" '{ i = index($0, key); if (!i) next; v = substr($0, i + length(key)); sub(/ .*/, "", v)
		n = v + 0; if (v ~ /ms$/) print n; else if (v ~ /ns$/) print n / 1e6; else if (v ~ /[0-9]s$/) print n * 1000; else print n / 1000 }' |
		sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "?"; else printf "%.2f", (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}
conn=$(tr -d '"' <"$MOSS_RUNTIME_DIR/agent.log" | grep 'connected: .*network=bridge' | tail -20 | ms_median took || true)
waited=$(tr -d '"' <"$MOSS_RUNTIME_DIR/agent.log" | grep 'network ready: ' | tail -20 | ms_median waited || true)
row "Connect round trip to the bridge plugin" "${conn} ms (median of 20 starts, agent log)"
row "what the network adds to a start (target <= 2 ms)" "${waited} ms (the start's wait for endpoints made beside libcontainer's create)"
stop_agent
"$moss" version >/dev/null

# TCP throughput with iperf3 (an image of busybox and the host's iperf3):
# host to a published port, and container to container on one network.
if command -v iperf3 >/dev/null; then
	iroot=$tmp/iperf-root
	mkdir -p "$iroot"
	tar -xf "$rootfs" -C "$iroot"
	for f in /usr/bin/iperf3 $(ldd /usr/bin/iperf3 | grep -o '/[^ ]*'); do
		mkdir -p "$iroot$(dirname "$f")"
		cp -L "$f" "$iroot$f"
	done
	tar -C "$iroot" -cf "$tmp/iperf.tar" .
	iimg=bench/iperf:latest
	piimg=localhost/bench/iperf:latest
	"$moss" import "$tmp/iperf.tar" "$iimg" >/dev/null
	gbps() { jq -r '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100'; }
	med3() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "?")}'; }
	have_piperf=0
	if [ $have_podman = 1 ] && podman import "$tmp/iperf.tar" "$piimg" >/dev/null 2>&1; then
		have_piperf=1
	fi
	# Both servers run at once; the clients alternate, three runs each.
	"$moss" run -d --name iperf-pub -p 127.0.0.1:15201:5201 "$iimg" iperf3 -s >/dev/null
	if [ $have_piperf = 1 ]; then podman run -d --name iperf-pub -p 127.0.0.1:15202:5201 "$piimg" iperf3 -s >/dev/null; fi
	sleep 1
	mpubs="" ppubs=""
	for _ in 1 2 3; do
		mpubs="$mpubs $(iperf3 -c 127.0.0.1 -p 15201 -t 3 -J 2>/dev/null | gbps || true)"
		if [ $have_piperf = 1 ]; then ppubs="$ppubs $(iperf3 -c 127.0.0.1 -p 15202 -t 3 -J 2>/dev/null | gbps || true)"; fi
	done
	"$moss" network create benchnet >/dev/null
	"$moss" run -d --name iperf-srv --network benchnet "$iimg" iperf3 -s >/dev/null
	pc2cs="" sip=""
	if [ $have_piperf = 1 ] && podman network create benchnet >/dev/null 2>&1; then
		podman run -d --name iperf-srv --network benchnet "$piimg" iperf3 -s >/dev/null
		sip=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' iperf-srv)
	fi
	sleep 1
	mc2cs=""
	for _ in 1 2 3; do
		mc2cs="$mc2cs $("$moss" run --rm --network benchnet "$iimg" iperf3 -c iperf-srv -t 3 -J 2>/dev/null | gbps || true)"
		if [ -n "$sip" ]; then pc2cs="$pc2cs $(podman run --rm --network benchnet "$piimg" iperf3 -c "$sip" -t 3 -J 2>/dev/null | gbps || true)"; fi
	done
	"$moss" rm -f iperf-pub iperf-srv >/dev/null
	"$moss" network rm benchnet >/dev/null
	row "iperf3 host -> published port (target >= podman)" "moss $(echo "$mpubs" | med3) Gbit/s (median of 3:$mpubs)"
	row "iperf3 container -> container, one network" "moss $(echo "$mc2cs" | med3) Gbit/s (median of 3:$mc2cs)"
	if [ $have_piperf = 1 ]; then
		row "" "podman: published port $(echo "$ppubs" | med3) Gbit/s ($ppubs), container -> container $(echo "$pc2cs" | med3) Gbit/s ($pc2cs); alternating"
		podman rm -f -t 0 iperf-pub iperf-srv >/dev/null 2>&1 || true
		podman network rm benchnet >/dev/null 2>&1 || true
		podman rmi -f "$piimg" >/dev/null 2>&1 || true
	fi
fi

# Volumes: a start with two named volumes and a bind mount against the
# same start without, alternating, Moss and Podman alike. Both cold, with
# warm starts off: a start with mounts is never warm, and the figure is
# what the volumes add.
stop_agent
mkdir -p "$tmp/cold/moss"
printf '[runtime]\nwarm_starts = false\n' >"$tmp/cold/moss/moss.toml"
export XDG_CONFIG_HOME=$tmp/cold
"$moss" version >/dev/null
bind=$tmp/bind
mkdir -p "$bind"
"$moss" volume create bv1 >/dev/null && "$moss" volume create bv2 >/dev/null
vopts="-v bv1:/v1 -v bv2:/v2 -v $bind:/b"
vcmds=("$moss run --rm --network none $img true" "$moss run --rm --network none $vopts $img true")
if [ $have_podman = 1 ]; then
	podman volume create bv1 >/dev/null && podman volume create bv2 >/dev/null
	vcmds+=("podman run --rm --network none $pimg true" "podman run --rm --network none $vopts $pimg true")
fi
alternate vol "${vcmds[@]}"
m0=$(median '.results[0].times' "$tmp"/vol-*.json)
m1=$(median '.results[1].times' "$tmp"/vol-*.json)
row "run --rm with 2 named volumes + 1 bind (median of $((rounds * per)))" "moss $m1 ms, without $m0 ms: $(awk -v a="$m1" -v b="$m0" 'BEGIN {printf "+%.1f ms", a-b}') (target <= 5 ms; warm starts off)"
if [ $have_podman = 1 ]; then
	p0=$(median '.results[2].times' "$tmp"/vol-*.json)
	p1=$(median '.results[3].times' "$tmp"/vol-*.json)
	row "" "podman $p1 ms, without $p0 ms: $(awk -v a="$p1" -v b="$p0" 'BEGIN {printf "+%.1f ms", a-b}')"
fi
# 1 GiB written sequentially (and synced) into a named volume, against the
# same write straight into the directory holding the volumes; busybox's dd
# on both sides, timed by busybox's time (dd here prints no rate),
# alternating 3 times.
dd_secs() { awk '/^real/ {sub(/s$/, "", $3); sub(/m$/, "", $2); print $2 * 60 + $3}'; }
direct=$MOSS_DATA_DIR/volumes/direct
mkdir -p "$direct"
vs=() ds=()
for i in 1 2 3; do
	vs+=("$("$moss" run --rm --network none -v bv1:/v1 "$img" time dd if=/dev/zero of=/v1/big bs=1M count=1024 conv=fsync 2>&1 | dd_secs)")
	"$moss" run --rm --network none -v bv1:/v1 "$img" rm -f /v1/big
	ds+=("$(busybox time busybox dd if=/dev/zero of="$direct/big" bs=1M count=1024 conv=fsync 2>&1 | dd_secs)")
	rm -f "$direct/big"
done
vmed=$(printf '%s\n' "${vs[@]}" | sort -n | sed -n 2p)
dmed=$(printf '%s\n' "${ds[@]}" | sort -n | sed -n 2p)
row "1 GiB written into a named volume (median of 3)" "$(awk -v v="$vmed" -v d="$dmed" 'BEGIN {printf "%.0f MiB/s, direct %.0f MiB/s: %.0f %% (target >= 90 %%)", 1024/v, 1024/d, 100*d/v}')"
rmdir "$direct"
"$moss" volume rm bv1 bv2 >/dev/null
[ $have_podman = 1 ] && podman volume rm bv1 bv2 >/dev/null
stop_agent
unset XDG_CONFIG_HOME
"$moss" version >/dev/null

# Registries: pull of a 200 MB image of 5 layers (40 MB of random data
# each, hack/mkarchive) from a docker-registry on loopback, Moss and Podman
# alternating, 3 each, the image removed between pulls; then load of the
# same image as a docker-archive, likewise.
mkarchive=${MKARCHIVE:-$(dirname "$moss")/mkarchive}
if [ ! -x "$mkarchive" ] && command -v "${GO:-go}" >/dev/null; then
	"${GO:-go}" build -o "$tmp/mkarchive" ./hack/mkarchive && mkarchive=$tmp/mkarchive
fi
if [ -x /usr/bin/docker-registry ] && [ -x "$mkarchive" ]; then
	rport=
	for p in $(seq 5400 5499); do
		(: </dev/tcp/127.0.0.1/$p) 2>/dev/null || { rport=$p; break; }
	done
	mkdir -p "$tmp/registry"
	printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
		"$tmp/registry/data" "$rport" >"$tmp/registry/config.yml"
	/usr/bin/docker-registry serve "$tmp/registry/config.yml" >"$tmp/registry/log" 2>&1 &
	reg_pid=$!
	trap 'kill $reg_pid 2>/dev/null || true; cleanup' EXIT
	for _ in $(seq 100); do (: </dev/tcp/127.0.0.1/$rport) 2>/dev/null && break; sleep 0.1; done
	big=127.0.0.1:$rport/bench/big:1
	"$mkarchive" -o "$tmp/big.tar" -tag "$big" -layers 5 -size 40
	"$moss" load -i "$tmp/big.tar" >/dev/null
	"$moss" push -q "$big" >/dev/null
	"$moss" rmi "$big" >/dev/null
	ms_of() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }
	med3ms() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
	mp=() pp=() ml=() pl=()
	for _ in 1 2 3; do
		mp+=("$(ms_of "$moss" pull -q "$big")")
		"$moss" rmi "$big" >/dev/null
		if [ $have_podman = 1 ]; then
			pp+=("$(ms_of podman pull -q --tls-verify=false "$big")")
			podman rmi "$big" >/dev/null
		fi
	done
	for _ in 1 2 3; do
		ml+=("$(ms_of "$moss" load -i "$tmp/big.tar")")
		"$moss" rmi "$big" >/dev/null
		if [ $have_podman = 1 ]; then
			pl+=("$(ms_of podman load -q -i "$tmp/big.tar")")
			podman rmi "$big" >/dev/null
		fi
	done
	for what in pull load; do
		if [ $what = pull ]; then m=$(med3ms "${mp[@]}"); p=$(med3ms "${pp[@]:-}"); label="pull of 200 MB in 5 layers, loopback registry (median of 3)"
		else m=$(med3ms "${ml[@]}"); p=$(med3ms "${pl[@]:-}"); label="load of the same image, docker-archive (median of 3)"; fi
		if [ $have_podman = 1 ]; then
			row "$label" "moss $m ms, podman $p ms (alternating): $(awk -v m="$m" -v p="$p" 'BEGIN {printf "moss %.2fx (target >= 1x)", p/m}')"
		else
			row "$label" "moss $m ms"
		fi
	done
	kill $reg_pid 2>/dev/null || true
	trap cleanup EXIT
	rm -rf "$tmp/registry" "$tmp/big.tar"
else
	row "pull and load of 200 MB" "(skipped: needs /usr/bin/docker-registry and hack/mkarchive)"
fi

# A rebuild with every step in the cache: six steps, a 10 MB COPY among
# them, built once, then rebuilt alternating with Podman's (buildah's
# cache).
bctx=$tmp/buildctx
mkdir -p "$bctx"
head -c 10485760 /dev/urandom >"$bctx/data.bin"
printf 'FROM %s
ENV A=1
WORKDIR /w
COPY data.bin .
RUN echo built > /w/out
CMD ["cat", "/w/out"]
' "$img" >"$bctx/Dockerfile"
"$moss" build -q -t bench/rebuild "$bctx" >/dev/null
bcmds=("$moss build -q -t bench/rebuild $bctx")
if [ $have_podman = 1 ]; then
	sed "s|^FROM .*|FROM $pimg|" "$bctx/Dockerfile" >"$bctx/Dockerfile.podman"
	podman build -q -f "$bctx/Dockerfile.podman" -t bench/rebuild "$bctx" >/dev/null
	bcmds+=("podman build -q -f $bctx/Dockerfile.podman -t bench/rebuild $bctx")
fi
hyperfine -N -i --style none --warmup 1 --runs 10 --export-json "$tmp/rebuild.json" "${bcmds[@]}" >/dev/null
mb=$(median '.results[0].times' "$tmp/rebuild.json")
if [ $have_podman = 1 ]; then
	pb=$(median '.results[1].times' "$tmp/rebuild.json")
	row "rebuild, every step cached (median of 10; target <= 1 s)" "moss $mb ms, podman $pb ms"
	podman rmi -f bench/rebuild >/dev/null 2>&1 || true
else
	row "rebuild, every step cached (median of 10; target <= 1 s)" "moss $mb ms"
fi

# Limits and stats, with the cgroup v1 subtrees hack/prepare-host.sh
# delegates to the user (on a cgroup v2 host with systemd's delegation
# nothing needs configuring): a start with limits against one without,
# alternating, then stats --no-stream of 50 running containers. The agent
# runs with that configuration only for this section.
cgbase=moss-$(id -un)
if [ -d "/sys/fs/cgroup/memory/$cgbase" ] && [ -d "/sys/fs/cgroup/cpu/$cgbase" ] && [ -d "/sys/fs/cgroup/pids/$cgbase" ]; then
	stop_agent
	mkdir -p "$tmp/config/moss"
	kv=""
	for c in memory cpu cpuacct pids freezer blkio cpuset; do
		[ -d "/sys/fs/cgroup/$c/$cgbase" ] && kv="$kv${kv:+, }$c = \"/sys/fs/cgroup/$c/$cgbase\""
	done
	printf '[cgroups]\nv1 = { %s }\n[runtime]\nwarm_starts = false\n' "$kv" >"$tmp/config/moss/moss.toml"
	export XDG_CONFIG_HOME=$tmp/config
	lcmds=("$moss run --rm --network none $img true" "$moss run --rm --network none -m 64m --cpus 1 --pids-limit 100 $img true")
	alternate limits "${lcmds[@]}"
	l0=$(median '.results[0].times' "$tmp"/limits-*.json)
	l1=$(median '.results[1].times' "$tmp"/limits-*.json)
	row "run --rm with -m, --cpus, --pids-limit (median of $((rounds * per)))" "moss $l1 ms, without $l0 ms: $(awk -v a="$l1" -v b="$l0" 'BEGIN {printf "%+.1f ms", a-b}') (target <= 3 ms; both in cgroups of their own, warm starts off)"
	spids=()
	for i in $(seq 50); do
		"$moss" run -d --network none --name "stat$i" "$img" sleep 600 >/dev/null &
		spids+=($!)
	done
	for p in "${spids[@]}"; do wait "$p" || true; done
	hyperfine -N -i --style none --warmup 2 --runs 10 --export-json "$tmp/stats.json" "$moss stats --no-stream" >/dev/null
	row "stats --no-stream, 50 running (median of 10; target <= 200 ms)" "$(median '.results[0].times' "$tmp/stats.json") ms"
	"$moss" rm -f $(seq -f 'stat%g' 50) >/dev/null 2>&1 || true
	stop_agent
	unset XDG_CONFIG_HOME
	# The next figures are of container starts, not of the agent's.
	"$moss" version >/dev/null
else
	row "limits and stats" "(skipped: no cgroup subtree delegated to $(id -un); hack/prepare-host.sh makes them)"
fi

start=$(date +%s%N)
pids=()
for i in $(seq "$parallel"); do
	"$moss" run -d --name "par$i" "$img" sleep 600 >/dev/null 2>"$tmp/par$i.err" &
	pids+=($!)
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
took=$(( ($(date +%s%N) - start) / 1000000 ))
running=$("$moss" ps -q --filter status=running | wc -l)
row "$parallel containers started in parallel with -d" "$running running after $took ms ($fails starts failed)"
[ "$fails" = 0 ] || head -3 "$tmp"/par*.err | sed 's/^/    /'
hyperfine -N --style none --warmup 3 --runs 20 --export-json "$tmp/ps.json" "$moss ps" >/dev/null
row "moss ps with $running running (target <= 50 ms)" "$(median '.results[0].times' "$tmp/ps.json") ms (median of 20)"
if [ -n "$shim" ]; then
	shim=$(pgrep -u "$(id -u)" -f "__shim [0-9a-f]{64}" | head -1 || true)
	[ -z "$shim" ] || row "one supervisor among $running" "$(rss "$shim"), $(pss "$shim")"
fi
echo
echo "bench: figures only, nothing was asserted"
