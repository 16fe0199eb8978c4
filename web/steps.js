// An agent's steps in the web chat UI, as `/v1/conversations/{id}/messages` streams them (`step`
// events; see docs/agents.md), with Approve / Deny on calls that wait for the user. Everything the
// server sent goes in as text, never as HTML.

/**
 * Shows one step of an agent's run in its answer: a tool call as a collapsible block (its tool,
 * status and time; the arguments and any error inside), updated when the call ends; a model call
 * as the answer's progress line. `h` builds elements (text as text nodes), `setProgress` sets the
 * progress line.
 */
export function renderStep(view, step, { h, setProgress, onDecide }) {
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
      decision: null,
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
  if (step.status === "awaiting_approval" && !block.decision) {
    // The run stopped here: the user approves or denies the call, then it goes on.
    view.awaiting.add(step.call_id);
    block.status.textContent = "needs your approval";
    const decide = (approved) => {
      block.decision.replaceChildren(h("span", { class: "step-decided", text: approved ? "Approved" : "Denied" }));
      onDecide(view, step.call_id, approved);
    };
    block.decision = h("div", { class: "step-decision", role: "group", "aria-label": `Approve the call of ${step.tool}?` },
      h("button", { type: "button", class: "button primary small step-approve", text: "Approve" }),
      h("button", { type: "button", class: "button small step-deny", text: "Deny" }));
    block.decision.querySelector(".step-approve").addEventListener("click", () => decide(true));
    block.decision.querySelector(".step-deny").addEventListener("click", () => decide(false));
    block.el.open = true;
    block.el.append(block.decision);
  }
}
