#!/usr/bin/env bash
# Walkthrough: an OV certificate: the company and a document, DNS proof, then
# the CA's reviewer checks the documents, calls the company and approves. Run
# it from the repository root while `make run` is going; it can be run again.
. "$(dirname "$0")/lib.sh"

ORDER=$(call "$KEY" POST "/v1/orders?request_id=walkthrough-ov-$RUN" '{"product":"products/ov-single-1y","quantity":1}')
INST=$(field '.instances[0]' "$ORDER")

# The create request: OV needs the company (its registration number, address
# and phone, the number the reviewer calls) and the applicant's ID number.
APP=$(call "$KEY" POST "/v1/applications?request_id=walkthrough-ov-$RUN" '{
  "instance": "'"$INST"'",
  "domains": ["www.example.org"],
  "applicant": {"name": "Li Lei", "phone": "+86 571 8502 2088", "email": "li@example.com",
                "id_number": "330106199001011234"},
  "company": {"name": "Example Trading Ltd", "type": "enterprise", "phone": "+86 571 1234 5678",
              "organization_id": "91330100MA2XXXXX", "country": "CN", "province": "Zhejiang",
              "city": "Hangzhou", "address": "1 Wensan Road", "zip_code": "310000"}
}')
APP=$(field .name "$APP")
echo "created $APP"

# A qualification document: a PNG or JPEG (at most 500 KB, checked by its
# content) as base64. This one is a 1x1 PNG standing in for a scan.
PNG=iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==
call "$KEY" POST "/v1/$APP/documents" '{"display_name":"licence.png","content":"'"$PNG"'"}' | jq -c '{name, content_type}'

# Submit and prove the name as in the DV walkthrough; the application then
# waits for CA staff in PENDING_ORGANIZATION_VERIFICATION (70%).
SUBMITTED=$(call "$KEY" POST "/v1/$APP:submit" '{}')
publish_txt "$SUBMITTED"
STATE=$(wait_state "$APP" "PENDING_ORGANIZATION_VERIFICATION|ISSUED")
jq -c '{state, progress_percent}' <<<"$STATE"

# Reviewer: the application's pending review, its documents, the call to the
# company's phone, the decision. On a second run the organization's
# validation is still within its reuse period: no review (the application
# may pass through PENDING_ORGANIZATION_VERIFICATION on its way), it is issued.
REVIEW=
if [ "$(field .state "$STATE")" = PENDING_ORGANIZATION_VERIFICATION ]; then
  FILTER=$(jq -rn --arg a "$APP" '"state = PENDING AND application = \"\($a)\"" | @uri')
  for _ in $(seq 30); do
    REVIEW=$(call "$REV" GET "/v1/reviews?filter=$FILTER" | jq -r '[.reviews[]? | select(.kind == "ORGANIZATION")][0].name // empty')
    [ -n "$REVIEW" ] && break
    [ "$(field .state "$(call "$KEY" GET "/v1/$APP")")" = PENDING_ORGANIZATION_VERIFICATION ] || break
    sleep 1
  done
  [ -n "$REVIEW" ] || [ "$(field .state "$(call "$KEY" GET "/v1/$APP")")" != PENDING_ORGANIZATION_VERIFICATION ] ||
    { echo "stopped: no pending organization review for $APP" >&2; exit 1; }
fi
if [ -n "$REVIEW" ]; then
  call "$REV" GET "/v1/$REVIEW" | jq -c '{name, kind, organization: .organization.name, documents: [.documents[]?.display_name]}'
  call "$REV" POST "/v1/$REVIEW:recordPhoneCall" \
    '{"phone":"+86 571 1234 5678","outcome":"OUTCOME_CONFIRMED","notes":"spoke to the legal representative"}' | jq -c '{state}'
  call "$REV" POST "/v1/$REVIEW:approve" '{"note":"licence and call check out"}' | jq -c '{name, state}'
  # (or :reject with {"cause":"the licence has expired"}: the application is
  # then VALIDATION_FAILED with that cause; edit it and submit again.)
fi

ISSUED=$(wait_state "$APP" ISSUED)
jq '{state, certificate, history: [.history[]?.state]}' <<<"$ISSUED"
CERT=$(field .certificate "$ISSUED")
call "$KEY" GET "/v1/$CERT:download" | jq -r .certificate_pem | openssl x509 -noout -subject
