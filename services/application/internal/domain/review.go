package domain

import (
	"slices"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/certflow/certflow/pkg/domainname"
)

// DefaultReviewWords are the words that send a name to manual review (the
// seeds: "special words, such as bank, pay, or live").
var DefaultReviewWords = []string{"bank", "pay", "live"}

// FlaggedWords returns the review words that occur in the names, sorted.
// The public suffix is left out (".live" is a TLD, not a claim), and a word
// counts anywhere in a label ("mybank", "paypal"): the review is a safety
// net, so it errs on the side of asking.
func FlaggedWords(names, words []string) []string {
	var found []string
	for _, n := range names {
		base := domainname.Base(n)
		suffix, _ := publicsuffix.PublicSuffix(base)
		rest := strings.TrimSuffix(strings.TrimSuffix(base, suffix), ".")
		for _, w := range words {
			w = strings.ToLower(strings.TrimSpace(w))
			if w != "" && strings.Contains(rest, w) && !slices.Contains(found, w) {
				found = append(found, w)
			}
		}
	}
	slices.Sort(found)
	return found
}
