package cache

import "fmt"

// WithAfterRevalidate returns o calling f when a background reread ends.
func WithAfterRevalidate(o Options, f func()) Options {
	o.afterRevalidate = f
	return o
}

// CheckInvariants returns an error if s's table is inconsistent: an index
// entry naming an empty or different slot, a free slot in use, more slots
// than MaxEntries.
func CheckInvariants(s *Store) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.slots) > s.opt.MaxEntries {
		return fmt.Errorf("%d slots, MaxEntries %d", len(s.slots), s.opt.MaxEntries)
	}
	for k, i := range s.index {
		if sl := s.slots[i]; sl.client == nil || sl.client.Application.ClientID != k {
			return fmt.Errorf("index %q → slot %d holding %+v", k, i, sl.client)
		}
	}
	for _, i := range s.free {
		if s.slots[i].client != nil {
			return fmt.Errorf("free slot %d holds %q", i, s.slots[i].client.Application.ClientID)
		}
	}
	if n := len(s.index) + len(s.free); n != len(s.slots) {
		return fmt.Errorf("%d indexed + %d free != %d slots", len(s.index), len(s.free), len(s.slots))
	}
	return nil
}
