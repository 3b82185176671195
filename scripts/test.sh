#!/usr/bin/env bash
# Installs what the tests need on a fresh machine, then runs every test.
# npm peers go into peers/node_modules (from peers/package-lock.json), Python peers into
# peers/.venv (from peers/requirements.txt); both folders are git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing test peers"
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
