package orgval

// ReviewIndex is the index of one account's reviews of one application: a
// record read by _id, so cancelling an application's reviews never queries
// the review collection by a field (which the embedded database answers by
// reading every review ever stored).
type ReviewIndex struct {
	Application string
	Reviews     []ReviewRef
}

// ReviewRef is one review of an application's attempt.
type ReviewRef struct {
	Attempt int
	Kind    Kind
	ID      string
}

// Add indexes refs not yet indexed and reports whether any was new.
func (x *ReviewIndex) Add(refs ...ReviewRef) bool {
	added := false
	for _, r := range refs {
		known := false
		for _, e := range x.Reviews {
			if e.ID == r.ID {
				known = true
				break
			}
		}
		if !known {
			x.Reviews = append(x.Reviews, r)
			added = true
		}
	}
	return added
}
