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
	-X github.com/moss-containers/moss/cli.Version=$(VERSION)
STATIC   := -linkmode external -extldflags -static
comma    := ,
space    := $(eval) $(eval)
export CGO_ENABLED=1
export GOFLAGS=-tags=$(subst $(space),$(comma),$(strip $(TAGS)))

.PHONY: help build test integration check bench demo lint clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# Static when the toolchain can link it so (glibc's static libc, libseccomp.a);
# otherwise dynamic, with the reason of the static failure shown.
build: ## Build bin/moss (static when it links, else dynamic)
	@mkdir -p bin
	@if $(GO) build -ldflags '$(LDFLAGS) $(STATIC)' -o bin/moss . 2>bin/static-link.log; then \
		rm -f bin/static-link.log; \
	else \
		echo "static link failed (bin/static-link.log: $$(grep -m1 -E 'ld: |cannot find|error' bin/static-link.log || tail -1 bin/static-link.log)); building a dynamic binary"; \
		$(GO) build -ldflags '$(LDFLAGS)' -o bin/moss .; \
	fi
	@if ldd bin/moss >/dev/null 2>&1; then echo "bin/moss: dynamic, needs:"; ldd bin/moss | awk '{print "  " $$1}'; \
		else echo "bin/moss: static"; fi

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
	bash -n hack/*.sh contrib/*.sh .ci/run

clean: ## Remove build output
	rm -rf bin
