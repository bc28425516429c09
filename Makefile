# vkrun: make demo (run the default job), make test (install, build, test).
SHELL := /bin/bash
GO ?= go
GLSLC ?= glslc
GLSLC_FLAGS := --target-env=vulkan1.1 -Werror -O
# Short fuzz runs in CI; run longer ones by hand: make fuzz FUZZTIME=5m
FUZZTIME ?= 10s

.PHONY: all setup build demo test test-go test-cgocheck fuzz shaders bench clean

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
	$(MAKE) --no-print-directory test-go test-cgocheck fuzz

test-go:
	VKRUN_VALIDATE=1 $(GO) test -count=1 ./...

# The vk layer must obey cgo's pointer rules under the strict checker too.
test-cgocheck:
	GOEXPERIMENT=cgocheck2 VKRUN_VALIDATE=1 $(GO) test -count=1 ./vk/

fuzz:
	@for t in $$($(GO) test -list '^Fuzz' ./loader/ | grep '^Fuzz'); do \
		echo "fuzz $$t ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./loader/ || exit 1; \
	done

# Compile GLSL to SPIR-V, one module per entry in shaders.Sources (a .comp
# with its defines); outputs are rewritten only when their bytes change.
shaders:
	$(GO) run ./shaders/internal/compile -glslc "$(GLSLC)" -flags "$(GLSLC_FLAGS)"

bench: setup
	$(GO) test -run '^$$' -bench . -benchtime 2s ./vk/ ./engine/ops/

clean:
	rm -rf bin
