// tests/browser/openapi-check.js: checks mlfcgi's OpenAPI document with
// tools that do not come from mlfcgi.
//
//   node openapi-check.js DOC.json CASES.json
//
// 1. DOC validates as OpenAPI 3.1 (@apidevtools/swagger-parser, against the
//    official 3.1 schema; every $ref resolves).
// 2. Every schema in components.schemas compiles as JSON Schema 2020-12 (ajv).
// 3. Every request example validates against its media type's schema.
// 4. Every case of CASES ([{method, path, status, body, desc}], answers
//    really received from mlfcgi) validates against the schema DOC gives for
//    that operation and status.
// Prints one line per check: "ok<TAB>description" or
// "not ok<TAB>description<TAB>why"; exits 0 (the caller counts).
"use strict";
const fs = require("fs");
const SwaggerParser = require("@apidevtools/swagger-parser");
const Ajv2020 = require("ajv/dist/2020").default;

function report(good, desc, why) {
  const line = (good ? "ok" : "not ok") + "\t" + desc;
  console.log(good ? line : line + "\t" + String(why).replace(/\s+/g, " ").slice(0, 600));
}

function ajvErrors(validate) {
  return (validate.errors || []).slice(0, 3)
    .map((e) => (e.instancePath || "/") + " " + e.message).join("; ");
}

function newAjv() {
  // "example" is OpenAPI's (deprecated) keyword; mlfcgi does not put it in
  // schemas, so strict mode would catch any other unknown keyword.
  return new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
}

async function main() {
  const [docPath, casesPath] = process.argv.slice(2);
  const text = fs.readFileSync(docPath, "utf8");
  const cases = casesPath ? JSON.parse(fs.readFileSync(casesPath, "utf8")) : [];
  let api;

  try {
    await SwaggerParser.validate(JSON.parse(text));
    report(true, "the document validates as OpenAPI 3.1 (swagger-parser)");
  } catch (e) {
    report(false, "the document validates as OpenAPI 3.1 (swagger-parser)", e.message);
  }
  try {
    api = await SwaggerParser.dereference(JSON.parse(text));
  } catch (e) {
    report(false, "the document dereferences", e.message);
    return;
  }

  const bad = [];
  for (const [name, schema] of Object.entries(api.components.schemas)) {
    try {
      newAjv().compile(schema);
    } catch (e) {
      bad.push(name + ": " + e.message);
    }
  }
  report(bad.length === 0, "all " + Object.keys(api.components.schemas).length +
    " component schemas compile as JSON Schema 2020-12 (ajv, strict)", bad.join("; "));

  for (const [path, item] of Object.entries(api.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!op.requestBody)
        continue;
      const why = [];
      let n = 0;
      for (const [type, media] of Object.entries(op.requestBody.content)) {
        const validate = newAjv().compile(media.schema);
        const examples = Object.entries(media.examples || {}).map(([k, v]) => [k, v.value]);
        if (media.example !== undefined)
          examples.push(["example", media.example]);
        for (const [k, value] of examples) {
          n++;
          if (!validate(value))
            why.push(type + " " + k + ": " + ajvErrors(validate));
        }
      }
      report(n > 0 && why.length === 0, method.toUpperCase() + " " + path + ": its " + n +
        " request examples match the request schemas", why.join("; ") || "no examples");
    }
  }

  for (const c of cases) {
    const op = (api.paths[c.path] || {})[c.method.toLowerCase()];
    const res = op && op.responses && op.responses[String(c.status)];
    const media = res && res.content && res.content["application/json"];
    if (!media) {
      report(false, c.desc, "the document has no JSON response " + c.status + " for " +
        c.method + " " + c.path);
      continue;
    }
    const validate = newAjv().compile(media.schema);
    report(validate(c.body), c.desc, ajvErrors(validate) + " body: " +
      JSON.stringify(c.body).slice(0, 300));
  }
}

main().catch((e) => {
  report(false, "openapi-check.js ran", e.stack || e);
});
