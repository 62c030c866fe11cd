#!/usr/bin/env bash
# The whole test suite: `make check` (root, on a host prepared by
# hack/prepare-host.sh). Builds as root, then runs the unit tests and the
# integration suite as the unprivileged user mosstest, and the no-subuid
# case as mossnosub. With "integration" only the integration suite runs.
# As a non-root user it runs everything as that user (no second user).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
export CGO_ENABLED=1
export GOFLAGS=${GOFLAGS:--tags=containers_image_openpgp,exclude_graphdriver_btrfs,containers_image_docker_daemon_stub,seccomp,netgo,osusergo,no_gvisortapvsock}

work=$(mktemp -d /tmp/moss-check-XXXXXX)
chmod 0755 "$work"
trap 'rm -rf "$work" 2>/dev/null || true' EXIT

make -s build
cp bin/moss "$work/moss"
contrib/mkimage.sh "$work" >/dev/null
mkdir -p "$work/unit"
if [ "$what" = all ]; then
	for pkg in $(go list ./... | grep -v /integration); do
		name=$(echo "$pkg" | sed 's#github.com/moss-containers/moss/##; s#[/.]#_#g')
		go test -c -o "$work/unit/$name.test" "$pkg"
	done
fi
go test -c -o "$work/integration.test" ./integration
chmod -R a+rX "$work"

passed=0
failed=0
summarize() { # file
	local p f
	p=$(grep -c -- '^--- PASS' "$1" || true)
	f=$(grep -c -- '^--- FAIL' "$1" || true)
	passed=$((passed + p))
	failed=$((failed + f))
}

as_user() { # user cmd...
	local u=$1
	shift
	if [ "$(id -u)" = 0 ]; then
		local uid home
		uid=$(id -u "$u")
		home=$(getent passwd "$u" | cut -d: -f6)
		(cd "$work" && runuser -u "$u" -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			HOME="$home" USER="$u" XDG_RUNTIME_DIR="/run/user/$uid" "$@")
	else
		(cd "$work" && "$@")
	fi
}

user=mosstest
[ "$(id -u)" = 0 ] || user=$(id -un)
status=0
for t in "$work"/unit/*.test; do
	[ -e "$t" ] || continue
	log="$t.log"
	echo "=== unit: $(basename "$t" .test)"
	if as_user "$user" "$t" -test.v -test.timeout 10m >"$log" 2>&1; then :; else status=1; cat "$log"; fi
	grep -E '^(--- FAIL|ok|PASS|FAIL)' "$log" | tail -3 || true
	summarize "$log"
done

echo "=== integration (as $user)"
ilog="$work/integration.log"
if as_user "$user" env MOSS_BIN="$work/moss" MOSS_IT_ROOTFS="$work/busybox-rootfs.tar" \
	"$work/integration.test" -test.v -test.timeout 30m 2>&1 | tee "$ilog"; then :; else status=1; fi
[ "${PIPESTATUS[0]:-0}" = 0 ] || status=1
grep -q '^FAIL' "$ilog" && status=1
summarize "$ilog"

if [ "$(id -u)" = 0 ]; then
	echo "=== integration: no subordinate IDs (as mossnosub)"
	nlog="$work/nosub.log"
	if as_user mossnosub env MOSS_BIN="$work/moss" MOSS_IT_ROOTFS="$work/busybox-rootfs.tar" MOSS_IT_NOSUBUID=1 \
		"$work/integration.test" -test.v -test.run 'TestNoSubuid' -test.timeout 10m 2>&1 | tee "$nlog"; then :; else status=1; fi
	grep -q '^FAIL' "$nlog" && status=1
	summarize "$nlog"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ] || status=1
exit $status
