package awsapi

import "context"

// Ops is what a service implements, by operation name: each runs on the
// service S for a caller C with a request body already valid against the
// service's model. Every AWS-protocol service keeps its operations in one.
type Ops[S, C any] map[string]func(s S, ctx context.Context, c C, body []byte) (any, error)

// Call runs op. An operation of the model that the service does not
// implement yet answers UnsupportedOperationException.
func (o Ops[S, C]) Call(s S, ctx context.Context, c C, op string, body []byte) (any, error) {
	f, ok := o[op]
	if !ok {
		return nil, Errorf("UnsupportedOperationException", "OpenTrail does not support %s yet.", op)
	}
	return f(s, ctx, c, body)
}
