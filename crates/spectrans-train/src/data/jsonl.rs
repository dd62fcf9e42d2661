//! JSON lines: `{"tokens": [..], "label" | "target" | "labels": ..}`.

use std::path::Path;

use serde_json::Value;

use super::{DataError, Dataset, Example, Input, Target, Task, collect};

/// The integers of a JSON array field, or a message naming the field.
fn int_list(value: Option<&Value>, field: &str) -> Result<Vec<i64>, String> {
    let expected = || format!("field `{field}`: expected a list of integers");
    let items = value
        .ok_or_else(|| format!("field `{field}` is missing"))?
        .as_array()
        .ok_or_else(expected)?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_i64()
                .ok_or_else(|| format!("field `{field}`: item {i} ({v}) is not an integer"))
        })
        .collect()
}

fn number(v: &Value, field: &str) -> Result<f32, String> {
    v.as_f64()
        .map(|x| x as f32)
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("field `{field}`: {v} is not a finite number"))
}

pub(super) fn parse_jsonl(path: &Path, text: &str, task: Task) -> Result<Dataset, DataError> {
    let target_field = match task {
        Task::Classification => "label",
        Task::Regression => "target",
        _ => "labels",
    };
    let mut examples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| DataError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let value: Value = serde_json::from_str(line).map_err(|e| {
            bad(format!(
                "expected {} (not valid JSON: {e})",
                task.jsonl_layout()
            ))
        })?;
        let Some(object) = value.as_object() else {
            return Err(bad(format!("expected {}", task.jsonl_layout())));
        };
        if let Some(other) = object
            .keys()
            .find(|k| k.as_str() != "tokens" && k.as_str() != target_field)
        {
            return Err(bad(format!(
                "unknown field `{other}`; expected {}",
                task.jsonl_layout()
            )));
        }
        let tokens = int_list(object.get("tokens"), "tokens").map_err(&bad)?;
        let raw = object.get(target_field);
        let target = match task {
            Task::Classification => {
                let v = raw.ok_or_else(|| bad("field `label` is missing".into()))?;
                Target::Class(
                    v.as_i64()
                        .ok_or_else(|| bad(format!("field `label`: {v} is not an integer")))?,
                )
            }
            Task::Regression => {
                let v = raw.ok_or_else(|| bad("field `target` is missing".into()))?;
                let values = match v.as_array() {
                    Some(items) => items
                        .iter()
                        .map(|x| number(x, "target"))
                        .collect::<Result<Vec<_>, _>>(),
                    None => number(v, "target").map(|x| vec![x]),
                }
                .map_err(&bad)?;
                Target::Values(values)
            }
            _ => Target::Labels(int_list(raw, "labels").map_err(&bad)?),
        };
        examples.push(Example {
            input: Input::Tokens(tokens),
            target,
            line: i + 1,
        });
    }
    collect(path, examples, task)
}
