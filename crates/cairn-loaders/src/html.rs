//! HTML: the page's main content rendered as readable, Markdown-like text (headings as `## Title`
//! lines, list items as `- `, blocks separated by blank lines, preformatted text kept), with its
//! headings recorded. It fetches nothing and runs no script.
//!
//! Parsing is `scraper` (html5ever, the browsers' parsing algorithm: broken markup is repaired the
//! way a browser would, entities are decoded), already in Cairn's dependency graph through
//! mistral.rs. Readability-style extractors (`dom_smoothie`, `readability`) were passed over: they
//! score and rewrite the page, drop headings and short sections they judge to be boilerplate, and
//! return HTML or text without positions, so the heading offsets would have to be recovered by
//! searching. Documentation pages, which are most of what a RAG corpus holds, mark their content
//! with `<main>`/`<article>` and their chrome with `<nav>`/`<header>`/`<footer>`; choosing the
//! content element and dropping the chrome by tag is predictable, keeps every heading, and writes
//! the offsets as the text is produced.

use ego_tree::NodeRef;
use ego_tree::iter::Edge;
use scraper::{ElementRef, Html, Node};
use serde_json::{Map, Value};

use crate::markdown::collapse_whitespace;
use crate::{
    CharOffsets, DocumentError, Format, Heading, LoadedDocument, fallback_title, is_http_url,
};

/// Elements whose content is never part of the text: code, styling, chrome, forms, embeds.
const DROPPED: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
    "iframe", "svg", "button", "head", "title", "object", "embed", "canvas", "select", "textarea",
    "dialog", "math", "video", "audio", "map",
];

/// Elements that start and end a block (a blank line around them).
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "blockquote",
    "body",
    "center",
    "details",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "hgroup",
    "hr",
    "html",
    "legend",
    "main",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "ul",
    "caption",
];

/// Elements that start a new line but not a paragraph.
const LINES: &[&str] = &["li", "dt", "dd", "tr", "br", "thead", "tbody", "tfoot"];

/// Loads an HTML document from its (decoded, non-empty) text.
pub(crate) fn load(source: &str, html: &str) -> Result<LoadedDocument, DocumentError> {
    let document = Html::parse_document(html);
    let root = document.root_element();
    let content = content_root(root);

    let mut renderer = Renderer::default();
    renderer.render(*content);
    let Rendered { text, headings } = renderer.finish();
    if text.trim().is_empty() {
        return Err(DocumentError::new(
            source,
            "has no text content once scripts, navigation, headers and footers are removed; check that the page is not rendered by JavaScript",
        ));
    }

    let mut metadata = Map::new();
    metadata.insert("format".into(), Value::from(Format::Html.as_str()));
    if let Some(lang) = root
        .value()
        .attr("lang")
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        metadata.insert("language".into(), Value::from(lang));
    }
    for element in root.descendants().filter_map(ElementRef::wrap) {
        let value = element.value();
        match value.name() {
            "meta" => {
                let name = value
                    .attr("name")
                    .or_else(|| value.attr("property"))
                    .unwrap_or_default();
                let key = match name.to_ascii_lowercase().as_str() {
                    "description" | "og:description" => "description",
                    "author" => "author",
                    "keywords" => "keywords",
                    _ => continue,
                };
                if let Some(content) = value
                    .attr("content")
                    .map(collapse_whitespace)
                    .filter(|c| !c.is_empty())
                {
                    metadata.entry(key).or_insert(Value::from(content));
                }
            }
            "link"
                if value
                    .attr("rel")
                    .is_some_and(|r| r.eq_ignore_ascii_case("canonical")) =>
            {
                if let Some(href) = value.attr("href").filter(|h| is_http_url(h)) {
                    metadata.entry("canonical_url").or_insert(Value::from(href));
                }
            }
            _ => {}
        }
    }

    let page_title = root
        .descendants()
        .filter_map(ElementRef::wrap)
        .find(|e| e.value().name() == "title" && !has_ancestor(**e, &["svg"]))
        .map(|e| collapse_whitespace(&e.text().collect::<String>()))
        .filter(|t| !t.is_empty());
    let title = page_title
        .or_else(|| {
            headings
                .iter()
                .find(|h| h.level == 1)
                .map(|h| h.title.clone())
        })
        .unwrap_or_else(|| fallback_title(source));

    Ok(LoadedDocument {
        source: source.to_owned(),
        title,
        text,
        format: Format::Html,
        headings,
        url: None,
        metadata,
    })
}

/// `<main>`, else the page's only `<article>`, else `[role=main]`, else `<body>`, else the whole
/// document. Several `<article>`s are a listing (a blog index): the body is the content then.
fn content_root(root: ElementRef<'_>) -> ElementRef<'_> {
    let elements = || root.descendants().filter_map(ElementRef::wrap);
    if let Some(main) = elements().find(|e| e.value().name() == "main") {
        return main;
    }
    let mut articles = elements().filter(|e| e.value().name() == "article");
    if let (Some(article), None) = (articles.next(), articles.next()) {
        return article;
    }
    if let Some(main) = elements().find(|e| {
        e.value()
            .attr("role")
            .is_some_and(|r| r.eq_ignore_ascii_case("main"))
    }) {
        return main;
    }
    elements()
        .find(|e| e.value().name() == "body")
        .unwrap_or(root)
}

fn has_ancestor(node: NodeRef<'_, Node>, names: &[&str]) -> bool {
    node.ancestors()
        .filter_map(ElementRef::wrap)
        .any(|e| names.contains(&e.value().name()))
}

/// Whether an element and everything in it stays out of the text.
fn is_dropped(element: ElementRef<'_>) -> bool {
    let value = element.value();
    let name = value.name();
    // An article's own header carries its title and byline: keep it; a page's header is chrome.
    if name == "header" && has_ancestor(*element, &["article"]) {
        return false;
    }
    if DROPPED.contains(&name) {
        return true;
    }
    if value.attr("hidden").is_some()
        || value
            .attr("aria-hidden")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return true;
    }
    value.attr("style").is_some_and(|style| {
        let style: String = style.chars().filter(|c| !c.is_whitespace()).collect();
        style.to_ascii_lowercase().contains("display:none")
    })
}

struct Rendered {
    text: String,
    headings: Vec<Heading>,
}

/// Writes text as the tree is walked (iteratively: deep markup cannot overflow the stack).
#[derive(Default)]
struct Renderer {
    out: String,
    /// Newlines owed before the next text: 1 (new line) or 2 (new paragraph).
    pending_break: usize,
    /// A space is owed before the next word.
    pending_space: bool,
    /// Inside `<pre>`: text is copied as it is.
    pre_depth: usize,
    /// The open lists: `None` for `<ul>`, `Some(next number)` for `<ol>`.
    lists: Vec<Option<u64>>,
    /// The heading being written: its byte offset, where its title starts, its level.
    heading: Option<(usize, usize, u8)>,
    /// Headings by byte offset; converted to characters at the end.
    headings: Vec<(usize, u8, String)>,
    /// Whether the current table row has a cell already.
    row_has_cell: bool,
    /// Open table cells: a cell's content stays on its row.
    cell_depth: usize,
    /// A list marker was just written: the item's first block (`<li><p>…`) starts on its line.
    fresh_marker: bool,
}

impl Renderer {
    fn render(&mut self, content: NodeRef<'_, Node>) {
        let mut skipping: Option<ego_tree::NodeId> = None;
        for edge in content.traverse() {
            match edge {
                Edge::Open(node) => {
                    if skipping.is_some() {
                        continue;
                    }
                    match node.value() {
                        Node::Text(text) => self.text(text),
                        Node::Element(_) => {
                            let Some(element) = ElementRef::wrap(node) else {
                                continue;
                            };
                            if node.id() != content.id() && is_dropped(element) {
                                skipping = Some(node.id());
                                continue;
                            }
                            self.open(element.value().name(), element);
                        }
                        _ => {}
                    }
                }
                Edge::Close(node) => {
                    if let Some(skipped) = skipping {
                        if skipped == node.id() {
                            skipping = None;
                        }
                        continue;
                    }
                    if let Some(element) = ElementRef::wrap(node) {
                        self.close(element.value().name());
                    }
                }
            }
        }
    }

    fn open(&mut self, name: &str, element: ElementRef<'_>) {
        match name {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                if self.heading.is_some() {
                    return;
                }
                let level = name.as_bytes()[1] - b'0';
                self.block_break(2);
                self.flush_break();
                let start = self.out.len();
                self.out.push_str(&"#".repeat(usize::from(level)));
                self.out.push(' ');
                self.pending_space = false;
                self.heading = Some((start, self.out.len(), level));
            }
            "pre" => {
                self.block_break(2);
                self.pre_depth += 1;
            }
            "ul" | "ol" => {
                // A list nested in an item continues the item's block.
                self.block_break(if self.lists.is_empty() { 2 } else { 1 });
                let start = element
                    .value()
                    .attr("start")
                    .and_then(|s| s.trim().parse().ok());
                self.lists.push((name == "ol").then(|| start.unwrap_or(1)));
            }
            "li" => {
                self.fresh_marker = false;
                self.block_break(1);
                self.flush_break();
                let depth = self.lists.len().saturating_sub(1);
                self.out.push_str(&"  ".repeat(depth));
                match self.lists.last_mut() {
                    Some(Some(number)) => {
                        self.out.push_str(&format!("{number}. "));
                        *number += 1;
                    }
                    _ => self.out.push_str("- "),
                }
                self.pending_space = false;
                self.fresh_marker = true;
            }
            "tr" => {
                self.block_break(1);
                self.row_has_cell = false;
            }
            "td" | "th" => {
                if self.row_has_cell {
                    self.flush_break();
                    self.out.push_str(" | ");
                    self.pending_space = false;
                }
                self.row_has_cell = true;
                self.cell_depth += 1;
            }
            "br" => {
                if self.pre_depth > 0 {
                    self.out.push('\n');
                } else if self.inline_only() {
                    self.pending_space = true;
                } else {
                    self.line_break();
                }
            }
            "img" => {
                if let Some(alt) = element
                    .value()
                    .attr("alt")
                    .map(collapse_whitespace)
                    .filter(|a| !a.is_empty())
                {
                    self.words(&alt);
                }
            }
            _ if BLOCKS.contains(&name) => self.block_break(2),
            _ if LINES.contains(&name) => self.block_break(1),
            _ => {}
        }
    }

    fn close(&mut self, name: &str) {
        match name {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let Some((start, title_start, level)) = self.heading else {
                    return;
                };
                if name.as_bytes()[1] - b'0' != level {
                    return;
                }
                self.heading = None;
                let title = collapse_whitespace(&self.out[title_start..]);
                if title.is_empty() {
                    self.out.truncate(start);
                } else {
                    self.headings.push((start, level, title));
                }
                self.pending_space = false;
                self.block_break(2);
            }
            "pre" => {
                self.pre_depth = self.pre_depth.saturating_sub(1);
                self.block_break(2);
            }
            "ul" | "ol" => {
                self.lists.pop();
                self.block_break(if self.lists.is_empty() { 2 } else { 1 });
            }
            "li" | "tr" => {
                self.fresh_marker = false;
                self.block_break(1);
            }
            "td" | "th" => {
                self.cell_depth = self.cell_depth.saturating_sub(1);
                self.pending_space = true;
            }
            _ if BLOCKS.contains(&name) => self.block_break(2),
            _ if LINES.contains(&name) => self.block_break(1),
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if self.pre_depth > 0 {
            if text.is_empty() {
                return;
            }
            self.flush_break();
            self.out.push_str(text);
            self.pending_space = false;
            self.fresh_marker = false;
            return;
        }
        self.words(text);
    }

    /// Writes text with its whitespace collapsed to single spaces.
    fn words(&mut self, text: &str) {
        if text.starts_with(char::is_whitespace) {
            self.pending_space = true;
        }
        let mut words = text.split_whitespace().peekable();
        if words.peek().is_none() {
            return;
        }
        for word in words {
            self.flush_break();
            if self.pending_space
                && !self.out.is_empty()
                && !self.out.ends_with(char::is_whitespace)
            {
                self.out.push(' ');
            }
            self.out.push_str(word);
            self.pending_space = true;
        }
        self.fresh_marker = false;
        self.pending_space = text.ends_with(char::is_whitespace);
    }

    fn line_break(&mut self) {
        self.flush_break();
        self.trim_trailing_spaces();
        self.out.push('\n');
        self.pending_space = false;
    }

    /// Asks for `newlines` line breaks before the next text (the largest request wins). Inside a
    /// heading or a table cell a break is only a space, so the heading stays one line and the row
    /// stays one row; right after a list marker it is dropped, so the item's text follows it.
    fn block_break(&mut self, newlines: usize) {
        if self.inline_only() {
            self.pending_space = true;
            return;
        }
        if self.fresh_marker {
            return;
        }
        self.pending_break = self.pending_break.max(newlines);
        self.pending_space = false;
    }

    fn inline_only(&self) -> bool {
        self.heading.is_some() || self.cell_depth > 0
    }

    /// Writes the owed line breaks, counting those already at the end of the text.
    fn flush_break(&mut self) {
        if self.pending_break == 0 {
            return;
        }
        let wanted = self.pending_break;
        self.pending_break = 0;
        self.pending_space = false;
        self.trim_trailing_spaces();
        if self.out.is_empty() {
            return;
        }
        let present = self.out.len() - self.out.trim_end_matches('\n').len();
        for _ in present..wanted {
            self.out.push('\n');
        }
    }

    fn trim_trailing_spaces(&mut self) {
        let kept = self.out.trim_end_matches([' ', '\t']).len();
        self.out.truncate(kept);
    }

    fn finish(mut self) -> Rendered {
        // An unclosed heading (the content ended inside it) is kept as it is.
        if let Some((start, title_start, level)) = self.heading.take() {
            let title = collapse_whitespace(&self.out[title_start..]);
            if !title.is_empty() {
                self.headings.push((start, level, title));
            }
        }
        let kept = self.out.trim_end().len();
        self.out.truncate(kept);
        let mut offsets = CharOffsets::new(&self.out);
        let headings = self
            .headings
            .into_iter()
            .map(|(byte, level, title)| Heading {
                char_offset: offsets.of(byte),
                level,
                title,
            })
            .collect();
        Rendered {
            text: self.out,
            headings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(html: &str) -> LoadedDocument {
        load("https://example.com/docs/page.html", html).expect("renders")
    }

    #[test]
    fn blocks_lists_and_headings() {
        let document = render(
            "<body><h1>Title</h1><p>One  <b>two</b>\n three.</p><ul><li>a</li><li>b<ul><li>c</li></ul></li></ul>\
             <ol start=3><li>x</li><li>y</li></ol><p>Last&nbsp;&amp; final</p></body>",
        );
        assert_eq!(
            document.text,
            "# Title\n\nOne two three.\n\n- a\n- b\n  - c\n\n3. x\n4. y\n\nLast & final"
        );
        assert_eq!(document.title, "Title");
    }

    #[test]
    fn blocks_inside_items_cells_and_headings_stay_on_their_line() {
        let document = render(
            "<body><ul><li><p>loose item</p><p>second para</p></li><li><ul><li>nested</li></ul></li></ul>\
             <table><tr><td><p>cell</p><p>two</p></td><td>b<br>c</td></tr></table><h2><div>Block</div> <span>title</span></h2></body>",
        );
        assert_eq!(
            document.text,
            "- loose item\n\nsecond para\n\n-\n  - nested\n\ncell two | b c\n\n## Block title"
        );
        assert_eq!(document.headings[0].title, "Block title");
    }

    #[test]
    fn preformatted_text_is_kept() {
        let document =
            render("<body><p>Run:</p><pre>  fn main() {\n      x();\n  }</pre><p>Done</p></body>");
        assert_eq!(
            document.text,
            "Run:\n\n  fn main() {\n      x();\n  }\n\nDone"
        );
    }

    #[test]
    fn tables_and_breaks() {
        let document = render(
            "<body><table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table><p>x<br>y</p></body>",
        );
        assert_eq!(document.text, "a | b\n1 | 2\n\nx\ny");
    }

    #[test]
    fn hidden_content_and_empty_headings_are_dropped() {
        let document = render(
            "<body><h2> </h2><p hidden>secret</p><div style='display: none'>gone</div><p aria-hidden=true>x</p><p>kept</p></body>",
        );
        assert_eq!(document.text, "kept");
        assert!(document.headings.is_empty());
    }

    #[test]
    fn a_single_article_is_the_content_and_keeps_its_header() {
        let document = render(
            "<body><header><h1>Site</h1></header><article><header><h1>Post</h1></header><p>Body</p><footer>tags</footer></article></body>",
        );
        assert_eq!(document.text, "# Post\n\nBody");
    }

    #[test]
    fn several_articles_mean_the_body() {
        let document =
            render("<body><article><p>A</p></article><article><p>B</p></article></body>");
        assert_eq!(document.text, "A\n\nB");
    }

    #[test]
    fn role_main_is_used_without_main_or_article() {
        let document = render("<body><div>chrome</div><div role=main><p>content</p></div></body>");
        assert_eq!(document.text, "content");
    }

    #[test]
    fn metadata_from_the_head() {
        let document = render(
            "<html lang=en><head><title> The  Page </title><meta name=description content='About it'>\
             <link rel=canonical href='https://example.com/page'></head><body><p>x</p></body></html>",
        );
        assert_eq!(document.title, "The Page");
        assert_eq!(document.metadata["language"], "en");
        assert_eq!(document.metadata["description"], "About it");
        assert_eq!(
            document.metadata["canonical_url"],
            "https://example.com/page"
        );
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let html = format!(
            "<body>{}deep{}</body>",
            "<div>".repeat(5_000),
            "</div>".repeat(5_000)
        );
        assert_eq!(render(&html).text, "deep");
    }
}
