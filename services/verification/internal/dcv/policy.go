package dcv

import "github.com/certflow/certflow/pkg/netpolicy"

// AddressPolicy decides which IPs DCV connections may reach; the webhook
// deliveries of the notification service use the same rules.
type AddressPolicy = netpolicy.Policy

// ErrForbiddenAddress means a DCV connection would reach an address it must
// not, such as our own internal network.
var ErrForbiddenAddress = netpolicy.ErrForbidden
