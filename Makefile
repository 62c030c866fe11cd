# Moss — `make help` lists the targets.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# GVISOR=1 compiles in rootlesskit's in-process gvisor-tap-vsock network
# driver (about 6 ms start-up and 7 MiB per process; see README, Design).
TAGS     := containers_image_openpgp exclude_graphdriver_btrfs containers_image_docker_daemon_stub seccomp netgo osusergo
ifneq ($(GVISOR),1)
TAGS     += no_gvisortapvsock
endif
# -X on a variable that does not exist is ignored by the linker.
LDFLAGS  := -s -w \
	-X github.com/moss-containers/moss/internal/version.Version=$(VERSION) \
	-X github.com/moss-containers/moss/agent.Version=$(VERSION) \
	-X github.com/moss-containers/moss/cli.Version=$(VERSION) \
	-X github.com/moss-containers/moss/netdrivers.Version=$(VERSION) \
	-X github.com/moss-containers/moss/storage/localvol.Version=$(VERSION) \
	-X github.com/moss-containers/moss/contrib/dockervolume.Version=$(VERSION)
comma    := ,
space    := $(eval) $(eval)
export CGO_ENABLED=1
export GOFLAGS=-tags=$(subst $(space),$(comma),$(strip $(TAGS)))

.PHONY: help build test integration check bench demo lint clean proto

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# bin/moss is the front binary carrying the full one (hack/build.sh).
build: ## Build bin/moss (static when it links, else dynamic)
	@GO=$(GO) hack/build.sh '$(LDFLAGS)' '$(subst $(space),$(comma),$(strip $(TAGS)))'

test: ## Run the unit tests as the current user
	$(GO) test $$($(GO) list ./... | grep -v /integration)

integration: build ## Run the integration suite (as mosstest when run as root)
	hack/check.sh integration

check: ## The whole test suite: root on a prepared host runs unit and integration tests as the test users
	hack/check.sh all

bench: build ## Moss side by side with rootless Podman, medians and ratios (not a test)
	hack/bench.sh

demo: ## As root: prepare the host, build, build a busybox image, run real containers offline
	hack/demo.sh

lint: ## gofmt -l must be empty; go vet with the build tags
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
		if [ -n "$$out" ]; then echo "gofmt -l:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# The front binary (main_front.go) embeds bin/moss-full.gz: vetted once built.
	@if [ -f bin/moss-full.gz ]; then $(GO) vet -tags '$(subst $(space),$(comma),$(strip $(TAGS))),moss_front' . ; fi
	bash -n hack/*.sh contrib/*.sh .ci/run

proto: ## Regenerate proto/*/v1 Go code (protoc, protoc-gen-go, protoc-gen-go-grpc)
	proto/generate.sh

clean: ## Remove build output
	rm -rf bin
