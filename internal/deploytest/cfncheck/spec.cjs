// Exports the CloudFormation resource specification from
// @aws-cdk/aws-service-spec as compact JSON on stdout, for the Go checker
// in internal/deploytest/cfncheck. Documentation is dropped; a property with previous
// types becomes a union of its current and previous types.
//
// Input: CFNCHECK_NODE_MODULES, the node_modules directory holding
// @aws-cdk/aws-service-spec.
// Output: {"version", "resources": {cfnType: {"properties", "attributes"}},
// "types": {id: {"name", "properties"}}} where a property is
// {"type": T, "required"?: true} and T is {"type": "string"|"integer"|...,
// "allowedValues"?}, {"type": "ref", "ref": id}, {"type": "array"|"map",
// "element": T} or {"type": "union", "types": [T]}.
'use strict';
const path = require('node:path');

const mod = path.join(process.env.CFNCHECK_NODE_MODULES, '@aws-cdk', 'aws-service-spec');
const { loadAwsServiceSpecSync } = require(mod);
const db = loadAwsServiceSpecSync();

function conv(t) {
  switch (t.type) {
    case 'ref':
      return { type: 'ref', ref: t.reference.$ref };
    case 'array':
    case 'map':
      return { type: t.type, element: conv(t.element) };
    case 'union':
      return { type: 'union', types: t.types.map(conv) };
    default:
      return t.allowedValues ? { type: t.type, allowedValues: t.allowedValues } : { type: t.type };
  }
}

function prop(p) {
  let type = conv(p.type);
  if (p.previousTypes && p.previousTypes.length > 0) {
    type = { type: 'union', types: [type, ...p.previousTypes.map(conv)] };
  }
  return p.required ? { type, required: true } : { type };
}

function props(ps) {
  const out = {};
  for (const [name, p] of Object.entries(ps)) out[name] = prop(p);
  return out;
}

const resources = {};
for (const r of db.all('resource')) {
  resources[r.cloudFormationType] = { properties: props(r.properties), attributes: Object.keys(r.attributes) };
}
const types = {};
for (const d of db.all('typeDefinition')) {
  types[d.$id] = { name: d.name, properties: props(d.properties) };
}
const version = require(path.join(mod, 'package.json')).version;
process.stdout.write(JSON.stringify({ version, resources, types }));
