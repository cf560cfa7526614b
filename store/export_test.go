package store

// ServedBuilds counts the full builds of the set of blocks served.
func (s *Store) ServedBuilds() int {
	s.refs.mu.Lock()
	defer s.refs.mu.Unlock()
	return s.refs.servedN
}
