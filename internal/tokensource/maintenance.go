package tokensource

// Post runs f on the Source's event goroutine, after the events queued
// before it, as the user's callbacks run (see entratoken.Options): how a
// client layer runs a callback of its own options, such as OnMaintenance.
// It never blocks; after Close, f does not run.
func (s *Source) Post(f func()) { s.ev.post(f) }
