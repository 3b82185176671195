#!/usr/bin/env bash
# Installs what the tests need on a fresh machine, then runs every test.
# npm peers go into peers/node_modules (from peers/package-lock.json), Python peers into
# peers/.venv (from peers/requirements.txt); both folders are git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing test peers"
# The sign-in and console tests drive Debian's Chromium (playwright-core, from peers/) and make
# certificates with openssl; the replica tests put Debian's HAProxy in front of the gateway.
missing=""
command -v chromium >/dev/null || missing="$missing chromium"
command -v openssl >/dev/null || missing="$missing openssl"
command -v haproxy >/dev/null || missing="$missing haproxy"
if [ -n "$missing" ]; then
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
(cd peers && npm ci --no-audit --no-fund --loglevel=error)
if [ ! -x peers/.venv/bin/python ]; then
  python3 -m venv peers/.venv
fi
peers/.venv/bin/pip install --quiet --disable-pip-version-check -r peers/requirements.txt

echo "== formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
# One build serves every test binary; the peers are real processes on ports chosen at run time.
cargo test --workspace --locked
