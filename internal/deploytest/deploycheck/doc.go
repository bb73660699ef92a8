// Package deploycheck holds only tests: IAM lint, ASL substitutions, the
// mapping template rendered and verified, manifest schemas, the addon link
// and doc commands. See docs/testkit.md#deployment-checks-internaldeploytest.
package deploycheck
