package awsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestStatusFor(t *testing.T) {
	tests := []struct {
		code string
		want int
	}{
		{"TrailNotFoundException", 404},
		{"S3BucketDoesNotExistException", 404},
		{"EventDataStoreNotFoundException", 404},
		{"QueryIdNotFoundException", 404},
		{"ChannelNotFoundException", 404},
		{"ResourceNotFoundException", 404},
		{"ImportNotFoundException", 404},
		{"ResourcePolicyNotFoundException", 404},
		{"InsufficientS3BucketPolicyException", 403},
		{"MaximumNumberOfTrailsExceededException", 403},
		{"AccessDeniedException", 403},
		{"ConflictException", 409},
		{"ConcurrentModificationException", 409},
		{"ThrottlingException", 429},
		{"MaxConcurrentQueriesException", 429},
		{"RequestEntityTooLarge", 413},
		{"InternalFailure", 500},
		{"ServiceUnavailable", 503},
		{"MissingAuthenticationTokenException", 400},
		{"UnrecognizedClientException", 400},
		{"InvalidSignatureException", 400},
		{"IncompleteSignatureException", 400},
		{"SerializationException", 400},
		{"UnknownOperationException", 400},
		{"InvalidParameterException", 400},
		{"InvalidTrailNameException", 400},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if got := StatusFor(tt.code); got != tt.want {
				t.Errorf("StatusFor(%q) = %d, want %d", tt.code, got, tt.want)
			}
		})
	}
}

func TestErrorf(t *testing.T) {
	e := Errorf("TrailNotFoundException", "Unknown trail: %s for the user: %s", "t1", "123456789012")
	want := &Error{Code: "TrailNotFoundException", Message: "Unknown trail: t1 for the user: 123456789012", Status: 404}
	if *e != *want {
		t.Errorf("Errorf = %+v, want %+v", e, want)
	}
	if got := e.Error(); got != "TrailNotFoundException: Unknown trail: t1 for the user: 123456789012" {
		t.Errorf("Error() = %q", got)
	}
}

// response is what a client sees of a JSON 1.1 response.
type response struct {
	status    int
	requestID string
	errorType string
	body      map[string]any
}

func record(t *testing.T, write func(http.ResponseWriter)) response {
	t.Helper()
	rec := httptest.NewRecorder()
	write(rec)
	res := rec.Result()
	if ct := res.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return response{res.StatusCode, res.Header.Get("x-amzn-RequestId"), res.Header.Get("X-Amzn-ErrorType"), body}
}

func TestWriteJSON(t *testing.T) {
	got := record(t, func(w http.ResponseWriter) {
		WriteJSON(w, "req-1", http.StatusOK, map[string]any{"trailList": []any{}})
	})
	want := response{200, "req-1", "", map[string]any{"trailList": []any{}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestWriteJSONUnmarshalable(t *testing.T) {
	got := record(t, func(w http.ResponseWriter) { WriteJSON(w, "req-2", http.StatusOK, math.Inf(1)) })
	want := response{500, "req-2", "InternalFailure", map[string]any{
		"__type": "InternalFailure", "message": "An internal error occurred. Request ID: req-2"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestWriteError(t *testing.T) {
	const secret = "db password is hunter2"
	tests := []struct {
		name    string
		err     error
		want    response
		wantLog bool
	}{
		{
			name: "aws error",
			err:  Errorf("TrailNotFoundException", "Unknown trail: t1 for the user: 123456789012"),
			want: response{404, "r", "TrailNotFoundException", map[string]any{
				"__type": "TrailNotFoundException", "message": "Unknown trail: t1 for the user: 123456789012"}},
		},
		{
			name: "wrapped aws error keeps its code",
			err:  fmt.Errorf("lookup: %w", Errorf("InvalidLookupAttributesException", "bad")),
			want: response{400, "r", "InvalidLookupAttributesException", map[string]any{
				"__type": "InvalidLookupAttributesException", "message": "bad"}},
		},
		{
			name: "zero status falls back to StatusFor",
			err:  &Error{Code: "ThrottlingException", Message: "Rate exceeded"},
			want: response{429, "r", "ThrottlingException", map[string]any{
				"__type": "ThrottlingException", "message": "Rate exceeded"}},
		},
		{
			name: "field is not serialised",
			err:  &Error{Code: "InvalidParameterException", Message: "m", Status: 400, Field: "MaxResults"},
			want: response{400, "r", "InvalidParameterException", map[string]any{
				"__type": "InvalidParameterException", "message": "m"}},
		},
		{
			name: "our fault never leaks",
			err:  errors.New(secret),
			want: response{500, "r", "InternalFailure", map[string]any{
				"__type": "InternalFailure", "message": "An internal error occurred. Request ID: r"}},
			wantLog: true,
		},
		{
			name: "typed nil *Error is our fault",
			err:  (*Error)(nil),
			want: response{500, "r", "InternalFailure", map[string]any{
				"__type": "InternalFailure", "message": "An internal error occurred. Request ID: r"}},
			wantLog: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			got := record(t, func(w http.ResponseWriter) { WriteError(w, "r", tt.err, log) })
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if strings.Contains(fmt.Sprint(got), secret) {
				t.Errorf("response leaks the internal error: %+v", got)
			}
			if logged := logs.Len() > 0; logged != tt.wantLog {
				t.Errorf("logged = %v (%q), want %v", logged, logs.String(), tt.wantLog)
			}
			if tt.wantLog && !strings.Contains(logs.String(), "request_id=r") {
				t.Errorf("log line lacks the request ID: %q", logs.String())
			}
		})
	}
}
