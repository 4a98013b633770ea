// tests/browser/browser.js: Debian's Chromium, headless, through the API
// docs (Swagger UI) and the form, as a person would use them.
//
//   node browser.js ROOT_URL PREFIX_URL SHOTS_DIR
//
// ROOT_URL is a web server with mlfcgi (serving iris) at "/", PREFIX_URL
// one with it under a prefix ("http://127.0.0.1:PORT/ml"). Chromium is
// $CHROMIUM, default /usr/bin/chromium. Every request the pages make must
// stay on 127.0.0.1 (the docs work offline); others are aborted and fail.
// Prints "ok<TAB>description" or "not ok<TAB>description<TAB>why" per check,
// "rid<TAB>id" per prediction made (for the caller to find in the audit
// log), and saves screenshots (docs.png, form.png) into SHOTS_DIR.
"use strict";
const path = require("path");
const { chromium } = require("playwright-core");

const [ROOT, PREFIX, SHOTS] = process.argv.slice(2);
const CLASSES = ["setosa", "versicolor", "virginica"];
const elsewhere = [];
const pageErrors = [];
let failures = 0;

function report(good, desc, why) {
  if (!good)
    failures++;
  const line = (good ? "ok" : "not ok") + "\t" + desc;
  console.log(good ? line : line + "\t" + String(why).replace(/\s+/g, " ").slice(0, 600));
}

// Runs one named step; an exception is that step's failure.
async function step(desc, fn) {
  try {
    const why = await fn();
    report(!why, desc, why);
  } catch (e) {
    report(false, desc, e.message);
  }
}

// The operation block of METHOD PATH in Swagger UI, expanded.
async function operation(page, method, p) {
  const op = page.locator(".opblock.opblock-" + method.toLowerCase()).filter({
    has: page.locator('.opblock-summary-path[data-path="' + p + '"]'),
  });
  if (!(await op.locator(".opblock-body").count()))
    await op.locator(".opblock-summary").click();
  return op;
}

// "Try it out", optionally an example and a body, "Execute": returns
// {status, body (parsed), url} of the answer Swagger UI shows.
async function tryItOut(op, opts = {}) {
  await op.locator("button.try-out__btn").click();
  if (opts.example)
    await op.locator("select.examples-select-element").selectOption({ label: opts.example });
  if (opts.body !== undefined)
    await op.locator("textarea.body-param__text").fill(opts.body);
  await op.locator("button.execute").click();
  const live = op.locator(".live-responses-table .response").first();
  await live.waitFor();
  const status = (await live.locator(".response-col_status").textContent()).trim();
  const text = await live.locator(".response-col_description pre").first().textContent();
  const url = (await op.locator(".request-url pre").textContent()).trim();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch (e) {
    body = text;
  }
  return { status, body, url };
}

function predictionWhy(r, wantUrl) {
  if (r.status !== "200")
    return "status " + r.status + ": " + JSON.stringify(r.body);
  if (r.url !== wantUrl)
    return "request went to " + r.url + ", not " + wantUrl;
  if (!r.body || !CLASSES.includes(r.body.label) || r.body.prediction !== CLASSES.indexOf(r.body.label) ||
      r.body.model !== "iris" || typeof r.body.request_id !== "string")
    return "not an iris prediction: " + JSON.stringify(r.body);
  console.log("rid\t" + r.body.request_id);
  return "";
}

async function docs(context) {
  const page = await context.newPage();
  await step("docs: GET /docs redirects to /docs/ and Swagger UI shows mlfcgi's document", async () => {
    const res = await page.goto(ROOT + "/docs");
    await page.locator(".swagger-ui .info .title").waitFor();
    const title = await page.locator(".swagger-ui .info .title").textContent();
    if (!page.url().endsWith("/docs/"))
      return "ended at " + page.url();
    if (!res || res.status() !== 200)
      return "status " + (res && res.status());
    return /^mlfcgi/.test(title) ? "" : "title: " + title;
  });
  await step("docs: every predict path of the document is listed", async () => {
    const paths = await page.locator(".opblock-summary-path").evaluateAll((els) =>
      els.map((e) => e.getAttribute("data-path")));
    const want = ["/predict", "/models/iris/predict", "/models/iris/versions/1.0.0/predict",
      "/models", "/models/{name}", "/health", "/ready"];
    const missing = want.filter((p) => !paths.includes(p));
    return missing.length ? "missing " + missing.join(", ") + " in " + paths.join(", ") : "";
  });
  let op;
  await step("docs: POST /predict, Try it out, Execute (the iris example) answers a prediction", async () => {
    op = await operation(page, "POST", "/predict");
    const r = await tryItOut(op);
    return predictionWhy(r, ROOT + "/predict");
  });
  await step("docs: the screenshot of that answer is a real picture", async () => {
    await op.locator(".live-responses-table").scrollIntoViewIfNeeded();
    const png = await page.screenshot({ path: path.join(SHOTS, "docs.png") });
    return png.length > 20000 ? "" : "only " + png.length + " bytes";
  });
  await step("docs: /models/iris/versions/1.0.0/predict with the example \"Features in schema order\"", async () => {
    const o = await operation(page, "POST", "/models/iris/versions/1.0.0/predict");
    const r = await tryItOut(o, { example: "Features in schema order" });
    return predictionWhy(r, ROOT + "/models/iris/versions/1.0.0/predict");
  });
  await step("docs: an invalid body shows mlfcgi's 422 with every failing field", async () => {
    const o = await operation(page, "POST", "/models/iris/predict");
    const r = await tryItOut(o, { body: '{"sepal_length": -1, "colour": "red"}' });
    if (r.status !== "422")
      return "status " + r.status;
    const types = (r.body.detail || []).map((d) => d.type).sort().join(",");
    return types === "extra_forbidden,greater_than,missing,missing,missing" ? "" : "detail types: " + types;
  });
  await page.close();

  const p2 = await context.newPage();
  await step("docs under a prefix: /ml/docs/ sends Try it out to /ml/predict", async () => {
    await p2.goto(PREFIX + "/docs/");
    await p2.locator(".swagger-ui .info .title").waitFor();
    const r = await tryItOut(await operation(p2, "POST", "/predict"));
    return predictionWhy(r, PREFIX + "/predict");
  });
  await p2.close();
}

// Fills the iris form at url with row, submits, and returns the text shown.
async function submitForm(page, url, row) {
  await page.goto(url);
  const names = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
  for (let i = 0; i < 4; i++)
    await page.fill("#" + names[i], String(row[i]));
  await page.click("#submit");
  await page.waitForFunction(() => {
    const r = document.getElementById("result");
    return r && r.textContent.length > 1 && r.textContent !== "\u2026";
  });
  return page.locator("#result").innerText();
}

async function form(context) {
  const page = await context.newPage();
  await step("form: row 52 of iris (6.4, 3.2, 4.5, 1.5) shows versicolor", async () => {
    const text = await submitForm(page, ROOT + "/", [6.4, 3.2, 4.5, 1.5]);
    const label = await page.locator("#label strong").textContent().catch(() => "");
    const rid = /request ([A-Za-z0-9._-]+)/.exec(text);
    if (rid)
      console.log("rid\t" + rid[1]);
    if (label !== "versicolor")
      return "shown: " + text;
    return /virginica/.test(text) && rid ? "" : "no probability table or request id: " + text;
  });
  await step("form: the screenshot of the answer is a real picture", async () => {
    const png = await page.screenshot({ path: path.join(SHOTS, "form.png"), fullPage: true });
    return png.length > 10000 ? "" : "only " + png.length + " bytes";
  });
  await step("form: sepal width 0 shows mlfcgi's error (greater than 0)", async () => {
    const text = await submitForm(page, ROOT + "/", [5.1, 0, 1.4, 0.2]);
    const cls = await page.locator("#result").getAttribute("class");
    return cls === "error" && /sepal_width: Input should be greater than 0/.test(text) ? "" :
      "class " + cls + ", shown: " + text;
  });
  await step("form: with ?api=/ml it posts to mlfcgi under the prefix (row 146: virginica)", async () => {
    const u = new URL(PREFIX);
    const text = await submitForm(page, u.origin + "/?api=" + u.pathname, [6.7, 3.0, 5.2, 2.3]);
    const label = await page.locator("#label strong").textContent().catch(() => "");
    const rid = /request ([A-Za-z0-9._-]+)/.exec(text);
    if (rid)
      console.log("rid\t" + rid[1]);
    return label === "virginica" ? "" : "label: " + label;
  });
  await page.close();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // Playwright gives it a fresh profile (--user-data-dir) of its own.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(60000);
  await context.route("**/*", (route) => {
    const u = new URL(route.request().url());
    if (u.hostname === "127.0.0.1")
      return route.continue();
    elsewhere.push(route.request().url());
    return route.abort();
  });
  context.on("page", (p) => p.on("pageerror", (e) => pageErrors.push(e.message)));
  try {
    await docs(context);
    await form(context);
  } finally {
    report(elsewhere.length === 0, "offline: no request left 127.0.0.1", elsewhere.join(" "));
    report(pageErrors.length === 0, "no JavaScript error on any page", pageErrors.join(" | "));
    await browser.close();
  }
}

main().catch((e) => {
  report(false, "browser.js ran", e.stack || e);
});
