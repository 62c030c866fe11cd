# Moss — make help lists the targets.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# GVISOR=1 compiles in rootlesskit's in-process gvisor-tap-vsock network
# driver (about 6 ms start-up and 7 MiB per process; see README, Design).
TAGS     := containers_image_openpgp exclude_graphdriver_btrfs containers_image_docker_daemon_stub seccomp netgo osusergo
ifneq ($(GVISOR),1)
TAGS     += no_gvisortapvsock
endif
LDFLAGS  := -s -w -X github.com/moss-containers/moss/agent.Version=$(VERSION) -X github.com/moss-containers/moss/cli.Version=$(VERSION)
STATIC   := -linkmode external -extldflags -static
export CGO_ENABLED=1
export GOFLAGS=-tags=$(subst $(eval) ,$(comma),$(TAGS))
comma    := ,

.PHONY: help build test integration check bench demo lint clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## Build bin/moss (static when the toolchain can link it so)
	@mkdir -p bin
	@$(GO) build -ldflags '$(LDFLAGS) $(STATIC)' -o bin/moss . 2>/dev/null || \
		{ echo "static link failed; building a dynamic binary"; $(GO) build -ldflags '$(LDFLAGS)' -o bin/moss .; }
	@echo "bin/moss: $$(file -b bin/moss | cut -d, -f1-2,5)"

test: ## Run the unit tests as the current user
	$(GO) test $$($(GO) list ./... | grep -v /integration)

integration: build ## Run the integration suite (as mosstest when run as root)
	hack/check.sh integration

check: ## The whole test suite (root on a prepared host: unit and integration tests as the test users)
	hack/check.sh all

bench: build ## Side-by-side figures against rootless Podman (not a test)
	hack/bench.sh

demo: ## Prepare the host, build, and run real containers offline
	hack/demo.sh

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

clean: ## Remove build output
	rm -rf bin
