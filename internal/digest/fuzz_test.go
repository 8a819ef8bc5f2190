package digest

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

// FuzzValidateDigest feeds Validate a digest of arbitrary content (gzipped or raw, with any
// signature): it must never panic nor fail, only report, and what it calls valid must
// verify through the typed path too (Digest, SigningString, Verify).
func FuzzValidateDigest(f *testing.F) {
	// Workers are fresh processes with instrumented crypto: generating a key in each
	// would stall the fuzzer, so the trail signs with the key in testdata.
	tr := newTrailWithRing(f, "", openTestRing(f))
	tr.hour(1, 2)
	tr.hour(2, 2)
	body, meta, _ := tr.bucket.Get(context.Background(), tr.digests[1])
	raw, _ := gunzip(body)
	f.Add(raw, meta[MetaSignature], true)
	f.Add(bytes.Replace(raw, []byte(`"previousDigestSignature":"`), []byte(`"previousDigestSignature":null,"x":"`), 1), meta[MetaSignature], true)
	f.Add([]byte(`{"digestS3Bucket":1}`), "zz", true)
	f.Add([]byte(`[]`), "", false)
	f.Add(body[:len(body)/2], "00", false)
	key := tr.digests[1]
	k, err := tr.ring.Current(testHome, t0)
	if err != nil {
		f.Fatal(err)
	}
	o := tr.options(t0, tr.end)
	f.Fuzz(func(t *testing.T, content []byte, sig string, compress bool) {
		body := content
		if compress {
			body, _ = Gzip(content)
		}
		tr.bucket.Put(context.Background(), key, body, map[string]string{MetaSignature: sig, MetaSignatureAlgorithm: SignatureAlgorithm})
		rep, err := Validate(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Results {
			if r.Key != key || !r.Valid {
				continue
			}
			// Valid to the validator's raw reading must mean valid to the typed one.
			if !compress {
				if content, err = gunzip(body); err != nil {
					t.Fatalf("valid digest does not inflate: %v", err)
				}
			}
			var d Digest
			if err := json.Unmarshal(content, &d); err != nil {
				t.Fatalf("valid digest does not decode: %v", err)
			}
			if err := Verify(&k.Private.PublicKey, SigningString(&d, content), sig); err != nil {
				t.Fatalf("valid digest does not verify: %v", err)
			}
		}
	})
}
