//! Fuzzes prompt parsing, compiling and rendering with arbitrary templates and variables: no panic,
//! and fuel and the output budget keep every render bounded.
#![no_main]

use cairn_prompts::render::CompiledPrompt;
use cairn_prompts::{PromptFile, RenderLimits};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, arbitrary::Arbitrary)]
struct Input<'a> {
    /// Body text after a fixed front matter that declares variables `a`, `b` and `c`.
    body: &'a str,
    /// The variables, as JSON text.
    variables: &'a str,
    /// Sometimes the whole file is arbitrary, front matter included.
    whole_file: bool,
}

const FRONT: &str = "+++\nname = \"fuzz\"\n[variables]\ntype = \"object\"\nproperties.a = {}\nproperties.b = {}\nproperties.c = { type = \"array\", default = [1, 2, 3] }\n+++\n";

fuzz_target!(|input: Input<'_>| {
    let text = if input.whole_file { input.body.to_owned() } else { format!("{FRONT}[user]\n{}", input.body) };
    let Ok(file) = PromptFile::parse(&text, "fuzz.prompt") else { return };
    let limits = RenderLimits { fuel: 20_000, max_output_bytes: 64 * 1024, recursion: 32 };
    let Ok(compiled) = CompiledPrompt::compile(file, Some(1), limits) else { return };
    let variables = serde_json::from_str(input.variables).unwrap_or(serde_json::Value::Null);
    if let Ok(rendered) = compiled.render(&variables) {
        let total: usize = rendered.messages.iter().map(|m| m.content.len()).sum();
        assert!(total <= limits.max_output_bytes, "output budget exceeded: {total} bytes");
    }
});
