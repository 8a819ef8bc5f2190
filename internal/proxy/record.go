package proxy

import (
	"crypto/tls"
	"encoding/json"

	"github.com/opentrail/opentrail/internal/auth"
)

// Identity is a record's userIdentity.
type Identity = auth.Identity

// KeyringResolver maps access key IDs to identities through an OpenTrail keyring's Lookup.
func KeyringResolver(lookup func(accessKeyID string) (auth.Key, string, bool)) func(string) (Identity, bool) {
	return func(id string) (Identity, bool) {
		k, _, ok := lookup(id)
		if !ok {
			return Identity{}, false
		}
		return k.Identity(), true
	}
}

type resource struct {
	AccountID string `json:"accountId,omitempty"`
	Type      string `json:"type"`
	ARN       string `json:"ARN"`
}

type tlsDetails struct {
	TLSVersion               string `json:"tlsVersion"`
	CipherSuite              string `json:"cipherSuite"`
	ClientProvidedHostHeader string `json:"clientProvidedHostHeader"`
}

// record is one CloudTrail record, its members in the order CloudTrail writes them.
type record struct {
	EventVersion         string          `json:"eventVersion"`
	UserIdentity         Identity        `json:"userIdentity"`
	EventTime            string          `json:"eventTime"`
	EventSource          string          `json:"eventSource"`
	EventName            string          `json:"eventName"`
	AWSRegion            string          `json:"awsRegion"`
	SourceIPAddress      string          `json:"sourceIPAddress"`
	UserAgent            string          `json:"userAgent"`
	ErrorCode            string          `json:"errorCode,omitempty"`
	ErrorMessage         string          `json:"errorMessage,omitempty"`
	RequestParameters    json.RawMessage `json:"requestParameters"`
	ResponseElements     json.RawMessage `json:"responseElements"`
	AdditionalEventData  map[string]any  `json:"additionalEventData,omitempty"`
	RequestID            string          `json:"requestID"`
	EventID              string          `json:"eventID"`
	ReadOnly             bool            `json:"readOnly"`
	Resources            []resource      `json:"resources,omitempty"`
	EventType            string          `json:"eventType"`
	ManagementEvent      bool            `json:"managementEvent"`
	RecipientAccountID   string          `json:"recipientAccountId"`
	VPCEndpointID        string          `json:"vpcEndpointId"`
	VPCEndpointAccountID string          `json:"vpcEndpointAccountId"`
	EventCategory        string          `json:"eventCategory"`
	TLSDetails           *tlsDetails     `json:"tlsDetails,omitempty"`
}

var jsonNull = json.RawMessage("null")

// Caps on what a record carries from the client, so that a record's size is
// bounded before the call is forwarded (see reservation).
const (
	maxUserAgent    = 1024
	maxErrorMessage = 2048
	recordBase      = 16 << 10 // everything but requestParameters and responseElements
)

func capString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

func tlsInfo(cs *tls.ConnectionState, host string) *tlsDetails {
	if cs == nil {
		return nil
	}
	v := map[uint16]string{tls.VersionTLS10: "TLSv1", tls.VersionTLS11: "TLSv1.1", tls.VersionTLS12: "TLSv1.2", tls.VersionTLS13: "TLSv1.3"}[cs.Version]
	return &tlsDetails{TLSVersion: v, CipherSuite: cipherSuiteName(cs.CipherSuite), ClientProvidedHostHeader: host}
}

// opensslNames are the names CloudTrail writes for the TLS 1.0–1.2 suites Go
// can negotiate (OpenSSL's); TLS 1.3 suites keep their IANA names, as in
// CloudTrail's records.
var opensslNames = map[uint16]string{
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:         "ECDHE-RSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:         "ECDHE-RSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:       "ECDHE-ECDSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:       "ECDHE-ECDSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:   "ECDHE-RSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:            "ECDHE-RSA-AES128-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:            "ECDHE-RSA-AES256-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:          "ECDHE-ECDSA-AES128-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA:          "ECDHE-ECDSA-AES256-SHA",
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256:               "AES128-GCM-SHA256",
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384:               "AES256-GCM-SHA384",
	tls.TLS_RSA_WITH_AES_128_CBC_SHA:                  "AES128-SHA",
	tls.TLS_RSA_WITH_AES_256_CBC_SHA:                  "AES256-SHA",
}

func cipherSuiteName(id uint16) string {
	if n, ok := opensslNames[id]; ok {
		return n
	}
	return tls.CipherSuiteName(id)
}
