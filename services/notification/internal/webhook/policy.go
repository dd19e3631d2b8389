package webhook

import "github.com/certflow/certflow/pkg/netpolicy"

// AddressPolicy decides which IPs deliveries may connect to; domain
// validation uses the same rules.
type AddressPolicy = netpolicy.Policy

// ErrForbiddenAddress means a delivery would connect to an address it must
// not, such as our own network.
var ErrForbiddenAddress = netpolicy.ErrForbidden
