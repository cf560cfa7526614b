package store

// ServedBuilds counts the full builds of the set of blocks served.
func (s *Store) ServedBuilds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.servedN
}
