package callpolicy_test

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/certflow/certflow/pkg/callpolicy"
)

var update = flag.Bool("update", false, "rewrite the generated deploy files")

// ports are the services' gRPC ports in deploy/k8s.
var ports = map[string]int{
	callpolicy.Order: 9101, callpolicy.Application: 9102, callpolicy.Verification: 9103,
	callpolicy.Issuance: 9104, callpolicy.Notification: 9105, callpolicy.Perspective: 9106,
	// Its own pods: the same number as a perspective's does not collide.
	callpolicy.Audit: 9106,
}

// servedBy names the component serving a gRPC service whose package is
// not its own: the perspective role of the verification binary.
var servedBy = map[string]string{
	"certflow.verification.v1.PerspectiveService": callpolicy.Perspective,
}

// callersOf derives, from the method table, which components call each
// service: /certflow.<service>.v1.X/M is served by <service>.
func callersOf() map[string][]string {
	out := map[string][]string{}
	for method, callers := range callpolicy.Methods {
		rest, ok := strings.CutPrefix(method, "/certflow.")
		if !ok {
			continue // health: probed from inside the pod; reflection: port-forward
		}
		svc, _, _ := strings.Cut(rest, ".")
		if c, ok := servedBy[strings.SplitN(strings.TrimPrefix(method, "/"), "/", 2)[0]]; ok {
			svc = c
		}
		for _, c := range callers {
			if c != callpolicy.Operator && !slices.Contains(out[svc], c) {
				out[svc] = append(out[svc], c)
			}
		}
	}
	for _, c := range out {
		sort.Strings(c)
	}
	return out
}

func renderNetworkPolicies() string {
	var b strings.Builder
	b.WriteString(`# Generated from pkg/callpolicy by TestDeployNetworkPolicies; do not edit.
# Regenerate: cd pkg/callpolicy && go test -run TestDeployNetworkPolicies -update
#
# Default deny: a certflow pod accepts connections only from the components
# the call policy lets call it, on its gRPC port; the gateway accepts the
# public on HTTPS. (An operator reaches health and reflection with
# kubectl port-forward and the operator certificate.)
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: certflow-default-deny
spec:
  podSelector: {matchLabels: {app: certflow}}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: gateway
spec:
  podSelector: {matchLabels: {app: certflow, component: gateway}}
  policyTypes: [Ingress]
  ingress:
    - ports: [{port: 8443, protocol: TCP}]
`)
	callers := callersOf()
	svcs := make([]string, 0, len(callers))
	for s := range callers {
		svcs = append(svcs, s)
	}
	sort.Strings(svcs)
	for _, svc := range svcs {
		fmt.Fprintf(&b, `---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: %s
spec:
  podSelector: {matchLabels: {app: certflow, component: %s}}
  policyTypes: [Ingress]
  ingress:
    - ports: [{port: %d, protocol: TCP}]
      from:
`, svc, svc, ports[svc])
		for _, c := range callers[svc] {
			fmt.Fprintf(&b, "        - podSelector: {matchLabels: {app: certflow, component: %s}}\n", c)
		}
	}
	return b.String()
}

// golden compares a generated deploy file with the committed one.
func golden(t *testing.T, path, want string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is out of date with the policy table; regenerate it with `go test -run %s -update`", path, t.Name())
	}
}

// TestDeployNetworkPolicies keeps deploy/k8s/networkpolicies.yaml equal to
// what the call policy says.
func TestDeployNetworkPolicies(t *testing.T) {
	for svc := range callersOf() {
		if _, ok := ports[svc]; !ok {
			t.Fatalf("service %s has no port here", svc)
		}
	}
	golden(t, "../../deploy/k8s/networkpolicies.yaml", renderNetworkPolicies())
}
