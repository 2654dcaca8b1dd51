// Validate a Teams app manifest against its JSON schema with Microsoft's @microsoft/app-manifest,
// offline: the schema named by the manifest's $schema must be one the package bundles.
// Usage: node tests/js/validate_manifest.js [manifest.json]   (or the manifest on stdin)
// Output (stdout): {"schema": URL, "valid": true|false, "errors": [...]}.
// Exit status: 0 valid, 1 invalid, 2 could not validate (bad JSON, schema not bundled).
const fs = require("fs");
const path = require("path");
const { AppManifestUtils } = require("@microsoft/app-manifest");

const PACKAGE_DIR = path.dirname(require.resolve("@microsoft/app-manifest/package.json"));

function finish(result, status) {
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exitCode = status;
}

// https://developer.microsoft.com/[en-us/]json-schemas/teams/v1.30/X.json -> the bundled copy.
function bundledSchemaFile(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.hostname !== "developer.microsoft.com") return null;
  const match = parsed.pathname.match(/^(?:\/[a-z]{2}(?:-[a-z]{2})?)?\/(json-schemas\/teams\/[^?#]+\.json)$/i);
  if (!match) return null;
  const file = path.join(PACKAGE_DIR, "build", match[1]);
  return fs.existsSync(file) ? file : null;
}

async function main() {
  const text = process.argv[2] ? fs.readFileSync(process.argv[2], "utf8") : fs.readFileSync(0, "utf8");
  let manifest;
  try {
    manifest = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (error) {
    return finish({ schema: null, valid: false, errors: ["not JSON: " + error.message] }, 2);
  }
  const url = manifest && manifest.$schema;
  const file = typeof url === "string" ? bundledSchemaFile(url) : null;
  if (!file) {
    // Never let the package fall back to downloading a schema: these checks run offline.
    return finish(
      { schema: url || null, valid: false, errors: ["$schema is missing or not a schema bundled with @microsoft/app-manifest"] },
      2,
    );
  }
  // The package's own loader does the same clean-up: some schemas carry \a and \v escapes.
  const schema = JSON.parse(fs.readFileSync(file, "utf8").replace(/\\a/g, "\\u0007").replace(/\\v/g, "\\u000b"));
  const errors = await AppManifestUtils.validateAgainstSchema(manifest, schema);
  finish({ schema: url, valid: errors.length === 0, errors }, errors.length === 0 ? 0 : 1);
}

main().catch((error) => finish({ schema: null, valid: false, errors: [String(error && error.stack || error)] }, 2));
