// The evals page: stored runs (GET /v1/evals/runs), one run's gates and cases
// (GET /v1/evals/runs/{id}) and two runs compared case by case (GET /v1/evals/compare).
// Everything is written with textContent: answers and reasons are untrusted text.

const $ = (selector, root = document) => root.querySelector(selector);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.append(cell);
    else td.textContent = cell === null || cell === undefined ? "" : String(cell);
    tr.append(td);
  }
  return tr;
}

function showError(message) {
  const banner = $("#error-banner");
  $(".error-banner-text", banner).textContent = message;
  banner.hidden = false;
}

async function api(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(body?.error?.message || `${path} answered ${response.status}`);
  }
  return body;
}

const mean = (value) => (typeof value === "number" ? value.toFixed(3) : "–");

function metricMeans(summary) {
  return (summary?.metrics || []).map((m) => `${m.name} ${mean(m.mean?.value)}`).join(" · ");
}

const checked = new Set();

async function loadRuns() {
  const suite = $("#suite-filter").value.trim();
  const query = suite ? `?suite=${encodeURIComponent(suite)}&limit=100` : "?limit=100";
  const { data } = await api(`/v1/evals/runs${query}`);
  const body = $("#runs tbody");
  body.replaceChildren();
  checked.clear();
  updateCompare();
  $("#runs").hidden = data.length === 0;
  $("#runs-empty").hidden = data.length !== 0;
  for (const run of data) {
    const box = element("input");
    box.type = "checkbox";
    box.setAttribute("aria-label", `compare run ${run.id}`);
    box.addEventListener("change", () => {
      if (box.checked) checked.add(run.id);
      else checked.delete(run.id);
      updateCompare();
    });
    const open = element("button", new Date(run.started_at).toLocaleString(), "link");
    open.type = "button";
    open.addEventListener("click", () => showRun(run.id).catch((e) => showError(e.message)));
    const tr = row([box, open, run.suite, run.summary?.target || run.target?.target || "",
      element("span", run.status, `status-${run.status}`), metricMeans(run.summary)]);
    tr.dataset.run = run.id;
    tr.dataset.started = run.started_at;
    body.append(tr);
  }
  document.documentElement.dataset.ready = "true";
}

function updateCompare() {
  $("#compare-button").disabled = checked.size !== 2;
}

async function showRun(id) {
  const { run, results } = await api(`/v1/evals/runs/${encodeURIComponent(id)}`);
  for (const tr of document.querySelectorAll("#runs tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.run === id);
  }
  $("#run-heading").textContent = `Run of ${run.suite} on ${run.summary?.target || ""}: ${run.status}`;
  const summary = run.summary || {};
  $("#run-meta").textContent = [
    `run ${run.id}`,
    summary.seconds !== undefined ? `${Number(summary.seconds).toFixed(1)} s` : null,
    summary.calls ? `${summary.calls.target} target and ${summary.calls.judge} judge calls (${summary.calls.cached} from the cache)` : null,
    summary.baseline ? `compared with ${summary.baseline}` : null,
  ].filter(Boolean).join(" · ");
  const gates = $("#gates tbody");
  gates.replaceChildren();
  for (const gate of summary.gates || []) {
    gates.append(row([gate.gate, element("span", gate.passed ? "pass" : "FAIL", gate.passed ? "verdict-pass" : "verdict-fail"), gate.detail]));
  }
  const cases = $("#cases tbody");
  cases.replaceChildren();
  for (const result of results) {
    const scores = Object.entries(result.metrics || {})
      .map(([name, score]) => (typeof score.value === "number" ? `${name} ${score.value.toFixed(2)}` : `${name} unmeasured`))
      .join(", ");
    const answer = result.output?.attempts?.[0]?.answer?.text ?? result.output?.attempts?.[0]?.error ?? "";
    const tr = row([result.case_id, element("span", result.passed ? "yes" : "no", result.passed ? "verdict-pass" : "verdict-fail"), scores, element("div", answer, "answer-cell")]);
    tr.dataset.case = result.case_id;
    cases.append(tr);
  }
  $("#run").hidden = false;
  $("#comparison").hidden = true;
}

async function compare() {
  // Older first: the comparison reads "before → after".
  const rows = [...document.querySelectorAll("#runs tbody tr")].filter((tr) => checked.has(tr.dataset.run));
  rows.sort((a, b) => a.dataset.started.localeCompare(b.dataset.started));
  const [before, after] = rows.map((tr) => tr.dataset.run);
  const result = await api(`/v1/evals/compare?before=${encodeURIComponent(before)}&after=${encodeURIComponent(after)}`);
  $("#comparison-meta").textContent = `${result.before.suite} ${before} → ${result.after.suite} ${after}`;
  const body = $("#comparison-table tbody");
  body.replaceChildren();
  for (const metric of result.metrics) {
    const c = metric.comparison;
    const tr = row([
      metric.metric,
      mean(metric.before_mean),
      mean(metric.after_mean),
      c ? `${c.difference.value >= 0 ? "+" : ""}${c.difference.value.toFixed(3)} [${c.difference.low.toFixed(3)}, ${c.difference.high.toFixed(3)}]` : "no paired cases",
      c ? c.better.join(", ") : "",
      c ? c.worse.join(", ") : "",
    ]);
    tr.dataset.metric = metric.metric;
    body.append(tr);
  }
  $("#comparison").hidden = false;
  $("#run").hidden = true;
}

$("#runs-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  loadRuns().catch((e) => showError(e.message));
});
$("#compare-button").addEventListener("click", () => compare().catch((e) => showError(e.message)));
loadRuns().catch((e) => {
  document.documentElement.dataset.ready = "true";
  showError(e.message);
});
