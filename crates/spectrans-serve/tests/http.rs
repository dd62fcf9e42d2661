//! A real server on 127.0.0.1 (port 0, in process) and a real HTTP client: every route,
//! every error status, ragged batches, the tokenizer path, padding, concurrency with bitwise
//! comparison, and malformed bodies (property test).

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::Array2;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use spectrans_config::Config;
use spectrans_models::{Gfnet, ModelInput};
use spectrans_serve::{
    AppState, BackgroundServer, Engine, EngineConfig, HttpLimits, Metrics, PadTo, Preprocessor,
};
use spectrans_testkit::http::{self, Framing};

const VOCAB: usize = 40;
const SEQ: usize = 24;

struct Server {
    server: Option<BackgroundServer>,
    state: Arc<AppState>,
    engine: Engine,
}

struct Options {
    head: &'static str,
    limits: HttpLimits,
    tokenizer: Option<std::path::PathBuf>,
    pad_to: Option<(PadTo, Option<i64>)>,
    max_wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            head: "num_classes = 3\n",
            limits: HttpLimits::default(),
            tokenizer: None,
            pad_to: None,
            max_wait: Duration::from_millis(2),
        }
    }
}

fn start(opts: Options) -> Server {
    let config = Config::from_toml_str(&format!(
        "[model]\nhidden_dim = 16\nnum_layers = 2\nsequence_length = {SEQ}\nvocab_size = {VOCAB}\n{}",
        opts.head
    ))
    .expect("config");
    let model = Gfnet::new(&config, 11).expect("model");
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(
        model,
        EngineConfig {
            threads: 2,
            max_batch_tokens: 256,
            max_wait: opts.max_wait,
        },
        Arc::clone(&metrics),
    )
    .expect("engine");
    let mut pre = Preprocessor::new(config.vocab_size(), config.sequence_length());
    if let Some(t) = &opts.tokenizer {
        pre = pre.with_tokenizer_file(t).expect("tokenizer");
    }
    if let Some((to, id)) = opts.pad_to {
        pre = pre.pad(to, id).expect("padding");
    }
    let state = Arc::new(AppState::new(engine.clone(), pre, metrics, opts.limits));
    let server =
        BackgroundServer::start_shared(Arc::clone(&state), "127.0.0.1:0".parse().unwrap(), 2)
            .expect("server");
    Server {
        server: Some(server),
        state,
        engine,
    }
}

impl Server {
    fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().addr()
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = http::get(self.addr(), path).expect("GET");
        (r.status, r.text())
    }

    fn post_raw(&self, body: impl AsRef<[u8]>) -> (u16, Value) {
        let r = http::post_json(self.addr(), "/predict", body.as_ref()).expect("POST");
        json_of(r)
    }

    fn post(&self, body: &Value) -> (u16, Value) {
        self.post_raw(body.to_string())
    }

    /// The batch-1 forward of one sequence on the engine's own threads, as bits.
    fn alone(&self, ids: &[i64], mask: Option<&[bool]>) -> Vec<u32> {
        let n = ids.len();
        let ids = Array2::from_shape_vec((1, n), ids.to_vec()).unwrap();
        let mask = mask.map(|m| Array2::from_shape_vec((1, n), m.to_vec()).unwrap());
        self.engine
            .install(move |m| {
                m.forward(
                    ModelInput::TokenIds(ids.view()),
                    mask.as_ref().map(|m| m.view()),
                )
            })
            .unwrap()
            .unwrap()
            .view()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// Waits (polling /metrics, not sleeping blindly) until `n` predict requests are in flight.
    fn wait_in_flight(&self, n: f64) {
        let start = Instant::now();
        while self.metric("spectrans_predict_requests_in_flight") < n {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "never reached {n} in flight"
            );
            std::thread::yield_now();
        }
    }
}

/// The status and JSON body of an answer; the body's text is kept under `__text`.
fn json_of(r: http::Response) -> (u16, Value) {
    let text = r.text();
    let mut v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("a non-JSON body ({e}) with {}: {text}", r.status));
    if let Value::Object(o) = &mut v {
        o.insert("__text".into(), Value::String(text));
    }
    (r.status, v)
}

/// The outputs of an answer, one flat list of f32 bits per sequence, read from the answer's
/// text with Rust's correctly rounded parser (serde_json's default float parser may be one
/// ulp off). The server writes each f32 as the decimal of its exact f64 widening, so parsing
/// that decimal as f32 gives back the same bits.
fn output_bits(v: &Value) -> Vec<Vec<u32>> {
    let text = v["__text"].as_str().expect("an answer read by post_raw");
    let start = text.find("\"outputs\":").expect("outputs") + "\"outputs\":".len();
    let bytes = &text.as_bytes()[start..];
    let (mut depth, mut i) = (0usize, 0usize);
    let mut seqs: Vec<Vec<u32>> = Vec::new();
    loop {
        match bytes[i] {
            b'[' => {
                depth += 1;
                if depth == 2 {
                    seqs.push(Vec::new());
                }
                i += 1;
            }
            b']' => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return seqs;
                }
            }
            b',' | b' ' => i += 1,
            _ => {
                let end = i + bytes[i..]
                    .iter()
                    .position(|&b| b == b',' || b == b']')
                    .unwrap();
                let num = std::str::from_utf8(&bytes[i..end]).unwrap();
                let f: f32 = num.parse().unwrap();
                let wide: f64 = num.parse().unwrap();
                assert_eq!(wide, f64::from(f), "{num} is not an exact f32");
                seqs.last_mut().unwrap().push(f.to_bits());
                i = end;
            }
        }
    }
}

fn bits_of(v: &Value, i: usize) -> Vec<u32> {
    output_bits(v).swap_remove(i)
}

fn shape(v: &Value) -> Vec<usize> {
    let mut s = Vec::new();
    let mut cur = v;
    while let Value::Array(a) = cur {
        s.push(a.len());
        match a.first() {
            Some(x) => cur = x,
            None => break,
        }
    }
    s
}

fn error_of(status: u16, v: &Value, expected: u16) -> String {
    assert_eq!(status, expected, "body {v}");
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error string in {v}"))
        .to_string()
}

#[test]
fn health_info_and_metrics() {
    let s = start(Options::default());
    let (st, body) = s.get("/health");
    assert_eq!(st, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": "ok"})
    );
    let (st, body) = s.get("/info");
    assert_eq!(st, 200);
    let info: Value = serde_json::from_str(&body).unwrap();
    for (k, v) in [
        ("model_type", json!("gfnet")),
        ("output_type", json!("classification")),
        ("hidden_dim", json!(16)),
        ("num_layers", json!(2)),
        ("sequence_length", json!(SEQ)),
        ("vocab_size", json!(VOCAB)),
        ("num_classes", json!(3)),
        ("precision", json!("f32")),
        ("max_batch_tokens", json!(256)),
        ("max_concurrent_requests", json!(512)),
        ("max_body_bytes", json!(2 * 1024 * 1024)),
    ] {
        assert_eq!(info[k], v, "{k} in {info}");
    }
    assert!(info["version"].is_string());
    assert_eq!(info["max_wait_ms"], json!(2));
    let (st, _) = s.post(&json!({"input_ids": [1, 2, 3]}));
    assert_eq!(st, 200);
    let (st, text) = s.get("/metrics");
    assert_eq!(st, 200);
    for name in [
        "spectrans_http_requests_total{route=\"/predict\",status=\"200\"} 1",
        "spectrans_http_requests_total{route=\"/health\",status=\"200\"} 1",
        "spectrans_http_request_duration_seconds_bucket",
        "spectrans_batch_sequences_bucket",
        "spectrans_batch_tokens_bucket",
        "spectrans_forward_duration_seconds_count 1",
        "spectrans_queue_depth",
    ] {
        assert!(text.contains(name), "no {name} in\n{text}");
    }
}

#[test]
fn single_and_ragged_sequences_equal_their_batch_1_forward() {
    let s = start(Options::default());
    // One sequence: a list of one.
    let (st, v) = s.post(&json!({"input_ids": [5, 6, 7, 8]}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(shape(&v["outputs"]), vec![1, 3]);
    assert_eq!(bits_of(&v, 0), s.alone(&[5, 6, 7, 8], None));
    let label = v["labels"][0].as_u64().unwrap() as usize;
    let out: Vec<f64> = v["outputs"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(out.iter().all(|&x| x <= out[label]));
    // Ragged, with a mask of bools and of 0/1.
    let ids = vec![
        vec![1i64, 2, 3],
        vec![4, 5],
        vec![6, 7, 8, 9, 10],
        vec![11, 12],
    ];
    let masks = vec![
        vec![true, true, false],
        vec![true, true],
        vec![true, false, true, true, false],
        vec![false, true],
    ];
    let (st, v) = s.post(&json!({"input_ids": ids, "attention_mask": masks}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["outputs"].as_array().unwrap().len(), 4);
    assert_eq!(v["labels"].as_array().unwrap().len(), 4);
    for (i, (seq, m)) in ids.iter().zip(&masks).enumerate() {
        assert_eq!(bits_of(&v, i), s.alone(seq, Some(m)), "sequence {i}");
    }
    let numeric: Vec<Vec<u8>> = masks
        .iter()
        .map(|m| m.iter().map(|&k| u8::from(k)).collect())
        .collect();
    let (st, v2) = s.post(&json!({"input_ids": ids, "attention_mask": numeric}));
    assert_eq!(st, 200);
    assert_eq!(v2["__text"], v["__text"]);
}

#[test]
fn per_token_and_hidden_heads_give_one_row_per_token() {
    let s = start(Options {
        head: "num_classes = 5\noutput_type = \"sequence\"\n",
        ..Options::default()
    });
    let (st, v) = s.post(&json!({"input_ids": [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10]]}));
    assert_eq!(st, 200, "{v}");
    assert!(v.get("labels").is_none());
    assert_eq!(shape(&v["outputs"][0]), vec![3, 5]);
    assert_eq!(shape(&v["outputs"][1]), vec![7, 5]);
    assert_eq!(bits_of(&v, 1), s.alone(&[4, 5, 6, 7, 8, 9, 10], None));
    drop(s);
    let s = start(Options {
        head: "output_type = \"none\"\n",
        ..Options::default()
    });
    let (st, v) = s.post(&json!({"input_ids": [3, 1, 4, 1, 5]}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(shape(&v["outputs"]), vec![1, 5, 16]);
    assert_eq!(bits_of(&v, 0), s.alone(&[3, 1, 4, 1, 5], None));
}

#[test]
fn every_error_status_has_a_json_body() {
    let s = start(Options {
        limits: HttpLimits {
            max_body_bytes: 1000,
            ..HttpLimits::default()
        },
        ..Options::default()
    });
    // 400: malformed JSON and wrong types.
    for body in [
        "{\"input_ids\": [1, 2",
        "not json",
        "",
        "[1, 2, 3]",
        "\"text\"",
        "{}",
        "{\"input_ids\": [1], \"inputs\": \"a\"}",
        "{\"input_ids\": \"1 2 3\"}",
        "{\"input_ids\": [1, \"2\"]}",
        "{\"input_ids\": [1.5, 2]}",
        "{\"input_ids\": [[1, 2], 3]}",
        "{\"input_ids\": [1, 2], \"attention_mask\": [1, \"x\"]}",
        "{\"input_ids\": [1, 2], \"attention_mask\": 1}",
        "{\"inputs\": 5}",
    ] {
        let (st, v) = s.post_raw(body);
        error_of(st, &v, 400);
    }
    // 422: valid JSON the model cannot take.
    for (body, needle) in [
        (json!({"input_ids": [1, 2, VOCAB]}), "out of range"),
        (json!({"input_ids": [1, -1]}), "out of range"),
        (
            json!({"input_ids": [1, 18446744073709551615u64]}),
            "out of range",
        ),
        (json!({"input_ids": []}), "empty"),
        (json!({"input_ids": [[1], []]}), "empty"),
        (json!({"input_ids": vec![1; SEQ + 1]}), "sequence_length"),
        (json!({"input_ids": [1, 2], "attention_mask": [1]}), "shape"),
        (
            json!({"input_ids": [[1, 2], [3]], "attention_mask": [[1, 1]]}),
            "shape",
        ),
        (
            json!({"input_ids": [1, 2], "attention_mask": [0, 0]}),
            "keeps no token",
        ),
        (
            json!({"input_ids": [1, 2], "attention_mask": [1, 2]}),
            "0 or 1",
        ),
        (json!({"inputs": "hello"}), "tokenizer"),
    ] {
        let (st, v) = s.post(&body);
        let msg = error_of(st, &v, 422);
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    // 413: over --max-body-bytes, declared or streamed.
    let big = json!({"input_ids": vec![1; 600]}).to_string();
    let (st, v) = s.post_raw(big.clone());
    error_of(st, &v, 413);
    let r = http::send(
        s.addr(),
        "POST",
        "/predict",
        &[("content-type", "application/json")],
        big.as_bytes(),
        Framing::Chunked(100),
    )
    .expect("a streamed POST");
    let (st, v) = json_of(r);
    error_of(st, &v, 413);
    // 415: not JSON.
    for headers in [&[][..], &[("content-type", "text/plain")][..]] {
        let r = http::send(
            s.addr(),
            "POST",
            "/predict",
            headers,
            b"{\"input_ids\": [1]}",
            Framing::Length,
        )
        .expect("POST");
        let (st, v) = json_of(r);
        error_of(st, &v, 415);
    }
    // 404 and 405.
    for (method, path, code) in [
        ("GET", "/nope", 404),
        ("POST", "/health", 405),
        ("GET", "/predict", 405),
        ("DELETE", "/info", 405),
    ] {
        let r = http::send(s.addr(), method, path, &[], &[], Framing::Length).unwrap();
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{path}: {:?}",
            r.headers
        );
        let (st, v) = json_of(r);
        error_of(st, &v, code);
    }
    // Still alive, and the errors were counted.
    assert_eq!(s.get("/health").0, 200);
    assert!(s.metric("spectrans_http_requests_total{route=\"/predict\",status=\"400\"}") >= 14.0);
    assert!(s.metric("spectrans_http_requests_total{route=\"unmatched\",status=\"404\"}") >= 1.0);
}

/// A POST /predict sent up to half its body: the server holds its slot until it is finished.
fn partial_request(addr: SocketAddr, body: &str) -> http::Partial {
    http::Partial::post_json(addr, "/predict", body.as_bytes()).expect("a partial request")
}

/// Completes a [`partial_request`] and reads its answer: (status, JSON body).
fn finish_request(p: http::Partial) -> (u16, Value) {
    json_of(p.finish().expect("the rest of a request"))
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let s = start(Options {
        limits: HttpLimits {
            max_concurrent_requests: 2,
            ..HttpLimits::default()
        },
        ..Options::default()
    });
    let body = json!({"input_ids": [1, 2, 3]}).to_string();
    let held: Vec<_> = (0..2).map(|_| partial_request(s.addr(), &body)).collect();
    s.wait_in_flight(2.0);
    let started = Instant::now();
    let r = http::post_json(s.addr(), "/predict", body.as_bytes()).expect("POST");
    let took = started.elapsed();
    assert_eq!(r.header("retry-after"), Some("1"));
    let (st, v) = json_of(r);
    assert!(error_of(st, &v, 429).contains("limit of 2"));
    assert!(took < Duration::from_secs(1), "429 took {took:?}");
    // /health stays available while predict is full.
    assert_eq!(s.get("/health").0, 200);
    for p in held {
        let (st, v) = finish_request(p);
        assert_eq!(st, 200, "{v}");
    }
    let (st, _) = s.post(&json!({"input_ids": [1, 2, 3]}));
    assert_eq!(st, 200);
}

#[test]
fn shutdown_answers_503_to_new_requests_and_finishes_accepted_ones() {
    let mut s = start(Options::default());
    let body = json!({"input_ids": [[1, 2, 3], [4, 5, 6]]}).to_string();
    let held: Vec<_> = (0..3).map(|_| partial_request(s.addr(), &body)).collect();
    s.wait_in_flight(3.0);
    s.state.begin_shutdown();
    let (st, v) = s.post(&json!({"input_ids": [1]}));
    error_of(st, &v, 503);
    let server = s.server.take().unwrap();
    let addr = server.addr();
    let stopper = std::thread::spawn(move || server.stop());
    // The listener closes first; then the held requests complete.
    let t = Instant::now();
    while TcpStream::connect(addr).is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the listener never closed"
        );
        std::thread::yield_now();
    }
    for p in held {
        let (st, v) = finish_request(p);
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["outputs"].as_array().unwrap().len(), 2);
    }
    stopper.join().unwrap().expect("clean stop");
}

#[test]
fn concurrent_clients_get_bitwise_batch_1_answers() {
    let s = Arc::new(start(Options {
        max_wait: Duration::from_millis(5),
        ..Options::default()
    }));
    let lengths = [1usize, 2, 4, 7, 16, 24];
    let clients: Vec<_> = (0..8u64)
        .map(|c| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let mut rng = ChaCha8Rng::seed_from_u64(c);
                for _ in 0..10 {
                    let k = rng.gen_range(1..=3);
                    let ids: Vec<Vec<i64>> = (0..k)
                        .map(|_| {
                            let n = lengths[rng.gen_range(0..lengths.len())];
                            (0..n).map(|_| rng.gen_range(0..VOCAB as i64)).collect()
                        })
                        .collect();
                    let (st, v) = s.post(&json!({ "input_ids": ids }));
                    assert_eq!(st, 200, "{v}");
                    for (i, seq) in ids.iter().enumerate() {
                        assert_eq!(bits_of(&v, i), s.alone(seq, None), "client {c}");
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    let batches = s.metric("spectrans_batch_sequences_count");
    let singles = s.metric("spectrans_batch_sequences_bucket{le=\"1.0\"}");
    assert!(batches > singles, "no batch held two sequences");
}

fn write_tokenizer(dir: &Path, padding: Option<usize>) -> std::path::PathBuf {
    let words = [
        "hello", "world", "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
    ];
    let mut vocab = serde_json::Map::new();
    for (i, t) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].iter().enumerate() {
        vocab.insert((*t).into(), json!(i));
    }
    for (i, w) in words.iter().enumerate() {
        vocab.insert((*w).into(), json!(i + 4));
    }
    let special = |id: usize, content: &str| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false,
               "rstrip": false, "normalized": false, "special": true})
    };
    let padding = padding.map(|n| {
        json!({"strategy": {"Fixed": n}, "direction": "Right", "pad_to_multiple_of": null,
               "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"})
    });
    let tok = json!({
        "version": "1.0",
        "truncation": null,
        "padding": padding,
        "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"), special(3, "[SEP]")],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, tok.to_string()).unwrap();
    path
}

#[test]
fn text_inputs_go_through_the_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(Options {
        tokenizer: Some(write_tokenizer(dir.path(), None)),
        ..Options::default()
    });
    let (st, v) = s.post(&json!({"inputs": "Hello world, the fox!"}));
    assert_eq!(st, 200, "{v}");
    // [CLS] hello world [UNK](,) the fox [UNK](!) [SEP]
    let ids = vec![2i64, 4, 5, 1, 6, 9, 1, 3];
    assert_eq!(v["input_ids"], json!([ids]));
    assert_eq!(bits_of(&v, 0), s.alone(&ids, None));
    assert_eq!(v["labels"].as_array().unwrap().len(), 1);
    // Several texts; a long one is truncated to the model's length, [SEP] kept last.
    let long = vec!["dog"; 40].join(" ");
    let (st, v) = s.post(&json!({"inputs": ["the lazy dog", long]}));
    assert_eq!(st, 200, "{v}");
    let got: Vec<Vec<i64>> = serde_json::from_value(v["input_ids"].clone()).unwrap();
    assert_eq!(got[0], vec![2, 6, 12, 13, 3]);
    assert_eq!(got[1].len(), SEQ);
    assert_eq!((got[1][0], got[1][SEQ - 1]), (2, 3));
    for (i, ids) in got.iter().enumerate() {
        assert_eq!(bits_of(&v, i), s.alone(ids, None));
    }
    // Token ids still work alongside.
    let (st, _) = s.post(&json!({"input_ids": [2, 4, 3]}));
    assert_eq!(st, 200);
    let (st, v) = s.post(&json!({"inputs": [1]}));
    error_of(st, &v, 400);
    let (st, v) = s.post(&json!({"inputs": []}));
    error_of(st, &v, 422);
}

#[test]
fn tokenizer_padding_and_pad_to_pad_every_sequence() {
    let dir = tempfile::tempdir().unwrap();
    // The tokenizer file pads to 12: text and ids are padded with its [PAD] (0) and masked.
    let s = start(Options {
        tokenizer: Some(write_tokenizer(dir.path(), Some(12))),
        head: "output_type = \"regression\"\n",
        ..Options::default()
    });
    let (st, v) = s.post(&json!({"inputs": ["hello world", "the quick brown fox"]}));
    assert_eq!(st, 200, "{v}");
    let ids = [vec![2i64, 4, 5, 3], vec![2, 6, 7, 8, 9, 3]];
    for (i, seq) in ids.iter().enumerate() {
        let mut padded = seq.clone();
        padded.resize(12, 0);
        let mask: Vec<bool> = (0..12).map(|j| j < seq.len()).collect();
        assert_eq!(bits_of(&v, i), s.alone(&padded, Some(&mask)), "text {i}");
    }
    let (st, v) = s.post(&json!({"input_ids": vec![1; 13]}));
    assert!(error_of(st, &v, 422).contains("padding length is 12"));
    drop(s);
    // --pad-to max with --pad-id 7, and a mask of the caller's own.
    let s = start(Options {
        head: "output_type = \"regression\"\n",
        pad_to: Some((PadTo::Max, Some(7))),
        ..Options::default()
    });
    let (st, v) =
        s.post(&json!({"input_ids": [[1, 2, 3], [4, 5]], "attention_mask": [[1, 0, 1], [1, 1]]}));
    assert_eq!(st, 200, "{v}");
    let mut padded = vec![1i64, 2, 3];
    padded.resize(SEQ, 7);
    let mask: Vec<bool> = (0..SEQ).map(|j| j == 0 || j == 2).collect();
    assert_eq!(bits_of(&v, 0), s.alone(&padded, Some(&mask)));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random bytes, random JSON, and near-misses of the real schema: never a 5xx, every
    /// error a JSON body with an `error` string, and the server alive afterwards.
    #[test]
    fn malformed_bodies_answer_4xx_and_the_server_lives(
        raw in proptest::collection::vec(any::<u8>(), 0..200),
        ids in proptest::collection::vec(-5i64..60, 0..30),
        key in prop::sample::select(vec!["input_ids", "inputs", "attention_mask", "input_id", ""]),
        junk in "[\\[\\]{}\",:0-9a-z .-]{0,60}",
    ) {
        let s = shared_server();
        let candidates = [
            raw.clone(),
            junk.clone().into_bytes(),
            json!({ key: ids }).to_string().into_bytes(),
            json!({ "input_ids": ids, "attention_mask": junk }).to_string().into_bytes(),
            format!("{{\"input_ids\": [{junk}]}}").into_bytes(),
            json!({ "input_ids": [ids.clone(), [junk.len()]] }).to_string().into_bytes(),
        ];
        for body in candidates {
            let (st, v) = s.post_raw(body.clone());
            prop_assert!((200..500).contains(&st), "{st} for {:?}", String::from_utf8_lossy(&body));
            if st == 200 {
                prop_assert!(v["outputs"].is_array());
            } else {
                prop_assert!(v["error"].is_string(), "{v}");
            }
        }
        prop_assert_eq!(s.get("/health").0, 200);
    }
}

fn shared_server() -> &'static Server {
    static SERVER: std::sync::OnceLock<Server> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| start(Options::default()))
}
