package entratoken

// Test plumbing: the names the tests used when they tested the go-redis
// provider of package entraredis, on the Source they now test directly.

// BasicAuth returns the user name and the token, as go-redis' credentials do.
func (t Token) BasicAuth() (string, string) { return t.Username(), t.Password() }

// ready is what the go-redis layer's dial hook asks: nil when a new
// connection can authenticate now.
func (s *Source) ready() error {
	_, err := s.Token()
	return err
}

// peek returns the token in use, nil before the first one.
func (s *Source) peek() *token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok
}
