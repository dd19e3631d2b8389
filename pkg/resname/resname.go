// Package resname parses AIP-122 resource names like "applications/abc".
package resname

import (
	"strings"

	"github.com/certflow/certflow/pkg/apierr"
)

// ID returns the id in name, which must be "<collection>/<id>". field names
// the request field for the error.
func ID(field, collection, name string) (string, error) {
	id, ok := strings.CutPrefix(name, collection+"/")
	if !ok || id == "" || strings.ContainsAny(id, "/ \t\n") || len(id) > 128 {
		return "", apierr.Invalid(field, "INVALID_NAME", "%s must look like %s/{id}, got %q", field, collection, name)
	}
	return id, nil
}

// Name returns "<collection>/<id>".
func Name(collection, id string) string { return collection + "/" + id }
