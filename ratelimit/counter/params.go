package counter

// Params returns the GCRA parameters of l in microseconds: the emission
// interval T and the burst tolerance τ (see doc.go), or ErrInvalidLimit.
// Other accounts that must agree with the backends (the quota server's)
// use it.
func Params(l Limit) (interval, tolerance int64, err error) {
	g, err := newGCRA(l)
	if err != nil {
		return 0, 0, err
	}
	return g.interval, g.tolerance, nil
}
