// Package awsapi speaks the AWS JSON 1.1 wire protocol for OpenTrail's
// CloudTrail and CloudWatch Logs endpoints: it verifies SigV4 signatures,
// extracts the operation from X-Amz-Target, validates request bodies against
// the AWS service models (embedded from models/), and writes responses and
// errors in the shape AWS SDKs and the AWS CLI expect.
//
// It is the one place that maps errors to AWS error codes and HTTP statuses:
// handlers return *Error for the client's mistakes and anything else for
// ours, and WriteError turns the latter into a generic InternalFailure.
package awsapi
