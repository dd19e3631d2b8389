package domain

// PerspectiveResult is what one remote perspective (BR 3.2.2.9) saw of a
// check: its configured name, region and RIR, whether it corroborates the
// primary's result, and why not (or "unreachable: ..." when it did not
// answer, which counts as disagreeing).
type PerspectiveResult struct {
	Perspective  string
	Region       string
	RIR          string
	Corroborates bool
	Detail       string
}
