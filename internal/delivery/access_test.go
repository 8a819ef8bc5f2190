package delivery

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/objstore"
)

// memAccess is who owns the memStores' buckets (none by default).
var memAccess = struct {
	sync.Mutex
	m map[*memStore]map[string]objstore.Access
}{m: map[*memStore]map[string]objstore.Access{}}

func (m *memStore) BucketAccess(ctx context.Context, name string) (objstore.Access, error) {
	if _, err := m.Bucket(ctx, name); err != nil {
		return objstore.Access{}, err
	}
	memAccess.Lock()
	defer memAccess.Unlock()
	return memAccess.m[m][name], nil
}

func (m *memStore) setAccess(name string, a objstore.Access) {
	memAccess.Lock()
	defer memAccess.Unlock()
	if memAccess.m[m] == nil {
		memAccess.m[m] = map[string]objstore.Access{}
	}
	memAccess.m[m][name] = a
}

// Issue 11 §7: a bucket's owner or policy can change after CreateTrail
// checked it. A trail whose grant is gone writes nothing there, reports the
// error in its status and keeps its events until the grant is back.
func TestDeliveryNeedsBucketGrant(t *testing.T) {
	store := newMemStore("a-bucket")
	store.setAccess("a-bucket", objstore.Access{Owner: "123456789012"})
	r := newRig(t, store)
	defer func() { r.close() }()
	r.call("us-east-1", "CreateTrail", `{"Name":"trail-1","S3BucketName":"a-bucket"}`)
	r.call("us-east-1", "StartLogging", `{"Name":"trail-1"}`)
	r.advance(time.Second)
	r.ingest("us-east-1", 0, 10, mgmt)
	r.advance(time.Minute)
	r.waitFor("the owner's trail delivers", func() bool { ids, _ := store.delivered(t, "a-bucket"); return len(ids) == 10 })

	store.setAccess("a-bucket", objstore.Access{Owner: "999999999999"})
	r.ingest("us-east-1", 10, 20, mgmt)
	r.advance(time.Minute)
	r.waitFor("the delivery error", func() bool {
		b, _ := json.Marshal(r.call("us-east-1", "GetTrailStatus", `{"Name":"trail-1"}`))
		return strings.Contains(string(b), "bucket policy does not allow delivery")
	})
	if ids, _ := store.delivered(t, "a-bucket"); len(ids) != 10 {
		t.Fatalf("%d events in the bucket after its grant was gone, want 10", len(ids))
	}

	store.setAccess("a-bucket", objstore.Access{Owner: "999999999999", Policy: json.RawMessage(`{"Statement":{"Effect":"Allow",
		"Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::a-bucket/AWSLogs/123456789012/*"}}`)})
	r.waitFor("delivery under the new grant", func() bool { ids, _ := store.delivered(t, "a-bucket"); return len(ids) == 20 })
}
