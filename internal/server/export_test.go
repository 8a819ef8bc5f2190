package server

// SetAuditFault makes writing the self-audit record of a call fail with what
// f returns (nil f, or f returning nil: records are written).
func (s *Server) SetAuditFault(f func(op string) error) { s.auditFault = f }
