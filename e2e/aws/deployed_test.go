package aws_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/smithy-go"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/webhook"
)

// packageTimeout bounds the wait for a package: a Fargate task start, the
// Benchling export and the extraction.
const packageTimeout = 10 * time.Minute

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// gatewayAnswer is the deployed API's JSON answer.
type gatewayAnswer struct {
	StatusCode   int
	Status       string `json:"status"`
	ExecutionArn string `json:"executionArn"`
}

var _ = Describe("The deployed stack", Ordered, func() {
	var (
		cfg       env
		s3c       *s3.Client
		sfnc      *sfn.Client
		sentAt    time.Time
		forged    gatewayAnswer
		forgedFor string
	)

	// body builds a webhook body as Benchling sends it.
	body := func(channel string, msg map[string]any) []byte {
		msg["deprecated"] = false
		b, err := json.Marshal(map[string]any{
			"version": "0", "baseURL": cfg.BenchlingURL, "tenantId": "ten_e2e",
			"app":           map[string]string{"id": cfg.AppID},
			"appDefinition": map[string]string{"id": cfg.AppDefinitionID, "versionNumber": "1.0.0"},
			"channel":       channel, "message": msg,
		})
		Expect(err).NotTo(HaveOccurred())
		return b
	}

	// post sends body, signed over signedBody, to path.
	post := func(path string, body, signedBody []byte) gatewayAnswer {
		GinkgoHelper()
		id := "msg_e2e" + randomHex(10)
		ts, sig, err := webhook.Sign(cfg.Key, id, time.Now(), signedBody)
		Expect(err).NotTo(HaveOccurred())
		req, err := http.NewRequest(http.MethodPost, cfg.APIURL+path, bytes.NewReader(body))
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhook.HeaderID, id)
		req.Header.Set(webhook.HeaderTimestamp, ts)
		req.Header.Set(webhook.HeaderSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var a gatewayAnswer
		_ = json.Unmarshal(raw, &a)
		a.StatusCode = resp.StatusCode
		GinkgoWriter.Printf("POST %s → %d %s\n", path, resp.StatusCode, raw)
		return a
	}

	entryEvent := func(entry string) map[string]any {
		return map[string]any{"type": "v2.entry.updated.fields", "id": "evt_e2e" + randomHex(6), "resourceId": entry,
			"createdAt": time.Now().UTC().Format("2006-01-02T15:04:05.000000+00:00"), "updates": []string{"fields.e2e"}}
	}

	// freshObject reports whether key exists and was written after sentAt
	// (an older object is a previous run's).
	freshObject := func(ctx context.Context, key string) error {
		out, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(cfg.Bucket), Key: aws.String(key)})
		if err != nil {
			return err
		}
		if out.LastModified == nil || out.LastModified.Before(sentAt.Add(-time.Minute)) {
			return errors.New(key + " is older than this run")
		}
		return nil
	}

	BeforeAll(func(ctx SpecContext) {
		cfg = loadEnv()
		awsCfg, err := config.LoadDefaultConfig(ctx)
		Expect(err).NotTo(HaveOccurred(), "load the AWS configuration")
		s3c = s3.NewFromConfig(awsCfg)
		sfnc = sfn.NewFromConfig(awsCfg)
		jwks, err := webhook.MarshalJWKS(map[string]*ecdsa.PublicKey{"e2e": &cfg.Key.PublicKey})
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("The stack's JWKS_URL must serve a key set containing this key:\n%s\n", jwks)
	})

	It("accepts a signed lifecycle webhook", func() {
		b := body("app_signals", map[string]any{"type": "v2.app.installed"})
		a := post("/lifecycle", b, b)
		Expect(a.StatusCode).To(Equal(http.StatusAccepted))
		Expect(a.Status).To(Equal("accepted"))
	})

	It("accepts a forged webhook at the API (verification happens in the state machine)", func() {
		forgedFor = "etr_e2eforged" + randomHex(4)
		signedBody := body("events", entryEvent(forgedFor))
		tampered := bytes.Replace(signedBody, []byte(`"fields.e2e"`), []byte(`"fields.forged"`), 1)
		Expect(tampered).NotTo(Equal(signedBody))
		forged = post("/event", tampered, signedBody)
		Expect(forged.StatusCode).To(Equal(http.StatusAccepted))
	})

	It("packages an entry event: README.md and entry.json appear in S3", func(ctx SpecContext) {
		sentAt = time.Now()
		b := body("events", entryEvent(cfg.EntryID))
		a := post("/event", b, b)
		Expect(a.StatusCode).To(Equal(http.StatusAccepted))
		prefix := cfg.Prefix + "/" + cfg.EntryID + "/"
		Eventually(func(ctx context.Context) error {
			return errors.Join(freshObject(ctx, prefix+"README.md"), freshObject(ctx, prefix+"entry.json"))
		}).WithContext(ctx).WithTimeout(packageTimeout).WithPolling(10 * time.Second).Should(Succeed())
	}, SpecTimeout(packageTimeout+time.Minute))

	It("did nothing for the forged webhook", func(ctx SpecContext) {
		out, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(cfg.Bucket),
			Prefix: aws.String(cfg.Prefix + "/" + forgedFor + "/")})
		Expect(err).NotTo(HaveOccurred())
		Expect(out.Contents).To(BeEmpty(), "objects written for the forged webhook")
		// An empty prefix alone proves little (the entry does not exist, so even an
		// accepted webhook would write nothing): the execution must say WebhookRejected.
		Expect(forged.ExecutionArn).NotTo(BeEmpty(), "the API answered without an executionArn")
		d, err := sfnc.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(forged.ExecutionArn)})
		var ae smithy.APIError
		if errors.As(err, &ae) && strings.Contains(ae.ErrorCode(), "AccessDenied") {
			Fail("the real-AWS suite needs states:DescribeExecution on the webhook state machine to check " + forged.ExecutionArn)
		}
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(ctx context.Context) (string, error) {
			d, err = sfnc.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(forged.ExecutionArn)})
			if err != nil {
				return "", err
			}
			return string(d.Status), nil
		}).WithContext(ctx).WithTimeout(5 * time.Minute).WithPolling(10 * time.Second).ShouldNot(Equal("RUNNING"))
		Expect(string(d.Status)).To(Equal("FAILED"))
		Expect(aws.ToString(d.Error)).To(Equal("WebhookRejected"))
	}, SpecTimeout(6*time.Minute))
})
