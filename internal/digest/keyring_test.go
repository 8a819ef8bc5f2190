package digest

import (
	"bytes"
	"crypto/md5"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestKeyRingRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring", "keys.json")
	const period = 24 * time.Hour
	ring, err := OpenKeyRing(FileKeyStore(path), period)
	if err != nil {
		t.Fatal(err)
	}
	h := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Hour))) }
	type window struct{ start, end time.Time }
	// Each step asks for the key at a time; want is the window of the key returned and
	// key names which earlier step's key it must be ("" for a new one).
	steps := []struct {
		name   string
		at     time.Time
		want   window
		sameAs string
	}{
		{"first key", h(0.5), window{h(0.5), h(24.5)}, ""},
		{"same window", h(10), window{h(0.5), h(24.5)}, "first key"},
		{"rotated", h(30), window{h(24.5), h(48.5)}, ""},
		{"after a long stop", h(100), window{h(100), h(124)}, ""},
		{"in the hole", h(60), window{h(60), h(124)}, "after a long stop"},
		{"before the first", h(-2), window{h(-2), h(24.5)}, "first key"},
		{"end is exclusive", h(48.5), window{h(48.5), h(124)}, "after a long stop"},
	}
	got := map[string]*Key{}
	for _, s := range steps {
		k, err := ring.Current("us-east-1", s.at)
		if err != nil {
			t.Fatal(err)
		}
		if (window{k.ValidityStartTime, k.ValidityEndTime}) != s.want {
			t.Errorf("%s: window %v to %v, want %v to %v", s.name, k.ValidityStartTime, k.ValidityEndTime, s.want.start, s.want.end)
		}
		if s.sameAs != "" && k.Fingerprint != got[s.sameAs].Fingerprint {
			t.Errorf("%s: a new key, want the key of %q", s.name, s.sameAs)
		}
		if s.sameAs == "" {
			for name, o := range got {
				if o.Fingerprint == k.Fingerprint {
					t.Errorf("%s: the key of %q, want a new one", s.name, name)
				}
			}
		}
		got[s.name] = k
	}

	// ListPublicKeys: windows meeting the range, oldest first, fingerprint = MD5(DER PKCS#1).
	for _, tc := range []struct {
		name       string
		start, end time.Time
		want       []string
	}{
		{"all", h(-10), h(200), []string{"first key", "rotated", "after a long stop"}},
		{"one", h(1), h(2), []string{"first key"}},
		{"touching both", h(24.5), h(24.5), []string{"first key", "rotated"}},
		{"CLI range over a rotation", h(20), h(26 + 2), []string{"first key", "rotated"}},
		{"after every window", h(125), h(140), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pks := ring.PublicKeys("us-east-1", tc.start, tc.end)
			if len(pks) != len(tc.want) {
				t.Fatalf("%d keys, want %d", len(pks), len(tc.want))
			}
			for i, pk := range pks {
				if pk.Fingerprint != got[tc.want[i]].Fingerprint {
					t.Errorf("key %d is not the key of %q", i, tc.want[i])
				}
				sum := md5.Sum(pk.Value)
				if pk.Fingerprint != hex.EncodeToString(sum[:]) {
					t.Errorf("fingerprint %s is not the MD5 of Value", pk.Fingerprint)
				}
				pub, err := x509.ParsePKCS1PublicKey(pk.Value)
				if err != nil {
					t.Fatalf("Value is not DER PKCS#1: %v", err)
				}
				if !pub.Equal(&got[tc.want[i]].Private.PublicKey) || pub.N.BitLen() != 2048 {
					t.Errorf("Value is not the key's public half")
				}
			}
		})
	}
	if pks := ring.PublicKeys("eu-west-1", h(-10), h(200)); len(pks) != 0 {
		t.Errorf("eu-west-1 has %d keys, want none", len(pks))
	}

	// The saved ring reopens to the same keys and windows, and is private.
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	again, err := OpenKeyRing(FileKeyStore(path), period)
	if err != nil {
		t.Fatal(err)
	}
	a, b := ring.PublicKeys("us-east-1", h(-10), h(200)), again.PublicKeys("us-east-1", h(-10), h(200))
	if len(a) != len(b) {
		t.Fatalf("reopened: %d keys, want %d", len(b), len(a))
	}
	for i := range a {
		if a[i].Fingerprint != b[i].Fingerprint || !bytes.Equal(a[i].Value, b[i].Value) ||
			!a[i].ValidityStartTime.Equal(b[i].ValidityStartTime) || !a[i].ValidityEndTime.Equal(b[i].ValidityEndTime) {
			t.Errorf("reopened key %d differs: %+v vs %+v", i, b[i], a[i])
		}
	}
	k, err := again.Current("us-east-1", h(110))
	if err != nil || k.Fingerprint != got["after a long stop"].Fingerprint || !k.Private.Equal(got["after a long stop"].Private) {
		t.Fatalf("reopened ring signs with another key: %v", err)
	}
}

// failStore saves nothing.
type failStore struct{ saved int }

func (*failStore) Load() ([]byte, error) { return nil, nil }
func (s *failStore) Save([]byte) error {
	s.saved++
	return errors.New("disk full")
}

// TestKeyRingUnsavedKeyNeverSigns: a key that could not be saved must not be used, or the
// digests it signed could never be verified after a restart.
func TestKeyRingUnsavedKeyNeverSigns(t *testing.T) {
	s := &failStore{}
	ring, err := OpenKeyRing(s, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Current("us-east-1", t0); err == nil {
		t.Fatal("Current with a failing store: no error")
	}
	if pks := ring.PublicKeys("us-east-1", t0.Add(-time.Hour), t0.Add(time.Hour)); len(pks) != 0 {
		t.Fatalf("unsaved key listed: %+v", pks)
	}
	if s.saved != 1 {
		t.Fatalf("saved %d times", s.saved)
	}
}

func TestOpenKeyRingRejectsUnknownVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	os.WriteFile(path, []byte(`{"version":2,"keys":[]}`), 0o600)
	if _, err := OpenKeyRing(FileKeyStore(path), 0); err == nil {
		t.Fatal("no error for version 2")
	}
}

// TestKeyRingFormat reads a ring saved in the format (testdata/keyring.json, a key made
// by openssl) and checks the key, its window, and its fingerprint as computed by
// openssl: MD5 of "openssl rsa -RSAPublicKey_out -outform DER".
func TestKeyRingFormat(t *testing.T) {
	ring := openTestRing(t)
	pks := ring.PublicKeys("us-east-1", time.Time{}, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	if len(pks) != 1 {
		t.Fatalf("%d keys, want 1", len(pks))
	}
	pk := pks[0]
	if pk.Fingerprint != "96ac9ac76c27958021581df29bad3c58" {
		t.Errorf("fingerprint %s", pk.Fingerprint)
	}
	if want := time.Date(2024, 2, 20, 0, 0, 0, 0, time.UTC); !pk.ValidityStartTime.Equal(want) {
		t.Errorf("ValidityStartTime %v, want %v", pk.ValidityStartTime, want)
	}
	if want := time.Date(2024, 3, 21, 0, 0, 0, 0, time.UTC); !pk.ValidityEndTime.Equal(want) {
		t.Errorf("ValidityEndTime %v, want %v", pk.ValidityEndTime, want)
	}
	// "MIIBCgKCAQEA": the DER PKCS#1 header AWS's own ListPublicKeys values start with.
	if !bytes.HasPrefix(pk.Value, []byte{0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00}) {
		t.Errorf("Value starts % x", pk.Value[:9])
	}
	k, err := ring.Current("us-east-1", time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || k.Fingerprint != pk.Fingerprint {
		t.Fatalf("Current: %v, %v", k, err)
	}
}
