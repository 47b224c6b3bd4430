// "Copy as curl" and "Copy as Python (tritonclient)" for the question just asked.

function shellQuote(text) {
  return `'${String(text).replace(/'/g, "'\\''")}'`;
}

function pyString(text) {
  return JSON.stringify(String(text));
}

/** curl for POST /v1/questions/{q}: the same query, the app header, the token from $ARGUS_TOKEN. */
export function curl({ origin, question, query, app, filename, type, tokens }) {
  const params = new URLSearchParams(query).toString();
  const url = `${origin}/v1/questions/${encodeURIComponent(question)}${params ? `?${params}` : ""}`;
  const lines = [`curl -sS -X POST ${shellQuote(url)}`];
  if (tokens) lines.push(`-H "Authorization: Bearer $ARGUS_TOKEN"`);
  if (app) lines.push(`-H ${shellQuote(`X-Argus-App: ${app}`)}`);
  lines.push(`-H ${shellQuote(`Content-Type: ${type || "application/octet-stream"}`)}`);
  lines.push(`--data-binary @${shellQuote(filename)}`);
  return lines.join(" \\\n  ");
}

/** The same photo through the KServe v2 protocol with tritonclient: v2 runs one model, so this
 * asks the exact version that answered the question's first model step. */
export function tritonPython({ origin, answer, query, filename, tokens }) {
  const model = answer.models[0];
  const host = new URL(origin).host;
  const step = Object.entries(answer.steps || {}).find(([, s]) => s.model && s.model.name === model.name);
  const parameters = {};
  for (const key of ["top_k", "conf"]) if (query[key] !== undefined) parameters[key] = Number(query[key]);
  if (query.crops) parameters.crops = true;
  const lines = [
    `# KServe v2 runs one model: ${model.name} version ${model.version}` +
      (step ? `, the model of the "${step[0]}" step of ${answer.question}.` : "."),
  ];
  if (tokens) lines.push("import os");
  lines.push(
    "import json",
    "",
    "import numpy as np",
    "import tritonclient.http as httpclient",
    "",
    `client = httpclient.InferenceServerClient(${pyString(host)})`,
    `with open(${pyString(filename)}, "rb") as f:`,
    "    photo = np.array([f.read()], dtype=np.object_)",
    'image = httpclient.InferInput("image", [1], "BYTES")',
    "image.set_data_from_numpy(photo)",
    "result = client.infer(",
    `    ${pyString(model.name)},`,
    "    [image],",
    `    model_version=${pyString(String(model.version))},`,
    '    outputs=[httpclient.InferRequestedOutput("answer", binary_data=False)],',
  );
  if (Object.keys(parameters).length) {
    lines.push(`    parameters=${JSON.stringify(parameters).replace(/true/g, "True")},`);
  }
  if (tokens) lines.push('    headers={"Authorization": "Bearer " + os.environ["ARGUS_TOKEN"]},');
  lines.push(")", 'print(json.loads(result.as_numpy("answer")[0]))', "client.close()");
  return lines.join("\n");
}
