#!/bin/sh
# Regenerates the Go code of proto/ (make proto). Needs protoc (Debian's
# protobuf-compiler, 3.21); installs the Go plugins at the pinned versions
# into bin/tools. `proto/generate.sh --check` fails when the committed code
# differs from what the .proto files generate (CI runs it).
set -eu
cd "$(dirname "$0")"
PROTOC_GEN_GO=v1.36.11
PROTOC_GEN_GO_GRPC=v1.5.1
tools="$(pwd)/../bin/tools"
mkdir -p "$tools"
if ! "$tools/protoc-gen-go" --version 2>/dev/null | grep -q "$PROTOC_GEN_GO"; then
	GOFLAGS= GOBIN="$tools" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO"
fi
if ! "$tools/protoc-gen-go-grpc" --version 2>/dev/null | grep -q "${PROTOC_GEN_GO_GRPC#v}"; then
	GOFLAGS= GOBIN="$tools" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC"
fi
out=.
if [ "${1:-}" = "--check" ]; then
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi
for f in base/v1/base.proto network/v1/network.proto volume/v1/volume.proto; do
	PATH="$tools:$PATH" protoc -I . --go_out=paths=source_relative:"$out" --go-grpc_out=paths=source_relative:"$out" "$f"
done
if [ "$out" != . ]; then
	for f in $(cd "$out" && find . -name '*.go'); do
		if ! cmp -s "$out/$f" "$f"; then
			echo "proto: $f differs from what its .proto generates: run make proto and commit" >&2
			diff -u "$f" "$out/$f" | head -20 >&2
			exit 1
		fi
	done
	echo "proto: generated code matches"
fi
