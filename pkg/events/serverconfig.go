package events

import (
	"fmt"
	"strings"
)

// AdminUser is the NATS administrator, who creates the stream; it is in no
// permission table because it may do anything.
const AdminUser = "admin"

// AuthorizationBlock renders the nats-server `authorization` block of the
// permission table: one nkey user per service and the reader, each with
// its allow and deny lists, and the administrator. key gives each user's
// nkey as it goes into the file: a public key, or a $VARIABLE nats-server
// expands from the environment. deploy/nats/nats.conf and the tests' NATS
// clusters are made from it, so they cannot drift from the table.
func AuthorizationBlock(key func(user string) string) string {
	var b strings.Builder
	b.WriteString("authorization {\n  users = [\n")
	fmt.Fprintf(&b, "    {nkey: %s}\n", key(AdminUser))
	for _, u := range Users() {
		p, _ := Permissions(u)
		fmt.Fprintf(&b, "    {nkey: %s, permissions: {\n", key(u))
		fmt.Fprintf(&b, "      publish: {allow: %s", quoteList(p.PublishAllow))
		if len(p.PublishDeny) > 0 {
			fmt.Fprintf(&b, ", deny: %s", quoteList(p.PublishDeny))
		}
		b.WriteString("}\n")
		fmt.Fprintf(&b, "      subscribe: {allow: %s}\n", quoteList(p.SubscribeAllow))
		b.WriteString("    }}\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

func quoteList(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
