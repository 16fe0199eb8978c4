// Cairn's web chat UI: plain JavaScript, no framework, no build step. `cairn serve` embeds this file
// and serves it as /assets/app.js; index.html holds the static shell and this module fills it in.
//
// Model output is untrusted: it is rendered with marked (raw HTML in it is shown as text, images as
// their alt text), then DOMPurify (a strict allow-list, no images or embedded content, links only
// http/https/mailto), and everything else this page shows from the server goes in as text nodes
// (textContent), never as HTML.

import { renderStep } from "/assets/steps.js";

const $ = (selector, root = document) => root.querySelector(selector);

const el = {
  appSelect: $("#app-select"),
  appDescription: $("#app-description"),
  question: $("#question"),
  send: $("#send"),
  stop: $("#stop"),
  composer: $("#composer"),
  newChat: $("#new-chat"),
  conversations: $("#conversations"),
  conversationsEmpty: $(".conversations-empty"),
  messages: $("#messages"),
  chatStatus: $("#chat-status"),
  banner: $("#error-banner"),
  bannerText: $(".error-banner-text"),
  bannerClose: $(".error-banner-close"),
  sidebarToggle: $("#sidebar-toggle"),
  sidebar: $("#sidebar"),
  main: $("#main"),
  scrim: $(".sidebar-scrim"),
  serverStatus: $("#server-status"),
  userInfo: $("#user-info"),
  userName: $("#user-name"),
  citationPanel: $("#citation-panel"),
  detailsPanel: $("#details-panel"),
};

const state = {
  apps: [],
  conversations: [],
  currentId: null,
  streaming: null, // {controller, view}
  busy: false, // creating a conversation before the first message
  loadToken: 0,
};

/** Phone-sized screens, where the sidebar hides behind #sidebar-toggle (as in style.css). */
const narrow = window.matchMedia("(max-width: 760px)");

/** Per-message data, keyed by the message's <article>. */
const views = new WeakMap();

// ---------------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "hidden") node.hidden = Boolean(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

const ICONS = {
  pencil: "M4 20h4L19 9l-4-4L4 16v4zM14 6l4 4",
  trash: "M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3",
  copy: "M9 9h10v11H9zM5 15V4h10",
  refresh: "M20 11a8 8 0 1 0-2.3 5.7M20 5v6h-6",
  info: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM12 11v6M12 7.5v.5",
  up: "M7 11v9H4v-9zM7 11l4-8c1.7 0 3 1.3 3 3v3h5a2 2 0 0 1 2 2.3l-1.3 7A2 2 0 0 1 17.7 20H7",
  down: "M7 13V4H4v9zM7 13l4 8c1.7 0 3-1.3 3-3v-3h5a2 2 0 0 0 2-2.3l-1.3-7A2 2 0 0 0 17.7 4H7",
};

function icon(name, size = 16) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", size);
  svg.setAttribute("height", size);
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name]);
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  svg.append(path);
  return svg;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function announce(text) {
  el.chatStatus.textContent = "";
  // A fresh text node in a later task, so that repeating the same words is announced again.
  setTimeout(() => { el.chatStatus.textContent = text; }, 50);
}

function showBanner(message) {
  el.banner.hidden = false;
  el.bannerText.textContent = message;
}

function hideBanner() {
  el.banner.hidden = true;
  el.bannerText.textContent = "";
}

function titleOf(conversation) {
  return conversation && conversation.title && conversation.title.trim() ? conversation.title.trim() : "New conversation";
}

// ---------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(message, status = 0, code = null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const NETWORK_MESSAGE = "Cairn could not be reached. Check your network connection and that the server is running, then try again.";

async function errorFromResponse(response) {
  let message = `The server answered ${response.status}${response.statusText ? ` ${response.statusText}` : ""}. Try again in a moment.`;
  let code = null;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) {
      message = body.error.message;
      code = body.error.code || body.error.type || null;
    }
  } catch {
    // Not JSON: keep the generic message.
  }
  return new ApiError(message, response.status, code);
}

async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? { accept: "application/json" } : { accept: "application/json", "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    checkServer();
    throw new ApiError(NETWORK_MESSAGE);
  }
  if (!response.ok) {
    const error = await errorFromResponse(response);
    if (error.status === 401 && error.code === "login_required") signIn();
    throw error;
  }
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch {
    throw new ApiError("The server sent an answer this page could not read. Reload the page and try again.", response.status);
  }
}

/** Lineage is written in the background after an answer: a 404 right after it is expected. */
async function retryOn404(call, attempts = 8) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (error.status !== 404 || attempt >= attempts) throw error;
      await sleep(250 * attempt);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Markdown: marked, then DOMPurify with a strict allow-list. Until (or unless) both load, answers
// are shown as plain text.

let markdownToFragment = (text) => {
  const fragment = document.createDocumentFragment();
  fragment.append(h("p", { class: "plain-text", text }));
  return fragment;
};

const SANITIZE = {
  ALLOWED_TAGS: [
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var",
  ],
  ALLOWED_ATTR: ["href", "title", "start", "align", "colspan", "rowspan"],
  FORBID_TAGS: [
    "img", "picture", "source", "svg", "math", "style", "link", "meta", "base", "script", "noscript",
    "template", "form", "input", "button", "textarea", "select", "option", "iframe", "frame", "frameset",
    "object", "embed", "video", "audio", "track", "canvas", "dialog", "portal",
  ],
  FORBID_ATTR: ["style", "class", "id", "name", "src", "srcset", "action", "formaction", "ping", "background", "poster"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  ALLOW_UNKNOWN_PROTOCOLS: false,
  RETURN_DOM_FRAGMENT: true,
};

async function loadMarkdown() {
  try {
    const [{ Marked }, { default: DOMPurify }] = await Promise.all([
      import("/assets/vendor/marked.esm.js"),
      import("/assets/vendor/purify.es.mjs"),
    ]);
    if (!DOMPurify.isSupported) throw new Error("DOMPurify is not supported by this browser");
    const marked = new Marked({ gfm: true, breaks: false, async: false });
    marked.use({
      renderer: {
        // Raw HTML in an answer is shown as the text the model wrote, never parsed as markup.
        html({ text, block }) {
          const escaped = escapeHtml(text);
          return block ? `<p>${escaped.replace(/\n+$/, "")}</p>\n` : escaped;
        },
        // A Markdown image never loads anything: it becomes its alt text.
        image({ text, tokens }) {
          const alt = tokens ? this.parser.parseInline(tokens, this.parser.textRenderer) : text;
          return `<span>[${escapeHtml(alt || "image")}]</span>`;
        },
      },
    });
    DOMPurify.addHook("afterSanitizeAttributes", (node) => {
      if (node.nodeName === "A") {
        if (node.hasAttribute("href")) {
          node.setAttribute("target", "_blank");
          node.setAttribute("rel", "noopener noreferrer");
        } else {
          node.removeAttribute("target");
        }
      }
    });
    markdownToFragment = (text) => DOMPurify.sanitize(marked.parse(text), SANITIZE);
    return true;
  } catch (error) {
    console.warn("Markdown rendering unavailable:", error);
    showBanner("Answer formatting could not be loaded, so answers are shown as plain text. Reload the page to try again.");
    return false;
  }
}

const MARKER = /\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/g;
const HAS_MARKER = /\[\d{1,3}(?:\s*,\s*\d{1,3})*\]/; // not global: .test() keeps no state

/** Turns `[n]` (and `[n, m]`) in text into citation buttons, for the n that have a citation. */
function linkCitations(root, citations) {
  const known = new Map(citations.map((citation) => [Number(citation.index), citation]));
  if (known.size === 0) return;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      const parent = node.parentElement;
      if (parent && parent.closest("code, pre, a")) return NodeFilter.FILTER_REJECT;
      return HAS_MARKER.test(node.data) ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_SKIP;
    },
  });
  const nodes = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) nodes.push(node);
  for (const node of nodes) {
    const parts = [];
    let last = 0;
    for (const match of node.data.matchAll(MARKER)) {
      const numbers = match[1].split(",").map((n) => Number(n.trim()));
      if (!numbers.some((n) => known.has(n))) continue;
      parts.push(node.data.slice(last, match.index));
      for (const n of numbers) {
        const citation = known.get(n);
        if (citation) {
          parts.push(h("button", {
            type: "button",
            class: "citation-marker",
            "data-citation": n,
            "aria-label": `Source ${n}: ${citation.title || citation.source || "document"}`,
            text: String(n),
          }));
        } else {
          parts.push(`[${n}]`);
        }
      }
      last = match.index + match[0].length;
    }
    if (parts.length === 0) continue;
    parts.push(node.data.slice(last));
    node.replaceWith(...parts.filter((part) => part !== ""));
  }
}

// ---------------------------------------------------------------------------------------------
// Messages

function isNearBottom() {
  const m = el.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 120;
}

function scrollToBottom() {
  el.messages.scrollTop = el.messages.scrollHeight;
}

function clearMessages() {
  el.messages.replaceChildren();
}

function renderEmptyState() {
  if (state.apps.length === 0) return; // the no-apps notice stays
  const app = state.apps.find((a) => a.name === el.appSelect.value);
  const collections = app && app.collections && app.collections.length ? app.collections.join(", ") : null;
  el.messages.replaceChildren(h("div", { class: "empty-state" },
    h("h2", { text: "Ask your documents" }),
    h("p", { text: "Cairn answers from your organisation's documents and shows the passages it used, so you can check every answer." }),
    app ? h("p", { class: "muted" },
      `You are asking `, h("strong", { text: app.name }),
      app.description ? `: ${app.description}` : "",
      collections ? ` (collections: ${collections})` : "",
      ".") : null,
  ));
}

function messageLabel(role) {
  return role === "user" ? "You" : "Cairn";
}

function createMessage(message) {
  const view = {
    role: message.role,
    id: message.id || null,
    lineageId: message.lineage_id || null,
    text: message.content || "",
    citations: Array.isArray(message.citations) ? message.citations : [],
    state: message.state || "done",
    renderPending: false,
    rating: 0,
  };
  const article = h("article", {
    class: "message",
    "data-role": view.role,
    "data-state": view.state,
    "aria-label": view.role === "user" ? "Your question" : "Cairn's answer",
  });
  view.el = article;
  view.body = h("div", { class: "message-body" });
  article.append(h("p", { class: "message-author", text: messageLabel(view.role) }), view.body);

  if (view.role === "assistant") {
    view.progress = h("p", { class: "message-progress", hidden: true },
      h("span", { class: "typing", "aria-hidden": "true" }, h("span"), h("span"), h("span")),
      h("span", { class: "progress-text" }));
    view.notice = h("p", { class: "message-notice", hidden: true });
    view.sources = h("div", { class: "sources", hidden: true });
    // An agent's tool calls, one collapsible block each, shown as they run.
    view.steps = h("div", { class: "agent-steps", hidden: true });
    view.stepBlocks = new Map();
    view.awaiting = new Set();
    view.pending = null;
    view.copyStatus = h("span", { class: "copy-status", role: "status" });
    view.actions = h("div", { class: "message-actions", role: "group", "aria-label": "Answer actions", hidden: true },
      h("button", { type: "button", class: "action action-copy" }, icon("copy"), h("span", { text: "Copy" })),
      h("button", { type: "button", class: "action action-regenerate", hidden: true }, icon("refresh"), h("span", { text: "Regenerate" })),
      h("button", { type: "button", class: "action action-details", hidden: true }, icon("info"), h("span", { text: "Details" })),
      h("span", { class: "feedback-buttons", hidden: true },
        h("button", { type: "button", class: "action feedback-up", "aria-pressed": "false", "aria-label": "Good answer", title: "Good answer" }, icon("up")),
        h("button", { type: "button", class: "action feedback-down", "aria-pressed": "false", "aria-label": "Bad answer", title: "Bad answer" }, icon("down"))),
      view.copyStatus);
    const commentId = `feedback-comment-${Math.random().toString(36).slice(2)}`;
    view.feedbackForm = h("form", { class: "feedback-form", hidden: true },
      h("label", { for: commentId, class: "feedback-label", text: "Tell us more (optional)" }),
      h("textarea", { id: commentId, class: "feedback-comment", rows: "2", maxlength: "2000", placeholder: "What was good or wrong about this answer?" }),
      h("div", { class: "feedback-row" },
        h("button", { type: "submit", class: "button primary small feedback-send", text: "Send feedback" }),
        h("button", { type: "button", class: "button small feedback-cancel", text: "Cancel" }),
        h("span", { class: "feedback-error", role: "alert" })));
    view.feedbackThanks = h("p", { class: "feedback-thanks", role: "status", hidden: true, text: "Thanks! Your feedback was recorded." });
    article.insertBefore(view.steps, view.body);
    article.append(view.progress, view.notice, view.sources, view.actions, view.feedbackForm, view.feedbackThanks);
  }
  views.set(article, view);
  applyIds(view);
  renderBody(view);
  renderSources(view);
  return view;
}

function applyIds(view) {
  if (view.id) view.el.dataset.messageId = view.id;
  if (view.lineageId) view.el.dataset.lineageId = view.lineageId;
}

function appendMessage(message) {
  const stick = isNearBottom();
  const view = createMessage(message);
  // The welcome text (or a loading line) gives way to the conversation.
  for (const child of [...el.messages.children]) if (!child.matches(".message")) child.remove();
  el.messages.append(view.el);
  if (stick || message.role === "user") scrollToBottom();
  return view;
}

function renderBody(view) {
  if (view.role === "user") {
    view.body.textContent = view.text;
    return;
  }
  const stick = isNearBottom();
  const fragment = markdownToFragment(view.text);
  linkCitations(fragment, view.citations);
  view.body.replaceChildren(fragment);
  view.body.hidden = view.text === "" && view.state !== "done";
  if (stick) scrollToBottom();
}

/** Re-renders at most once a frame while an answer streams. */
function scheduleRender(view) {
  if (view.renderPending) return;
  view.renderPending = true;
  requestAnimationFrame(() => {
    view.renderPending = false;
    renderBody(view);
  });
}

/** "Title › heading › …", without repeating the title when the heading path starts with it. */
function citationPlace(citation) {
  const title = citation.title || citation.source || "Untitled document";
  const heading = Array.isArray(citation.heading_path) ? citation.heading_path.filter(Boolean).map(String) : [];
  while (heading.length && heading[0].trim() === title.trim()) heading.shift();
  return { title, heading };
}

function renderSources(view) {
  if (view.role !== "assistant") return;
  const citations = view.citations;
  view.sources.hidden = citations.length === 0;
  if (citations.length === 0) {
    view.sources.replaceChildren();
    return;
  }
  const list = h("ol", { class: "source-list" });
  for (const citation of citations) {
    const { title, heading } = citationPlace(citation);
    const label = [title, ...heading].join(" › ");
    list.append(h("li", {},
      h("button", { type: "button", class: "source-chip", "data-citation": citation.index, title: label },
        h("span", { class: "source-number", text: String(citation.index) }),
        h("span", { class: "source-label", text: label }))));
  }
  view.sources.replaceChildren(h("h3", { class: "sources-heading", text: "Sources" }), list);
}

function setState(view, newState) {
  const stick = view.el.isConnected && isNearBottom();
  view.state = newState;
  view.el.dataset.state = newState;
  view.el.setAttribute("aria-busy", newState === "streaming" ? "true" : "false");
  if (view.role !== "assistant") return;
  const streaming = newState === "streaming";
  view.progress.hidden = !(streaming && view.text === "");
  view.actions.hidden = streaming;
  const hasText = view.text.trim() !== "";
  $(".action-copy", view.actions).hidden = !hasText;
  $(".action-details", view.actions).hidden = !view.lineageId;
  $(".feedback-buttons", view.actions).hidden = !view.lineageId || newState === "error" || !hasText;
  updateRegenerateButtons();
  if (stick) scrollToBottom(); // the actions that just appeared stay in view
}

function setProgress(view, text) {
  $(".progress-text", view.progress).textContent = text;
  view.progress.hidden = !(view.state === "streaming" && view.text === "");
}

function setNotice(view, text, kind) {
  view.notice.hidden = !text;
  view.notice.textContent = text || "";
  view.notice.className = `message-notice${kind ? ` ${kind}` : ""}`;
  if (kind === "error") view.notice.setAttribute("role", "alert");
  else view.notice.removeAttribute("role");
}

/** Only the last answer of the conversation can be regenerated, and not while one streams. */
function updateRegenerateButtons() {
  const articles = [...el.messages.querySelectorAll(".message")];
  const last = articles[articles.length - 1];
  for (const article of articles) {
    const view = views.get(article);
    if (!view || view.role !== "assistant") continue;
    const button = $(".action-regenerate", view.actions);
    button.hidden = !(article === last && !state.streaming && view.regenerable !== false);
    if (!button.hidden) view.actions.hidden = false;
  }
}

function renderConversation(conversation) {
  clearMessages();
  const messages = Array.isArray(conversation.messages) ? conversation.messages : [];
  if (messages.length === 0) {
    renderEmptyState();
    return;
  }
  const fragment = document.createDocumentFragment();
  for (const message of messages) {
    const view = createMessage({ ...message, state: "done" });
    fragment.append(view.el);
  }
  el.messages.append(fragment);
  for (const article of el.messages.querySelectorAll(".message")) setState(views.get(article), "done");
  const last = messages[messages.length - 1];
  if (last.role === "user") {
    // Asked, never answered (the answer failed or was stopped before it was saved).
    const view = appendMessage({ role: "assistant", content: "", state: "error" });
    setNotice(view, "This question has no answer yet. Choose Regenerate to answer it.", "warning");
    view.notice.removeAttribute("role");
    setState(view, "error");
  }
  updateRegenerateButtons();
  scrollToBottom();
}

// ---------------------------------------------------------------------------------------------
// Streaming answers (fetch + ReadableStream: EventSource cannot POST)

/** Reads a text/event-stream body and calls onEvent({event, data}) for each event. */
async function readEventStream(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let eventName = "";
  let data = [];
  const line = (text) => {
    if (text === "") {
      if (data.length) onEvent({ event: eventName || "message", data: data.join("\n") });
      eventName = "";
      data = [];
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") eventName = value;
    else if (field === "data") data.push(value);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    // A trailing CR may be the first half of a CRLF: keep it for the next chunk.
    const lines = buffer.split(/\r\n|\r(?!$)|\n/);
    buffer = lines.pop();
    for (const text of lines) line(text);
  }
  if (buffer) line(buffer.replace(/\r$/, ""));
  line("");
}

function setStreaming(streaming) {
  el.send.hidden = streaming;
  el.stop.hidden = !streaming;
  el.stop.disabled = !streaming;
  updateSendButton();
}

function updateSendButton() {
  el.send.disabled = state.busy || Boolean(state.streaming) || state.apps.length === 0;
}

async function streamAnswer(conversationId, payload, view, { userView = null } = {}) {
  const controller = new AbortController();
  state.streaming = { controller, view };
  setStreaming(true);
  setState(view, "streaming");
  setProgress(view, "Searching the documents…");
  announce("Cairn is answering…");
  let finished = false;
  let regenerateAfterFailure = Boolean(payload.regenerate);

  const fail = (message) => {
    finished = true;
    view.regenerable = regenerateAfterFailure;
    renderBody(view);
    setNotice(view, message, "error");
    setState(view, "error");
    announce(`The answer failed: ${message}`);
  };

  try {
    let response;
    try {
      response = await fetch(`/v1/conversations/${encodeURIComponent(conversationId)}/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body: JSON.stringify(payload),
        signal: controller.signal,
      });
    } catch (error) {
      if (controller.signal.aborted) throw error;
      checkServer();
      throw new ApiError(NETWORK_MESSAGE);
    }
    if (!response.ok) {
      const error = await errorFromResponse(response);
      if (userView && !payload.regenerate) {
        // Nothing was saved: give the question back so it can be sent again.
        setState(userView, "error");
        userView.el.append(h("p", { class: "message-notice muted", text: "Not sent." }));
        if (!el.question.value.trim()) {
          el.question.value = payload.content;
          autosize();
        }
      }
      fail(error.message);
      return;
    }
    const type = response.headers.get("content-type") || "";
    if (!type.includes("text/event-stream")) {
      fail("The server did not send a streamed answer. Reload the page and try again.");
      return;
    }
    await readEventStream(response.body, ({ event, data }) => {
      let body;
      try {
        body = JSON.parse(data);
      } catch {
        return;
      }
      if (event === "start") {
        regenerateAfterFailure = true; // the question is saved from here on
        if (userView && body.user_message_id) {
          userView.id = body.user_message_id;
          applyIds(userView);
        }
        if (body.lineage_id) view.lineageId = body.lineage_id;
        applyIds(view);
        view.citations = Array.isArray(body.citations) ? body.citations : [];
        renderSources(view);
        const n = view.citations.length;
        setProgress(view, n ? `Found ${n} passage${n === 1 ? "" : "s"}. Writing the answer…` : "Writing the answer…");
      } else if (event === "step") {
        renderStep(view, body, { h, setProgress, onDecide: decideCall });
      } else if (event === "delta") {
        if (typeof body.text !== "string") return;
        view.text += body.text;
        view.progress.hidden = true;
        scheduleRender(view);
      } else if (event === "done") {
        finished = true;
        if (Array.isArray(body.citations) && body.citations.length) {
          view.citations = body.citations;
          renderSources(view);
        }
        if (body.message_id) view.id = body.message_id;
        if (body.lineage_id) view.lineageId = body.lineage_id;
        applyIds(view);
        renderBody(view);
        setNotice(view, "", null);
        if (body.finish_reason === "length") setNotice(view, "The answer reached its length limit and may be cut short.", "warning");
        if (body.finish_reason === "tool_calls" && Array.isArray(body.tool_calls) && body.tool_calls.length) {
          view.pending = { app: payload.app, calls: body.tool_calls, decisions: {} };
          setNotice(view, "The agent is waiting for your approval of the calls above.", "warning");
        }
        setState(view, "done");
        announce("The answer is ready.");
      } else if (event === "error") {
        fail(body.message || "The answer failed. Try again in a moment.");
      }
    });
    if (!finished) fail("The answer stopped unexpectedly: the connection to Cairn was closed. Choose Regenerate to try again.");
  } catch (error) {
    if (finished) {
      // Already settled by a done or error event (Stop pressed as the stream closed): keep that.
    } else if (controller.signal.aborted) {
      finished = true;
      view.regenerable = true;
      renderBody(view);
      setNotice(view, view.text ? "Stopped. The answer above is incomplete." : "Stopped before any answer was written.", "muted");
      setState(view, "stopped");
      announce("Stopped.");
    } else {
      fail(error instanceof ApiError ? error.message : "The connection to Cairn was lost while answering. Choose Regenerate to try again.");
    }
  } finally {
    if (state.streaming && state.streaming.controller === controller) state.streaming = null;
    setStreaming(false);
    updateRegenerateButtons();
    refreshConversations();
  }
}

async function sendQuestion() {
  const content = el.question.value.trim();
  if (!content || state.streaming || state.busy) return;
  const app = el.appSelect.value;
  if (!app) {
    showBanner("Choose an app before asking a question.");
    return;
  }
  hideBanner();
  let conversationId = state.currentId;
  if (!conversationId) {
    state.busy = true;
    updateSendButton();
    try {
      const conversation = await api("POST", "/v1/conversations", {});
      conversationId = conversation.id;
      state.conversations = [conversation, ...state.conversations.filter((c) => c.id !== conversation.id)];
      setCurrent(conversation.id, { push: true });
      renderConversations();
    } catch (error) {
      showBanner(`The conversation could not be started: ${error.message}`);
      return;
    } finally {
      state.busy = false;
      updateSendButton();
    }
  }
  el.question.value = "";
  autosize();
  const userView = appendMessage({ role: "user", content });
  setState(userView, "done");
  const view = appendMessage({ role: "assistant", content: "", state: "streaming" });
  await streamAnswer(conversationId, { app, content }, view, { userView });
}

/** Records the user's decision on a call an agent's run stopped at; once every such call of the
 *  answer is decided, the run goes on in a new answer. */
async function decideCall(view, callId, approved) {
  if (!view.pending || state.streaming || !state.currentId) return;
  view.pending.decisions[callId] = approved;
  if (![...view.awaiting].every((id) => id in view.pending.decisions)) return;
  const { app, calls, decisions } = view.pending;
  view.pending = null;
  setNotice(view, "", null);
  const fresh = appendMessage({ role: "assistant", content: "", state: "streaming" });
  await streamAnswer(state.currentId, { app, approvals: { calls, decisions } }, fresh);
}

async function regenerate(view) {
  if (state.streaming || !state.currentId) return;
  const app = el.appSelect.value;
  if (!app) {
    showBanner("Choose an app before regenerating the answer.");
    return;
  }
  hideBanner();
  closePanels();
  const fresh = createMessage({ role: "assistant", content: "", state: "streaming" });
  view.el.replaceWith(fresh.el);
  await streamAnswer(state.currentId, { app, regenerate: true }, fresh);
}

// ---------------------------------------------------------------------------------------------
// Answer actions: copy, regenerate, details, feedback

async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // Fall back below (no permission, or the document lost focus).
  }
  const area = h("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true", tabindex: "-1" });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

async function onCopy(view, button) {
  const ok = await copyText(view.text);
  button.focus();
  view.copyStatus.textContent = ok ? "Copied" : "Could not copy: select the text and copy it yourself.";
  view.copyStatus.classList.toggle("failed", !ok);
  clearTimeout(view.copyTimer);
  view.copyTimer = setTimeout(() => { view.copyStatus.textContent = ""; }, ok ? 2500 : 6000);
}

function chooseRating(view, rating) {
  view.rating = view.rating === rating ? 0 : rating;
  $(".feedback-up", view.actions).setAttribute("aria-pressed", String(view.rating === 1));
  $(".feedback-down", view.actions).setAttribute("aria-pressed", String(view.rating === -1));
  view.feedbackThanks.hidden = true;
  $(".feedback-error", view.feedbackForm).textContent = "";
  view.feedbackForm.hidden = view.rating === 0;
  if (view.rating !== 0) {
    $(".feedback-label", view.feedbackForm).textContent = view.rating === 1
      ? "What was helpful? (optional)"
      : "What was wrong or missing? (optional)";
    $(".feedback-comment", view.feedbackForm).focus();
  }
}

async function sendFeedback(view) {
  if (!view.rating || !view.lineageId) return;
  const send = $(".feedback-send", view.feedbackForm);
  const errorText = $(".feedback-error", view.feedbackForm);
  const comment = $(".feedback-comment", view.feedbackForm).value.trim();
  send.disabled = true;
  errorText.textContent = "";
  try {
    const body = { rating: view.rating };
    if (comment) body.comment = comment;
    await retryOn404(() => api("POST", `/v1/lineage/${encodeURIComponent(view.lineageId)}/feedback`, body));
    view.feedbackForm.hidden = true;
    $(".feedback-comment", view.feedbackForm).value = "";
    view.feedbackThanks.hidden = false;
    (view.rating === 1 ? $(".feedback-up", view.actions) : $(".feedback-down", view.actions)).focus();
  } catch (error) {
    errorText.textContent = `Your feedback was not sent: ${error.message}`;
  } finally {
    send.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Side panels: a citation's passage, an answer's details

let panelReturnFocus = null;
let citationToken = 0;
let detailsToken = 0;

function openPanel(panel, invoker) {
  for (const other of [el.citationPanel, el.detailsPanel]) {
    if (other !== panel && other.open) other.close();
  }
  if (!panel.open) {
    panelReturnFocus = invoker || document.activeElement;
    // A side panel beside the answer on wide screens; on narrow ones it covers the page, so it is
    // modal there (focus stays inside it until it closes).
    if (narrow.matches) panel.showModal();
    else panel.show();
  } else if (invoker) {
    panelReturnFocus = invoker;
  }
  document.body.classList.add("panel-open");
  $(".panel-close", panel).focus();
}

function closePanel(panel) {
  if (!panel.open) return;
  panel.close();
}

function closePanels() {
  closePanel(el.citationPanel);
  closePanel(el.detailsPanel);
}

for (const panel of [el.citationPanel, el.detailsPanel]) {
  $(".panel-close", panel).addEventListener("click", () => closePanel(panel));
  panel.addEventListener("close", () => {
    if (!el.citationPanel.open && !el.detailsPanel.open) {
      document.body.classList.remove("panel-open");
      if (panelReturnFocus && panelReturnFocus.isConnected) panelReturnFocus.focus();
      panelReturnFocus = null;
    }
  });
}

function formatScore(score) {
  return typeof score === "number" && Number.isFinite(score) ? score.toFixed(3) : "not known";
}

async function openCitation(view, index, invoker) {
  const citation = view.citations.find((c) => Number(c.index) === index);
  if (!citation) return;
  const panel = el.citationPanel;
  const token = ++citationToken;
  const { title, heading } = citationPlace(citation);
  $(".citation-number", panel).textContent = `[${citation.index}]`;
  $(".citation-title", panel).textContent = title;
  const headingEl = $(".citation-heading", panel);
  headingEl.textContent = heading.join(" › ");
  headingEl.hidden = heading.length === 0;
  const sourceEl = $(".citation-source", panel);
  const sourceText = citation.source || citation.url || "not known";
  if (citation.url && /^https?:\/\//i.test(citation.url)) {
    sourceEl.replaceChildren(h("a", { href: citation.url, target: "_blank", rel: "noopener noreferrer", text: sourceText }));
  } else {
    sourceEl.textContent = sourceText;
  }
  $(".citation-score", panel).textContent = `score ${formatScore(citation.score)}`;
  const passage = $(".citation-passage", panel);
  const note = $(".citation-note", panel);
  passage.replaceChildren(h("span", { class: "muted", text: "Loading the passage…" }));
  note.hidden = true;
  openPanel(panel, invoker);

  const charStart = Number(citation.char_start);
  const charEnd = Number(citation.char_end);
  try {
    if (!citation.document_id || !Number.isFinite(charStart) || !Number.isFinite(charEnd)) throw new Error("no position");
    const start = Math.max(0, charStart - 400);
    const end = charEnd + 400;
    const doc = await api("GET", `/v1/documents/${encodeURIComponent(citation.document_id)}/text?start=${start}&end=${end}`);
    if (token !== citationToken) return;
    // Offsets count characters (code points), not UTF-16 units.
    const chars = Array.from(String(doc.text || ""));
    const from = Number.isFinite(Number(doc.start)) ? Number(doc.start) : start;
    const to = Number.isFinite(Number(doc.end)) ? Number(doc.end) : from + chars.length;
    const markStart = Math.min(Math.max(charStart - from, 0), chars.length);
    const markEnd = Math.min(Math.max(charEnd - from, markStart), chars.length);
    if (markEnd <= markStart) throw new Error("the cited span is outside the text returned");
    const mark = h("mark", { text: chars.slice(markStart, markEnd).join("") });
    passage.replaceChildren(
      from > 0 ? "… " : "",
      chars.slice(0, markStart).join(""),
      mark,
      chars.slice(markEnd).join(""),
      Number.isFinite(Number(doc.total_chars)) && to < Number(doc.total_chars) ? " …" : "",
    );
    mark.scrollIntoView({ block: "nearest" });
  } catch (error) {
    if (token !== citationToken) return;
    passage.replaceChildren(h("mark", { text: citation.text || "" }));
    note.hidden = false;
    note.textContent = error instanceof ApiError
      ? `Only the cited passage is shown: the surrounding text could not be loaded (${error.message}).`
      : "Only the cited passage is shown: the surrounding text is not available.";
  }
}

function formatTokens(usage) {
  if (!usage) return "not known";
  const parts = [`${usage.input_tokens ?? "?"} in`, `${usage.output_tokens ?? "?"} out`];
  if (usage.cached_input_tokens) parts.push(`${usage.cached_input_tokens} cached`);
  if (usage.reasoning_tokens) parts.push(`${usage.reasoning_tokens} reasoning`);
  return parts.join(" · ");
}

async function openDetails(view, invoker) {
  if (!view.lineageId) return;
  const panel = el.detailsPanel;
  const token = ++detailsToken;
  const loading = $(".details-loading", panel);
  const errorEl = $(".details-error", panel);
  const content = $(".details-content", panel);
  loading.hidden = false;
  errorEl.hidden = true;
  content.hidden = true;
  openPanel(panel, invoker);
  try {
    const lineage = await retryOn404(() => api("GET", `/v1/lineage/${encodeURIComponent(view.lineageId)}`));
    if (token !== detailsToken) return;
    const version = lineage.prompt_version === null || lineage.prompt_version === undefined ? "" : String(lineage.prompt_version);
    $(".details-prompt", panel).textContent = lineage.prompt_name
      ? `${lineage.prompt_name}${version ? ` ${/^v/i.test(version) ? version : `v${version}`}` : ""}`
      : "none";
    $(".details-model", panel).textContent = [lineage.model || "not known", lineage.route ? `route ${lineage.route}` : null].filter(Boolean).join(" · ");
    $(".details-tokens", panel).textContent = formatTokens(lineage.usage);
    $(".details-cost", panel).textContent = typeof lineage.cost_usd === "number" ? `$${lineage.cost_usd.toFixed(4)}` : "not known";
    $(".details-latency", panel).textContent = typeof lineage.latency_ms === "number" ? `${Math.round(lineage.latency_ms).toLocaleString("en")} ms` : "not known";
    $(".details-status", panel).textContent = [lineage.status || "not known", lineage.error || null].filter(Boolean).join(": ");
    $(".details-app", panel).textContent = lineage.app || "not known";
    $(".details-guards", panel).textContent = formatVerdicts(lineage.guard_verdicts);
    $(".details-lineage", panel).textContent = lineage.id || view.lineageId;
    const passages = Array.isArray(lineage.retrieval) ? lineage.retrieval : [];
    $(".details-passages", panel).replaceChildren(...passages.map((p) => h("li", {},
      h("span", { class: "passage-title", text: `[${p.index}] ${p.title || p.source || "Untitled document"}` }),
      p.source && p.title ? h("span", { class: "muted", text: ` · ${p.source}` }) : null,
      h("span", { class: "passage-score", text: ` · score ${formatScore(p.score)}` }))));
    $(".details-no-passages", panel).hidden = passages.length > 0;
    loading.hidden = true;
    content.hidden = false;
  } catch (error) {
    if (token !== detailsToken) return;
    loading.hidden = true;
    errorEl.hidden = false;
    errorEl.textContent = error.status === 404
      ? "The details of this answer are not available yet. Close this panel and try again in a few seconds."
      : `The details could not be loaded: ${error.message}`;
  }
}

// "pii (input): redact, email ×2 · injection (retrieved_context): allow", or "none ran".
function formatVerdicts(verdicts) {
  if (!Array.isArray(verdicts) || verdicts.length === 0) return "none ran";
  return verdicts.map((v) => {
    const findings = Object.entries(v.findings || {}).map(([kind, n]) => (n > 1 ? `${kind} ×${n}` : kind));
    return `${v.guard} (${v.stage}): ${[v.action, ...findings].join(", ")}`;
  }).join(" · ");
}

el.messages.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target : null;
  if (!target) return;
  const article = target.closest(".message");
  const view = article && views.get(article);
  if (!view) return;
  const button = target.closest("button");
  if (!button) return;
  if (button.matches(".citation-marker, .source-chip")) openCitation(view, Number(button.dataset.citation), button);
  else if (button.matches(".action-copy")) onCopy(view, button);
  else if (button.matches(".action-regenerate")) regenerate(view);
  else if (button.matches(".action-details")) openDetails(view, button);
  else if (button.matches(".feedback-up")) chooseRating(view, 1);
  else if (button.matches(".feedback-down")) chooseRating(view, -1);
  else if (button.matches(".feedback-cancel")) chooseRating(view, view.rating);
});

el.messages.addEventListener("submit", (event) => {
  const form = event.target.closest(".feedback-form");
  if (!form) return;
  event.preventDefault();
  const view = views.get(form.closest(".message"));
  if (view) sendFeedback(view);
});

// ---------------------------------------------------------------------------------------------
// Conversations in the sidebar

function setCurrent(id, { push = false } = {}) {
  state.currentId = id;
  const hash = id ? `#c=${encodeURIComponent(id)}` : "";
  if (location.hash !== hash) {
    const url = `${location.pathname}${location.search}${hash}`;
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
  }
  for (const item of el.conversations.children) {
    const current = item.dataset.conversationId === id;
    item.classList.toggle("current", current);
    const open = $(".conversation-open", item);
    if (open) {
      if (current) open.setAttribute("aria-current", "page");
      else open.removeAttribute("aria-current");
    }
  }
  updateDocumentTitle();
}

function updateDocumentTitle() {
  const conversation = state.conversations.find((c) => c.id === state.currentId);
  document.title = conversation && conversation.title ? `${conversation.title} · Cairn` : "Cairn";
}

function conversationItem(conversation) {
  const title = titleOf(conversation);
  const current = conversation.id === state.currentId;
  const updated = conversation.updated_at ? new Date(conversation.updated_at) : null;
  return h("li", { class: `conversation${current ? " current" : ""}`, "data-conversation-id": conversation.id },
    h("button", {
      type: "button",
      class: "conversation-open",
      "aria-current": current ? "page" : null,
      title: updated && !Number.isNaN(updated.getTime()) ? `${title}\nUpdated ${updated.toLocaleString()}` : title,
      text: title,
    }),
    h("button", { type: "button", class: "icon-button conversation-rename", "aria-label": `Rename “${title}”`, title: "Rename" }, icon("pencil")),
    h("button", { type: "button", class: "icon-button conversation-delete", "aria-label": `Delete “${title}”`, title: "Delete" }, icon("trash")));
}

function renderConversations() {
  // Keep keyboard focus on the same control, and leave an item that is being renamed or
  // confirmed for deletion as it is.
  const active = document.activeElement;
  const activeItem = active && el.conversations.contains(active) ? active.closest("li[data-conversation-id]") : null;
  const activeClass = activeItem ? [...active.classList].find((c) => c.startsWith("conversation-")) : null;
  const editing = new Map([...el.conversations.querySelectorAll("li.editing")].map((li) => [li.dataset.conversationId, li]));
  el.conversations.replaceChildren(...state.conversations.map((c) => editing.get(c.id) || conversationItem(c)));
  el.conversationsEmpty.hidden = state.conversations.length > 0;
  if (activeItem && activeClass && !activeItem.classList.contains("editing")) {
    const item = [...el.conversations.children].find((li) => li.dataset.conversationId === activeItem.dataset.conversationId);
    const control = item && item.querySelector(`.${activeClass}`);
    if (control) control.focus();
  }
  updateDocumentTitle();
}

async function refreshConversations() {
  try {
    const list = await api("GET", "/v1/conversations");
    state.conversations = Array.isArray(list.data) ? list.data : [];
    renderConversations();
  } catch (error) {
    showBanner(`The conversation list could not be loaded: ${error.message}`);
  }
}

async function openConversation(id) {
  if (state.streaming) state.streaming.controller.abort();
  closePanels();
  hideBanner();
  setCurrent(id);
  const token = ++state.loadToken;
  el.messages.replaceChildren(h("p", { class: "loading muted", role: "status", text: "Loading the conversation…" }));
  try {
    const conversation = await api("GET", `/v1/conversations/${encodeURIComponent(id)}`);
    if (token !== state.loadToken) return;
    const known = state.conversations.find((c) => c.id === conversation.id);
    if (known) known.title = conversation.title;
    updateDocumentTitle();
    renderConversation(conversation);
  } catch (error) {
    if (token !== state.loadToken) return;
    if (error.status === 404) {
      showBanner("That conversation no longer exists: it may have been deleted. Start a new chat instead.");
    } else {
      showBanner(`The conversation could not be loaded: ${error.message}`);
    }
    setCurrent(null);
    renderEmptyState();
  }
}

function startNewChat({ focus = true } = {}) {
  if (state.streaming) state.streaming.controller.abort();
  closePanels();
  state.loadToken++;
  setCurrent(null, { push: Boolean(state.currentId) });
  renderEmptyState();
  closeSidebar();
  if (focus) el.question.focus();
}

function beginRename(item) {
  const id = item.dataset.conversationId;
  const conversation = state.conversations.find((c) => c.id === id);
  if (!conversation) return;
  const input = h("input", { type: "text", class: "conversation-title-input", "aria-label": "Conversation title", maxlength: "200" });
  input.value = conversation.title || "";
  const cancel = () => {
    const fresh = conversationItem(conversation);
    item.replaceWith(fresh);
    $(".conversation-rename", fresh).focus();
  };
  const form = h("form", { class: "conversation-rename-form" },
    input,
    h("button", { type: "submit", class: "button small primary conversation-rename-save", text: "Save" }),
    h("button", { type: "button", class: "button small conversation-rename-cancel", text: "Cancel", onclick: cancel }));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      cancel();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const title = input.value.trim();
    if (!title) {
      input.setAttribute("aria-invalid", "true");
      input.placeholder = "Type a title";
      input.focus();
      return;
    }
    input.disabled = true;
    try {
      const updated = await api("PATCH", `/v1/conversations/${encodeURIComponent(id)}`, { title });
      conversation.title = updated && typeof updated.title === "string" ? updated.title : title;
      const fresh = conversationItem(conversation);
      item.replaceWith(fresh);
      $(".conversation-open", fresh).focus();
      updateDocumentTitle();
      announce("Conversation renamed.");
    } catch (error) {
      input.disabled = false;
      input.focus();
      showBanner(`The conversation could not be renamed: ${error.message}`);
    }
  });
  item.classList.add("editing");
  item.replaceChildren(form);
  input.focus();
  input.select();
}

function beginDelete(item) {
  const id = item.dataset.conversationId;
  const conversation = state.conversations.find((c) => c.id === id);
  if (!conversation) return;
  const restore = () => {
    const fresh = conversationItem(conversation);
    item.replaceWith(fresh);
    $(".conversation-delete", fresh).focus();
  };
  const cancelButton = h("button", { type: "button", class: "button small conversation-delete-cancel", text: "Cancel", onclick: restore });
  const confirmButton = h("button", {
    type: "button",
    class: "button small danger conversation-delete-confirm",
    text: "Delete",
    onclick: async () => {
      confirmButton.disabled = true;
      try {
        await api("DELETE", `/v1/conversations/${encodeURIComponent(id)}`);
        const index = state.conversations.findIndex((c) => c.id === id);
        state.conversations = state.conversations.filter((c) => c.id !== id);
        item.remove();
        el.conversationsEmpty.hidden = state.conversations.length > 0;
        announce("Conversation deleted.");
        if (state.currentId === id) startNewChat({ focus: false });
        const next = el.conversations.children[Math.min(index, el.conversations.children.length - 1)];
        (next ? $(".conversation-open", next) : el.newChat).focus();
      } catch (error) {
        confirmButton.disabled = false;
        showBanner(`The conversation could not be deleted: ${error.message}`);
      }
    },
  });
  item.classList.add("editing");
  item.replaceChildren(h("div", { class: "conversation-confirm", role: "group", "aria-label": "Confirm deletion" },
    h("p", { text: `Delete “${titleOf(conversation)}”? This cannot be undone.` }),
    h("div", { class: "confirm-row" }, confirmButton, cancelButton)));
  item.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && item.classList.contains("editing")) {
      event.preventDefault();
      event.stopPropagation();
      restore();
    }
  });
  cancelButton.focus();
}

el.conversations.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("button") : null;
  const item = button && button.closest("li[data-conversation-id]");
  if (!item || item.classList.contains("editing")) return;
  if (button.matches(".conversation-open")) {
    const id = item.dataset.conversationId;
    if (id !== state.currentId || !el.messages.querySelector(".message")) {
      setCurrent(id, { push: true });
      openConversation(id);
    }
    closeSidebar();
    el.question.focus();
  } else if (button.matches(".conversation-rename")) {
    beginRename(item);
  } else if (button.matches(".conversation-delete")) {
    beginDelete(item);
  }
});

// ---------------------------------------------------------------------------------------------
// Sidebar on narrow screens


function openSidebar() {
  document.body.classList.add("sidebar-open");
  el.sidebarToggle.setAttribute("aria-expanded", "true");
  el.sidebarToggle.setAttribute("aria-label", "Hide conversations");
  el.scrim.hidden = false;
  el.main.inert = true; // keep Tab inside the open sidebar
  el.newChat.focus();
}

function closeSidebar({ returnFocus = false } = {}) {
  if (!document.body.classList.contains("sidebar-open")) return;
  document.body.classList.remove("sidebar-open");
  el.sidebarToggle.setAttribute("aria-expanded", "false");
  el.sidebarToggle.setAttribute("aria-label", "Show conversations");
  el.scrim.hidden = true;
  el.main.inert = false;
  if (returnFocus) el.sidebarToggle.focus();
}

el.sidebarToggle.addEventListener("click", () => {
  if (document.body.classList.contains("sidebar-open")) closeSidebar({ returnFocus: true });
  else openSidebar();
});
el.scrim.addEventListener("click", () => closeSidebar({ returnFocus: true }));
narrow.addEventListener("change", () => closeSidebar());

// ---------------------------------------------------------------------------------------------
// Composer and global keys

function autosize() {
  const q = el.question;
  q.style.height = "auto";
  q.style.height = `${Math.min(q.scrollHeight + 2, 220)}px`;
}

el.question.addEventListener("input", autosize);
el.question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.isComposing && event.keyCode !== 229) {
    event.preventDefault();
    sendQuestion();
  }
});
el.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  sendQuestion();
});
el.stop.addEventListener("click", () => {
  if (state.streaming) state.streaming.controller.abort();
  el.question.focus();
});
el.newChat.addEventListener("click", () => startNewChat());
el.bannerClose.addEventListener("click", () => {
  hideBanner();
  el.question.focus();
});
el.appSelect.addEventListener("change", () => {
  try {
    localStorage.setItem("cairn.app", el.appSelect.value);
  } catch {
    // Storage can be unavailable (private windows): the choice just is not remembered.
  }
  describeApp();
  if (!el.messages.querySelector(".message")) renderEmptyState();
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || event.defaultPrevented) return;
  if (el.citationPanel.open || el.detailsPanel.open) {
    event.preventDefault();
    closePanels();
  } else if (document.body.classList.contains("sidebar-open")) {
    event.preventDefault();
    closeSidebar({ returnFocus: true });
  }
});

window.addEventListener("popstate", () => {
  const id = conversationIdFromHash();
  if (id === state.currentId) return;
  if (id) openConversation(id);
  else startNewChat({ focus: false });
});

function conversationIdFromHash() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const id = params.get("c");
  return id && id.trim() ? id.trim() : null;
}

// ---------------------------------------------------------------------------------------------
// Start-up

function describeApp() {
  const app = state.apps.find((a) => a.name === el.appSelect.value);
  el.appDescription.textContent = app && app.description ? app.description : "";
}

async function loadApps() {
  try {
    const list = await api("GET", "/v1/apps");
    state.apps = Array.isArray(list.data) ? list.data : [];
  } catch (error) {
    state.apps = [];
    showBanner(`The apps could not be loaded, so questions cannot be sent: ${error.message} Reload the page to try again.`);
    el.messages.replaceChildren(h("div", { class: "notice error" },
      h("h2", { text: "Cairn is not available right now" }),
      h("p", { text: error.message })));
    return false;
  }
  if (state.apps.length === 0) {
    el.appSelect.replaceChildren(h("option", { value: "", text: "No apps configured" }));
    el.appSelect.disabled = true;
    el.question.disabled = true;
    el.messages.replaceChildren(h("div", { class: "notice" },
      h("h2", { text: "No apps are configured yet" }),
      h("p", {},
        "Cairn answers questions through an app: a model, a prompt and the document collections it searches. ",
        "Ask your administrator to add an ", h("code", { text: "[[apps]]" }), " section to ",
        h("code", { text: "cairn.toml" }), " (see ", h("code", { text: "cairn.example.toml" }),
        ") and restart ", h("code", { text: "cairn serve" }), ".")));
    updateSendButton();
    return false;
  }
  let remembered = null;
  try {
    remembered = localStorage.getItem("cairn.app");
  } catch {
    remembered = null;
  }
  el.appSelect.replaceChildren(...state.apps.map((app) => h("option", { value: app.name, text: app.name })));
  if (remembered && state.apps.some((a) => a.name === remembered)) el.appSelect.value = remembered;
  el.appSelect.disabled = false;
  el.question.disabled = false;
  describeApp();
  updateSendButton();
  return true;
}

/** With sign-in configured, a request without a session goes to the provider and comes back here. */
let signingIn = false;
function signIn() {
  if (signingIn) return;
  signingIn = true;
  location.assign(`/auth/login?return_to=${encodeURIComponent(location.pathname + location.hash)}`);
}

async function loadUser() {
  try {
    const me = await api("GET", "/v1/me");
    el.userName.textContent = me.name || me.user || "unknown";
    el.userInfo.title = me.auth === "none" ? "Single local user: sign-in is not configured" : `Signed in as ${me.user} (${me.auth})`;
    el.userInfo.hidden = false;
    $("#logout-form").hidden = !me.logout_url;
    return true;
  } catch (error) {
    el.userName.textContent = "not signed in";
    el.userInfo.hidden = false;
    return !(error.status === 401 && error.code === "login_required");
  }
}

async function checkServer() {
  const text = $(".server-status-text", el.serverStatus);
  try {
    const response = await fetch("/readyz", { headers: { accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    const ready = response.ok && body.status === "ready";
    el.serverStatus.dataset.status = ready ? "ready" : "down";
    text.textContent = ready ? "Server ready" : `Server ${body.status || `answered ${response.status}`}`;
  } catch {
    el.serverStatus.dataset.status = "down";
    text.textContent = "Server unreachable";
  }
}

async function start() {
  setStreaming(false);
  updateSendButton();
  checkServer();
  setInterval(checkServer, 60000);
  if (!(await loadUser())) return; // on its way to the sign-in page
  const [, appsOk] = await Promise.all([loadMarkdown(), loadApps(), refreshConversations()]);
  const id = conversationIdFromHash();
  if (id) {
    await openConversation(id);
  } else if (appsOk) {
    renderEmptyState();
  }
  document.documentElement.dataset.ready = "true";
}

window.addEventListener("unhandledrejection", (event) => {
  console.warn("Unhandled:", event.reason);
  showBanner(`Something went wrong: ${event.reason && event.reason.message ? event.reason.message : event.reason}. Reload the page to try again.`);
});

start();
