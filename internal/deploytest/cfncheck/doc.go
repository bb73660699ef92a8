// Package cfncheck validates CloudFormation YAML templates (such as AWS
// Copilot addons) offline against the current resource specification.
//
// [Load] parses a template, short-form intrinsic tags (!Ref, !GetAtt, !Sub,
// …) included, into a plain tree in their long form, keeping source lines.
// [LoadSpec] runs an embedded Node script with tools/node's node to export
// the specification from @aws-cdk/aws-service-spec (the database CDK
// generates its L1 constructs from, rebuilt weekly from the CloudFormation
// registry schemas), and [Spec.Check] checks a template against it:
// resource types, property names, required properties, value kinds and
// enums, and every Ref, Fn::GetAtt, Fn::Sub variable, condition and
// DependsOn name. [Validate] does all three for one file.
//
// Why not an existing tool: goformation resolves intrinsics away and its
// schema has no required properties, enums or references, and is stale;
// the npm cfn-lint ships a 2019 specification.
package cfncheck
