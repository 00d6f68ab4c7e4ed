package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// How the S3 client rides out an endpoint that restarts or stalls. Requests (connection refused while the
// server restarts, resets, EOF before a response, 5xx, timeouts) are retried with jittered exponential
// backoff, 250 ms doubling to 15 s, 12 attempts: about a minute; there is no retry quota, so a long outage
// does not leave the client unable to retry later calls. A connection that accepts but never answers fails
// after s3ResponseTimeout, one that stops mid-body after s3BodyIdle; a failed body is not retried here but by
// the caller (a Fetch by its activity's retry: backoff from 1 s to 1 min, 10 attempts).
const (
	s3MaxAttempts     = 12
	s3MaxBackoff      = 15 * time.Second
	s3BaseDelay       = 250 * time.Millisecond
	s3DialTimeout     = 10 * time.Second
	s3ResponseTimeout = 60 * time.Second
)

// s3BodyIdle is a variable so tests can stall a body without waiting a minute.
var s3BodyIdle = 60 * time.Second

func newS3Retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = s3MaxAttempts
		o.MaxBackoff = s3MaxBackoff
		o.BaseDelay = s3BaseDelay
		o.RateLimiter = ratelimit.None
		// A proxy or load balancer in front of a restarting server accepts and then closes: the client
		// sees EOF before any response. Every operation here is idempotent (content-addressed keys), so
		// that is retried like a refused connection.
		o.Retryables = append(o.Retryables, retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return aws.TrueTernary
			}
			return aws.UnknownTernary
		}))
	})
}

func newS3HTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = s3DialTimeout }).
		WithTransportOptions(func(t *http.Transport) {
			t.ResponseHeaderTimeout = s3ResponseTimeout
			t.TLSHandshakeTimeout = s3DialTimeout
		})
}

// idleReader cancels its request (and so fails the read) when no byte arrived for idle.
type idleReader struct {
	r      io.ReadCloser
	key    string
	idle   time.Duration
	cancel context.CancelFunc
	timer  *time.Timer

	mu    sync.Mutex
	fired bool
}

func newIdleReader(r io.ReadCloser, idle time.Duration, cancel context.CancelFunc, key string) *idleReader {
	ir := &idleReader{r: r, key: key, idle: idle, cancel: cancel}
	ir.timer = time.AfterFunc(idle, func() {
		ir.mu.Lock()
		ir.fired = true
		ir.mu.Unlock()
		cancel()
	})
	return ir
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.timer.Reset(ir.idle)
	}
	if err != nil && err != io.EOF {
		ir.mu.Lock()
		fired := ir.fired
		ir.mu.Unlock()
		if fired {
			return n, fmt.Errorf("store: reading %s: no data for %s (stalled connection): %w", ir.key, ir.idle, err)
		}
	}
	return n, err
}

func (ir *idleReader) Close() error {
	ir.timer.Stop()
	err := ir.r.Close()
	ir.cancel()
	return err
}
