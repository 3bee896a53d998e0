#!/usr/bin/env bash
# Drives a sandbox with the official Alibaba Cloud Python SDK: installs the SDK into a
# virtual environment, starts `cloudauth-batch sandbox` on a free loopback port, runs
# check_python_sdk.py against it, and stops it again.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/sdk-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet aliyun-python-sdk-core==2.16.1 aliyun-python-sdk-cloudauth==1.3.1
fi

# The test build leaves the binary fresh; this reuses it instead of building anew.
cargo test --quiet --locked --no-run
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/debug/cloudauth-batch sandbox --listen "127.0.0.1:$port" --unknown-ids accept > target/sdk-sandbox.log 2>&1 &
sandbox=$!
trap 'kill $sandbox 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  grep -q "listening" target/sdk-sandbox.log && break
  sleep 0.1
done

"$venv/bin/python" tests/sdk/check_python_sdk.py "http://127.0.0.1:$port"
