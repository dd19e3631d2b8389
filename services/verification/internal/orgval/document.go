// Package orgval holds the rules of organization validation and manual
// review: which qualification documents may be uploaded, the reviews in the
// CA staff's queue (phone calls, decisions) and when an organization's
// earlier approval may be reused. It knows nothing of gRPC, MongoDB or NATS.
package orgval

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
)

// MaxDocuments is how many documents one application may hold: enough for a
// licence, a stamped authorization letter and an ID card several times
// over, and a bound on what one application can store (20 x 500 KB).
const MaxDocuments = 20

// Document is an uploaded qualification image; its owner is the record's
// account.
type Document struct {
	// Application is applications/{application}.
	Application string
	DisplayName string
	// ContentType is PNG or JPEG, from the content.
	ContentType string
	Size        int64
	// SHA256 is the hex digest of Content.
	SHA256        string
	Width, Height int
	// Content is empty in listings (see Meta).
	Content    []byte
	CreateTime time.Time
}

// NewDocument checks an upload (see CheckImage and DisplayName) and returns
// the document to store.
func NewDocument(application, displayName string, content []byte, now time.Time) (Document, error) {
	ct, w, h, err := CheckImage(content)
	if err != nil {
		return Document{}, err
	}
	name, err := DisplayName(displayName, ct)
	if err != nil {
		return Document{}, err
	}
	sum := sha256.Sum256(content)
	return Document{
		Application: application, DisplayName: name, ContentType: ct, Size: int64(len(content)),
		SHA256: hex.EncodeToString(sum[:]), Width: w, Height: h, Content: content, CreateTime: now.UTC(),
	}, nil
}

// Meta returns the document without its content.
func (d Document) Meta() Document {
	d.Content = nil
	return d
}

// ListedDocument is one entry of a DocumentList.
type ListedDocument struct {
	ID string
	// Document has no Content.
	Document Document
}

// DocumentList is the index of one account's documents for one
// application, oldest first. It is one record read by _id, so listing an
// application's documents never scans the document collection, whose
// records hold up to 500 KB each.
type DocumentList struct {
	Application string
	Documents   []ListedDocument
}

// Find returns the listed document with the given digest, if any.
func (l *DocumentList) Find(sha string) (ListedDocument, bool) {
	for _, d := range l.Documents {
		if d.Document.SHA256 == sha {
			return d, true
		}
	}
	return ListedDocument{}, false
}

// CheckRoom refuses when the list is full.
func (l *DocumentList) CheckRoom() error {
	if len(l.Documents) >= MaxDocuments {
		return apierr.New(apierr.FailedPrecondition, "TOO_MANY_DOCUMENTS",
			"application %s already has %d documents, the most it may hold; combine pages into fewer images, or withdraw and apply again",
			l.Application, MaxDocuments)
	}
	return nil
}

// Add lists a document; adding an id already listed changes nothing and
// reports false.
func (l *DocumentList) Add(id string, d Document) (bool, error) {
	for _, e := range l.Documents {
		if e.ID == id {
			return false, nil
		}
	}
	if err := l.CheckRoom(); err != nil {
		return false, err
	}
	l.Documents = append(l.Documents, ListedDocument{ID: id, Document: d.Meta()})
	return true, nil
}
