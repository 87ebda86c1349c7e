package server

// keyAdminRoutes are the management API's signing-key endpoints.
func (s *Server) keyAdminRoutes() []adminRoute { return nil }
