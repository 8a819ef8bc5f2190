package awsapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// Error is an AWS-shaped error. Serialised as {"__type":Code,"message":Message}.
type Error struct {
	Code    string // e.g. "TrailNotFoundException"
	Message string
	Status  int // HTTP status
	// Field is the input member path that failed validation, e.g.
	// "LookupAttributes[0].AttributeKey" or "MaxResults". Not serialised.
	Field string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an *Error whose Status comes from StatusFor(code).
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Status: StatusFor(code)}
}

// Error codes this package produces itself.
const (
	codeIncompleteSignature   = "IncompleteSignatureException"
	codeInternalFailure       = "InternalFailure"
	codeInvalidParameter      = "InvalidParameterException"
	codeInvalidSignature      = "InvalidSignatureException"
	codeMissingAuthentication = "MissingAuthenticationTokenException"
	codeSerialization         = "SerializationException"
	codeUnknownOperation      = "UnknownOperationException"
	codeUnrecognizedClient    = "UnrecognizedClientException"
)

// StatusFor returns the HTTP status AWS uses for an error code.
//
// The authentication errors (MissingAuthenticationTokenException,
// UnrecognizedClientException, InvalidSignatureException,
// IncompleteSignatureException) are 400, not 403: that is what AWS documents
// for its JSON-protocol services (DynamoDB developer guide, "Error handling",
// HTTP status code 400 table) and what JSON-protocol services such as
// Kinesis, ECR and Cognito are seen returning. The generic "Common Errors"
// page lists 403 for MissingAuthenticationToken and InvalidClientTokenId, but
// those are the Query-protocol codes.
func StatusFor(code string) int {
	switch code {
	case "TrailNotFoundException", "S3BucketDoesNotExistException",
		"EventDataStoreNotFoundException", "QueryIdNotFoundException",
		"ChannelNotFoundException", "ResourceNotFoundException",
		"ImportNotFoundException", "ResourcePolicyNotFoundException":
		return http.StatusNotFound
	case "InsufficientS3BucketPolicyException", "MaximumNumberOfTrailsExceededException",
		"AccessDeniedException":
		return http.StatusForbidden
	case "ConflictException", "ConcurrentModificationException":
		return http.StatusConflict
	case "ThrottlingException", "MaxConcurrentQueriesException":
		return http.StatusTooManyRequests
	case "RequestEntityTooLarge":
		return http.StatusRequestEntityTooLarge
	case codeInternalFailure:
		return http.StatusInternalServerError
	case "ServiceUnavailable", "ServiceUnavailableException":
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}

const contentTypeJSON11 = "application/x-amz-json-1.1"

// WriteJSON writes a JSON 1.1 response: Content-Type
// "application/x-amz-json-1.1", header "x-amzn-RequestId: <requestID>",
// status, body json.Marshal(v). A v that cannot be marshalled is a bug in
// the caller; the client then gets a bare InternalFailure.
func WriteJSON(w http.ResponseWriter, requestID string, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = internalFailureBody(requestID)
		w.Header().Set("X-Amzn-ErrorType", codeInternalFailure)
	}
	writeRaw(w, requestID, status, body)
}

// WriteError writes err in AWS's shape with headers X-Amzn-ErrorType: <Code>
// and x-amzn-RequestId. An err that is not an *Error is our fault: the client
// gets a generic 500 InternalFailure naming only the request ID, and the real
// error goes to log.
func WriteError(w http.ResponseWriter, requestID string, err error, log *slog.Logger) {
	var ae *Error
	if !errors.As(err, &ae) || ae == nil {
		if log == nil {
			log = slog.Default()
		}
		log.Error("internal error", "request_id", requestID, "err", err)
		w.Header().Set("X-Amzn-ErrorType", codeInternalFailure)
		writeRaw(w, requestID, http.StatusInternalServerError, internalFailureBody(requestID))
		return
	}
	status := ae.Status
	if status == 0 {
		status = StatusFor(ae.Code)
	}
	w.Header().Set("X-Amzn-ErrorType", ae.Code)
	WriteJSON(w, requestID, status, errorBody{Type: ae.Code, Message: ae.Message})
}

type errorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func internalFailureBody(requestID string) []byte {
	// Marshalling two strings cannot fail.
	b, _ := json.Marshal(errorBody{
		Type:    codeInternalFailure,
		Message: "An internal error occurred. Request ID: " + requestID,
	})
	return b
}

func writeRaw(w http.ResponseWriter, requestID string, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentTypeJSON11)
	h.Set("x-amzn-RequestId", requestID) // stored canonicalised; names are case-insensitive
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client has gone; nothing useful to do
}
