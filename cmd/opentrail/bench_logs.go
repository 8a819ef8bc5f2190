package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
)

// subscriptionHook is the local webhook the bench's subscription filters post to.
type subscriptionHook struct {
	srv       *http.Server
	delivered atomic.Int64
	last      atomic.Int64 // unix nanos of the last delivery
}

func (h *subscriptionHook) close() { h.srv.Close() }

// benchSubscriptions creates log group "bench" with n subscription filters,
// filter i selecting the calls of user-i, all posting to a local webhook.
func benchSubscriptions(srv *benchServer, n int) (*subscriptionHook, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &subscriptionHook{}
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Records []json.RawMessage }
		b, _ := io.ReadAll(r.Body)
		if json.Unmarshal(b, &body) == nil {
			h.delivered.Add(int64(len(body.Records)))
			h.last.Store(time.Now().UnixNano())
		}
	})}
	go h.srv.Serve(ln)
	c := srv.client()
	c.region = "ap-northeast-1"
	cw := c.logs()
	ctx := context.Background()
	if _, err := cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("bench")}); err != nil {
		h.close()
		return nil, err
	}
	for i := range n {
		if _, err := cw.PutSubscriptionFilter(ctx, &cloudwatchlogs.PutSubscriptionFilterInput{LogGroupName: aws.String("bench"),
			FilterName:     aws.String(fmt.Sprintf("user-%d", i)),
			FilterPattern:  aws.String(fmt.Sprintf(`{ $.userIdentity.arn = "arn:aws:sts::123456789012:assumed-role/some-role/user-%d" }`, i)),
			DestinationArn: aws.String("http://" + ln.Addr().String())}); err != nil {
			h.close()
			return nil, err
		}
	}
	return h, nil
}

// report waits until the log-group feed and every subscription have caught
// up (per /metrics), and prints how long that took after the last acknowledgement.
func (h *subscriptionHook) report(srv *benchServer, ended time.Time) error {
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		lag, pending, err := scrapeLag(srv.metrics)
		if err != nil {
			return err
		}
		if lag == 0 && pending == 0 {
			caughtUp := time.Unix(0, h.last.Load())
			fmt.Printf("  subscriptions: %d matching records delivered; the last %v after the last acknowledgement\n",
				h.delivered.Load(), caughtUp.Sub(ended).Round(time.Millisecond))
			return nil
		}
	}
	return fmt.Errorf("subscriptions did not catch up within 5 minutes")
}

// scrapeLag reads the log-group feed's lag and the subscriptions' pending events from the metrics URL.
func scrapeLag(metricsURL string) (lag, pending float64, err error) {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, perr := strconv.ParseFloat(line[i+1:], 64)
		switch {
		case perr != nil:
		case strings.HasPrefix(line, `opentrail_projection_lag_entries{projection="log_groups"}`):
			lag = v
		case strings.HasPrefix(line, "opentrail_subscription_pending_events{"):
			pending += v
		}
	}
	return lag, pending, sc.Err()
}
