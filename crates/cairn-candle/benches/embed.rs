//! Embedding throughput of all-MiniLM-L6-v2 in release mode, by batch size:
//! `cargo bench -p cairn-candle --bench embed` (model from $CAIRN_TEST_MODELS/minilm, or
//! $CAIRN_EMBED_MODEL). With $CAIRN_BENCH_PYTHON set to the interpreter of
//! scripts/bench-python-env.sh, the same sentences also go through sentence-transformers (PyTorch)
//! and onnxruntime in the same run, and the table shows all three.

use std::path::PathBuf;

use cairn_candle::{BertEmbedder, DevicePreference, ModelFiles, bench, device};

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let model_dir = std::env::var("CAIRN_EMBED_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| cairn_testkit::test_model("minilm"));
    let files = ModelFiles::in_dir(&model_dir).expect("model files");
    let device = device(DevicePreference::Auto).expect("device");
    let embedder = BertEmbedder::load(&files, &device).expect("load the model");
    let texts = bench::sentences(256);
    let sizes = [1usize, 8, 32, 64];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ours: Vec<f64> = sizes
        .iter()
        .map(|&b| bench::throughput(&embedder, &texts, b).expect("embed"))
        .collect();
    let python = std::env::var("CAIRN_BENCH_PYTHON").ok().map(|python| {
        let file = std::env::temp_dir().join("cairn-bench-embed-sentences.json");
        std::fs::write(&file, serde_json::to_vec(&texts).expect("json")).expect("write");
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench-embed-python.py");
        let output = std::process::Command::new(python)
            .arg(script)
            .arg("--model")
            .arg(&model_dir)
            .arg("--sentences")
            .arg(&file)
            .args([
                "--batch-sizes",
                "1,8,32,64",
                "--threads",
                &threads.to_string(),
            ])
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run the python comparators");
        assert!(output.status.success(), "the python comparators failed");
        let stdout = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str::<serde_json::Value>(stdout.lines().last().expect("output"))
            .expect("json")
    });
    println!("all-MiniLM-L6-v2 on {device:?}, 256 sentences of 10-60 words, {threads} threads");
    println!(
        "| batch | cairn (candle) | sentence-transformers (PyTorch) | onnxruntime | cairn ÷ sentence-transformers |"
    );
    println!("|---|---|---|---|---|");
    for (size, rate) in sizes.iter().zip(&ours) {
        let theirs = |engine: &str| {
            python
                .as_ref()
                .and_then(|p| p[engine][size.to_string()].as_f64())
        };
        let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}/s"));
        let st = theirs("sentence_transformers");
        println!(
            "| {size} | {rate:.1}/s | {} | {} | {} |",
            show(st),
            show(theirs("onnxruntime")),
            st.map_or("-".to_owned(), |st| format!("{:.2}×", rate / st))
        );
    }
}
