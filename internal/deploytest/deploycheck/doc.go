// Package deploycheck holds only tests: they check the Copilot deployment
// offline, as far as it can be checked without AWS.
//
//   - iam_test.go lints every policy in the addon templates: no wildcard
//     actions, no "*" or wildcard ARNs on data, invoke or pass-role actions,
//     and the least-privilege rules of each grant the workflows need.
//   - asl_test.go matches each state machine's ${Placeholders} with its
//     DefinitionSubstitutions, checks its logging and tracing, and that
//     its role allows every HTTP task it runs.
//   - vtl_test.go renders the webhook API's mapping templates with a real
//     VTL engine (the npm velocityjs, run by tools/node) and decodes and
//     verifies the result with the code job verify uses.
//   - manifest_test.go validates the Copilot manifests against JSON Schemas
//     of Copilot's documented fields (testdata/*.schema.json).
//   - addons_test.go keeps one copy of the addons and checks the
//     parameters Copilot passes to them.
//   - docs_test.go checks that the copilot commands in the docs use names
//     that exist.
package deploycheck
