package domain

import (
	"fmt"
	"net/mail"
	"strings"
)

// constructedLocalParts are the mailbox names the Baseline Requirements
// (3.2.2.4.4) allow for domain control validation by email.
var constructedLocalParts = map[string]bool{
	"admin": true, "administrator": true, "webmaster": true, "hostmaster": true, "postmaster": true,
}

// CheckConstructedAddress returns nil if addr is one of the constructed
// addresses of name or of a parent domain of it (the Authorization Domain
// Name may drop leading labels), such as admin@example.com for
// www.example.com.
func CheckConstructedAddress(addr, name string) error {
	a, err := mail.ParseAddress(addr)
	if err != nil {
		return fmt.Errorf("recipient %q: %w", addr, err)
	}
	local, host, ok := strings.Cut(a.Address, "@")
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	name = strings.TrimSuffix(strings.ToLower(strings.TrimPrefix(name, "*.")), ".")
	if !ok || !constructedLocalParts[strings.ToLower(local)] {
		return fmt.Errorf("recipient %q is not admin@, administrator@, webmaster@, hostmaster@ or postmaster@", addr)
	}
	if host == "" || !strings.Contains(host, ".") || (host != name && !strings.HasSuffix(name, "."+host)) {
		return fmt.Errorf("recipient %q is not at %s or a parent domain of it", addr, name)
	}
	return nil
}
