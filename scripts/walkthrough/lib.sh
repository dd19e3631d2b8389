# Shared by the walkthroughs: each step checks the API's answer and stops
# with its message, so no step writes "null" into a file. Run from the folder
# that holds make run's var/ (the repository root).
set -euo pipefail
API=${API:-http://127.0.0.1:8080}            # the gateway
DNS_ADMIN=${DNS_ADMIN:-http://127.0.0.1:8054} # the development DNS responder's admin API
CRL=${CRL:-http://127.0.0.1:9180}             # the issuance service's CRL and AIA listener
VAR=${VAR:-var}
# Each run is new: its own request ids, so running a walkthrough twice makes
# two of everything instead of replaying the first run's answers.
RUN=$(openssl rand -hex 6)

[ -r "$VAR/dev-credentials" ] || { echo "stopped: no $VAR/dev-credentials; start the suite with make run first" >&2; exit 1; }
KEY=$(awk '$3=="customer"{print $1; exit}' "$VAR/dev-credentials")
REV=$(awk '$3=="reviewer"{print $1; exit}' "$VAR/dev-credentials")

# call KEY METHOD PATH [BODY]: the answer's JSON, or stop with the API's error.
call() {
  local key=$1 method=$2 path=$3 out code
  out=$(curl -sS -w '\n%{http_code}' -H "Authorization: Bearer $key" -H "X-Request-Id: walkthrough-$RUN" \
    -X "$method" "$API$path" ${4:+-d "$4"}) || { echo "stopped: cannot reach $API (is make run going?)" >&2; return 1; }
  code=${out##*$'\n'} out=${out%$'\n'*}
  if [ "${code:0:1}" != 2 ]; then
    echo "stopped: $method $path answered HTTP $code: $(jq -r '(.message // .) + (if .details then " (" + ([.details[]?.reason // empty] | join(",")) + ")" else "" end)' <<<"$out" 2>/dev/null || echo "$out")" >&2
    return 1
  fi
  printf '%s\n' "$out"
}

# field FILTER JSON: one value from an answer, or stop when it is missing.
field() {
  jq -er "$1" <<<"$2" || { echo "stopped: no $1 in the answer: $2" >&2; return 1; }
}

# save FILTER JSON FILE: writes one value of an answer to FILE, or stops
# (leaving FILE as it was) when the value is missing.
save() {
  local v
  v=$(field "$1" "$2") && printf '%s\n' "$v" >"$3"
}

# wait_state APP STATES [SECONDS]: polls until the application is in one of
# STATES (separated by |) and prints it; stops on a failure state or after
# SECONDS (default 60).
wait_state() {
  local app=$1 want=$2 deadline=$((SECONDS + ${3:-60})) a state
  while :; do
    a=$(call "$KEY" GET "/v1/$app")
    state=$(field .state "$a")
    case "|$want|" in *"|$state|"*) printf '%s\n' "$a"; return 0 ;; esac
    case $state in VALIDATION_FAILED | WITHDRAWN | FAILED)
      echo "stopped: $app is $state: $(jq -r '.failure_cause // .' <<<"$a")" >&2; return 1 ;;
    esac
    [ $SECONDS -lt $deadline ] || { echo "stopped: $app still $state ($(jq -r .progress_percent <<<"$a")%) after ${3:-60}s, waiting for $want" >&2; return 1; }
    sleep 1
  done
}

# publish_txt APP_JSON: puts the pending DNS TXT challenges of the answer
# into the development DNS responder (it stands in for your DNS provider;
# the verification service really queries it over DNS), then asks for a
# check now instead of waiting for the service's own retry.
publish_txt() {
  local rec ch
  for rec in $(jq -c '[.challenges[]? | select(.state == "PENDING" and .dns_record_type == "TXT")]
      | group_by(.dns_record_name)[] | {name: .[0].dns_record_name, values: map(.dns_record_value)}' <<<"$1"); do
    curl -sSf -X PUT "$DNS_ADMIN/records/$(jq -r .name <<<"$rec")/TXT" -d "$(jq -c '{values}' <<<"$rec")" >/dev/null ||
      { echo "stopped: the development DNS admin API at $DNS_ADMIN refused $rec" >&2; return 1; }
  done
  for ch in $(jq -r '.challenges[]? | select(.state == "PENDING") | .name' <<<"$1"); do
    call "$KEY" POST "/v1/$ch:check" '{}' >/dev/null
  done
}
