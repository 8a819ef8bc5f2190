package cloudtrail

import (
	"context"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
)

type listPublicKeysInput struct {
	StartTime *float64
	EndTime   *float64
	NextToken *string
}

type publicKeyOut struct {
	Value             []byte       `json:"Value"` // a blob: base64 on the wire
	ValidityStartTime epochSeconds `json:"ValidityStartTime"`
	ValidityEndTime   epochSeconds `json:"ValidityEndTime"`
	Fingerprint       string       `json:"Fingerprint"`
}

// listPublicKeys returns the digest signing keys of the request's region valid
// at any time in [StartTime, EndTime] (default: now), for validating digests.
func (s *Service) listPublicKeys(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in listPublicKeysInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.NextToken != nil {
		// Every key of a range fits in one page; no token is ever issued.
		return nil, awsapi.Errorf("InvalidTokenException", "The NextToken is not valid.")
	}
	now := s.now().UTC()
	start, end := now, now
	if in.StartTime != nil {
		start = secondsTime(*in.StartTime)
	}
	if in.EndTime != nil {
		end = secondsTime(*in.EndTime)
	}
	if end.Before(start) {
		return nil, awsapi.Errorf("InvalidTimeRangeException", "StartTime is after EndTime.")
	}
	out := struct {
		PublicKeyList []publicKeyOut `json:"PublicKeyList"`
	}{PublicKeyList: []publicKeyOut{}}
	if s.publicKeys == nil {
		return out, nil
	}
	for _, k := range s.publicKeys(c.Region, start, end) {
		out.PublicKeyList = append(out.PublicKeyList, publicKeyOut{Value: k.Value,
			ValidityStartTime: epochSeconds(k.ValidityStartTime), ValidityEndTime: epochSeconds(k.ValidityEndTime), Fingerprint: k.Fingerprint})
	}
	return out, nil
}

func secondsTime(sec float64) time.Time { return time.Unix(0, secondsToNanos(sec)).UTC() }
