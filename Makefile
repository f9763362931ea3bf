# pyro: the developer entry points. `make demo` and `make test` are the two
# commands the README promises on a fresh Debian 12 machine (as root).
SHELL := /bin/bash
PYRO := node dist/cli.js

.PHONY: deps build check lint format typecheck test test-unit test-unit-node22 test-guest demo setup install dist-check bench clean smoke-daily-loop \
	smoke-use-cases smoke-repro-fix-loop smoke-untrusted-inspection smoke-review-eval smoke-parallel-workspaces smoke-cold-start-validation

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json

build: deps
	npm run build

setup: build
	$(PYRO) setup

lint: deps
	npx eslint .

format: deps
	npx prettier --write .

typecheck: deps
	npx tsc --noEmit

test-unit: build
	npx vitest run --project unit

# The unit tests again under Node 22 (the host CLI supports Node 20 and later);
# scripts/node22.sh fetches a pinned Node 22 from the npm registry once.
test-unit-node22: build
	"$$(bash scripts/node22.sh)" node_modules/vitest/vitest.mjs run --project unit

# Lint, format check, typecheck, unit tests.
check: deps
	npx eslint .
	npx prettier --check .
	npx tsc --noEmit
	$(MAKE) test-unit

# Everything, guest-backed tests included (boots real microVMs).
test: setup check
	$(MAKE) test-unit-node22
	$(PYRO) env pull debian:12
	npx vitest run --project guest
	$(MAKE) smoke-daily-loop

# The daily loop from a cold state on a real guest: prepare, repro, fix, reset, retry.
smoke-daily-loop: build
	$(PYRO) env pull debian:12
	npx vitest run --project smoke smoke/daily-loop.smoke.ts

# The use cases of docs/use-cases/, each its recipe step by step through the
# MCP server on real guests (fixtures in smoke/fixtures/).
smoke-use-cases: smoke-repro-fix-loop smoke-untrusted-inspection smoke-review-eval smoke-parallel-workspaces smoke-cold-start-validation

smoke-repro-fix-loop: build
	$(PYRO) env pull debian:12
	npx vitest run --project smoke smoke/repro-fix-loop.smoke.ts

smoke-untrusted-inspection: build
	$(PYRO) env pull debian:12
	npx vitest run --project smoke smoke/untrusted-inspection.smoke.ts

smoke-review-eval: build
	$(PYRO) env pull debian:12
	npx vitest run --project smoke smoke/review-eval.smoke.ts

smoke-parallel-workspaces: build
	$(PYRO) env pull debian:12
	npx vitest run --project smoke smoke/parallel-workspaces.smoke.ts

smoke-cold-start-validation: build
	$(PYRO) env pull debian:12-build
	npx vitest run --project smoke smoke/cold-start-validation.smoke.ts

# Put `pyro` on PATH: npm links its global bin/pyro to this clone (after a
# move, `make install` again and `pyro host repair HOST`).
install: build
	npm install -g --no-audit --no-fund .

# The main job, end to end: install what the host needs, build the environment, run a command in a guest.
demo: setup
	$(PYRO) run debian:12 -- git --version

# Pack the npm package, install it into an empty directory, run it from there.
dist-check: build
	bash scripts/dist-check.sh

bench: setup
	node --import tsx bench/boot.ts
	node --import tsx bench/workspace.ts
	node --import tsx bench/daily-loop.ts
	node --import tsx bench/shells.ts
	node --import tsx bench/hosts.ts
	node --import tsx bench/disk.ts

clean:
	rm -rf dist coverage
