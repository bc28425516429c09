# vkrun: make demo (run the default job), make test (install, build, test).
SHELL := /bin/bash
GO ?= go
GLSLC ?= glslc
GLSLC_FLAGS := --target-env=vulkan1.1 -Werror -O
# Short fuzz runs in CI, counted in executions: Go 1.26's fuzz coordinator
# can fail a run that is timed (-fuzztime 10s) with "context deadline
# exceeded" at the deadline on a loaded machine (go.dev/issue/75804, fixed in
# Go 1.27), and a count has no deadline. FUZZSLOW is for the targets that run
# whole vocabularies per input. Run longer ones by hand: make fuzz
# FUZZTIME=2000000x (or a duration such as 5m, on Go 1.27).
FUZZTIME ?= 50000x
FUZZSLOW ?= 2000x

.PHONY: all setup build demo test test-go test-cgocheck test-mesa-next fuzz shaders bench clean

all: build

setup:
	@scripts/setup.sh

build:
	$(GO) build -o bin/vkrun ./cmd/vkrun

demo: setup build
	./bin/vkrun

# CI=true makes GPU and model tests fail rather than skip when something is missing.
test: setup
	$(GO) vet ./...
	$(MAKE) --no-print-directory test-go test-cgocheck fuzz test-mesa-next

# -timeout: a package's default 10 minutes is too close on a slow
# 2-core machine with a cold Mesa cache (engine/ops JITs every kernel it tests).
test-go:
	VKRUN_VALIDATE=1 $(GO) test -count=1 -timeout 30m ./...

# The vk layer must obey cgo's pointer rules under the strict checker too.
test-cgocheck:
	GOEXPERIMENT=cgocheck2 VKRUN_VALIDATE=1 $(GO) test -count=1 ./vk/

# The cooperative-matrix tests again on Debian sid's lavapipe, which has
# VK_KHR_cooperative_matrix (bookworm's has none): downloaded and unpacked
# beside the system's Vulkan, never installed (scripts/mesa-next.sh).
test-mesa-next:
	@scripts/mesa-next.sh test

fuzz:
	@for t in $$($(GO) test -list '^Fuzz' ./loader/ | grep '^Fuzz'); do \
		n=$(FUZZTIME); case $$t in FuzzBPERoundTrip) n=$(FUZZSLOW);; esac; \
		echo "fuzz $$t ($$n)"; \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $$n ./loader/ || exit 1; \
	done

# Compile GLSL to SPIR-V, one module per entry in shaders.Sources (a .comp
# with its defines); outputs are rewritten only when their bytes change.
shaders:
	$(GO) run ./shaders/internal/compile -glslc "$(GLSLC)" -flags "$(GLSLC_FLAGS)"

bench: setup
	$(GO) test -run '^$$' -bench . -benchtime 2s ./vk/ ./engine/ops/

clean:
	rm -rf bin
