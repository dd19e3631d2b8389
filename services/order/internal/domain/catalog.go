// Package domain holds the order service's rules: the product catalogue,
// orders, and the instance state machine.
package domain

import (
	"fmt"
	"sort"
)

// ValidationLevel is how much identity the CA checks.
type ValidationLevel string

// Levels.
const (
	DV ValidationLevel = "DV"
	OV ValidationLevel = "OV"
	EV ValidationLevel = "EV"
)

// DomainType is which names a certificate may carry.
type DomainType string

// Domain types.
const (
	Single   DomainType = "SINGLE"
	Multi    DomainType = "MULTI"
	Wildcard DomainType = "WILDCARD"
)

// Multi-domain limits per instance.
const (
	MinMultiDomains = 2
	MaxMultiDomains = 250
)

// Product is a certificate product on sale.
type Product struct {
	ID          string
	DisplayName string
	Level       ValidationLevel
	Type        DomainType
	Years       int
	MinDomains  int
	MaxDomains  int
}

// Catalog returns every product, sorted by id. EV wildcard products are not
// sold: the EV Guidelines (9.8.1) forbid wildcard EV certificates.
func Catalog() []Product {
	var out []Product
	for _, lvl := range []ValidationLevel{DV, OV, EV} {
		for _, typ := range []DomainType{Single, Multi, Wildcard} {
			if lvl == EV && typ == Wildcard {
				continue
			}
			for years := 1; years <= 3; years++ {
				p := Product{
					ID:          fmt.Sprintf("%s-%s-%dy", lower(lvl), lower(typ), years),
					DisplayName: fmt.Sprintf("%s %s certificate, %d-year subscription", lvl, displayType(typ), years),
					Level:       lvl,
					Type:        typ,
					Years:       years,
				}
				switch typ {
				case Single:
					p.MinDomains, p.MaxDomains = 1, 1
				case Multi:
					p.MinDomains, p.MaxDomains = MinMultiDomains, MaxMultiDomains
				case Wildcard:
					// One wildcard name plus, optionally, its base name.
					p.MinDomains, p.MaxDomains = 1, 2
				}
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

var catalogByID = func() map[string]Product {
	m := map[string]Product{}
	for _, p := range Catalog() {
		m[p.ID] = p
	}
	return m
}()

// FindProduct returns the product with id.
func FindProduct(id string) (Product, bool) {
	p, ok := catalogByID[id]
	return p, ok
}

func displayType(t DomainType) string {
	switch t {
	case Single:
		return "single-domain"
	case Multi:
		return "multi-domain"
	}
	return "wildcard"
}

func lower[T ~string](s T) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
