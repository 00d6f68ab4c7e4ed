package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// s3Backend keeps objects in a bucket under a key prefix. A PutObject is
// atomic, so no temporaries are ever visible.
type s3Backend struct {
	client *s3.Client
	bucket string
	prefix string // "" or ending in "/"
	desc   string
	// link is where an object is reachable over HTTP(S): the endpoint and,
	// path-style, the bucket ("" without an http(s) endpoint).
	link string
}

// maxSinglePut is S3's limit for one PutObject.
const maxSinglePut = 5 << 30

// newS3Backend parses s3://bucket/prefix?endpoint=URL&region=R&path_style=true.
// Credentials come from the SDK's standard chain (env, shared files, IMDS...).
// Without endpoint= in the URL, defaultEndpoint (the caller's option) is used;
// a custom endpoint implies path-style addressing unless path_style=false.
func newS3Backend(ctx context.Context, u *url.URL, defaultEndpoint string) (*s3Backend, error) {
	bucket := u.Host
	if bucket == "" {
		return nil, fmt.Errorf("store: %q: missing bucket name (want s3://bucket/prefix)", u.Redacted())
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		if err := ValidateName(prefix); err != nil {
			return nil, fmt.Errorf("store: bad S3 prefix in %q: %w", u.Redacted(), err)
		}
		prefix += "/"
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "path_style":
		default:
			return nil, fmt.Errorf("store: %q: unknown query parameter %q (known: endpoint, region, path_style)", u.Redacted(), k)
		}
	}
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		endpoint = defaultEndpoint
	}
	pathStyle := endpoint != ""
	if ps := q.Get("path_style"); ps != "" {
		v, err := strconv.ParseBool(ps)
		if err != nil {
			return nil, fmt.Errorf("store: %q: path_style=%q is not a boolean", u.Redacted(), ps)
		}
		pathStyle = v
	}
	var loadOpts []func(*config.LoadOptions) error
	if r := q.Get("region"); r != "" {
		loadOpts = append(loadOpts, config.WithRegion(r))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("store: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		// S3-compatible servers accept any region; signing needs one.
		cfg.Region = "us-east-1"
	}
	cfg.Retryer = func() aws.Retryer { return newS3Retryer() }
	cfg.HTTPClient = newS3HTTPClient()
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			// Not every S3-compatible server understands the newer default
			// checksums; we verify content by its sha256 name anyway.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
		o.UsePathStyle = pathStyle
	})
	desc := "s3://" + bucket + "/" + prefix
	if endpoint != "" {
		desc += " at " + endpoint
	}
	link := ""
	if strings.HasPrefix(endpoint, "http://") || strings.HasPrefix(endpoint, "https://") {
		if eu, err := url.Parse(endpoint); err == nil && eu.Host != "" {
			if pathStyle {
				link = strings.TrimSuffix(endpoint, "/") + "/" + bucket + "/"
			} else {
				link = eu.Scheme + "://" + bucket + "." + eu.Host + strings.TrimSuffix(eu.Path, "/") + "/"
			}
		}
	}
	return &s3Backend{client: client, bucket: bucket, prefix: prefix, desc: desc, link: link}, nil
}

func (b *s3Backend) String() string { return b.desc }

func (b *s3Backend) location(key string) string {
	if b.link == "" {
		return ""
	}
	return b.link + b.prefix + key
}

func (b *s3Backend) localPath(string) (string, bool) { return "", false }

func (b *s3Backend) put(ctx context.Context, key string, src io.ReadSeeker, size int64) error {
	if size > maxSinglePut {
		return fmt.Errorf("store: %s: %d bytes is above the single-upload limit of %d", key, size, int64(maxSinglePut))
	}
	_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(b.bucket),
		Key:           aws.String(b.prefix + key),
		Body:          src,
		ContentLength: aws.Int64(size),
	})
	if err != nil {
		return fmt.Errorf("store: put %s to %s: %w", key, b.desc, err)
	}
	return nil
}

func (b *s3Backend) get(ctx context.Context, key string) (io.ReadCloser, error) {
	// The body is read long after GetObject returns; a connection that stalls mid-body cancels this
	// context (idleReader), so the download fails and is retried instead of hanging.
	ctx, cancel := context.WithCancel(ctx)
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(b.prefix + key),
	})
	if err != nil {
		cancel()
		if isS3NotFound(err) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return nil, fmt.Errorf("store: get %s from %s: %w", key, b.desc, err)
	}
	return newIdleReader(out.Body, s3BodyIdle, cancel, key), nil
}

func (b *s3Backend) stat(ctx context.Context, key string) (int64, error) {
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(b.prefix + key),
	})
	if err != nil {
		if isS3NotFound(err) {
			return 0, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return 0, fmt.Errorf("store: head %s in %s: %w", key, b.desc, err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

func (b *s3Backend) delete(ctx context.Context, key string) error {
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(b.prefix + key),
	})
	if err != nil && !isS3NotFound(err) {
		return fmt.Errorf("store: delete %s in %s: %w", key, b.desc, err)
	}
	return nil
}

func (b *s3Backend) list(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.bucket),
		Prefix: aws.String(b.prefix + prefix),
	})
	var out []ObjectInfo
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("store: list %s: %w", b.desc, err)
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), b.prefix)
			out = append(out, ObjectInfo{Key: key, Size: aws.ToInt64(o.Size)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func isS3NotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == 404
}
