//! `spectrans serve` and `spectrans predict` as a user runs them: the real binary on
//! 127.0.0.1 port 0, a real HTTP client, answers compared bit for bit with `spectrans forward`,
//! SIGTERM with requests in flight, and `predict` on JSON lines.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ndarray::{ArrayD, IxDyn};
use serde_json::{Value, json};
use spectrans_models::tensor_file::{OwnedTensor, TensorFile, write_tensors};
use spectrans_testkit::http;

use crate::common::{Scratch, bin, succeeds};

const TINY: &str = "[model]\nhidden_dim = 16\nnum_layers = 2\nsequence_length = 32\nvocab_size = 100\nnum_classes = 4\n";

/// A config and random weights in the test's own folder.
fn model(dir: &Scratch) -> (PathBuf, PathBuf) {
    let config = dir.file("model.toml");
    std::fs::write(&config, TINY).unwrap();
    let weights = dir.file("w.safetensors");
    succeeds(
        bin()
            .args(["init", "--seed", "5", "--config"])
            .arg(&config)
            .arg("--output")
            .arg(&weights),
    );
    (config, weights)
}

/// A running `spectrans serve`; killed if the test ends without stopping it.
struct Served {
    child: Option<Child>,
    addr: SocketAddr,
    log: Option<std::thread::JoinHandle<String>>,
}

impl Served {
    fn start(config: &Path, weights: &Path, extra: &[&str]) -> Served {
        let mut child = bin()
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--weights")
            .arg(weights)
            .args(["--port", "0", "--threads", "2"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spectrans serve starts");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        let addr = loop {
            let mut line = String::new();
            let n = stderr.read_line(&mut line).unwrap();
            assert!(n > 0, "serve exited before listening: {seen}");
            seen.push_str(&line);
            if let Some(url) = line.trim().strip_prefix("listening on http://") {
                break url.parse::<SocketAddr>().expect("HOST:PORT");
            }
        };
        // Keep reading stderr so the server never blocks on a full pipe.
        let log = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
            seen + &rest
        });
        Served {
            child: Some(child),
            addr,
            log: Some(log),
        }
    }

    fn post(&self, body: &Value) -> (u16, String) {
        let r = http::post_json(self.addr, "/predict", body.to_string().as_bytes())
            .expect("POST /predict");
        (r.status, r.text())
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = http::get(self.addr, path).expect("GET");
        (r.status, r.text())
    }

    fn in_flight(&self) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| {
                l.strip_prefix("spectrans_predict_requests_in_flight")
                    .and_then(|r| r.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    /// SIGTERM, then the exit status and everything the server wrote to stderr.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        signal(&child, libc::SIGTERM);
        let status = child.wait().unwrap();
        let log = self.log.take().unwrap().join().unwrap();
        (status, log)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid, with a valid signal number.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill failed");
}

/// `spectrans forward` on one sequence: the reference every served answer must equal.
fn forward_alone(
    dir: &Scratch,
    config: &Path,
    weights: &Path,
    ids: &[i64],
    mask: Option<&[i64]>,
) -> Vec<u32> {
    let input = dir.file("in.safetensors");
    let output = dir.file("out.safetensors");
    let mut t = BTreeMap::new();
    t.insert(
        "input_ids".to_string(),
        OwnedTensor::I64(ArrayD::from_shape_vec(IxDyn(&[1, ids.len()]), ids.to_vec()).unwrap()),
    );
    if let Some(m) = mask {
        t.insert(
            "attention_mask".to_string(),
            OwnedTensor::I64(ArrayD::from_shape_vec(IxDyn(&[1, m.len()]), m.to_vec()).unwrap()),
        );
    }
    write_tensors(&input, &t).unwrap();
    succeeds(
        bin()
            .arg("forward")
            .arg("--config")
            .arg(config)
            .arg("--weights")
            .arg(weights)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output),
    );
    TensorFile::open(&output)
        .unwrap()
        .read_f32("output")
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// Every number of the JSON text under `key`, parsed as f32 by Rust's correctly rounded
/// parser, one list per sequence (outputs of the tiny classifier are flat (C,) rows).
fn rows_of(text: &str, key: &str) -> Vec<Vec<u32>> {
    let start = text.find(&format!("\"{key}\":")).expect(key) + key.len() + 3;
    let mut rows = Vec::new();
    let mut depth = 0;
    let mut num = String::new();
    for ch in text[start..].chars() {
        match ch {
            '[' => {
                depth += 1;
                if depth == 2 {
                    rows.push(Vec::new());
                }
            }
            ']' | ',' => {
                if !num.is_empty() {
                    let f: f32 = num.parse().unwrap();
                    assert_eq!(
                        num.parse::<f64>().unwrap(),
                        f64::from(f),
                        "{num} is not an exact f32"
                    );
                    rows.last_mut().unwrap().push(f.to_bits());
                    num.clear();
                }
                if ch == ']' {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            c => num.push(c),
        }
    }
    rows
}

#[test]
fn serve_answers_equal_forward_alone_and_errors_are_json() {
    let dir = Scratch::new();
    let (config, weights) = model(&dir);
    let s = Served::start(
        &config,
        &weights,
        &["--max-batch-tokens", "64", "--max-wait-ms", "2"],
    );
    assert_eq!(s.get("/health"), (200, "{\"status\":\"ok\"}".to_string()));
    let (st, info) = s.get("/info");
    assert_eq!(st, 200);
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["max_batch_tokens"], 64);
    assert_eq!(info["max_wait_ms"], 2);
    assert_eq!(info["max_concurrent_requests"], 12);
    assert_eq!(info["precision"], "f32");
    let ids = vec![
        vec![1i64, 2, 3, 4, 5],
        vec![9, 8, 7],
        vec![4, 4, 4, 4, 4],
        vec![50; 32],
    ];
    let masks = vec![
        vec![1i64, 1, 0, 1, 1],
        vec![1, 1, 1],
        vec![1, 0, 0, 0, 0],
        vec![1; 32],
    ];
    let (st, text) = s.post(&json!({"input_ids": ids, "attention_mask": masks}));
    assert_eq!(st, 200, "{text}");
    let rows = rows_of(&text, "outputs");
    assert_eq!(rows.len(), 4);
    for (i, (seq, m)) in ids.iter().zip(&masks).enumerate() {
        assert_eq!(
            rows[i],
            forward_alone(&dir, &config, &weights, seq, Some(m)),
            "sequence {i}"
        );
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["labels"].as_array().unwrap().len(), 4);
    for (body, code) in [
        (json!({"input_ids": [1, 100]}), 422),
        (json!({"input_ids": vec![1; 33]}), 422),
        (json!({"inputs": "text"}), 422),
        (json!({"input_ids": "x"}), 400),
        (json!([1, 2]), 400),
    ] {
        let (st, text) = s.post(&body);
        assert_eq!(st, code, "{body}: {text}");
        assert!(serde_json::from_str::<Value>(&text).unwrap()["error"].is_string());
    }
    let (st, text) = s.get("/missing");
    assert_eq!(st, 404);
    assert!(serde_json::from_str::<Value>(&text).unwrap()["error"].is_string());
    let (st, metrics) = s.get("/metrics");
    assert_eq!(st, 200);
    assert!(
        metrics.contains("spectrans_http_requests_total{route=\"/predict\",status=\"422\"} 3"),
        "{metrics}"
    );
    let (status, log) = s.terminate();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// Headers and half a body: the server has accepted the request (it holds a slot) and
/// waits for the rest.
fn partial(addr: SocketAddr, body: &str) -> http::Partial {
    http::Partial::post_json(addr, "/predict", body.as_bytes()).expect("a partial request")
}

#[test]
fn sigterm_finishes_requests_in_flight_and_exits_0() {
    let dir = Scratch::new();
    let (config, weights) = model(&dir);
    let mut s = Served::start(&config, &weights, &[]);
    let bodies: Vec<String> = (0..4)
        .map(|i| json!({"input_ids": [[1, 2, 3 + i], vec![7; 9]]}).to_string())
        .collect();
    let held: Vec<_> = bodies.iter().map(|b| partial(s.addr, b)).collect();
    let t = Instant::now();
    while s.in_flight() < 4.0 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the requests were never accepted"
        );
        std::thread::yield_now();
    }
    let addr = s.addr;
    let mut child = s.child.take().unwrap();
    signal(&child, libc::SIGTERM);
    // Readiness, not a sleep: the server has stopped accepting once connecting fails.
    while TcpStream::connect(addr).is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "still accepting after SIGTERM"
        );
        std::thread::yield_now();
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with requests in flight"
    );
    for (i, p) in held.into_iter().enumerate() {
        let r = p.finish().expect("the rest of a request");
        let (st, text) = (r.status, r.text());
        assert_eq!(st, 200, "request {i}: {text}");
        assert_eq!(rows_of(&text, "outputs").len(), 2);
    }
    let status = child.wait().unwrap();
    let log = s.log.take().unwrap().join().unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn sigint_with_nothing_in_flight_exits_0() {
    let dir = Scratch::new();
    let (config, weights) = model(&dir);
    let mut s = Served::start(&config, &weights, &["--precision", "int8"]);
    let (st, _) = s.post(&json!({"input_ids": [3, 4]}));
    assert_eq!(st, 200);
    let mut child = s.child.take().unwrap();
    signal(&child, libc::SIGINT);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn serve_refuses_bad_flags_with_a_message() {
    let dir = Scratch::new();
    let (config, weights) = model(&dir);
    for (flags, needle) in [
        (vec!["--pad-to", "0"], "pad-to"),
        (vec!["--pad-to", "33"], "sequence_length 32"),
        (vec!["--pad-to", "max", "--pad-id", "100"], "pad-id 100"),
        (vec!["--threads", "0"], "threads"),
        (vec!["--max-batch-tokens", "0"], "max-batch-tokens"),
        (
            vec!["--max-concurrent-requests", "0"],
            "max-concurrent-requests",
        ),
        (vec!["--host", "not a host"], "host"),
        (
            vec!["--tokenizer", "/nonexistent/tokenizer.json"],
            "tokenizer",
        ),
    ] {
        let out = bin()
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--weights")
            .arg(&weights)
            .args(["--port", "0"])
            .args(&flags)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} succeeded");
        assert!(err.contains(needle), "{flags:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

fn tokenizer(dir: &Scratch) -> PathBuf {
    let mut vocab = serde_json::Map::new();
    for (i, t) in [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "movie", "very",
    ]
    .iter()
    .enumerate()
    {
        vocab.insert((*t).into(), json!(i));
    }
    let special = |id: usize, content: &str| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false,
               "rstrip": false, "normalized": false, "special": true})
    };
    let tok = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"), special(3, "[SEP]")],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    let path = dir.file("tokenizer.json");
    std::fs::write(&path, tok.to_string()).unwrap();
    path
}

#[test]
fn predict_runs_json_lines_in_order() {
    let dir = Scratch::new();
    let (config, weights) = model(&dir);
    let tok = tokenizer(&dir);
    let input = dir.file("in.jsonl");
    let lines = [
        json!({"input_ids": [1, 2, 3]}),
        json!({"text": "very good movie"}),
        json!({"input_ids": [5, 6, 7, 8], "attention_mask": [1, 1, 0, 1]}),
        json!({"text": "bad"}),
        json!({"input_ids": [9, 9, 9]}),
    ];
    let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    text.push('\n'); // a trailing blank line is skipped
    std::fs::write(&input, text).unwrap();
    let output = dir.file("out.jsonl");
    succeeds(
        bin()
            .arg("predict")
            .arg("--config")
            .arg(&config)
            .arg("--weights")
            .arg(&weights)
            .arg("--tokenizer")
            .arg(&tok)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output),
    );
    let got = std::fs::read_to_string(&output).unwrap();
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got.len(), 5);
    let expected_ids: [(Vec<i64>, Option<Vec<i64>>); 5] = [
        (vec![1, 2, 3], None),
        (vec![2, 7, 4, 6, 3], None),
        (vec![5, 6, 7, 8], Some(vec![1, 1, 0, 1])),
        (vec![2, 5, 3], None),
        (vec![9, 9, 9], None),
    ];
    for (i, (line, (ids, mask))) in got.iter().zip(&expected_ids).enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["label"].as_u64().unwrap() < 4);
        if lines[i].get("text").is_some() {
            assert_eq!(v["input_ids"], json!(ids));
        }
        let mut wrapped = String::from("{\"outputs\":[");
        let start = line.find('[').unwrap();
        let end = line.find(']').unwrap();
        wrapped.push_str(&line[start..=end]);
        wrapped.push_str("]}");
        assert_eq!(
            rows_of(&wrapped, "outputs")[0],
            forward_alone(&dir, &config, &weights, ids, mask.as_deref()),
            "line {}",
            i + 1
        );
    }
}

#[test]
fn predict_names_the_bad_line_and_writes_nothing() {
    let dir = Scratch::new();
    let (config, weights) = model(&dir);
    let output = dir.file("out.jsonl");
    for (bad, needle) in [
        ("{\"input_ids\": [1, 2,", "line 3"),
        ("{\"input_ids\": [1, 200]}", "line 3"),
        ("{\"text\": \"no tokenizer\"}", "line 3"),
        ("[1, 2]", "line 3"),
        ("{\"input_ids\": [[1], [2]]}", "line 3"),
    ] {
        let input = dir.file("in.jsonl");
        std::fs::write(
            &input,
            format!(
                "{{\"input_ids\": [1]}}\n{{\"input_ids\": [2, 3]}}\n{bad}\n{{\"input_ids\": [4]}}\n"
            ),
        )
        .unwrap();
        let out = bin()
            .arg("predict")
            .arg("--config")
            .arg(&config)
            .arg("--weights")
            .arg(&weights)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} succeeded");
        assert!(err.contains(needle), "{bad}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!output.exists(), "{bad}: an output was written");
    }
}
