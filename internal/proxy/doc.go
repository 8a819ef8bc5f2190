// Package proxy is OpenTrail's audit proxy: an HTTP reverse proxy in front of
// any AWS-protocol service (DynamoDB, S3, SQS, ... or a local server speaking
// their protocols) that writes one CloudTrail record per call into OpenTrail,
// including the data events AWS never records (DynamoDB item reads and
// writes), and, with an endpoint policy, the network-activity events of a VPC
// endpoint (VpceAccessDenied).
//
// # Generic by construction
//
// The proxy has no per-operation code. The service is the signing name of the
// request's SigV4 credential scope (Authorization header or a presigned URL's
// X-Amz-Credential); the operation is the X-Amz-Target suffix (JSON
// protocols), the Action parameter (query protocols), or, for REST services,
// derived from method, path shape and subresource by a small route table (S3).
// Everything per service — eventSource, which operations are data events,
// which are read-only, which request members are keys to keep and which are
// values to redact, how resource ARNs are formed — is the data table in
// services.go.
//
// # Forwarding untouched, and the Host header
//
// A request is forwarded byte for byte: method, path, query, headers and body,
// minus the hop-by-hop headers (Connection, Keep-Alive, TE, ...), which belong
// to one connection and are never signed. The proxy keeps the client's Host
// header rather than replacing it with the upstream's, because SigV4 always
// signs Host: the client signed the name it connected to, and the upstream
// recomputes the signature from the Host it receives. Rewriting Host would
// invalidate every signature.
//
// So point clients at the proxy in one of two ways:
//
//   - As their endpoint: AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 (or
//     the SDK's BaseEndpoint / --endpoint-url). Clients then sign for
//     127.0.0.1:8000. This works with upstreams that accept any Host:
//     DynamoDB Local, dynalite, LocalStack, MinIO and other self-hosted
//     servers.
//   - Under the upstream's own name, for AWS itself: resolve the AWS host name
//     (dynamodb.us-east-1.amazonaws.com) to the proxy (DNS or /etc/hosts) and
//     give the proxy a certificate for that name that the clients trust
//     (--tls-cert/--tls-key), and give the proxy an --upstream that does not
//     resolve to itself, such as the service's VPC interface endpoint name
//     (vpce-....dynamodb.us-east-1.vpce.amazonaws.com). Clients then sign for
//     the real host name, and the upstream receives the Host it expects.
//
// The proxy adds no X-Forwarded-For. It would not break SigV4 (it is not a
// signed header), but it would disclose internal addresses to the upstream,
// and the caller's address is already in the record's sourceIPAddress; a
// forwarded request should be the client's request, nothing more.
//
// # No record, no call
//
// Before a call is forwarded, the proxy reserves room for its record in a
// bounded local spool; if there is none (OpenTrail has been away long enough
// to fill it) the call is refused with 503 and never reaches the upstream,
// unless the proxy runs fail-open. The upstream's answer is held until the
// record is durable — in OpenTrail, or, when OpenTrail is down, fsynced to the
// spool (one fsync per batch of concurrent calls) — and the spool is delivered
// later with the same eventIDs, so redelivery never duplicates. A client that
// got an answer therefore has its call on record, even if the proxy or
// OpenTrail is killed the next instant.
//
// # What records carry
//
// requestParameters keep member names and key attributes (DynamoDB Key,
// ExclusiveStartKey, table and index names, expressions, attribute names);
// item values, expression attribute values and PartiQL parameters are
// replaced by "***" or, in HMAC mode, by hmac-sha256:<hex> over their
// canonical JSON, so that equal values can be searched for without being
// disclosed. Key attributes inside an Item are kept once the proxy has seen
// the table's key schema in a CreateTable or DescribeTable response.
// Only the first MaxParseBytes of a body are parsed; a longer body is streamed
// upstream all the same and its record says requestParametersTruncated.
// The proxy never logs credentials, signatures or values.
package proxy
