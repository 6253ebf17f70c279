# The two set-up commands of the README: `make run` and `make test`.
# Both install what the project needs (Debian packages, then a virtualenv) when it is missing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Debian packages: compilers and headers for the C parts (our QuickJS companion, systemd-python),
# the real SIP peers the tests run against, chromium for the panel's browser tests, and tsc for TypeScript scenarios (voxpush builds them as
# voxengine-ci does).
DEB_PACKAGES := gcc libc6-dev pkg-config libsystemd-dev python3-dev python3-venv \
	sip-tester baresip-core kamailio sipvicious sipsak \
	rtpengine-daemon espeak-ng sox node-typescript chromium

.PHONY: run test deps lint bench clean

run: $(STAMP)
	$(VENV)/bin/appliance run --sim --voxfiles scenarios/voxfiles

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) tools/bench/sessions.py

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

$(STAMP): pyproject.toml setup.py appliance/engine/_qjsglue.c | deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info appliance/engine/_qjsglue*.so
