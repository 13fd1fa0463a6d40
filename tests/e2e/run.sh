#!/usr/bin/env bash
# Runs every end-to-end test (tests/e2e/test_*.sh) in order; stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")"
pass=0; failed=0
for t in test_*.sh; do
  echo "=== $t"
  if bash "$t"; then pass=$((pass + 1)); else failed=$((failed + 1)); echo "=== $t FAILED"; fi
done
echo "e2e: $pass passed, $failed failed"
[ "$failed" -eq 0 ]
