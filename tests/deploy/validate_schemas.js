// Validates Kubernetes objects against the API's schemas (the npm package kubernetes-models).
//
//   node validate_schemas.js OBJECTS.json
//
// OBJECTS.json: a JSON list of objects, each with "where" (for the messages) and "object".
// Prints one line per invalid object (its kind, name and the schema's complaint) and exits 1
// when there is any; an object of a kind the package does not know is invalid too.
"use strict";
const fs = require("fs");

const entries = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
let invalid = 0;
for (const { where, object } of entries) {
  const name = `${where}: ${object.kind}/${object.metadata && object.metadata.name}`;
  let Model;
  try {
    // "apps/v1" -> kubernetes-models/apps/v1/Deployment; "v1" -> kubernetes-models/v1/Service.
    Model = require(`kubernetes-models/${object.apiVersion}/${object.kind}`)[object.kind];
  } catch (e) {
    console.log(`${name}: no schema for apiVersion ${object.apiVersion}, kind ${object.kind}`);
    invalid++;
    continue;
  }
  try {
    new Model(object).validate();
  } catch (e) {
    console.log(`${name}: ${e.message.replace(/\s+/g, " ")}`);
    invalid++;
  }
}
console.log(`validate_schemas: ${entries.length - invalid} of ${entries.length} objects valid`);
process.exit(invalid > 0 ? 1 : 0);
