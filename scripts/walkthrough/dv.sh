#!/usr/bin/env bash
# Walkthrough: a DV certificate with curl, from buying to revoking. Run it
# from the repository root while `make run` is going; it can be run again.
. "$(dirname "$0")/lib.sh"

# The DV products, then buy one single-domain instance. request_id makes a
# retry of the same purchase safe; a new one buys again.
call "$KEY" GET "/v1/products?filter=validation_level%3DDV" | jq -r '.products[].name'
ORDER=$(call "$KEY" POST "/v1/orders?request_id=walkthrough-dv-$RUN" '{"product":"products/dv-single-1y","quantity":1}')
INST=$(field '.instances[0]' "$ORDER")
echo "bought $INST"

# Apply: a DRAFT with the domain and the applicant; automatic CSR (the
# service makes an ECDSA P-256 key) and DNS TXT validation are the defaults.
APP=$(call "$KEY" POST "/v1/applications?request_id=walkthrough-dv-$RUN" '{
  "instance": "'"$INST"'",
  "domains": ["www.example.com"],
  "applicant": {"name": "Li Lei", "phone": "+86 571 8502 2088", "email": "li@example.com"}
}')
APP=$(field .name "$APP")

# Submit: the answer holds the TXT record to publish, the progress (40%) and
# the expected issue time (DV: within 2 hours). On a second run the name is
# still validated (the reuse period), so there is nothing to publish.
SUBMITTED=$(call "$KEY" POST "/v1/$APP:submit" '{}')
jq '{state, progress_percent, expected_issue_time, challenges: [.challenges[]? | {name, state, dns_record_name, dns_record_value} | del(.[] | nulls)]}' <<<"$SUBMITTED"
publish_txt "$SUBMITTED"
ISSUED=$(wait_state "$APP" ISSUED)
jq '{state, progress_percent, certificate, history: [.history[]?.state]}' <<<"$ISSUED"

# Download: certificate, chain, full chain and the key the service made.
CERT=$(field .certificate "$ISSUED")
BUNDLE=$(call "$KEY" GET "/v1/$CERT:download")
save .certificate_pem "$BUNDLE" cert.pem
save .chain_pem "$BUNDLE" chain.pem
save .full_chain_pem "$BUNDLE" fullchain.pem
(umask 077 && save .private_key_pem "$BUNDLE" key.pem)
openssl verify -CAfile "$VAR/ca/root.pem" -untrusted chain.pem cert.pem # cert.pem: OK

# What was sent to the applicant (the default run logs mail instead of sending it).
call "$KEY" GET "/v1/notifications?filter=$(jq -rn --arg a "$APP" '"application = \"\($a)\"" | @uri')" |
  jq -c '.notifications[]? | {channel, subject, state}'

# Revoke it, with a reason a subscriber may give (KEY_COMPROMISE, SUPERSEDED,
# AFFILIATION_CHANGED, CESSATION_OF_OPERATION or UNSPECIFIED); a reviewer may
# also give PRIVILEGE_WITHDRAWN, for any certificate.
call "$KEY" POST "/v1/$CERT:revoke" '{"reason":"REVOCATION_REASON_SUPERSEDED","request_id":"walkthrough-dv-'"$RUN"'"}' |
  jq '{state, revocation_reason, revoke_time}'

# The intermediate's CRL lists it within a minute (the root's CRL is beside it).
for _ in $(seq 60); do
  curl -sSf "$CRL/crl/intermediate.crl" | openssl crl -inform DER -out crl.pem
  verdict=$(openssl verify -crl_check -CAfile "$VAR/ca/root.pem" -untrusted chain.pem -CRLfile crl.pem cert.pem 2>&1 || true)
  if grep -q 'certificate revoked' <<<"$verdict"; then
    echo "cert.pem: certificate revoked, as the CRL says"
    break
  fi
  sleep 1
done
grep -q 'certificate revoked' <<<"$verdict" || { echo "stopped: $CERT is not on the CRL after a minute" >&2; exit 1; }

# The audit trail of the certificate: the key download and the revocation,
# each with the API key that made it, the source address and the request id.
audit_filter=$(jq -rn --arg c "$CERT" '"resource = \"\($c)\"" | @uri')
for _ in $(seq 30); do
  trail=$(call "$KEY" GET "/v1/auditEvents?filter=$audit_filter")
  if jq -e '[.audit_events[]?.action] | index("certificate.revoke")' <<<"$trail" >/dev/null; then
    jq -c '.audit_events[] | {action, actor, source, request_id, time}' <<<"$trail"
    exit 0
  fi
  sleep 1
done
echo "stopped: the audit trail of $CERT has no revocation after 30 s" >&2
exit 1
