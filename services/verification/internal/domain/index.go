package domain

// ChallengeIndex is the index of one account's challenges of one
// application: a record read by _id, so finding an application's
// challenges (to authorize a signature, to cancel them, to list them)
// never queries the challenge collection by a field, which the embedded
// database answers by reading every challenge ever stored.
type ChallengeIndex struct {
	Application string
	Challenges  []ChallengeRef
}

// ChallengeRef is one challenge of an application's attempt.
type ChallengeRef struct {
	Attempt int
	// Domain is the name as normalized on the challenge.
	Domain string
	ID     string
}

// Add indexes refs not yet indexed and reports whether any was new.
func (x *ChallengeIndex) Add(refs ...ChallengeRef) bool {
	have := make(map[string]bool, len(x.Challenges))
	for _, r := range x.Challenges {
		have[r.ID] = true
	}
	added := false
	for _, r := range refs {
		if !have[r.ID] {
			x.Challenges = append(x.Challenges, r)
			have[r.ID] = true
			added = true
		}
	}
	return added
}

// Attempt returns the refs of one attempt.
func (x *ChallengeIndex) Attempt(attempt int) []ChallengeRef {
	var out []ChallengeRef
	for _, r := range x.Challenges {
		if r.Attempt == attempt {
			out = append(out, r)
		}
	}
	return out
}
