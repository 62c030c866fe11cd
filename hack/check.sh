#!/usr/bin/env bash
# The whole test suite: `make check` (as root, on a host prepared by
# hack/prepare-host.sh). Builds as root, then runs the unit tests and the
# integration suite as the unprivileged user mosstest, and TestNoSubuid again
# as mossnosub (no subordinate IDs). `hack/check.sh integration` runs only the
# integration suite. As a non-root user everything runs as that user, and
# TestNoSubuid skips.
#
# The users get compiled test binaries in a world-readable temporary
# directory: they need no Go toolchain and no Go caches. Each unit test
# binary runs in its package directory, as `go test` does, when the user can
# read it.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
case $what in all | integration) ;; *)
	echo "usage: $0 [all|integration]" >&2
	exit 2
	;;
esac
export CGO_ENABLED=1
export GOFLAGS=${GOFLAGS:--tags=containers_image_openpgp,exclude_graphdriver_btrfs,containers_image_docker_daemon_stub,seccomp,netgo,osusergo,no_gvisortapvsock}

root=0
[ "$(id -u)" = 0 ] && root=1
user=$(id -un)
if [ $root = 1 ]; then
	user=mosstest
	for u in mosstest mossnosub; do
		id -u "$u" >/dev/null 2>&1 || {
			echo "check: user $u is missing: run hack/prepare-host.sh first" >&2
			exit 1
		}
	done
fi

t0=$(date +%s)
phase() { echo "--- $1 ($(($(date +%s) - t0))s)"; }

work=$(mktemp -d /tmp/moss-ci-XXXXXX)
chmod 0755 "$work"
trap 'rm -rf "$work" 2>/dev/null || true' EXIT

if [ "$what" = all ]; then
	phase proto
	proto/generate.sh --check
fi
phase build
make -s build
cp bin/moss "$work/moss"
cp contrib/systemd/moss.service "$work/moss.service"
contrib/mkimage.sh "$work" >/dev/null
mkdir -p "$work/unit"
if [ "$what" = all ]; then
	# name<TAB>directory of each package with tests, in $work/unit/index
	go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{"\t"}}{{.Dir}}{{end}}' ./... |
		grep -v $'/integration\t' | sed '/^$/d' >"$work/unit/index"
	while IFS=$'\t' read -r pkg dir; do
		name=$(echo "${pkg#github.com/moss-containers/moss}" | sed 's#^/##; s#[/.]#_#g')
		[ -n "$name" ] || name=main
		go test -c -o "$work/unit/$name.test" "$pkg"
		printf '%s\t%s\n' "$name" "$dir" >>"$work/unit/dirs"
	done <"$work/unit/index"
fi
go test -c -o "$work/integration.test" ./integration
# The third-party plugins of TestCNIPlugin and TestVolumePlugins.
CGO_ENABLED=0 go build -o "$work/moss-cni" ./contrib/cni
CGO_ENABLED=0 go build -o "$work/moss-volume-example" ./contrib/volume-example
CGO_ENABLED=0 go build -o "$work/moss-docker-volume-testplugin" ./contrib/dockervolume/testplugin
chmod -R a+rX "$work"

# as_user USER DIR CMD...: runs CMD in DIR as USER (root) or as is.
as_user() {
	local u=$1 dir=$2
	shift 2
	if [ $root = 1 ]; then
		local uid home
		uid=$(id -u "$u")
		home=$(getent passwd "$u" | cut -d: -f6)
		(cd "$dir" && runuser -u "$u" -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			HOME="$home" USER="$u" LOGNAME="$u" LANG=C.UTF-8 XDG_RUNTIME_DIR="/run/user/$uid" CI="${CI:-}" "$@" </dev/null)
	else
		(cd "$dir" && "$@" </dev/null)
	fi
}

passed=0
failed=0
status=0
summarize() { # log
	local p f
	p=$(grep -c -- '--- PASS' "$1" || true)
	f=$(grep -c -- '--- FAIL' "$1" || true)
	passed=$((passed + p))
	failed=$((failed + f))
	if grep -q '^FAIL' "$1" || grep -q '^panic:' "$1"; then status=1; fi
}

if [ "$what" = all ] && [ -s "$work/unit/dirs" ]; then
	phase "unit tests (as $user)"
	while IFS=$'\t' read -r name dir; do
		log="$work/unit/$name.log"
		# Run where go test would, if the user can read the package.
		if ! as_user "$user" / test -r "$dir" -a -x "$dir"; then dir=$work; fi
		if as_user "$user" "$dir" "$work/unit/$name.test" -test.v -test.timeout 10m >"$log" 2>&1; then
			echo "ok   $name"
		else
			echo "FAIL $name"
			status=1
			grep -v -- '^=== \(RUN\|PAUSE\|CONT\)' "$log" | tail -60
		fi
		summarize "$log"
		# Tests that mount overlay layers directly (storage) need root:
		# the unit tests run again as root; their rootless cases re-run
		# themselves as nobody in a user namespace.
		if [ $root = 1 ]; then
			rlog="$work/unit/$name.root.log"
			if (cd "$dir" && "$work/unit/$name.test" -test.v -test.timeout 10m </dev/null >"$rlog" 2>&1); then
				echo "ok   $name (as root)"
			else
				echo "FAIL $name (as root)"
				status=1
				grep -v -- '^=== \(RUN\|PAUSE\|CONT\)' "$rlog" | tail -60
			fi
			summarize "$rlog"
		fi
	done <"$work/unit/dirs"
fi

phase "integration (as $user)"
ilog="$work/integration.log"
if as_user "$user" "$work" env MOSS_BIN="$work/moss" MOSS_IT_ROOTFS="$work/busybox-rootfs.tar" MOSS_IT_CNI="$work/moss-cni" \
	MOSS_IT_VOLUME_EXAMPLE="$work/moss-volume-example" MOSS_IT_DOCKER_VOLUME_PLUGIN="$work/moss-docker-volume-testplugin" \
	MOSS_IT_SYSTEMD_UNIT="$work/moss.service" "$work/integration.test" -test.v -test.timeout 12m 2>&1 | tee "$ilog"; then :; else status=1; fi
summarize "$ilog"

if [ $root = 1 ]; then
	phase "integration: no subordinate IDs (as mossnosub)"
	nlog="$work/nosub.log"
	if as_user mossnosub "$work" env MOSS_BIN="$work/moss" MOSS_IT_ROOTFS="$work/busybox-rootfs.tar" MOSS_IT_USER_NOSUBUID=1 MOSS_IT_NOSUBUID=1 \
		"$work/integration.test" -test.v -test.run '^TestNoSubuid$' -test.timeout 5m 2>&1 | tee "$nlog"; then :; else status=1; fi
	summarize "$nlog"
	grep -q -- '--- PASS: TestNoSubuid' "$nlog" || {
		echo "check: TestNoSubuid did not pass as mossnosub"
		status=1
	}
fi

phase done
echo "check: $passed passed, $failed failed"
[ "$failed" = 0 ] || status=1
[ $status = 0 ] && echo "check: PASS" || echo "check: FAIL"
exit $status
