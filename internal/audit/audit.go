// Package audit is the CloudTrail record OpenTrail writes of one API call:
// of a call to its own API (self-audit: CloudTrail, CloudWatch Logs, access
// keys, console sign-in) and of a call the audit proxy forwards. Both build it
// with New, so the same call leaves the same members in the same order.
//
// It does no I/O; the record is appended through package ingest.
package audit

import (
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/event"
)

// Caps on what a record carries from the client, so that its size is bounded.
const (
	MaxUserAgent    = 1024
	MaxErrorMessage = 2048
)

// Record is one CloudTrail record, its members in the order CloudTrail
// writes them. Members a producer does not set are left out as CloudTrail
// leaves them out.
type Record struct {
	EventVersion        string         `json:"eventVersion"`
	UserIdentity        auth.Identity  `json:"userIdentity"`
	EventTime           string         `json:"eventTime"`
	EventSource         string         `json:"eventSource"`
	EventName           string         `json:"eventName"`
	AWSRegion           string         `json:"awsRegion"`
	SourceIPAddress     string         `json:"sourceIPAddress"`
	UserAgent           string         `json:"userAgent"`
	ErrorCode           string         `json:"errorCode,omitempty"`
	ErrorMessage        string         `json:"errorMessage,omitempty"`
	RequestParameters   any            `json:"requestParameters"` // nil: null
	ResponseElements    any            `json:"responseElements"`  // nil: null
	AdditionalEventData map[string]any `json:"additionalEventData,omitempty"`
	RequestID           string         `json:"requestID"`
	EventID             string         `json:"eventID"`
	ReadOnly            bool           `json:"readOnly"`
	Resources           []Resource     `json:"resources,omitempty"`
	EventType           string         `json:"eventType"`
	ManagementEvent     bool           `json:"managementEvent"`
	RecipientAccountID  string         `json:"recipientAccountId"`
	*VPCEndpoint                       // nil: no vpcEndpointId members
	EventCategory       string         `json:"eventCategory"`
	TLSDetails          *TLSDetails    `json:"tlsDetails,omitempty"`
}

// Resource is one member of a record's resources.
type Resource struct {
	AccountID string `json:"accountId,omitempty"`
	Type      string `json:"type"`
	ARN       string `json:"ARN"`
}

// VPCEndpoint names the endpoint a call came through (the audit proxy is one).
type VPCEndpoint struct {
	ID        string `json:"vpcEndpointId"`
	AccountID string `json:"vpcEndpointAccountId"`
}

// TLSDetails is the TLS connection a call came over.
type TLSDetails struct {
	TLSVersion               string `json:"tlsVersion"`
	CipherSuite              string `json:"cipherSuite"`
	ClientProvidedHostHeader string `json:"clientProvidedHostHeader"`
}

// Call is what a record is made of.
type Call struct {
	Time      time.Time
	Identity  auth.Identity
	Account   string // recipientAccountId
	Source    string // eventSource
	Name      string // eventName; "" is written as Unknown
	Region    string
	SourceIP  string
	UserAgent string // cut to MaxUserAgent
	RequestID string
	ReadOnly  bool
	Data      bool // a data event; otherwise a management event
	Params    any  // requestParameters
}

// New is the AwsApiCall record of c, with a new eventID.
func New(c Call) *Record {
	r := &Record{
		EventVersion:       event.DefaultEventVersion,
		UserIdentity:       c.Identity,
		EventTime:          c.Time.Format(time.RFC3339),
		EventSource:        c.Source,
		EventName:          c.Name,
		AWSRegion:          c.Region,
		SourceIPAddress:    c.SourceIP,
		UserAgent:          Cap(c.UserAgent, MaxUserAgent),
		RequestParameters:  c.Params,
		RequestID:          c.RequestID,
		EventID:            uuid.NewString(),
		ReadOnly:           c.ReadOnly,
		EventType:          "AwsApiCall",
		ManagementEvent:    !c.Data,
		RecipientAccountID: c.Account,
		EventCategory:      event.CategoryManagement,
	}
	if r.EventName == "" {
		r.EventName = "Unknown"
	}
	if c.Data {
		r.EventCategory = event.CategoryData
	}
	return r
}

// Fail records the error a call ended with, its message cut to MaxErrorMessage.
func (r *Record) Fail(code, message string) {
	r.ErrorCode, r.ErrorMessage = code, Cap(message, MaxErrorMessage)
}

// Cap cuts s to at most n bytes, on a rune boundary.
func Cap(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
