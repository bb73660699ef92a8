// Package aws_test is the end-to-end suite against a deployed stack; it runs
// only when the BW_E2E_* variables are set. See e2e/README.md.
package aws_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestAWS(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "e2e: deployed stack")
}

// env is the suite's configuration, from the environment.
type env struct {
	// APIURL is the deployed API's base URL (the stage URL, no trailing /).
	APIURL string
	// Bucket and Prefix are where the stack writes packages.
	Bucket, Prefix string
	// Key signs webhooks; the deployed verifier must trust its public half.
	Key *ecdsa.PrivateKey
	// AppDefinitionID is the stack's configured app definition.
	AppDefinitionID string
	// AppID goes into the webhook's app.id (optional).
	AppID string
	// EntryID is an entry of the tenant the stack can read and export.
	EntryID string
	// BenchlingURL goes into the webhook's baseURL (optional).
	BenchlingURL string
}

// required lists the variables without which the suite skips.
var required = []string{"BW_E2E_API_URL", "BW_E2E_BUCKET", "BW_E2E_PREFIX", "BW_E2E_SIGNING_KEY_FILE",
	"BW_E2E_APP_DEFINITION_ID", "BW_E2E_ENTRY_ID"}

// loadEnv reads the configuration, or skips the suite when it is missing.
func loadEnv() env {
	GinkgoHelper()
	var missing []string
	for _, k := range required {
		if os.Getenv(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		Skip(fmt.Sprintf("set BW_E2E_API_URL … to run against a deployed stack (missing: %s; see e2e/README.md)", strings.Join(missing, ", ")))
	}
	e := env{
		APIURL:          strings.TrimRight(os.Getenv("BW_E2E_API_URL"), "/"),
		Bucket:          os.Getenv("BW_E2E_BUCKET"),
		Prefix:          strings.Trim(os.Getenv("BW_E2E_PREFIX"), "/"),
		AppDefinitionID: os.Getenv("BW_E2E_APP_DEFINITION_ID"),
		AppID:           os.Getenv("BW_E2E_APP_ID"),
		EntryID:         os.Getenv("BW_E2E_ENTRY_ID"),
		BenchlingURL:    os.Getenv("BW_E2E_BENCHLING_URL"),
	}
	if e.AppID == "" {
		e.AppID = "app_e2e"
	}
	if e.BenchlingURL == "" {
		e.BenchlingURL = "https://e2e.benchling.com"
	}
	e.Key = loadKey(os.Getenv("BW_E2E_SIGNING_KEY_FILE"))
	return e
}

// loadKey reads a PEM EC private key (SEC 1 "EC PRIVATE KEY" or PKCS #8
// "PRIVATE KEY").
func loadKey(path string) *ecdsa.PrivateKey {
	GinkgoHelper()
	data, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred(), "BW_E2E_SIGNING_KEY_FILE")
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		switch block.Type {
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(block.Bytes)
			Expect(err).NotTo(HaveOccurred(), "parse %s", path)
			return k
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			Expect(err).NotTo(HaveOccurred(), "parse %s", path)
			ec, ok := k.(*ecdsa.PrivateKey)
			Expect(ok).To(BeTrue(), "%s holds a %T, not an EC key", path, k)
			return ec
		}
	}
	Fail(path + ": no EC PRIVATE KEY or PRIVATE KEY PEM block")
	return nil
}
