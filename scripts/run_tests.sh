#!/usr/bin/env bash
# `make test`: start the services the tests talk to, run each component's suite in its own
# virtualenv, stop what this script started, and print one closing line for the whole run.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TZ=UTC
STACK="python3 -m patternalarm.stack"
py() { python3 scripts/envs.py python "$1"; }

# Services the suites need. Whatever was already running is left running afterwards.
needed=(postgres kafka mlflow)
started=()
# One status, read as text: `status` exits non-zero while any service is down, and under pipefail
# `status | grep -q` then failed even for a service that was up, so the suites stopped services
# they had not started.
running=$($STACK status 2>/dev/null || true)
for svc in "${needed[@]}"; do
  if ! grep -qE "^  $svc +UP" <<<"$running"; then started+=("$svc"); fi
done
cleanup() { ((${#started[@]})) && $STACK down "${started[@]}" >/dev/null 2>&1; }
trap cleanup EXIT
$STACK up "${needed[@]}" || { echo "run_tests: the stack did not start; see var/log/" >&2; exit 1; }

# suite name -> virtualenv that runs it
suites=(
  "shared:streaming"
  "streaming:streaming"
  "serving:serving"
  "model:airflow"
  "dags:airflow"
)
# PYTEST_ARGS='-k "not slow"' passes extra arguments (shell-quoted) to every suite.
pytest_args=()
[[ -n ${PYTEST_ARGS:-} ]] && eval "pytest_args=(${PYTEST_ARGS})"
total_pass=0; total_fail=0; failed_suites=()
mkdir -p var/test-reports
for entry in "${suites[@]}"; do
  suite=${entry%%:*}; venv=${entry##*:}
  [[ -d tests/$suite ]] || continue
  compgen -G "tests/$suite/test_*.py" >/dev/null || continue
  echo "=== tests/$suite (venv: $venv)"
  report="var/test-reports/$suite.xml"
  "$(py "$venv")" -m pytest "tests/$suite" -q --junitxml="$report" "${pytest_args[@]}"
  rc=$?
  if [[ -f $report ]]; then
    read -r t f e s < <(python3 - "$report" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(x.get("tests", 0)) for x in suites); f = sum(int(x.get("failures", 0)) for x in suites)
e = sum(int(x.get("errors", 0)) for x in suites); s = sum(int(x.get("skipped", 0)) for x in suites)
print(t, f, e, s)
PY
)
    total_pass=$((total_pass + t - f - e - s)); total_fail=$((total_fail + f + e))
  fi
  if [[ $rc -ne 0 && $rc -ne 5 ]]; then failed_suites+=("$suite"); ((total_fail == 0)) && total_fail=1; fi
done
echo
((${#failed_suites[@]})) && echo "failed suites: ${failed_suites[*]}"
echo "${total_pass} passed, ${total_fail} failed"
[[ ${#failed_suites[@]} -eq 0 && $total_pass -gt 0 ]]
