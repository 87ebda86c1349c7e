package server

// secretAdminRoutes are the management API's client secret endpoints.
func (s *Server) secretAdminRoutes() []adminRoute { return nil }

// auditAdminRoutes are the management API's audit log endpoints.
func (s *Server) auditAdminRoutes() []adminRoute { return nil }
