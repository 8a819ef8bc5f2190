package auth

// Caller is the authenticated principal of one request.
type Caller struct {
	Account     string // the caller's account
	Region      string // the request's signing region
	AccessKeyID string
	ARN         string // e.g. arn:aws:iam::123456789012:user/alice or arn:aws:iam::123456789012:root
	UserName    string
	Root        bool
}
