package delivery

import (
	"context"
	"crypto/rand"
)

// Digester writes digest files (in progress: filled in with the digest package).
type Digester struct{}

func (d *Digester) due(ctx context.Context, w *Worker)              {}
func (d *Digester) final(ctx context.Context, w *Worker, s *stream) {}

func randomUnique() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 16)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
