package digest

import (
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// ErrSignature is returned by Verify for a signature that does not match.
var ErrSignature = errors.New("digest: signature verification failed")

// Sign signs s with RSASSA-PKCS1-v1_5 over SHA-256 and returns the signature in hex, as
// the signature metadata holds it.
func Sign(key *rsa.PrivateKey, s string) (hexSig string, err error) {
	sum := sha256.Sum256([]byte(s))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("digest: sign: %w", err)
	}
	return hex.EncodeToString(sig), nil
}

// Verify checks a hex signature made by Sign. It accepts SHA-256 only, where the CLI's
// python-rsa takes whichever hash the signature names; we never sign with another.
func Verify(pub *rsa.PublicKey, s, hexSig string) error {
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("digest: signature is not hex: %w", err)
	}
	sum := sha256.Sum256([]byte(s))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return ErrSignature
	}
	return nil
}

// fingerprint is a public key's fingerprint as digests and ListPublicKeys give it: the hex
// MD5 of its DER PKCS#1 RSAPublicKey. Part of the format.
func fingerprint(der []byte) string {
	sum := md5.Sum(der)
	return hex.EncodeToString(sum[:])
}
