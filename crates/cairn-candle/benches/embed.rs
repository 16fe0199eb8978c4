//! Embedding throughput of all-MiniLM-L6-v2 in release mode, by batch size:
//! `cargo bench -p cairn-candle --bench embed` (model from $CAIRN_TEST_MODELS/minilm, or
//! $CAIRN_EMBED_MODEL). With $CAIRN_BENCH_PYTHON set to the interpreter of
//! scripts/bench-python-env.sh, the same sentences also go through sentence-transformers (PyTorch)
//! and onnxruntime in the same run, timed the same way (one warm-up batch, then the median of
//! `bench::PASSES` passes), the table shows all three, and Cairn's vectors for those sentences are
//! compared with both engines' (the run fails when one disagrees).

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
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench-embed-python.py");
        bench::compare_python(
            python.as_ref(),
            &script,
            &model_dir,
            &texts,
            &sizes,
            threads,
        )
        .expect("the python comparators")
    });
    let vectors = bench::vectors(&embedder, &texts).expect("embed");
    println!("all-MiniLM-L6-v2 on {device:?}, 256 sentences of 10-60 words, {threads} threads");
    let agree = bench::print_table(&sizes, &ours, &vectors, python.as_ref());
    assert!(
        agree,
        "the engines' vectors disagree (see the agreement line)"
    );
}
