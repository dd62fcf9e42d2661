//! CSV lines: `label,token,...` (classification) or `target,token,...` (regression).

use std::path::Path;

use super::{DataError, Dataset, Example, Input, Target, Task, collect};

fn parse_int(field: &str, what: &str) -> Result<i64, String> {
    field
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("{what} `{}` is not an integer", field.trim()))
}

/// CSV lines: `label,token,...` (classification) or `target,token,...` (regression).
pub(super) fn parse_csv(path: &Path, text: &str, task: Task) -> Result<Dataset, DataError> {
    let mut examples = Vec::new();
    let first = if task == Task::Regression {
        "target"
    } else {
        "label"
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| DataError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let fields: Vec<&str> = line.split(',').collect();
        let Some((head, token_fields)) = fields.split_first().filter(|(_, t)| !t.is_empty()) else {
            return Err(bad(format!("expected `{first},token,token,...`")));
        };
        let target = if task == Task::Regression {
            let v = head
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    bad(format!(
                        "field `target`: `{}` is not a finite number",
                        head.trim()
                    ))
                })?;
            Target::Values(vec![v])
        } else {
            Target::Class(parse_int(head, "label").map_err(&bad)?)
        };
        let tokens = token_fields
            .iter()
            .map(|f| parse_int(f, "token"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(&bad)?;
        examples.push(Example {
            input: Input::Tokens(tokens),
            target,
            line: i + 1,
        });
    }
    collect(path, examples, task)
}
