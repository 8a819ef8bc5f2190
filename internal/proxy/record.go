package proxy

import (
	"crypto/tls"
	"encoding/json"

	"github.com/opentrail/opentrail/internal/audit"
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

// jsonNull is requestParameters or responseElements left out.
var jsonNull = json.RawMessage("null")

// recordBase bounds a record's size but for requestParameters and
// responseElements (its other members from the client are capped by package
// audit), so that the size is known before the call is forwarded (see reservation).
const recordBase = 16 << 10

func tlsInfo(cs *tls.ConnectionState, host string) *audit.TLSDetails {
	if cs == nil {
		return nil
	}
	v := map[uint16]string{tls.VersionTLS10: "TLSv1", tls.VersionTLS11: "TLSv1.1", tls.VersionTLS12: "TLSv1.2", tls.VersionTLS13: "TLSv1.3"}[cs.Version]
	return &audit.TLSDetails{TLSVersion: v, CipherSuite: cipherSuiteName(cs.CipherSuite), ClientProvidedHostHeader: host}
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
