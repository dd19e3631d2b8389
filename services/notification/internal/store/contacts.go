// Package store keeps the notification service's contacts projection and
// the webhook parts beyond plain docstore records. Notifications themselves
// are docstore records.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/notification/internal/domain"
)

// Contact is a contact as stored: the docstore record's _id is the
// application id. The account is kept here rather than only on the record,
// since a newer event rewrites it along with the email.
type Contact struct {
	Account string    `bson:"account"`
	Email   string    `bson:"email"`
	Phone   string    `bson:"phone,omitempty"`
	Seen    time.Time `bson:"seen"`
}

// Contacts is the contacts collection: one docstore record per
// application, kept from the application events. Every read and write is by
// _id, which FerretDB's SQLite backend serves from its primary key (any
// other filter scans the collection), and a write goes through docstore's
// Update, which serializes writers of one document in this process and
// guards with the version on MongoDB, where replicas consume at once.
type Contacts struct {
	s *docstore.Store[Contact]
}

// NewContacts returns the store over s.
func NewContacts(s *docstore.Store[Contact]) *Contacts { return &Contacts{s: s} }

// Save keeps c unless the stored contact came from a newer event:
// application events can arrive out of order, and a late old one must not
// bring back an email the applicant has since changed.
func (s *Contacts) Save(ctx context.Context, c domain.Contact) error {
	// Stored times have millisecond precision: compare at that.
	newer := Contact{Account: c.Account, Email: c.Email, Phone: c.Phone, Seen: c.Seen.Truncate(time.Millisecond)}
	keep := func(doc *Contact) ([]events.Event, error) {
		if doc.Seen.After(newer.Seen) {
			if newer.Phone != "" && doc.Phone == "" && doc.Account == newer.Account {
				doc.Phone = newer.Phone // an older event still knows the phone
				return nil, nil
			}
			return nil, docstore.ErrUnchanged // from a newer event
		}
		next := newer
		if next.Phone == "" {
			next.Phone = doc.Phone // an event without the phone keeps the known one
		}
		if *doc == next {
			return nil, docstore.ErrUnchanged // the same event again
		}
		*doc = next
		return nil, nil
	}
	for attempt := 0; ; attempt++ {
		_, err := s.s.Update(ctx, "", c.Application, keep)
		if err == nil {
			return nil
		}
		if !errors.Is(err, apierr.ErrNotFound) {
			return fmt.Errorf("save contact of application %s: %w", c.Application, err)
		}
		if attempt > 0 {
			return fmt.Errorf("save contact of application %s: created and gone again: %w", c.Application, docstore.ErrConflict)
		}
		// A concurrent first save of the application makes Create find its
		// record (created false, or AlreadyExists if it names another
		// account): then c is weighed against that one by Update again.
		_, created, err := s.s.Create(ctx, c.Application, newer.Account, newer)
		if err != nil && !errors.Is(err, apierr.ErrAlreadyExists) {
			return fmt.Errorf("save contact of application %s: %w", c.Application, err)
		}
		if created {
			return nil
		}
	}
}

// Get returns the contact of an application id, or NotFound.
func (s *Contacts) Get(ctx context.Context, application string) (domain.Contact, error) {
	rec, err := s.s.Get(ctx, "", application)
	if errors.Is(err, apierr.ErrNotFound) {
		return domain.Contact{}, err
	}
	if err != nil {
		return domain.Contact{}, fmt.Errorf("read contact of application %s: %w", application, err)
	}
	d := rec.Doc
	return domain.Contact{Application: rec.ID, Account: d.Account, Email: d.Email, Phone: d.Phone, Seen: d.Seen}, nil
}
