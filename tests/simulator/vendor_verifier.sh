#!/usr/bin/env bash
# Run Moonshot's Kimi Vendor Verifier (its tests/params and tests/k3_features) against the
# bundled simulator, for each model named, streamed and not (k3_features runs both modes
# itself). Nothing of the verifier is kept in this repository: point VERIFIER at your own
# checkout of github.com/MoonshotAI/Kimi-Vendor-Verifier and PYTHON at a Python that has its
# test requirements (openai, httpx, pytest, pytest-rerunfailures, jsonschema).
#
#   VERIFIER=~/src/Kimi-Vendor-Verifier PYTHON=~/venvs/kvv/bin/python \
#       bash tests/simulator/vendor_verifier.sh kimi-k2.6 kimi-k3
#
# Cases marked flaky (prompt-driven: they need a real model) are deselected; see
# docs/simulator-contract.md for the last results and the cases that cannot pass here.
set -euo pipefail
: "${VERIFIER:?set VERIFIER to a checkout of the Kimi Vendor Verifier}"
PYTHON="${PYTHON:-python3}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(kimi-k2.6 kimi-k3)

LOG="$(mktemp)"
(cd "$ROOT" && PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m kimi_jupyter.testing) >"$LOG" 2>&1 &
SIM=$!
trap 'kill "$SIM" 2>/dev/null; rm -f "$LOG"' EXIT
URL=""
for _ in $(seq 100); do
  URL="$(head -n 1 "$LOG")"
  [[ "$URL" == http* ]] && break
  sleep 0.1
done
[[ "$URL" == http* ]] || { echo "the simulator did not start: $(cat "$LOG")" >&2; exit 1; }

status=0
for model in "${MODELS[@]}"; do
  echo "== $model at $URL"
  (cd "$VERIFIER" && "$PYTHON" -m pytest -p no:cacheprovider -o addopts= -q -rfE \
      tests/params tests/k3_features -m "not flaky" \
      --base-url "$URL" --api-key sk-simulator --smoke-model "$model") || status=1
done
exit $status
