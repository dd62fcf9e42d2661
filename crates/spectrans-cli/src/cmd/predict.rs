//! `spectrans predict --config C --weights W --input IN.jsonl --output OUT.jsonl`: a JSON-lines
//! file through the serving engine (the same batching, the same answers as `serve`).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use spectrans_models::HeadKind;
use spectrans_models::tensor_file::write_atomically;
use spectrans_serve::http::{argmax, write_output};
use spectrans_serve::{Reply, request::kind};

use super::serve::EngineArgs;

/// Arguments of `spectrans predict`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// JSON lines, one sequence each: `{"input_ids": [...]}` (optionally with
    /// `"attention_mask"`) or, with --tokenizer, `{"text": "..."}`. Blank lines are skipped.
    #[arg(long, value_name = "IN.jsonl")]
    pub input: PathBuf,
    /// Where to write one line per input line, in order: `{"outputs": ..., "label": ...}`
    /// (`label` for classification heads; `input_ids` too for text). Written whole or not at all.
    #[arg(long, value_name = "OUT.jsonl")]
    pub output: PathBuf,
    /// Lines in flight in the engine at once (more lets the batcher group more equal lengths).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub window: usize,
}

struct Line {
    number: usize,
    reply: Reply,
    tokenized: Option<Vec<i64>>,
}

/// Runs every line through the engine and writes the answers in order.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.window == 0 {
        bail!("--window 0: expected at least 1");
    }
    let file = std::fs::File::open(&args.input)
        .with_context(|| format!("cannot open {}", args.input.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let (engine, pre, _metrics) = args.engine.start()?;
    let classification = engine
        .model()
        .output_head()
        .is_some_and(|h| h.kind == HeadKind::Classification);
    let input = args.input.display().to_string();

    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("predict [{bar:30}] {bytes}/{total_bytes} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut out = String::new();
    let mut in_flight: VecDeque<Line> = VecDeque::new();
    let mut done = 0usize;
    let mut finish = |line: Line, out: &mut String| -> anyhow::Result<()> {
        let outputs = line
            .reply
            .blocking_recv()
            .map_err(|_| anyhow!("{input}: line {}: the engine stopped", line.number))?
            .with_context(|| format!("{input}: line {}", line.number))?;
        let o = &outputs[0];
        out.push_str("{\"outputs\":");
        write_output(out, o);
        if classification {
            let _ = write!(out, ",\"label\":{}", argmax(&o.values));
        }
        if let Some(ids) = &line.tokenized {
            out.push_str(",\"input_ids\":");
            out.push_str(&serde_json::to_string(ids)?);
        }
        out.push_str("}\n");
        done += 1;
        Ok(())
    };
    let reader = std::io::BufReader::new(file);
    for (i, text) in reader.lines().enumerate() {
        let number = i + 1;
        let text = text.with_context(|| format!("{input}: line {number}: cannot read"))?;
        bar.inc(text.len() as u64 + 1);
        if text.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            anyhow!("{input}: line {number}: malformed JSON: {e}; expected an object like {{\"input_ids\": [1, 2, 3]}}")
        })?;
        let Value::Object(obj) = value else {
            bail!(
                "{input}: line {number}: a JSON {}; expected an object with `input_ids` or `text`",
                kind(&value)
            );
        };
        let prepared = pre
            .prepare_object(&obj, "text")
            .map_err(|e| anyhow!("{input}: line {number}: {e}"))?;
        if prepared.sequences.len() != 1 {
            bail!(
                "{input}: line {number}: {} sequences; expected one sequence per line",
                prepared.sequences.len()
            );
        }
        let tokenized = prepared.tokenized.and_then(|mut t| t.pop());
        let reply = engine.submit(prepared.sequences)?;
        in_flight.push_back(Line {
            number,
            reply,
            tokenized,
        });
        if in_flight.len() >= args.window
            && let Some(line) = in_flight.pop_front()
        {
            finish(line, &mut out)?;
        }
    }
    while let Some(line) = in_flight.pop_front() {
        finish(line, &mut out)?;
    }
    engine.shutdown();
    bar.finish_and_clear();
    write_atomically(&args.output, out.as_bytes())
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!("{done} lines -> {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}
