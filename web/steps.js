// An agent's steps in the web chat UI, as `/v1/conversations/{id}/messages` streams them (`step`
// events; see docs/agents.md). Everything the server sent goes in as text, never as HTML.

/**
 * Shows one step of an agent's run in its answer: a tool call as a collapsible block (its tool,
 * status and time; the arguments and any error inside), updated when the call ends; a model call
 * as the answer's progress line. `h` builds elements (text as text nodes), `setProgress` sets the
 * progress line.
 */
export function renderStep(view, step, { h, setProgress }) {
  if (!step || step.kind !== "tool" || typeof step.call_id !== "string") {
    if (step && step.kind === "model") setProgress(view, step.tool_calls && step.tool_calls.length ? "Calling tools…" : "Writing the answer…");
    return;
  }
  const key = `${step.step}:${step.call_id}`;
  let block = view.stepBlocks.get(key);
  if (!block) {
    block = {
      status: h("span", { class: "step-status" }),
      details: h("pre", { class: "step-arguments" }),
      el: null,
    };
    block.el = h("details", { class: "agent-step" },
      h("summary", {}, h("span", { class: "step-tool", text: step.tool }), " ", block.status),
      block.details);
    view.stepBlocks.set(key, block);
    view.steps.append(block.el);
    view.steps.hidden = false;
  }
  block.el.dataset.status = step.status;
  const took = step.status === "running" ? "" : ` · ${step.latency_ms} ms`;
  block.status.textContent = step.status === "running" ? "running…" : `${step.status}${took}`;
  const args = JSON.stringify(step.arguments, null, 2);
  block.details.textContent = step.error ? `${args}\n\n${step.error}` : args;
  if (step.status === "running") setProgress(view, `Calling ${step.tool}…`);
}
