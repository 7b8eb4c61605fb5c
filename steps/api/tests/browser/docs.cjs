// Drives the API's Swagger UI in headless Chromium as a user would: loads /docs, lists the
// routes it shows, and runs "Try it out" on getRecord authorized by an API key, then by a JWT.
// Usage: NODE_PATH=<dir with playwright-core> node docs.cjs BASE_URL API_KEY JWT DATASET ID;
// prints one JSON object.
const { chromium } = require("playwright-core");

(async () => {

const [base, apiKey, bearer, dataset, id] = process.argv.slice(2);

// Authorizes with one security scheme, then "Try it out" on getRecord: its status and body.
async function tryGetRecord(page, scheme, credential) {
  await page.click("button.authorize");
  const section = page.locator(".auth-container").filter({ hasText: scheme });
  await section.locator("input").fill(credential);
  await section.locator("button.authorize").click();
  await page.click("button.btn-done");
  const operation = page.locator("#operations-records-getRecord");
  await operation.locator(".opblock-summary").first().click();
  await operation.locator("button.try-out__btn").click();
  await operation.locator('input[placeholder="dataset"]').fill(dataset);
  await operation.locator('input[placeholder="id"]').fill(id);
  await operation.locator("button.execute").click();
  const status = operation.locator(".live-responses-table tbody .response-col_status").first();
  await status.waitFor({ timeout: 20000 });
  const body = operation.locator(".live-responses-table tbody .response-col_description pre").first();
  return { status: (await status.textContent()).trim(), body: (await body.textContent()).trim() };
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const result = { requests_outside: [] };
try {
  const page = await browser.newPage();
  // Every asset must come from the server itself: a request elsewhere is reported.
  page.on("request", (request) => {
    if (!request.url().startsWith(base) && !request.url().startsWith("data:")) {
      result.requests_outside.push(request.url());
    }
  });
  await page.goto(`${base}/docs`, { waitUntil: "networkidle" });
  await page.waitForSelector(".opblock", { timeout: 20000 });
  result.title = await page.title();
  result.routes = await page.$$eval(".opblock", (blocks) =>
    blocks.map((block) => {
      const method = block.querySelector(".opblock-summary-method")?.textContent?.trim();
      const path = block.querySelector(".opblock-summary-path")?.getAttribute("data-path");
      return `${method} ${path}`;
    }),
  );

  result.with_api_key = await tryGetRecord(page, "apiKeyHeader", apiKey);
  // A fresh page: authorized with the bearer token only.
  const second = await browser.newPage();
  await second.goto(`${base}/docs`, { waitUntil: "networkidle" });
  await second.waitForSelector(".opblock", { timeout: 20000 });
  result.with_bearer = await tryGetRecord(second, "bearer", bearer);
} catch (err) {
  result.error = String(err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
})();
