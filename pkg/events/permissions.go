package events

import "sort"

// NATS users. Each service connects as itself; other teams read as Reader.
// This table is the one place that says who may publish and consume what;
// the embedded server is configured from it and deploy/nats documents the
// same for production (TestDeployNATSConfig keeps the two equal).
const Reader = "reader"

// Publishes lists the subjects each service may publish: its own events.
// Audit records of an action go on certflow.audit.<action>, and each
// service may publish those of its own actions only.
var Publishes = map[string][]string{
	"order":        {"certflow.order.>", "certflow.instance.>"},
	"application":  {"certflow.application.>", AuditPrefix + "application.>"},
	"verification": {"certflow.domain.>", "certflow.review.>", AuditPrefix + "review.>"},
	"issuance":     {"certflow.certificate.>", AuditPrefix + "certificate.>"},
	"notification": {},
	"audit":        {},
}

// Durables lists the JetStream consumers each service reads through.
var Durables = map[string][]string{
	"application":  {"application", "application-saga"},
	"notification": {"notification"},
	"audit":        {"audit"},
}

// Permission is a user's allow and deny lists, in NATS subject syntax.
type Permission struct {
	PublishAllow, PublishDeny, SubscribeAllow []string
}

// Inbox is the reply-subject prefix of user: replies to one user cannot be
// read by another.
func Inbox(user string) string { return "_INBOX_" + user }

// Users lists every user the permissions know, sorted.
func Users() []string {
	out := []string{Reader}
	for u := range Publishes {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// Permissions returns what user may do; ok is false for an unknown user.
// Services may not create, change or delete the stream (an operator or the
// embedded server creates it), only read its info.
func Permissions(user string) (p Permission, ok bool) {
	base := []string{"$JS.API.INFO", "$JS.API.STREAM.INFO." + Stream}
	if user == Reader {
		// Readers make their own consumers, but not with a service's name:
		// that would take the service's events away from it.
		p.PublishAllow = append(base,
			"$JS.API.CONSUMER.CREATE."+Stream+".>",
			"$JS.API.CONSUMER.DURABLE.CREATE."+Stream+".>",
			"$JS.API.CONSUMER.INFO."+Stream+".>",
			"$JS.API.CONSUMER.DELETE."+Stream+".>",
			"$JS.API.CONSUMER.MSG.NEXT."+Stream+".>",
			"$JS.ACK."+Stream+".>")
		for _, svc := range sortedKeys(Durables) {
			for _, d := range Durables[svc] {
				p.PublishDeny = append(p.PublishDeny, durableSubjects(d)...)
			}
		}
		p.SubscribeAllow = []string{StreamSubjects, Inbox(user) + ".>"}
		return p, true
	}
	pubs, ok := Publishes[user]
	if !ok {
		return Permission{}, false
	}
	p.PublishAllow = append(base, pubs...)
	for _, d := range Durables[user] {
		p.PublishAllow = append(p.PublishAllow, durableSubjects(d)...)
	}
	p.SubscribeAllow = []string{Inbox(user) + ".>"}
	return p, true
}

func durableSubjects(d string) []string {
	return []string{
		"$JS.API.CONSUMER.CREATE." + Stream + "." + d,
		"$JS.API.CONSUMER.CREATE." + Stream + "." + d + ".>",
		"$JS.API.CONSUMER.DURABLE.CREATE." + Stream + "." + d,
		"$JS.API.CONSUMER.INFO." + Stream + "." + d,
		"$JS.API.CONSUMER.MSG.NEXT." + Stream + "." + d,
		"$JS.ACK." + Stream + "." + d + ".>",
	}
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
