package domain

// CAALabels are the RFC 8657 validationmethods labels that mean m, lower
// case. Labels of the ACME registry are used only where the method is the
// same Baseline Requirements method as the ACME one: DNS_TXT puts a random
// value in a TXT record under a prefixed label, BR 3.2.2.4.7, as dns-01
// does. HTTP_FILE (BR 3.2.2.4.18, /.well-known/pki-validation/) is not
// http-01 (3.2.2.4.19, /.well-known/acme-challenge/), so it answers only to
// its own label. Each method has a CA-specific label, "ca-" and the
// method's name in lower case with dashes (RFC 8657 §4).
func (m Method) CAALabels() []string {
	switch m {
	case DNSTXT:
		return []string{"dns-01", "ca-dns-txt"}
	case DNSCNAME:
		return []string{"ca-dns-cname"}
	case HTTPFile:
		return []string{"ca-http-file"}
	case Email:
		return []string{"ca-email"}
	}
	return nil
}
